"""Executors: one small interface for running many independent tasks, three ways.

    with open_executor("process", workers=2) as ex:
        for i, result in ex.map_unordered(fn, tasks, init=init, setup=setup):
            ...  # results stream in as they complete; leaving the loop cancels the rest

``fn(state, task)`` runs once per task; ``state = init(setup)`` once per worker process (the
scoring engine's input banks and proxies, built once, not per task). ``fn`` and ``init`` are
module-level functions (they travel to other processes by name). The results of a task never
depend on which worker ran it, so every executor gives the same results (the scoring engine
runs one intra-op thread per worker: bitwise the same scores).

- :class:`InProcess`: this process, in order; nothing is pickled.
- :class:`ProcessPool`: a local ``spawn`` process pool (the default for several workers).
  Workers exit when this process dies, however it dies (Linux parent-death signal and a
  watcher thread), so a killed run leaves no orphan.
- :class:`RayExecutor`: Ray tasks on a local Ray instance (started here, shut down at the end)
  or an existing cluster (``address="auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``). Tasks
  are retried on another node when a node dies; a worker process keeps its ``init`` state
  between tasks (a module-level cache keyed by the setup), and with ``gpus_per_task`` (e.g.
  ``1 / K``) several tasks share one GPU. Ray is an optional extra: ``pip install
  "zcnas[ray]"``; nothing imports it until a Ray executor is opened.

The caller (the driver) is the only one that writes results anywhere: executors only return
them.
"""

from __future__ import annotations

import abc
import hashlib
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from zcnas.errors import UserError

KINDS = ("inprocess", "process", "ray")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_workers(workers: int, *, allow_more: bool = False) -> int:
    """``workers`` capped at the usable CPUs (one warning), unless ``allow_more``."""
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    cpus = usable_cpus()
    if workers > cpus and not allow_more:
        warnings.warn(f"{workers} workers asked for but this process may use {cpus} CPUs: "
                      f"using {cpus} (pass --oversubscribe to insist)", stacklevel=2)
        return cpus
    return workers


class Executor(abc.ABC):
    """Runs ``fn(state, task)`` over tasks on ``workers`` workers; see the module docstring."""

    kind: str = ""
    #: the tasks run in the caller's own process
    in_caller: bool = False
    #: every worker is a process of zcnas's own that runs only these tasks (it may, say,
    #: freeze its heap for good: :func:`zcnas.scoring.engine.freeze_heap`)
    dedicated_workers: bool = False

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    @abc.abstractmethod
    def map_unordered(self, fn: Callable[[Any, Any], Any], tasks: Sequence[Any], *,
                      init: Callable[[Any], Any] | None = None,
                      setup: Any = None) -> Iterator[tuple[int, Any]]:
        """``(position of the task, its result)`` as tasks complete. An exception raised by a
        task propagates; leaving the iteration early (or an exception) cancels what is left."""

    def shutdown(self) -> None:  # noqa: B027 - nothing to release by default
        """Release the workers (also on ``with`` exit)."""

    def describe(self) -> str:
        return f"{self.kind}, {self.workers} worker{'s' if self.workers != 1 else ''}"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


class InProcess(Executor):
    kind = "inprocess"
    in_caller = True

    def map_unordered(self, fn, tasks, *, init=None, setup=None):
        state = init(setup) if init is not None else None
        for i, task in enumerate(tasks):
            yield i, fn(state, task)


# --- the local process pool ----------------------------------------------------------------

_STATE: dict[str, Any] = {}


def _die_with_parent(parent: int) -> None:
    """Make this worker exit as soon as ``parent`` is gone: the Linux parent-death signal,
    and (everywhere) a daemon thread that watches the parent's pid."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="zcnas-parent-watch").start()


def _pool_init(parent: int, init: Callable | None, setup: Any) -> None:
    _die_with_parent(parent)
    _STATE.clear()
    _STATE["state"] = init(setup) if init is not None else None


def _pool_call(job: tuple[Callable, int, Any]) -> tuple[int, Any]:
    fn, i, task = job
    return i, fn(_STATE.get("state"), task)




class ProcessPool(Executor):
    """A local ``spawn`` process pool, kept between calls with the same ``init``/``setup``
    (a search scores its population batch after batch on the same workers).

    The workers are replaced by fresh ones after about ``max_tasks_per_child`` tasks each (a
    bound on what a long run can leak). The pool is recycled here, between rounds of
    ``workers * max_tasks_per_child`` tasks, not by ``ProcessPoolExecutor``'s own
    ``max_tasks_per_child``: with a backlog queued, that one stops replacing the workers that
    reach the limit and the run hangs forever once none is left (CPython gh-115634, Python
    3.11 to 3.15 beta; a 2-worker ``zcnas score --archs all`` stopped after 2,000 cells)."""

    kind = "process"
    dedicated_workers = True

    def __init__(self, workers: int = 1, *, max_tasks_per_child: int = 1000) -> None:
        super().__init__(workers)
        if max_tasks_per_child < 1:
            raise ValueError("max_tasks_per_child must be at least 1")
        self.max_tasks_per_child = max_tasks_per_child
        self._pool = None
        self._digest: str | None = None
        self._submitted = 0  # tasks given to the current pool

    def _pool_for(self, init: Callable | None, setup: Any):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        digest = hashlib.sha256(pickle.dumps((init, setup))).hexdigest()
        if self._pool is None or digest != self._digest:
            self.shutdown()
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=mp.get_context("spawn"), initializer=_pool_init,
                initargs=(os.getpid(), init, setup))
            self._digest = digest
            self._submitted = 0
        return self._pool

    def map_unordered(self, fn, tasks, *, init=None, setup=None):
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        from zcnas.runtime.processes import check_main_guard

        if not tasks:
            return
        check_main_guard()
        cap = self.workers * self.max_tasks_per_child  # tasks one pool's workers may run
        futures = []
        ok = False
        try:
            start = 0
            while start < len(tasks):
                if self._pool is not None and self._submitted >= cap:
                    self.shutdown()  # the workers have had their share: start fresh ones
                pool = self._pool_for(init, setup)
                stop = min(len(tasks), start + cap - self._submitted)
                futures = [pool.submit(_pool_call, (fn, i, tasks[i])) for i in range(start, stop)]
                self._submitted += stop - start
                for f in as_completed(futures):
                    yield f.result()
                start = stop
            ok = True
        except BrokenProcessPool:
            raise UserError("a worker process died (out of memory, or killed); the results "
                            "so far are kept: run again to finish") from None
        finally:
            if not ok:  # an error, Ctrl-C or an early exit: drop the queued tasks and workers
                for f in futures:
                    f.cancel()
                self.shutdown(wait=False)

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            pool, self._pool, self._digest = self._pool, None, None
            if not wait:
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.kill()
            pool.shutdown(wait=wait, cancel_futures=True)


# --- Ray -----------------------------------------------------------------------------------

_RAY_CACHE: dict[str, Any] = {}


def _ray_call(fn: Callable, init: Callable | None, setup_ref: Any, digest: str, i: int,
              task: Any) -> tuple[int, Any]:
    """One task in a Ray worker process: the worker's state for this setup is built once and
    kept (a process runs tasks of one setup after another)."""
    if digest not in _RAY_CACHE:
        _RAY_CACHE.clear()
        _RAY_CACHE[digest] = init(setup_ref) if init is not None else None
    return i, fn(_RAY_CACHE[digest], task)


def _start_reaper():
    """A watchdog that kills the local Ray instance's processes if this process dies without
    shutting it down (SIGKILL): see :mod:`zcnas.runtime.reaper`. None where /proc is absent."""
    import subprocess

    from zcnas.runtime.reaper import descendants

    if not os.path.isdir("/proc"):  # pragma: no cover - not Linux
        return None
    pids = descendants(os.getpid())
    return subprocess.Popen([sys.executable, "-m", "zcnas.runtime.reaper", str(os.getpid()),
                             *map(str, pids)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("the Ray executor needs Ray: pip install \"zcnas[ray]\"") from None
    return ray


class RayExecutor(Executor):
    """See the module docstring. ``address`` None starts a local instance with ``workers``
    CPUs; otherwise connects (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) and ``workers``
    (None: the cluster's CPUs) bounds the tasks in flight. ``cpus_per_task`` /
    ``gpus_per_task`` are the resources each task declares."""

    kind = "ray"
    # not dedicated_workers: Ray's workers hold Ray's own objects, and with their heap frozen
    # the cluster search protocol test ran 2x slower (11.7 -> 25.4 s)

    def __init__(self, workers: int | None = None, *, address: str | None = None,
                 cpus_per_task: float = 1.0, gpus_per_task: float = 0.0,
                 max_retries: int = 5) -> None:
        ray = import_ray()
        self._ray = ray
        self._own = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
            if address is None:
                self._own = True
                ray.init(num_cpus=workers or usable_cpus(), **kw)
                self._reaper = _start_reaper()
            else:
                try:
                    ray.init(address=address, **kw)
                except (ConnectionError, ValueError, RuntimeError) as err:
                    raise UserError(f"cannot connect to the Ray cluster at {address}: "
                                    f"{' '.join(str(err).split())[:200]}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        super().__init__(workers or cpus)
        self.address = address
        self.cpus_per_task = cpus_per_task
        self.gpus_per_task = gpus_per_task
        self.max_retries = max_retries
        self._remote = ray.remote(_ray_call)

    def describe(self) -> str:
        where = "local Ray instance" if self._own else f"Ray cluster {self.address}"
        gpu = f", {self.gpus_per_task:g} GPU per task" if self.gpus_per_task else ""
        return f"ray ({where}), {self.workers} tasks in flight{gpu}"

    def map_unordered(self, fn, tasks, *, init=None, setup=None):
        ray = self._ray
        if not tasks:
            return
        digest = hashlib.sha256(pickle.dumps((fn, init, setup))).hexdigest()
        setup_ref = ray.put(setup)
        opts = self._remote.options(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task,
                                    max_retries=self.max_retries, retry_exceptions=False)
        pending: dict[Any, int] = {}
        queue = iter(enumerate(tasks))
        window = max(1, 2 * self.workers)

        def fill() -> None:
            while len(pending) < window:
                try:
                    i, task = next(queue)
                except StopIteration:
                    return
                pending[opts.remote(fn, init, setup_ref, digest, i, task)] = i

        fill()
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    del pending[ref]
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        raise err.as_instanceof_cause() from None
                fill()
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def shutdown(self) -> None:
        if self._own and self._ray.is_initialized():
            self._ray.shutdown()
            self._own = False
        reaper = getattr(self, "_reaper", None)
        if reaper is not None:
            reaper.kill()
            reaper.wait()
            self._reaper = None


def check_executor(kind: str, address: str | None, device: str,
                   per_gpu: int | None) -> None:
    """One line for an executor setting that cannot work, before any work."""
    if kind not in KINDS:
        raise UserError(f"unknown executor {kind!r}; valid: {', '.join(KINDS)}")
    if address is not None and kind != "ray":
        raise UserError("--address needs --executor ray")
    if per_gpu is not None and (kind != "ray" or not str(device).startswith("cuda")):
        raise UserError("--per-gpu needs --executor ray and --device cuda")
    if per_gpu is not None and per_gpu < 1:
        raise UserError(f"--per-gpu must be >= 1, got {per_gpu}")
    if kind == "ray":
        import_ray()


def gpus_per_task(device: str, per_gpu: int | None) -> float:
    """The GPU share each task declares: ``1 / per_gpu`` on CUDA (default 1), 0 on CPU."""
    if not str(device).startswith("cuda"):
        return 0.0
    return 1.0 / (per_gpu or 1)


def open_executor(kind: str = "process", workers: int = 1, *, address: str | None = None,
                  gpus_per_task: float = 0.0, oversubscribe: bool = False,
                  ray_workers: int | None = None) -> Executor:
    """An executor by name (``inprocess``, ``process``, ``ray``); one line for a bad name,
    a missing Ray, or more workers than CPUs (warned and capped unless ``oversubscribe``).
    On Ray, ``ray_workers`` None means the cluster's CPUs (a local instance: ``workers``)."""
    if kind not in KINDS:
        raise UserError(f"unknown executor {kind!r}; valid: {', '.join(KINDS)}")
    if kind == "ray":
        return RayExecutor(ray_workers if address is not None else (ray_workers or workers),
                           address=address, gpus_per_task=gpus_per_task)
    if address is not None:
        raise UserError("--address needs --executor ray")
    workers = check_workers(workers, allow_more=oversubscribe)
    if kind == "inprocess" or workers == 1:
        return InProcess(1)
    return ProcessPool(workers)


__all__ = ["KINDS", "Executor", "InProcess", "ProcessPool", "RayExecutor", "check_workers",
           "open_executor", "usable_cpus"]
