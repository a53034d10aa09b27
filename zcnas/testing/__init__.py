"""Conformance checks for zero-cost proxies: run them on your proxy before you publish it.

The kit the built-ins are tested with (in the spirit of Optuna's
``optuna.testing.pytest_samplers`` and scikit-learn's ``parametrize_with_checks``). One test per
check under pytest::

    from zcnas.testing import parametrize_proxy_checks

    @parametrize_proxy_checks([MyProxy, MyProxy(alpha=0.5)], data_root=os.environ.get("ZCNAS_DATA"))
    def test_my_proxy_conforms(check):
        check()

or ``@pytest.mark.parametrize("name, check", proxy_checks(MyProxy))``. Without pytest::

    results = check_proxy(MyProxy)              # one CheckResult per check
    assert_proxy_conforms(MyProxy(alpha=0.5))   # AssertionError listing every failed check

``proxy`` is a :class:`~zcnas.proxy.Proxy` subclass (checked with its defaults) or an instance
(checked with its parameters). To stay fast the kit scores a copy with ``batch_size`` capped at
8 (``batch_size=None`` keeps the proxy's own) on a few architectures (``archs``; by default two
fixed cells and two seeded random ones), on ``device`` (the CPU by default). A check passes
(possibly with a note such as ``n/a: draws no batches``), fails with a
one-line reason, or is skipped: a proxy that declares ``needs_images=True`` is only scored when
``data_root`` (the folder holding the datasets, as for ``ZCNAS_DATA``) is given.

The checks (:data:`CHECKS`), grouped:

- metadata: ``metadata``, ``constructor``, ``config_roundtrip``, ``spec_roundtrip``,
  ``requests``;
- determinism: ``returns_float``, ``determinism``, ``global_state``;
- no mutation: ``batches_unchanged``, ``shared_passes_unchanged``, ``sharing``,
  ``fresh_networks``;
- ``degenerate_cells`` (the space's degenerate genotypes, e.g. the all-``none`` cell);
- honest metadata: ``honest_bn``, ``honest_init``, ``honest_input``, ``honest_batch_size``,
  ``honest_images``, ``honest_labels``, ``input_independent``;
- ``nan_policy``.

Determinism and every "same score" comparison are bitwise on the CPU (``struct.pack('<d')``, so
NaN equals NaN); on other devices they allow a relative difference of 1e-5.
Each check is a small registered function (:func:`zcnas.testing.kit.register_check`, grouped in
the ``checks_*`` modules); the kit imports no built-in proxy (the co-scored reference proxies
come from the registry when installed). Building blocks useful in a proxy's own tests are
public: :class:`RecordingContext` (a
:class:`~zcnas.scoring.ScoringContext` that records every network, batch and ones request),
:class:`StandInImages` (an input bank with seeded random "real" images) and
:class:`RelabelledInputs` (the same images with every label changed).
"""

from zcnas.testing import (  # noqa: F401 - registers the built-in checks, in order
    checks_degenerate,
    checks_determinism,
    checks_honesty,
    checks_metadata,
    checks_mutation,
)
from zcnas.testing.kit import (
    CHECKS,
    Check,
    CheckResult,
    CheckSkipped,
    Kit,
    ProxyCheck,
    assert_proxy_conforms,
    check_proxy,
    default_archs,
    parametrize_proxy_checks,
    proxy_checks,
    register_check,
)
from zcnas.testing.recording import (
    BatchCall,
    NetworkCall,
    RecordingContext,
    RelabelledInputs,
    StandInImages,
    fingerprint,
    fingerprint_difference,
    observed_init,
)

__all__ = [
    "CHECKS",
    "BatchCall",
    "Check",
    "CheckResult",
    "CheckSkipped",
    "Kit",
    "NetworkCall",
    "ProxyCheck",
    "RecordingContext",
    "RelabelledInputs",
    "StandInImages",
    "assert_proxy_conforms",
    "check_proxy",
    "default_archs",
    "fingerprint",
    "fingerprint_difference",
    "observed_init",
    "parametrize_proxy_checks",
    "proxy_checks",
    "register_check",
]
