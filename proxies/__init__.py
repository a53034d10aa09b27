"""zcnas built-in zero-cost proxies (import name ``zcnas_proxies``), one module per recipe,
registered through the ``zcnas.proxies`` entry-point group like any third-party proxy."""
