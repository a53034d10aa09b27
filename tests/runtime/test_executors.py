"""Executors: the same score table on every executor, bounded workers, no orphaned workers,
clear errors, and a search protocol whose driver is the only writer of the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from zcnas.errors import UserError
from zcnas.registry import create_scorers
from zcnas.runtime import ScoreStore
from zcnas.runtime.executors import (
    InProcess,
    ProcessPool,
    RayExecutor,
    check_workers,
    open_executor,
    usable_cpus,
)
from zcnas.runtime.reaper import children, descendants
from zcnas.scoring.engine import score_archs, select_archs

SUITE = "synflow,zen,params"


def _square(state, task):
    return (state or 0) + task * task


def _init(setup):
    return setup["offset"]


def _fail_on_three(state, task):
    if task == 3:
        raise ValueError("task three")
    return task


def _table(rows):
    return sorted((r.arch, r.proxy, r.value) for r in rows)


@pytest.fixture(scope="module")
def items():
    return select_archs("5", "nats-tss", seed=3)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_every_executor_streams_every_result_once():
    tasks = list(range(20))
    want = {i: 5 + i * i for i in tasks}
    for ex in (InProcess(), ProcessPool(2)):
        with ex:
            got = dict(ex.map_unordered(_square, tasks, init=_init, setup={"offset": 5}))
        assert got == want, ex.kind


def test_a_failing_task_raises_and_cancels_the_rest():
    with ProcessPool(2) as ex, pytest.raises(ValueError, match="task three"):
        list(ex.map_unordered(_fail_on_three, list(range(40))))
    with InProcess() as ex, pytest.raises(ValueError, match="task three"):
        list(ex.map_unordered(_fail_on_three, list(range(40))))


RECYCLE = """
import collections, os, sys
from zcnas.runtime.executors import ProcessPool

def pid(state, task):
    return os.getpid()

if __name__ == "__main__":
    with ProcessPool(1, max_tasks_per_child=2) as ex:
        first = dict(ex.map_unordered(pid, list(range(9))))
        second = dict(ex.map_unordered(pid, list(range(3))))
    per_worker = collections.Counter(list(first.values()) + list(second.values()))
    print(len(first), len(second), max(per_worker.values()), len(per_worker))
"""


def test_workers_are_replaced_after_their_share_without_hanging(tmp_path):
    """ProcessPoolExecutor(max_tasks_per_child=...) hangs once a worker reaches the limit with
    work still queued (CPython gh-115634): 1 worker, 2 tasks each, 12 tasks must all finish,
    on fresh workers that each ran at most 2 (the count carries over between calls)."""
    script = tmp_path / "recycle.py"
    script.write_text(RECYCLE)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    n_first, n_second, most, workers = map(int, out.stdout.split())
    assert (n_first, n_second) == (9, 3)
    assert most <= 2 and workers >= 6


def test_scores_are_bitwise_the_same_on_every_executor(items, local_ray):
    scorers = create_scorers(SUITE)
    ref = _table(score_archs(items, scorers, progress=False, executor=InProcess()))
    with ProcessPool(2) as pool:
        assert _table(score_archs(items, scorers, progress=False, executor=pool)) == ref
    with RayExecutor() as ray_ex:
        assert ray_ex.workers == 2 and "ray" in ray_ex.describe()
        assert _table(score_archs(items, scorers, progress=False, executor=ray_ex)) == ref
    assert local_ray.is_initialized()  # an executor never shuts down a Ray it did not start


def test_the_driver_is_the_single_writer_of_the_store(items, tmp_path, local_ray):
    store_path = tmp_path / "scores.sqlite"
    with ScoreStore(store_path) as store, RayExecutor() as ex:
        score_archs(items, create_scorers("synflow"), store=store, progress=False, executor=ex)
    with ScoreStore(store_path, readonly=True) as store:
        keys = [r.key for r in store.records()]
    assert len(keys) == len({i.canonical for i in items}) == len(set(keys))


def test_more_workers_than_cpus_warn_once_and_are_capped():
    cpus = usable_cpus()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert check_workers(cpus + 30) == cpus
    assert len(caught) == 1 and "--oversubscribe" in str(caught[0].message)
    assert check_workers(cpus + 30, allow_more=True) == cpus + 30
    with pytest.raises(UserError, match="--workers must be >= 1"):
        check_workers(0)


def test_executor_settings_are_one_line(monkeypatch):
    with pytest.raises(UserError, match="unknown executor 'dask'"):
        open_executor("dask")
    with pytest.raises(UserError, match="--address needs --executor ray"):
        open_executor("process", 2, address="auto")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(UserError, match=r'pip install "zcnas\[ray\]"'):
        open_executor("ray", 2)


def test_zcnas_and_its_help_do_not_import_ray():
    code = ("import sys, zcnas, zcnas.runtime.executors\n"
            "from click.testing import CliRunner\nfrom zcnas.cli import main\n"
            "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
            "assert CliRunner().invoke(main, ['score', '--help']).exit_code == 0\n"
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_killing_the_parent_leaves_no_worker(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(
        "import sys\nfrom zcnas.registry import create_scorers\n"
        "from zcnas.scoring.engine import score_archs, select_archs\n"
        "if __name__ == '__main__':\n"
        "    items = select_archs('400', 'nats-tss', seed=1)\n"
        "    print('ready', flush=True)\n"
        "    score_archs(items, create_scorers('az_expressivity,zen'), workers=2,\n"
        "                progress=False)\n")
    env = {k: v for k, v in os.environ.items() if k != "ZCNAS_DATA"}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.time() + 60
        workers: list[int] = []
        while time.time() < deadline and len(workers) < 2:
            time.sleep(0.5)
            workers = [c for c in children(proc.pid)
                       if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(workers) == 2, "the pool did not start"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(5)
        assert [w for w in workers if _alive(w)] == []
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_killing_the_driver_of_a_local_ray_instance_leaves_no_process(tmp_path):
    """The local Ray instance zcnas starts goes away with its driver."""
    pytest.importorskip("ray")
    script = tmp_path / "ray_driver.py"
    script.write_text("import time\nfrom zcnas.runtime.executors import RayExecutor\n"
                      "ex = RayExecutor(1)\nprint('ready', flush=True)\ntime.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "ready"
        procs = descendants(proc.pid)
        assert procs, "Ray started no process"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(5)  # zcnas's reaper kills what Ray started (Ray's agents would linger)
        assert [p for p in procs if _alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_local_ray_instance_gets_every_usable_cpu_by_default():
    """`zcnas score --executor ray` without --workers: a local instance as wide as the process
    pool would be (it once started with one CPU and ran at half speed), a cluster's own CPUs."""
    from zcnas.experiments.scoring import default_workers

    assert default_workers("ray", None, "cpu") == usable_cpus()
    assert default_workers("process", None, "cpu") == usable_cpus()
    assert default_workers("ray", "auto", "cpu") == 0
    assert default_workers("process", None, "cuda") == 1
    assert default_workers("ray", None, "cuda") == usable_cpus()
