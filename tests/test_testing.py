"""The proxy conformance kit (zcnas.testing): built-ins pass it, broken proxies are caught."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import zcnas.testing as kit
from tests import _kit_plugins as plugins
from zcnas.testing import (
    CHECKS,
    CheckSkipped,
    RecordingContext,
    RelabelledInputs,
    StandInImages,
    assert_proxy_conforms,
    check_proxy,
    default_archs,
    parametrize_proxy_checks,
    proxy_checks,
)

MID = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"


@pytest.fixture(scope="session")
def images() -> Path | None:
    """The reference data folder when ZCNAS_DATA is set, else None (the kit then skips what
    needs real images; nothing else is skipped)."""
    value = os.environ.get("ZCNAS_DATA")
    if not value:
        return None
    if not Path(value).is_dir():
        pytest.fail(f"ZCNAS_DATA={value} is not a folder")
    return Path(value).resolve()


def _failed(results) -> dict[str, str]:
    return {r.check: r.reason for r in results if r.failed}


# --- the kit's API ----------------------------------------------------------------------------


def test_good_proxy_passes_every_check():
    results = check_proxy(plugins.MeanLogit)
    assert [r.check for r in results] == list(CHECKS)
    assert _failed(results) == {}
    assert not any(r.skipped for r in results)
    assert all(r.proxy == "kit_mean_logit" for r in results)


def test_instance_is_checked_with_its_own_params():
    result, = check_proxy(plugins.MeanLogit(batch_size=4, n_batches=2), checks=["metadata"])
    assert result.proxy == "kit_mean_logit(batch_size=4,n_batches=2)"
    # an instance is scored as configured (batch size 6 here, under the kit's cap of 8)
    result, = check_proxy(plugins.HardcodedBatch(batch_size=6), checks=["honest_batch_size"])
    assert result.failed and "batch_size=6" in result.reason


def test_assert_proxy_conforms_lists_every_failed_check():
    with pytest.raises(AssertionError) as info:
        assert_proxy_conforms(plugins.GlobalRng)
    text = str(info.value)
    assert text.startswith("proxy kit_global_rng fails ")
    assert "\n  determinism: two fresh contexts gave" in text
    assert "\n  global_state: scoring changed global state: torch RNG" in text
    for line in text.splitlines()[1:]:  # one line per failed check
        assert line.startswith("  ") and line.split(":")[0].strip() in CHECKS


def test_check_proxy_runs_named_checks_only_and_rejects_unknown_names():
    results = check_proxy(plugins.MeanLogit, checks=["metadata", "determinism"])
    assert [r.check for r in results] == ["metadata", "determinism"]
    with pytest.raises(ValueError, match="unknown check"):
        check_proxy(plugins.MeanLogit, checks=["determinsm"])


def test_proxy_checks_yields_every_check_once():
    pairs = list(proxy_checks(plugins.MeanLogit))
    assert [name for name, _ in pairs] == list(CHECKS)
    assert all(check.name == name and check.__name__ == name for name, check in pairs)
    assert pairs[0][1].id == "kit_mean_logit-metadata"


@parametrize_proxy_checks(plugins.MeanLogit(batch_size=4, n_batches=2))
def test_parametrize_proxy_checks(check):
    check()


# a proxy reading a shared pass, one test per check
@pytest.mark.parametrize("name, check", proxy_checks(plugins.ReadsGrads))
def test_proxy_checks_with_pytest_parametrize(name, check):
    check()


def test_a_failing_check_raises_assertion_error():
    checks = dict(proxy_checks(plugins.ReturnsTensor))
    with pytest.raises(AssertionError, match="returned torch.Tensor"):
        checks["returns_float"]()


def test_image_proxy_without_data_is_skipped_with_a_clear_reason(monkeypatch):
    from zcnas_proxies.naswot import Naswot

    results = {r.check: r for r in check_proxy(Naswot, data_root=None)}
    for name in ("metadata", "constructor", "config_roundtrip", "spec_roundtrip", "requests"):
        assert results[name].passed
    assert results["determinism"].skipped
    assert str(results["determinism"]) == ("naswot determinism: skipped: needs real images; "
                                           "pass data_root")
    check = dict(proxy_checks(Naswot))["determinism"]
    with pytest.raises(pytest.skip.Exception, match="needs real images; pass data_root"):
        check()
    monkeypatch.delitem(sys.modules, "pytest")  # used programmatically: its own exception
    with pytest.raises(CheckSkipped, match="needs real images"):
        check()


def test_space_the_proxy_does_not_declare_is_skipped():
    class TopologyOnly(plugins.MeanLogit):
        info = plugins._info("kit_topology_only", spaces=("nats-tss",))

    results = {r.check: r for r in check_proxy(TopologyOnly, space="nats-sss")}
    assert results["determinism"].skipped
    assert "nats-sss" in results["determinism"].reason


def test_size_space_runs_without_degenerate_cells():
    results = check_proxy(plugins.MeanLogit, space="nats-sss")
    assert _failed(results) == {}
    assert next(r for r in results if r.check == "degenerate_cells").reason.startswith("n/a")


def test_kit_leaves_the_callers_global_rng_alone():
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    check_proxy(plugins.MeanLogit, checks=["determinism", "global_state", "sharing"])
    check_proxy(plugins.SeedsGlobalRng, checks=["global_state"])
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state, np.random.get_state()[1])


def test_default_archs_are_fixed_and_valid():
    archs = default_archs("nats-tss")
    assert archs == default_archs("tss") and len(archs) == 4 and archs[0] == MID
    assert len(set(archs)) == 4
    assert len(default_archs("nats-sss")) == 4


# --- building blocks --------------------------------------------------------------------------


def test_recording_context_records_networks_batches_and_passes():
    proxy = plugins.ReadsGrads(batch_size=4)
    ctx = RecordingContext(MID, inputs=StandInImages("cifar10"), requests=proxy.requests(),
                           snapshot=True)
    proxy.score(ctx)
    assert [c.kwargs["bn"] for c in ctx.network_calls] == [True]
    assert ctx.network_calls[0].kwargs["init"] == "default"
    assert ctx.network_calls[0].bn_training and all(ctx.network_calls[0].bn_training)
    assert [(c.batch_size, c.n, c.kind) for c in ctx.batch_calls] == [(4, 1, "gaussian")]
    assert ctx.pass_calls == list(proxy.requests())


def test_stand_in_images_and_relabelled_inputs():
    bank = StandInImages("cifar10", seed=0)
    (x, y), = bank.batches("real", 4, 1)
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.int64
    assert torch.equal(bank.batches("real", 4, 2)[0][0], x)  # prefix-stable
    x = bank.batches("real", 4, 1)[0][0]
    relabelled = RelabelledInputs(bank)
    (x2, y2), = relabelled.batches("real", 4, 1)
    assert x2 is x and bool((y2 != y).all()) and torch.equal(y2, (y + 1) % 10)
    assert relabelled.batches("real", 4, 1)[0][1] is y2


# --- every check catches a deliberately broken proxy --------------------------------------------

BROKEN = [
    # (proxy, the check that must fail it, a phrase of the reason)
    (plugins.InheritsInfo, "metadata", "inherited"),
    (plugins.SwallowsKwargs, "constructor", "did not raise"),
    (plugins.ConfigDoubles, "config_roundtrip", "(**config()) has config"),
    (plugins.CommaParam(mode="x,y"), "spec_roundtrip", "does not parse"),
    (plugins.UnhashableRequest, "requests", "not hashable"),
    (plugins.ReturnsTensor, "returns_float", "torch.Tensor"),
    (plugins.ReturnsNumpy, "returns_float", "numpy.float64"),
    (plugins.GlobalRng, "determinism", "two fresh contexts"),
    (plugins.SeedsGlobalRng, "global_state", "torch RNG"),
    (plugins.MutatesBatch, "batches_unchanged", "in place"),
    (plugins.MutatesPass, "shared_passes_unchanged", "modified the shared 'ce' pass"),
    (plugins.GreedyPass, "sharing", "with its passes shared"),
    (plugins.ChangesSeed, "fresh_networks", "ctx.seed"),
    (plugins.RaisesOnAllNone, "degenerate_cells", "all none cell"),
    (plugins.DeclaresNoBn, "honest_bn", "bn='none'"),
    (plugins.EvalModeBn, "honest_bn", "eval mode"),
    (plugins.WrongInit, "honest_init", "init='normal'"),
    (plugins.OnesDrawsBatches, "honest_input", "input='ones'"),
    (plugins.HardcodedBatch, "honest_batch_size", "largest batch asked is 4"),
    (plugins.AsksRealImages, "honest_images", "needs_images=False but asked for real"),
    (plugins.UsesLabels, "honest_labels", "needs_labels=False"),
    (plugins.PeeksAtImages, "input_independent", "input='gaussian'"),
]


@pytest.mark.parametrize("proxy, check, phrase", BROKEN,
                         ids=[f"{c}-{getattr(p, '__name__', type(p).__name__)}"
                              for p, c, _ in BROKEN])
def test_each_check_catches_a_broken_proxy(proxy, check, phrase):
    result, = check_proxy(proxy, checks=[check])
    assert result.failed, f"{check} let {proxy} pass"
    assert phrase in result.reason
    assert "\n" not in result.reason


def test_every_check_has_a_broken_example():
    covered = {c for _, c, _ in BROKEN} | {"nan_policy"}  # nan_policy: test below
    assert covered == set(CHECKS)


def test_needs_images_proxy_that_never_asks_for_them(images):
    if images is None:
        pytest.skip("ZCNAS_DATA is not set")
    result, = check_proxy(plugins.NeverAsksImages, data_root=images, checks=["honest_images"])
    assert result.failed and "never asked for real images" in result.reason


def test_nan_policy_catches_a_broken_goodness(monkeypatch):
    assert check_proxy(plugins.MeanLogit, checks=["nan_policy"])[0].passed
    monkeypatch.setattr(kit.checks_degenerate, "goodness", lambda values, hib=True: np.asarray(values, float))
    result, = check_proxy(plugins.MeanLogit, checks=["nan_policy"])
    assert result.failed and "goodness maps score nan" in result.reason


# --- the built-in proxies -----------------------------------------------------------------------

# run by default (one analytic, one data-free network, one shared-pass image proxy); every
# other built-in is in the slow run
FAST_BUILTINS = ("params", "synflow", "naswot")


def _builtin_names() -> list[str]:
    from zcnas.registry import PROXIES, list_proxies

    builtin = {e.name for e in PROXIES.entries() if e.target.startswith("zcnas_proxies.")}
    return [name for name in list_proxies() if name in builtin]


def _load_builtin(name: str):
    from zcnas.registry import PROXIES, get_proxy

    try:
        return get_proxy(name)
    except Exception as err:
        entry = next(e for e in PROXIES.entries() if e.name == name)
        module = entry.target.partition(":")[0]
        cause = err.__cause__ if err.__cause__ is not None else err
        if isinstance(cause, ModuleNotFoundError) and cause.name == module:
            pytest.skip(f"built-in {name!r}: module {module} is not written yet")
        raise


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=() if n in FAST_BUILTINS else pytest.mark.slow)
    for n in _builtin_names()
])
def test_builtin_proxy_conforms(name, images):
    assert_proxy_conforms(_load_builtin(name), data_root=images)


def test_fast_builtins_are_registered():
    assert set(FAST_BUILTINS) <= set(_builtin_names())
