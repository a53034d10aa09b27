"""What every Benchmark backend promises (run on the table and the tss sample archive)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcnas.errors import ArchError, UnknownNameError, UserError
from zcnas.lookup import Accuracy, Benchmark, CostInfo, Optimum, canonical_split
from zcnas.spaces import nats_tss

from ._util import SAMPLE


@pytest.fixture(scope="module", params=["table", "tss_archive"])
def bench(request) -> Benchmark:
    return request.getfixturevalue(request.param)


@settings(max_examples=200, deadline=None)
@given(i=st.integers(0, nats_tss.SIZE - 1))
def test_index_arch_round_trip(bench, i):
    arch = bench.arch(i)
    assert bench.index(arch) == i
    assert bench.index(nats_tss.parse_arch(arch)) == i


def test_interface(bench):
    assert len(bench) == nats_tss.SIZE and bench.space == "nats-tss"
    assert bench.full_epochs == 200 and bench.schedules == (200, 12)
    assert {"cifar10", "cifar100", "ImageNet16-120"} <= set(bench.datasets)
    assert bench.source in repr(bench)


@pytest.mark.parametrize("index", SAMPLE)
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
@pytest.mark.parametrize("epochs", [200, 12])
def test_backends_agree_on_test_accuracy(table, tss_archive, index, dataset, epochs):
    t = table.accuracy(index, dataset, epochs=epochs)
    a = tss_archive.accuracy(index, dataset, epochs=epochs)
    assert t.value == pytest.approx(a.value, abs=1e-4)  # the table is rounded to 4 decimals
    assert (t.split, t.dataset, t.epochs, t.eval_set) == (a.split, a.dataset, a.epochs, a.eval_set)


def test_records_are_frozen(bench):
    acc = bench.accuracy(11, "cifar10")
    assert isinstance(acc, Accuracy)
    with pytest.raises(AttributeError):
        acc.value = 0.0
    cost = bench.cost(11, "cifar10")
    assert isinstance(cost, CostInfo) and cost.source
    with pytest.raises(AttributeError):
        cost.params_m = 0.0


def test_user_errors(bench):
    with pytest.raises(UnknownNameError):
        bench.accuracy(11, "mnist")
    with pytest.raises(UnknownNameError):
        bench.accuracy(11, "cifar10", split="train")
    with pytest.raises(ArchError):
        bench.accuracy(-1, "cifar10")
    with pytest.raises(ArchError):
        bench.accuracy("|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|", "cifar10")
    with pytest.raises(UserError):
        bench.accuracy(11, "cifar10", epochs=100)


def test_optimum_unpacks_to_three():
    opt = Optimum(3, "a", 1.0, (3, 7), "cifar10", "test", 200)
    index, arch, value = opt
    assert (index, arch, value) == (3, "a", 1.0)


def test_split_names():
    assert canonical_split("VALID") == "valid" and canonical_split("validation") == "valid"
    with pytest.raises(UnknownNameError):
        canonical_split("val")


def test_lookup_does_not_import_torch():
    import os
    import subprocess
    import sys

    code = (
        "import sys, zcnas.lookup, zcnas.lookup.timefit; "
        "sys.exit(1 if 'torch' in sys.modules or 'nats_bench' in sys.modules else 0)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0
