"""``zcnas score`` as a library call, and scoring of any torch model family.

:func:`run_score` takes a frozen :class:`ScoreRequest` (what the command line says), checks
every input and the output path before any work, scores through the engine
(:func:`zcnas.scoring.engine.score_archs`: isomorphs once, shared passes, the store) and
writes the table. :func:`score_model` scores models that are not in any registered space,
given as factories, with the same context, determinism, shared passes and NaN policy::

    from torch import nn
    from zcnas import score_model

    def cnn(width):
        return lambda num_classes: nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    table = score_model({"w8": cnn(8), "w32": cnn(32)}, "synflow,naswot,ensemble:az_nas")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zcnas.errors import UserError
from zcnas.runtime.executors import check_executor, gpus_per_task, open_executor, usable_cpus
from zcnas.spaces.base import SearchSpace


@dataclass(frozen=True)
class ScoreRequest:
    """Everything ``zcnas score`` takes. ``workers`` None: one per usable CPU on ``cpu``, 1
    on ``cuda`` (on Ray: the cluster's CPUs); ``store`` None: no store (``zcnas score`` passes
    the default store's path unless ``--no-store``); ``executor``: ``process`` (local pool),
    ``inprocess`` or ``ray`` (``address``: an existing cluster; ``per_gpu``: tasks sharing a
    GPU); ``shard``: ``(I, N)`` scores the I-th of N deterministic slices only."""

    out: str
    space: str = "nats-tss"
    proxies: str = "synflow,naswot,stable"
    archs: str = "all"
    dataset: str = "cifar10"
    data: str | None = None
    device: str = "cpu"
    workers: int | None = None
    seed: int = 0
    store: str | None = None
    progress: bool | None = None
    executor: str = "process"
    address: str | None = None
    per_gpu: int | None = None
    oversubscribe: bool = False
    shard: tuple[int, int] | None = None


@dataclass
class ScoreOutcome:
    rows: list
    paths: tuple[Path, Path]
    summary: list[tuple]
    header: str


def run_score(req: ScoreRequest, *, log: Callable[[str], None] | None = None) -> ScoreOutcome:
    """Score ``req.archs`` of ``req.space`` with ``req.proxies`` and write the table
    (``OUT.parquet`` and ``OUT.csv``). ``log`` receives the one-line header before the
    work starts. Bad input stops with one line before any scoring."""
    from zcnas._io import check_output_file, check_output_table, write_table
    from zcnas.registry import create_scorers
    from zcnas.runtime.devices import check_device
    from zcnas.scoring.engine import (
        check_inputs,
        image_source,
        rows_to_frame,
        score_archs,
        select_archs,
        summarize,
    )
    from zcnas.spaces import get_space

    check_output_table(req.out)  # before any work: a bad path loses no computed score
    if req.store is not None:
        check_output_file(req.store, "--store")
    check_device(req.device)
    space = get_space(req.space)
    scorers = create_scorers(req.proxies)
    check_inputs(scorers, req.dataset, image_source(req.dataset, req.data))
    items = select_archs(req.archs, space, root=req.data, seed=req.seed)
    if req.shard is not None:
        items = shard_items(items, *req.shard)
    check_executor(req.executor, req.address, req.device, req.per_gpu)
    workers = req.workers
    if workers is None:
        workers = default_workers(req.executor, req.address, req.device)
    elif workers < 1:
        raise UserError("--workers must be >= 1")
    store = None
    if req.store is not None:
        from zcnas.runtime import ScoreStore

        store = ScoreStore(req.store)
    distinct = len({i.canonical for i in items})
    try:
        with open_executor(req.executor, workers or 1, address=req.address,
                           gpus_per_task=gpus_per_task(req.device, req.per_gpu),
                           oversubscribe=req.oversubscribe, ray_workers=workers or None) as ex:
            shard = f", shard {req.shard[0]}/{req.shard[1]}" if req.shard is not None else ""
            header = (f"scoring {len(items):,} architectures ({distinct:,} distinct) of "
                      f"{space.name} with {', '.join(p.spec() for p in scorers)} on "
                      f"{req.dataset}, {req.device}, {ex.describe()}{shard}")
            if log is not None:
                log(header)
            rows = score_archs(items, scorers, space=space, dataset=req.dataset,
                               seed=req.seed, device=req.device, root=req.data, store=store,
                               progress=req.progress, executor=ex)
    except KeyboardInterrupt:
        where = f"; scores computed so far are in {store.path}" if store is not None else ""
        raise UserError(f"interrupted{where}") from None
    finally:
        if store is not None:
            store.close()
    paths = write_table(rows_to_frame(rows), req.out)
    return ScoreOutcome(rows, paths, summarize(rows), header)


def default_workers(executor: str, address: str | None, device: str) -> int:
    """Workers of ``zcnas score`` when ``--workers`` is not given: 0 (as many tasks in flight
    as the cluster has CPUs) on an existing Ray cluster, 1 for a local GPU, else the CPUs this
    process may use (a local Ray instance gets as many)."""
    if executor == "ray" and address is not None:
        return 0
    if device.startswith("cuda") and executor != "ray":
        return 1
    return usable_cpus()


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``; one line otherwise."""
    i, sep, n = str(text).partition("/")
    if not (sep and i.isascii() and i.isdigit() and n.isascii() and n.isdigit()
            and 0 <= int(i) < int(n)):
        raise UserError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return int(i), int(n)


def shard_items(items: Sequence[Any], index: int, count: int) -> list[Any]:
    """The ``index``-th of ``count`` slices of ``items``, by isomorphism class (a class is
    never split, so every shard scores its cells once): the classes in order of first
    appearance, every ``count``-th from ``index``."""
    classes = list(dict.fromkeys(i.canonical for i in items))
    mine = set(classes[index::count])
    return [i for i in items if i.canonical in mine]


# --- any model family ----------------------------------------------------------------------


class ModelFamily(SearchSpace):
    """An in-process search space whose genotypes are the names of model factories: what
    :func:`score_model` scores. A factory takes ``num_classes`` (or nothing) and returns a
    torch module whose forward gives logits."""

    arch_format = "one of the factory names"

    def __init__(self, factories: Mapping[str, Callable[..., Any]]) -> None:
        import inspect

        if not factories:
            raise UserError("score_model needs at least one model factory")
        self.name = "models"
        self.factories = dict(factories)
        self.size = len(self.factories)
        self.examples = tuple(self.factories)[:2]
        self._takes_classes = {}
        for name, f in self.factories.items():
            if not callable(f):
                raise UserError(f"model {name!r} is not a factory (a callable returning a "
                                "torch module)")
            try:
                params = inspect.signature(f).parameters
            except (TypeError, ValueError):
                params = {}
            self._takes_classes[name] = len(params) > 0
        self.model = self._build

    def _build(self, name: str, num_classes: int):
        f = self.factories[name]
        return f(num_classes) if self._takes_classes[name] else f()

    def parse_arch(self, text: str) -> str:
        if text not in self.factories:
            raise UserError(f"unknown model {text!r}; the models are "
                            f"{', '.join(list(self.factories)[:10])}")
        return text

    def format_arch(self, genotype: str) -> str:
        return str(genotype)

    def all_archs(self) -> Iterable[str]:
        return iter(self.factories)

    def sample(self, rng):  # a model family has no evolution operators
        raise UserError("a model family given to score_model cannot be searched")

    mutate = crossover = neighbours = sample


def score_model(models: Callable[..., Any] | Sequence[Callable[..., Any]]
                | Mapping[str, Callable[..., Any]], proxies: str | Sequence[Any] = "synflow", *,
                dataset: str = "cifar10", root: Any = None, seed: int = 0,
                device: str = "cpu", progress: bool | None = False):
    """Score torch models that are not in a benchmark space, with any proxies (and
    ensembles, aggregated over the models given).

    ``models``: one factory, a list of them (named ``model0``, ``model1``...) or a mapping
    name -> factory; a factory takes ``num_classes`` (or nothing) and returns an
    ``nn.Module``. Every network is built from the factory under the context's seeded RNG,
    so scores are deterministic. Proxies that read feature blocks (AZ-NAS, Zen-NAS, the
    stable proxy) need the model to be an ``nn.Sequential`` or to expose ``stem``/``cells``
    (see :mod:`zcnas.models.body`). Returns the tidy score table (pandas DataFrame, one
    row per model and proxy; NaN and infinities kept).
    """
    from zcnas.registry import create_scorers
    from zcnas.scoring.engine import make_items, rows_to_frame, score_archs

    if callable(models):
        models = {"model0": models}
    elif not isinstance(models, Mapping):
        models = {f"model{i}": f for i, f in enumerate(models)}
    family = ModelFamily(models)
    scorers = create_scorers(proxies) if isinstance(proxies, str) else list(proxies)
    items = make_items(list(family.factories), family)
    rows = score_archs(items, scorers, space=family, dataset=dataset, seed=seed, device=device,
                       root=root, workers=1, store=None, progress=progress)
    return rows_to_frame(rows)
