import bz2
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zcnas.errors import ArchError
from zcnas.spaces import nats_sss


@given(st.integers(0, nats_sss.SIZE - 1))
def test_index_round_trip(i):
    g = nats_sss.at_index(i)
    assert nats_sss.index_of(g) == i
    assert nats_sss.parse_arch(nats_sss.format_arch(g)) == g


def test_index_order_matches_official_meta(sample_archive):
    path = sample_archive / "NATS-sss-v1_0-50262-simple" / "meta.pickle.pbz2"
    with bz2.open(path, "rb") as f:
        meta = pickle.load(f)
    archs = meta["meta_archs"]
    assert len(archs) == nats_sss.SIZE
    assert [nats_sss.format_arch(g) for g in nats_sss.all_archs()] == list(archs)


@pytest.mark.parametrize("text", ["8:16:24:32", "8:16:24:32:65", "8:16:x:32:64", "8,16,24,32,64",
                                  "8:16:24:32:64:8"])
def test_malformed(text):
    with pytest.raises(ArchError) as err:
        nats_sss.parse_arch(text)
    assert "\n" not in str(err.value)


def test_operators():
    rng = np.random.default_rng(1)
    g = nats_sss.parse_arch("8:16:24:32:64")
    nb = nats_sss.neighbours(g)
    assert len(nb) == 35 == len(set(nb))
    for _ in range(100):
        m = nats_sss.mutate(g, rng)
        assert sum(a != b for a, b in zip(m.channels, g.channels, strict=True)) == 1
        c = nats_sss.crossover(g, nats_sss.sample(rng), rng)
        assert len(c.channels) == 5
    assert nats_sss.canonical_key("8:8:8:8:8") == "8:8:8:8:8"
