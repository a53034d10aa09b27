"""Score many architectures with many proxies, fast and resumably.

- Isomorphic architectures (same canonical key) are scored once; every member gets the score,
  except for proxies marked ``per_arch`` (their value depends on the cell's dead edges too:
  analytic counts of the official network, networks built naive), which score every member.
- All proxies of one architecture share one :class:`ScoringContext`, so they share network
  builds and forward/backward passes (see :mod:`zcnas.scoring.passes`).
- Work goes to a local process pool (``workers``) with bounded memory; ``device='cuda'`` uses
  the GPU in every worker.
- Every finished architecture is committed to the :class:`~zcnas.runtime.ScoreStore` at once:
  a re-run reads stored scores, and a run killed with SIGKILL loses at most what was in flight.

The store key is (space, canonical arch, proxy name, proxy version, dataset, config, seed,
device kind), with the architecture's own string in place of the canonical one for a
``per_arch`` proxy, where config holds the proxy's batch configuration and parameters plus, for
proxies that read real images, which image file they came from.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zcnas.errors import ArchError, DataNotFoundError, UserError
from zcnas.proxy import Proxy, ProxyError
from zcnas.spaces import SearchSpace, get_space

# One intra-op thread per worker on CPU: the scores are then bitwise the same whatever the
# number of workers (oneDNN's reductions depend on the thread count), and processes use the
# cores better than threads for these small convolutions.
CPU_THREADS = 1

COLUMNS = ["arch", "index", "canonical", "proxy", "value", "seconds", "device", "version",
           "dataset", "seed", "origin", "higher_is_better"]


@dataclass(frozen=True)
class ArchItem:
    """One architecture to score: its string, benchmark index (None if unknown), iso key."""

    arch: str
    index: int | None
    canonical: str


@dataclass(frozen=True)
class ScoreRow:
    arch: str
    index: int | None
    canonical: str
    proxy: str
    value: float
    seconds: float
    device: str
    version: str
    dataset: str
    seed: int
    # "computed" | "isomorph" (copied from an isomorphic member) | "store" | "ensemble"
    # (aggregated over the scored population)
    origin: str
    # the orientation of the proxy, so a table can be read without its plugin installed
    higher_is_better: bool = True


# --- selecting architectures --------------------------------------------------------------------


def _order_or_none(space: SearchSpace, root: Any):
    from zcnas.lookup.locate import load_order

    if not space.indexed:
        return None
    try:
        return load_order(space, root)
    except DataNotFoundError:
        return None


def make_items(archs: Iterable[Any], space: str | SearchSpace,
               order: Any = None) -> list[ArchItem]:
    """Arch strings/genotypes (or indices when ``order`` is given) -> :class:`ArchItem`."""
    from zcnas.spaces import resolve_arch

    sp = get_space(space)
    out = []
    for a in archs:
        g, idx = resolve_arch(a if isinstance(a, str) else sp.format_arch(a), sp, order)
        out.append(ArchItem(sp.format_arch(g), idx, sp.canonical_key(g)))
    return out


def select_archs(
    selector: str, space: str | SearchSpace = "nats-tss", *, root: Any = None, seed: int = 0
) -> list[ArchItem]:
    """``all``, a number N (a seeded sample of N distinct architectures), or a file.

    A file holds one arch string or benchmark index per line (blank lines and ``#`` comments
    ignored), or is a CSV/Parquet table with an ``arch`` column. ``all`` lists the space in the
    benchmark's index order when its arch list is found, otherwise in the space's own order.
    A space that cannot be enumerated takes N genotypes drawn from a seeded stream.
    """
    import numpy as np

    sp = get_space(space)
    order = _order_or_none(sp, root)
    text = str(selector).strip()
    if text == "all" or (text.isascii() and text.isdigit()):
        try:
            every = order.archs if order is not None else [
                sp.format_arch(g) for g in sp.all_archs()]
        except UserError:
            if text == "all":
                raise
            return _drawn(sp, int(text), seed)
        if text == "all":
            chosen = range(len(every))
        else:
            n = int(text)
            if not 1 <= n <= len(every):
                raise UserError(f"--archs {n}: choose between 1 and {len(every)} architectures")
            # a prefix of one seeded permutation: a larger N extends a smaller one, so its
            # scores are reused from the store
            chosen = sorted(np.random.default_rng(seed).permutation(len(every))[:n].tolist())
        return [ArchItem(every[i], i if order is not None else None,
                         sp.canonical_key(every[i])) for i in chosen]
    path = Path(text)
    items = []
    for no, line in _read_arch_file(path):
        try:
            items += make_items([line], sp, order)
        except ArchError as err:
            raise ArchError(f"{path}:{no}: {err}") from None
    return items


def _drawn(sp: SearchSpace, n: int, seed: int) -> list[ArchItem]:
    """The first ``n`` distinct genotypes of a seeded stream of ``sp.sample`` (a larger N
    extends a smaller one)."""
    import numpy as np

    if n < 1:
        raise UserError(f"--archs {n}: choose at least 1 architecture")
    rng = np.random.default_rng(seed)
    seen: dict[str, ArchItem] = {}
    for _ in range(100 * n + 1000):
        g = sp.sample(rng)
        text = sp.format_arch(g)
        if text not in seen:
            seen[text] = ArchItem(text, None, sp.canonical_key(g))
            if len(seen) == n:
                break
    else:
        raise UserError(f"--archs {n}: the {sp.name} space gave only {len(seen)} distinct "
                        "architectures")
    return list(seen.values())


def _read_arch_file(path: Path) -> list[tuple[int, str]]:
    """``(line number, arch string or index)`` of an arch file: text (UTF-8, a BOM allowed;
    one per line, blank lines and ``#`` comments ignored) or a CSV/Parquet table with an
    ``arch`` column (line numbers count the header). One line for an unreadable file."""
    if not path.is_file():
        raise UserError(f"--archs {path}: not 'all', a number, or an existing file")
    if path.suffix in (".csv", ".parquet"):
        import pandas as pd

        try:
            df = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
            raise UserError(f"cannot read {path}: {' '.join(str(err).split())}") from None
        if "arch" not in df.columns:
            raise UserError(f"{path} has no 'arch' column")
        return [(i + 2, str(a)) for i, a in enumerate(df["arch"])]
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or type(err).__name__}") from None
    if b"\0" in raw:
        raise UserError(f"{path} is not a text file of arch strings (it holds NUL bytes: "
                        "binary, or UTF-16); save it as UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8") \
            from None
    out = [(no, ln.split("#", 1)[0].strip()) for no, ln in enumerate(text.splitlines(), 1)]
    archs = [(no, ln) for no, ln in out if ln]
    if not archs:
        raise UserError(f"{path} lists no architectures")
    return archs


# --- inputs and store keys ----------------------------------------------------------------------


def image_source(dataset: str, root: Any) -> str | None:
    """Which real images a run reads: ``file:count`` of the train split, or None if absent."""
    from zcnas.data.loaders import load_arrays

    try:
        arrays = load_arrays(dataset, "train", root)
    except DataNotFoundError:
        return None
    return f"{Path(arrays.source).name}:{len(arrays)}"


def check_inputs(proxies: Sequence[Proxy], dataset: str, images: str | None) -> None:
    needing = [p.name for p in proxies if p.needs_images]
    if needing and images is None:
        free = ", ".join(p.name for p in proxies if not p.needs_images)
        raise ProxyError(
            f"{', '.join(needing)} need{'s' if len(needing) == 1 else ''} real {dataset} "
            f"images but none were found; pass --data PATH or set ZCNAS_DATA"
            + (f" (or score only the data-free ones: {free})" if free else "")
        )


def proxy_config(proxy: Proxy, images: str | None) -> str:
    from zcnas.runtime.store import config_string

    cfg = dict(proxy.config())
    if proxy.info.needs_images:
        cfg["images"] = images
    return config_string(cfg)


# --- the per-architecture work (runs in workers) ------------------------------------------------

_HEAP_FROZEN = False


def freeze_heap() -> None:
    """Keep the objects alive now (torch, the proxies, the loaded data) out of the cyclic
    garbage collector's full passes for the rest of the process, once: ``gc.collect()``, then
    ``gc.freeze()``. For processes that only score (the process pool's workers, benchmark
    scripts); an in-process run freezes for its own length (:func:`heap_frozen`).

    Scoring builds and drops thousands of modules per architecture, which sets off a full
    collection every few architectures; each walks every object of the process, about
    0.1 s at 166,000 objects (torch and zcnas imported) on the 2-core EPYC. Frozen objects
    are never collected (a cycle alive now and dropped later is never freed); the collection
    first means no garbage is frozen with them.
    """
    global _HEAP_FROZEN
    if _HEAP_FROZEN:
        return
    gc.collect()
    gc.freeze()
    _HEAP_FROZEN = True


@contextlib.contextmanager
def heap_frozen() -> Iterator[None]:
    """``gc.freeze()`` for the length of the block, then ``gc.unfreeze()``: for scoring in
    the caller's own process (a notebook, a test, ``workers=1``, a search's every
    generation), whose objects, garbage included, become collectable again afterwards. Both
    are constant-time list moves; no collection runs first (a searcher scores a few cells
    at a time, and a full collection of a large process costs more than that saves).
    Nothing is done where something is frozen already (by the caller, or by
    :func:`freeze_heap`): that is left as it was."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def init_scoring(setup: dict[str, Any]) -> dict[str, Any]:
    """A worker's scoring state: one intra-op thread, the input bank shared by every task;
    a worker process of its own (the process pool's) freezes its heap (:func:`freeze_heap`)
    and keeps what its passes free (:func:`zcnas.runtime.allocator.tune_allocator`, when the
    setup asks: Ray's workers, which hold Ray's own objects and memory monitor, are left as
    they are)."""
    import torch

    from zcnas.scoring.context import InputBank

    if setup["threads"]:
        torch.set_num_threads(setup["threads"])
    bank = InputBank(setup["dataset"], seed=setup["seed"], root=setup["root"],
                     source=setup["source"], device=setup["device"])
    if setup.get("own_process"):
        freeze_heap()
    if setup.get("keep_memory"):
        from zcnas.runtime.allocator import tune_allocator

        tune_allocator()
    return {**setup, "bank": bank}


def score_task(state: dict[str, Any], task: tuple[str, str, tuple[int, ...]]
               ) -> tuple[str, dict[int, tuple], str]:
    """Score one architecture with the proxies at the given positions; ``task`` is
    ``(tag, arch, positions)``, the tag returned with the result."""
    from zcnas.scoring.context import ScoringContext

    tag, arch, which = task
    proxies: list[Proxy] = [state["proxies"][i] for i in which]
    try:
        requests = [r for p in proxies for r in p.requests()]
        ctx = ScoringContext(arch, space=state["space"], dataset=state["dataset"],
                             inputs=state["bank"], seed=state["seed"],
                             device=state["device"], requests=requests)
        sharers: dict[Any, int] = {}
        for p in proxies:
            for r in p.requests():
                sharers[(r.kind, r.spec)] = sharers.get((r.kind, r.spec), 0) + 1
        out: dict[int, tuple] = {}
        for i, p in zip(which, proxies, strict=True):
            before = dict(ctx.pass_seconds)
            start = time.perf_counter()
            value = p.score(ctx)
            elapsed = time.perf_counter() - start
            fresh = {k: v for k, v in ctx.pass_seconds.items() if k not in before}
            own = elapsed - sum(fresh.values())
            declared = {(r.kind, r.spec) for r in p.requests()}
            # undeclared passes are charged to the proxy that triggered them
            own += sum(v for k, v in fresh.items() if k not in declared)
            out[i] = (float(value), own)
        for i, p in zip(which, proxies, strict=True):  # shared passes, split evenly
            share = sum(ctx.pass_seconds.get((r.kind, r.spec), 0.0) / sharers[(r.kind, r.spec)]
                        for r in p.requests())
            out[i] = (out[i][0], out[i][1] + share)
        return tag, out, ""
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - reported with the arch, results so far are kept
        return tag, {}, f"{type(err).__name__}: {err}"


# --- the engine ---------------------------------------------------------------------------------


def score_archs(
    items: Sequence[ArchItem],
    proxies: Sequence[Proxy],
    *,
    space: str = "nats-tss",
    dataset: str = "cifar10",
    seed: int = 0,
    device: str = "cpu",
    root: Any = None,
    workers: int = 1,
    store: Any = None,
    progress: bool | None = None,
    threads: int | None = None,
    on_result: Callable[[str, dict], None] | None = None,
    executor: Any = None,
) -> list[ScoreRow]:
    """Score ``items`` with ``proxies``; returns one row per (item, proxy), in input order.

    A class-wide proxy (not ``per_arch``) is scored once per isomorphism class, on the
    class's representative (:meth:`SearchSpace.representative`, which need not be one of
    ``items``), so a score never depends on what else is or was scored; a stored record
    computed on another member (by an older zcnas) is recomputed. An ensemble
    (``ensemble:...``) adds its components to the per-architecture work (each
    proxy runs once however many ensembles use it) and one row per item whose value is the
    ensemble aggregated over all ``items`` (origin ``ensemble``; never stored, since it
    depends on the population). ``store`` (a :class:`~zcnas.runtime.ScoreStore` or None) is
    read first and written by this process (the single writer) as every architecture's
    scores arrive. The work runs on ``executor`` (:mod:`zcnas.runtime.executors`; default:
    this process for ``workers=1``, a local process pool otherwise); each worker runs torch
    with ``threads`` intra-op threads (default 1, so scores do not depend on the executor or
    the number of workers). ``on_result(arch, scores)`` is called as each architecture's
    scores arrive (``scores``: proxy position -> (value, seconds)).
    """
    import torch

    from zcnas.datasets import canonical_dataset
    from zcnas.ensemble import expand

    sp = get_space(space)
    space = sp.name
    dataset = canonical_dataset(dataset)
    if not proxies:
        raise ProxyError("no proxies to score")
    given = [p.spec() for p in proxies]
    if len(set(given)) != len(given):
        raise ProxyError(f"a proxy is listed twice: {', '.join(given)}")
    proxies, ensembles = expand(proxies)
    for p in proxies:
        if not p.info.supports(space):
            raise ProxyError(f"proxy {p.name} is defined for the {', '.join(p.info.spaces)} "
                             f"space(s) only, not {space}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available")
    device_kind = dev.type
    images = image_source(dataset, root)
    check_inputs(proxies, dataset, images)
    source = "real" if images is not None else "synthetic"
    specs = [p.spec() for p in proxies]
    if len(set(specs)) != len(specs):
        raise ProxyError(f"a proxy is listed twice: {', '.join(specs)}")

    groups: dict[str, list[ArchItem]] = {}
    for item in items:
        groups.setdefault(item.canonical, []).append(item)
    per_arch = [p.info.per_arch for p in proxies]
    canonical_of = {item.arch: item.canonical for item in items}

    def unit(arch: str, i: int) -> str:
        """What proxy ``i``'s score of ``arch`` is keyed by: the arch or its class."""
        return arch if per_arch[i] else canonical_of[arch]

    # who computes what: a class's representative (sp.representative: the same member
    # whatever else is scored, not necessarily one of ``items``) its class-wide scores, every
    # member its per-arch ones
    class_wide = [i for i, own in enumerate(per_arch) if not own]
    arch_wide = [i for i, own in enumerate(per_arch) if own]
    wanted: dict[str, list[int]] = {}
    rep_of: dict[str, str | None] = {}  # class -> its representative (None: first member met)
    for canonical, members in groups.items():
        if class_wide:
            rep = rep_of[canonical] = sp.representative(members[0].arch)
            canonical_of.setdefault(rep or members[0].arch, canonical)
            wanted[rep or members[0].arch] = list(class_wide)
        for m in members:
            have = wanted.setdefault(m.arch, [])
            have.extend(i for i in arch_wide if i not in have)

    keys = {}
    # a per-arch score stored by an older zcnas under the class key stays valid when it was
    # computed on this very architecture (the record names it)
    class_keyed = {}
    if store is not None:
        from zcnas.runtime.store import ScoreKey

        configs = [proxy_config(p, images) for p in proxies]

        def key(unit_key: str, i: int) -> ScoreKey:
            return ScoreKey(space, unit_key, proxies[i].name, proxies[i].info.version,
                            dataset, configs[i], seed, device_kind)

        for arch, which in wanted.items():
            for i in which:
                keys[(unit(arch, i), i)] = key(unit(arch, i), i)
        found = store.get_many(keys.values())
        # looked up only for the per-arch scores the store does not have under the arch
        class_keyed = {(arch, i): key(canonical_of[arch], i)
                       for arch, which in wanted.items() for i in which
                       if per_arch[i] and keys[(arch, i)] not in found}
        if class_keyed:
            found.update(store.get_many(class_keyed.values()))
    else:
        found = {}
    results: dict[tuple[str, int], tuple[float, float, str]] = {}
    computed_by: dict[tuple[str, int], str] = {}
    tasks = []
    for arch, which in wanted.items():
        missing = []
        for i in which:
            rec = found.get(keys.get((unit(arch, i), i)))
            if rec is not None and not per_arch[i] and rep_of[canonical_of[arch]] is not None \
                    and rec.arch != arch:
                rec = None  # computed on another member by an older zcnas: recomputed
            if rec is None and per_arch[i]:
                rec = found.get(class_keyed.get((arch, i)))
                rec = rec if rec is not None and rec.arch == arch else None
            if rec is not None:
                results[(unit(arch, i), i)] = (rec.value, rec.seconds, "store")
            else:
                missing.append(i)
        if missing:
            tasks.append((arch, arch, tuple(missing)))

    from zcnas.spaces import SPACES

    # a registered space travels by name; an in-process one (score_model) as the object
    setup = {"space": space if space in SPACES else sp, "dataset": dataset, "seed": seed,
             "device": str(dev),
             "root": str(root) if root is not None else None, "source": source,
             "proxies": list(proxies), "threads": threads or CPU_THREADS}

    def record(arch: str, out: dict[int, tuple], error: str) -> None:
        if error:
            raise UserError(f"scoring {arch} failed ({error}); "
                            f"{len(results)} scores computed so far are kept in the store"
                            if store is not None else f"scoring {arch} failed ({error})")
        if store is not None:
            from zcnas.runtime.store import ScoreRecord

            now = time.time()
            store.put_many(ScoreRecord(keys[(unit(arch, i), i)], v, s, arch, now)
                           for i, (v, s) in out.items())
        for i, (v, s) in out.items():
            results[(unit(arch, i), i)] = (v, s, "computed")
            computed_by[(unit(arch, i), i)] = arch
        if on_result is not None:
            on_result(arch, out)

    bar = _progress(len(tasks), progress)
    own = executor is None
    if own:
        from zcnas.runtime.executors import open_executor

        executor = open_executor("process" if workers > 1 else "inprocess", workers,
                                 oversubscribe=True)
    prev_threads = torch.get_num_threads()
    setup["own_process"] = executor.dedicated_workers
    setup["keep_memory"] = executor.dedicated_workers
    try:
        with heap_frozen() if executor.in_caller else contextlib.nullcontext():
            for _i, res in executor.map_unordered(score_task, tasks, init=init_scoring,
                                                  setup=setup):
                record(*res)
                bar.update(1)
    finally:
        torch.set_num_threads(prev_threads)  # an in-process run changed this process's
        bar.close()
        if own:
            executor.shutdown()

    rows = []
    for item in items:
        for i, p in enumerate(proxies):
            key = (unit(item.arch, i), i)
            v, s, origin = results[key]
            if origin == "computed" and computed_by[key] != item.arch:
                origin = "isomorph"
            rows.append(ScoreRow(item.arch, item.index, item.canonical, specs[i], v,
                                 s, device_kind, p.info.version, dataset, seed, origin,
                                 p.higher_is_better))
    return rows + ensemble_rows(rows, ensembles, items)


def ensemble_rows(rows: Sequence[ScoreRow], ensembles: Sequence[Any],
                  items: Sequence[ArchItem]) -> list[ScoreRow]:
    """One row per (item, ensemble): the ensemble aggregated over every item of ``rows``."""
    if not ensembles or not items:
        return []
    import numpy as np

    value = {(r.arch, r.proxy): r for r in rows}
    out = []
    for e in ensembles:
        comps = [c.spec() for c in e.components]
        matrix = np.array([[value[(it.arch, c)].value for c in comps] for it in items])
        secs = [sum(value[(it.arch, c)].seconds for c in comps) for it in items]
        agg = e.aggregate(matrix)
        first = value[(items[0].arch, comps[0])]
        for it, v, sec in zip(items, agg, secs, strict=True):
            out.append(ScoreRow(it.arch, it.index, it.canonical, e.spec(), float(v), sec,
                                first.device, e.version, first.dataset, first.seed,
                                "ensemble", e.higher_is_better))
    return out


def _progress(total: int, progress: bool | None):
    from zcnas.runtime.progress import progress_bar

    return progress_bar(total, progress, unit="arch", desc="scoring")


def rows_to_frame(rows: Sequence[ScoreRow]):
    import pandas as pd

    df = pd.DataFrame([r.__dict__ for r in rows], columns=COLUMNS)
    df["index"] = df["index"].astype("Int64")
    return df


def summarize(rows: Sequence[ScoreRow]) -> list[tuple]:
    """Per proxy: architectures, distinct computed, degenerate (non-finite), mean seconds."""
    per: dict[str, list[ScoreRow]] = {}
    for r in rows:
        per.setdefault(r.proxy, []).append(r)
    out = []
    for name, rs in per.items():
        computed = [r for r in rs if r.origin in ("computed", "ensemble")]
        # a class computed on its representative outside ``rows``: its members are isomorphs
        on_item = {r.canonical for r in computed}
        computed += {r.canonical: r for r in rs
                     if r.origin == "isomorph" and r.canonical not in on_item}.values()
        bad = sum(1 for r in rs if not math.isfinite(r.value))
        secs = sum(r.seconds for r in computed) / len(computed) if computed else float("nan")
        out.append((name, len(rs), len(computed), sum(r.origin == "store" for r in rs), bad,
                    f"{secs:.3f}" if computed else "-"))
    return out


__all__ = ["ArchItem", "ScoreRow", "make_items", "select_archs", "score_archs", "rows_to_frame",
           "summarize", "ArchError"]
