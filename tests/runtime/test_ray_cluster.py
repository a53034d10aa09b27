"""Ray across several nodes (a ``ray.cluster_utils.Cluster`` of 1-CPU nodes on this machine):
a worker node lost mid-run loses no score, and the search protocol runs and resumes on it."""

from __future__ import annotations

import json

import pytest

from zcnas.registry import create_scorers
from zcnas.runtime import ScoreStore
from zcnas.runtime.executors import InProcess, RayExecutor
from zcnas.scoring.engine import score_archs, select_archs
from zcnas.spaces import get_space

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [c.add_node(num_cpus=1) for _ in range(3)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, include_dashboard=False)
    yield c, nodes
    ray.shutdown()
    c.shutdown()


def _table(rows):
    return sorted((r.arch, r.proxy, r.value) for r in rows)


def test_a_lost_worker_node_loses_nothing(cluster, tmp_path):
    c, nodes = cluster
    items = select_archs("15", "nats-tss", seed=5)
    scorers = create_scorers("synflow,zen")
    ref = _table(score_archs(items, scorers, progress=False, executor=InProcess()))
    seen: list[str] = []

    def on_result(arch, _out):
        seen.append(arch)
        if len(seen) == 3:  # tasks are in flight on every node: take one node away
            c.remove_node(nodes[0])

    with ScoreStore(tmp_path / "s.sqlite") as store, RayExecutor(address=c.address) as ex:
        assert ex.workers == 3
        rows = score_archs(items, scorers, store=store, progress=False, executor=ex,
                           on_result=on_result)
        keys = [r.key for r in store.records()]
    assert len(ray.nodes()) - sum(not n["Alive"] for n in ray.nodes()) == 3  # head + 2 left
    assert _table(rows) == ref  # bitwise the same as a clean local run
    # zen is scored per architecture (it reads the dead edges), synflow once per class, on
    # the class's representative: each task committed once, as it arrived
    archs = {i.arch for i in items}
    reps = {get_space("nats-tss").representative(a) for a in archs}
    assert len(seen) == len(set(seen)) and set(seen) == archs | reps
    assert len(keys) == len(set(keys)) == len({i.canonical for i in items}) + len(archs)


def test_the_search_protocol_runs_and_resumes_on_the_cluster(cluster, data_root, tmp_path):
    from zcnas.experiments.protocol import run_protocol
    from zcnas.search import SearchConfig

    configs = [SearchConfig(method=m, seed=s, budget=5_000,
                            fitness="ensemble:mean_rank(params,flops)")
               for m, s in (("rea", 0), ("rea", 1), ("mfea", 0))]
    local = run_protocol(configs, tmp_path / "local", root=data_root,
                         store_path=str(tmp_path / "local.sqlite"))
    with RayExecutor(address=cluster[0].address) as ex:
        remote = run_protocol(configs, tmp_path / "ray", root=data_root, executor=ex,
                              store_path=str(tmp_path / "ray.sqlite"))
    assert [(r.arch, r.reported) for r in remote] == [(r.arch, r.reported) for r in local]
    # the driver wrote every finished checkpoint; a re-run reuses them and only redoes a
    # run whose checkpoint is gone
    gone = tmp_path / "ray" / "runs" / "rea-cifar10-seed1.json"
    gone.unlink()
    with RayExecutor(address=cluster[0].address) as ex:
        again = run_protocol(configs, tmp_path / "ray", root=data_root, executor=ex,
                             store_path=str(tmp_path / "ray.sqlite"))
    assert [r.to_dict() for r in again if r.config.seed == 0] == \
        [r.to_dict() for r in remote if r.config.seed == 0]  # reused verbatim
    assert gone.is_file() and json.loads(gone.read_text())["result"]["arch"] == remote[1].arch
    with ScoreStore(tmp_path / "ray.sqlite", readonly=True) as store:
        assert len(store) > 0  # the workers' scores, committed by the driver
