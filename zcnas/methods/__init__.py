"""The built-in search methods, as plugins.

Each module holds :class:`zcnas.search.Method` records registered through the
``zcnas.methods`` entry-point group (``pyproject.toml``), exactly as a third-party package
registers its own: :mod:`.lookup` (``random``, ``rea``, ``ls``, ``mfea``, ``mfnas``: lookups
and zero-cost proxies) and :mod:`.oneshot` (zero-cost -> weight-sharing supernet ->
stand-alone training). Importing a record imports no torch; the training fidelities load when
a method is built.
"""
