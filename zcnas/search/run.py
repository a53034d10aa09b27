"""One search run: a searcher and a fidelity ladder under a budget of seconds.

:func:`build` turns a :class:`SearchConfig` into (searcher, ladder) for each method;
:func:`run_search` drives them (ask -> reject over-size cells -> evaluate at stage 0 ->
escalate -> tell the fitness of every member) until the next evaluation no longer fits in the
budget or the space is exhausted, checkpointing as it goes, and returns a
:class:`SearchResult` with an anytime trajectory.

The number reported for the chosen cell (the full-schedule test accuracy) comes from a
separate ``reporter`` and is never shown to the searcher or the ladder.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zcnas.errors import UserError
from zcnas.search.base import Searcher
from zcnas.search.ladder import SELECT_RULES, Budget, Ladder, Promotion, Stage

METHODS: dict[str, str] = {
    "mfea": "multi-fidelity evolution: zero-cost ensemble -> lookups, escalated during the run",
    "rea": "regularised evolution on 12-epoch lookups (population 10, sample 3)",
    "random": "random search on 12-epoch lookups",
    "ls": "local search (first improvement, restarts) on 12-epoch lookups",
    "mfnas": "MF-NAS-like: 2,000 zero-cost evaluations, top 32 -> successive halving",
    "oneshot": "multi-fidelity evolution on training fidelities: zero-cost ensemble -> "
               "weight-sharing supernet (fine-tuned on the population, pruned by elites, "
               "gradient-guided candidates) -> stand-alone training (no lookup needed)",
}
#: Methods that train networks (their budget is real seconds on this machine); ``all`` means
#: the lookup-based methods only.
TRAINING_METHODS = ("oneshot",)
#: The default budget (seconds of this machine) of a training method.
TRAINING_BUDGET = 3600.0
DEFAULT_FITNESS = "ensemble:zcnas"
#: The data-free ensemble used when no images are available (every component reads no data).
DATA_FREE_FITNESS = "ensemble:az_nas"
#: NATS-Bench topology-space budgets (seconds) per dataset.
NATS_BUDGETS = {"cifar10": 20_000.0, "cifar100": 40_000.0, "ImageNet16-120": 120_000.0}
#: MF-NAS's rungs (epochs of the full schedule); the full schedule's length is always the last.
MFNAS_RUNGS = (12, 25, 50, 100, 200)


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a run (and must match to resume from a checkpoint).

    ``split``: the split lookups are read from for selection: ``auto`` = validation when the
    benchmark has it, else test of the *shorter* schedule only (flagged in reports).
    ``select``: ``top`` (best at the highest stage) or ``fused``; ``auto`` = the method's
    default (``fused`` for mfea when its ladder ends at a short schedule, else ``top``).
    ``proxy_dataset``: the dataset whose images (and head) the proxies use (default:
    ``dataset``).
    """

    space: str = "nats-tss"
    dataset: str = "cifar10"
    method: str = "mfea"
    budget: float = 20_000.0
    seed: int = 0
    fitness: str = DEFAULT_FITNESS
    proxy_dataset: str | None = None
    split: str = "auto"
    select: str = "auto"
    max_params: float | None = None
    max_flops: float | None = None
    device: str = "cpu"
    #: MFEA: fraction of the zero-cost stage escalated to the first lookup.
    promote_fraction: float = 0.05
    #: oneshot: epochs of stand-alone training at the top stage, supernet warm-up epochs,
    #: population size, and the first N training images only (None: all).
    train_epochs: int = 12
    warmup_epochs: float = 5.0
    population: int = 100
    image_limit: int | None = None


@dataclass
class SearchResult:
    config: SearchConfig
    arch: str | None
    index: int | None
    reported: float | None  # full-schedule test accuracy of the chosen cell (None: no lookup)
    cost: float  # simulated seconds spent
    cost_by_stage: list[float]
    evals_by_stage: list[int]
    stages: list[str]
    wall_seconds: float
    uses_test_split: bool
    chosen_values: dict[str, float]
    trajectory: list[tuple[float, int | None, float | None]] = field(default_factory=list)
    steps: int = 0
    rejected: int = 0  # cells refused by the size constraints (never evaluated, no cost)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = asdict(self.config)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchResult:
        d = dict(d)
        d["config"] = SearchConfig(**d["config"])
        d["trajectory"] = [tuple(x) for x in d["trajectory"]]
        return cls(**d)


# --- building a method ---------------------------------------------------------------------

def _selection_split(bench, dataset: str, split: str) -> str:
    if split != "auto":
        return split
    try:
        bench.accuracy(0, dataset, epochs=12, split="valid")
        return "valid"
    except UserError:
        return "test"


def _has_curve(bench, dataset: str, epoch: int, hp: int) -> bool:
    try:
        bench.accuracy_at_epoch(0, dataset, epoch, hp=hp, split="valid")
        return True
    except UserError:
        return False


def build(config: SearchConfig, bench: Any = None, *, root: Any = None,
          store: Any = None, workdir: Any = None) -> tuple[Searcher, Ladder]:
    """The searcher and ladder of ``config.method``; ``bench`` None = no lookup (proxy only,
    or the training fidelities of ``oneshot``). ``workdir``: where training methods keep
    their supernet and training checkpoints (so a resumed run continues them)."""
    from zcnas.fidelity import LookupEvaluator, ProxyEvaluator
    from zcnas.search.searchers import (
        LocalSearch,
        MultiFidelityEvolution,
        RandomSearch,
        RegularizedEvolution,
    )

    m = config.method
    if m not in METHODS:
        raise UserError(f"unknown search method {m!r}; valid: {', '.join(METHODS)}")
    if config.select not in ("auto", *SELECT_RULES):
        raise UserError(f"unknown selection rule {config.select!r}; valid: auto, "
                        f"{', '.join(SELECT_RULES)}")
    sp, seed = config.space, config.seed

    def proxy() -> ProxyEvaluator:
        return ProxyEvaluator(config.fitness, space=sp,
                              dataset=config.proxy_dataset or config.dataset, root=root,
                              seed=0, device=config.device, store=store)

    if m == "oneshot":
        return _oneshot(config, proxy(), root, workdir, config.select)
    searcher = {"mfea": lambda: MultiFidelityEvolution(sp, seed),
                "rea": lambda: RegularizedEvolution(sp, seed, population_size=10,
                                                    sample_size=3),
                "random": lambda: RandomSearch(sp, seed),
                "ls": lambda: LocalSearch(sp, seed),
                "mfnas": lambda: RandomSearch(sp, seed)}[m]()

    select = config.select
    if bench is None:
        return searcher, Ladder([Stage(proxy())], select="top")
    split = _selection_split(bench, config.dataset, config.split)
    ds = config.dataset
    full = bench.full_epochs

    def lookup(epochs: int, **kw) -> LookupEvaluator:
        return LookupEvaluator(bench, ds, epochs=epochs, split=kw.pop("split", split), **kw)

    if m in ("rea", "random", "ls"):
        return searcher, Ladder([Stage(lookup(12))], select="top")
    if m == "mfea":
        stages = [Stage(proxy(), Promotion(fraction=config.promote_fraction,
                                           min_results=searcher.population_size)),
                  Stage(lookup(12))]
        if split == "valid":
            stages[-1].promote = Promotion(fraction=0.25, min_results=4)
            stages.append(Stage(lookup(full, split="valid")))
        # auto: with the full-schedule validation accuracy at the top, trust it alone; with a
        # short schedule at the top, fuse it with the zero-cost ranking (chosen on CIFAR-10)
        auto = "top" if split == "valid" else "fused"
        return searcher, Ladder(stages, select=auto if select == "auto" else select)
    # mfnas: 2,000 zero-cost evaluations, the best 32 go through successive halving
    stages = [Stage(proxy(), Promotion(top_k=32, sync=True), max_evals=2000)]
    candidates = sorted({e for e in MFNAS_RUNGS if e < full} | {full})
    rungs = [e for e in candidates if split == "valid" and _has_curve(bench, ds, e, full)]
    if len(rungs) > 1:
        paid: dict[str, int] = {}
        for e in rungs:
            stages[-1].promote = stages[-1].promote or Promotion(fraction=0.5, sync=True)
            stages.append(Stage(lookup(e, hp=full, split="valid", paid=paid)))
    else:  # no learning curve: the 12-epoch schedule, then (validation only) the 200-epoch one
        stages.append(Stage(lookup(12)))
        if split == "valid":
            stages[-1].promote = Promotion(fraction=0.5, sync=True)
            stages.append(Stage(lookup(full, split="valid")))
    return searcher, Ladder(stages, select="top" if select == "auto" else select)


def _oneshot(config: SearchConfig, proxy, root: Any, workdir: Any,
             select: str) -> tuple[Searcher, Ladder]:
    """Zero-cost ensemble -> supernet -> stand-alone training, on the dataset's own images.

    The population's best quarter by zero-cost score is scored by the supernet, which
    fine-tunes on the population every quarter-population of cells, prunes its edges to the
    ops of its 10 best cells every two populations and proposes gradient-found cells every
    half population; the best tenth of the supernet stage is trained from scratch.
    """
    from pathlib import Path

    from zcnas.data.training import TrainingData
    from zcnas.fidelity.supernet import SupernetEvaluator
    from zcnas.fidelity.train import TrainEvaluator
    from zcnas.search.searchers import MultiFidelityEvolution

    if config.space != "nats-tss":
        raise UserError("the oneshot method needs the topology space (nats-tss): the "
                        "supernet covers NB201 cells")
    pop = config.population
    if pop < 4:
        raise UserError(f"--population must be at least 4, got {pop}")
    if config.warmup_epochs < 0:
        raise UserError(f"--warmup-epochs must be >= 0, got {config.warmup_epochs:g}")
    searcher = MultiFidelityEvolution(config.space, config.seed, population_size=pop,
                                      tournament_size=max(2, pop // 4))
    data = TrainingData.load(config.dataset, root, valid=0.1, limit=config.image_limit)
    wd = Path(workdir) if workdir is not None else None
    supernet = SupernetEvaluator(
        dataset=config.dataset, data=data, seed=config.seed, device=config.device,
        warmup_epochs=config.warmup_epochs, finetune_every=max(1, pop // 4),
        prune_every=2 * pop, elites=10, suggest_every=max(1, pop // 2),
        checkpoint=wd / "supernet.pt" if wd is not None else None)
    train = TrainEvaluator(config.train_epochs, dataset=config.dataset, data=data,
                           seed=config.seed, device=config.device,
                           checkpoint_dir=wd / "train" if wd is not None else None)
    stages = [Stage(proxy, Promotion(fraction=0.25, min_results=pop)),
              Stage(supernet, Promotion(fraction=0.1, min_results=10)),
              Stage(train)]
    return searcher, Ladder(stages, select="top" if select == "auto" else select)


# --- running -------------------------------------------------------------------------------

def _size_check(config: SearchConfig) -> Callable[[str], bool]:
    if config.max_params is None and config.max_flops is None:
        return lambda arch: True
    from zcnas.spaces.plan import count_costs, sss_plan, tss_plan

    plan = tss_plan if config.space == "nats-tss" else sss_plan

    def ok(arch: str) -> bool:
        c = count_costs(plan(arch, config.dataset))
        return ((config.max_params is None or c.params_m <= config.max_params)
                and (config.max_flops is None or c.flops_m <= config.max_flops))
    return ok


def _read_checkpoint(path: Path) -> tuple[SearchConfig, dict[str, Any]]:
    try:
        state = json.loads(path.read_text())
        return SearchConfig(**state["config"]), state
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); "
                        "delete it to start over") from None


def check_checkpoint(path: str | os.PathLike, config: SearchConfig,
                     stages: list[str]) -> dict[str, Any]:
    """The checkpoint's state, after checking it belongs to ``config`` run through a ladder
    with these stage names (the lookup and split are part of them); one-line errors."""
    saved, state = _read_checkpoint(Path(path))
    if saved != config:
        raise UserError(f"checkpoint {path} belongs to another search configuration; "
                        "delete it or pick another --out")
    if state.get("stages") != stages:
        raise UserError(f"checkpoint {path} was made with another ladder "
                        f"({' -> '.join(state.get('stages') or ['?'])}, now "
                        f"{' -> '.join(stages)}: another lookup or split?); delete it or pick "
                        "another --out")
    return state


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def run_search(config: SearchConfig, searcher: Searcher, ladder: Ladder, *,
               reporter: Callable[[str], float] | None = None,
               index_of: Callable[[str], int] | None = None,
               checkpoint: str | os.PathLike | None = None,
               checkpoint_seconds: float = 5.0,
               max_steps: int | None = None) -> SearchResult:
    """Drive ``searcher`` and ``ladder`` until the budget is spent.

    ``reporter(arch)`` gives the number reported for a chosen cell (never used to select);
    ``index_of(arch)`` its benchmark index. ``checkpoint``: a JSON file written atomically
    every ``checkpoint_seconds`` and at the end; when it exists and holds this config, the
    run resumes from it (a finished run is returned as is). ``max_steps`` stops early (tests).
    """
    budget = Budget(config.budget)
    size_ok = _size_check(config)
    gates = [g for g in (getattr(s.evaluator, "admits", None) for s in ladder.stages) if g]

    def admitted(arch: str) -> bool:  # e.g. inside a pruned supernet
        return all(g(arch) for g in gates)

    ckpt = Path(checkpoint) if checkpoint is not None else None
    trajectory: list[tuple[float, int | None, float | None]] = []
    steps, wall0, rejected = 0, 0.0, set()
    stage_names = [s.evaluator.name for s in ladder.stages]
    if ckpt is not None and ckpt.is_file():
        state = check_checkpoint(ckpt, config, stage_names)
        try:
            if state.get("result") is not None:
                return SearchResult.from_dict(state["result"])
            searcher.load_state_dict(state["searcher"])
            ladder.load_state_dict(state["ladder"])
            budget.spent = float(state["spent"])
            trajectory = [tuple(x) for x in state["trajectory"]]
            steps, wall0 = int(state["steps"]), float(state["wall"])
            rejected = set(state["rejected"])
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"checkpoint {ckpt} is damaged ({type(e).__name__}: {e}); delete it "
                            "to start that run over") from None
    t0 = time.perf_counter()
    last_save = t0

    def current() -> tuple[int | None, float | None, str | None]:
        ch = ladder.choice()
        if ch is None:
            return None, None, None
        idx = index_of(ch.arch) if index_of is not None else None
        rep = reporter(ch.arch) if reporter is not None else None
        return idx, rep, ch.arch

    def save(result: SearchResult | None) -> None:
        if ckpt is None:
            return
        if result is not None:  # finished: the result is all a re-run needs
            _write_json(ckpt, {"config": asdict(config), "stages": stage_names,
                               "result": result.to_dict()})
            return
        _write_json(ckpt, {"config": asdict(config), "stages": stage_names,
                           "searcher": searcher.state_dict(),
                           "ladder": ladder.state_dict(), "spent": budget.spent,
                           "trajectory": trajectory, "steps": steps,
                           "wall": wall0 + time.perf_counter() - t0,
                           "rejected": sorted(rejected),
                           "result": None})

    batch = 1 if config.method in ("rea", "random", "ls") else 64
    last_choice = tuple(trajectory[-1][1:]) if trajectory else None
    exhausted = False
    while max_steps is None or steps < max_steps:
        steps += 1
        done, bad, out_of_budget = [], [], False
        if not ladder.closed(0) and not exhausted:
            archs = searcher.ask(batch)
            if not archs:  # the space is exhausted: only escalations remain
                exhausted = ladder.input_closed = True
                continue
            ok = [a for a in archs if size_ok(a) and admitted(a)]
            bad = [a for a in archs if a not in ok]
            rejected.update(searcher.key(a) for a in bad)
            done = ladder.submit(ok, budget)
            out_of_budget = len(done) < len(ok) and not ladder.closed(0)
            progressed = bool(done or bad)
        else:
            progressed = ladder.cascade(budget) > 0
        fits = ladder.fitnesses()
        told = [(a, -math.inf) for a in bad] + [(e.arch, fits[e.canonical]) for e in done]
        told += [(a, fits.get(searcher.key(a), -math.inf)) for a in searcher.members()]
        searcher.tell(told)
        _exchange(ladder, searcher)
        idx, rep, arch = current()
        if arch is not None and (idx, rep) != last_choice:
            trajectory.append((budget.spent, idx, rep))
            last_choice = (idx, rep)
        if time.perf_counter() - last_save > checkpoint_seconds:
            save(None)
            last_save = time.perf_counter()
        if out_of_budget or (not progressed and (ladder.closed(0) or exhausted)):
            break
    ch = ladder.choice()
    idx, rep, arch = current()
    if trajectory and trajectory[-1][0] != budget.spent:
        trajectory.append((budget.spent, idx, rep))
    result = SearchResult(
        config=config, arch=arch, index=idx, reported=rep, cost=budget.spent,
        cost_by_stage=ladder.cost_by_stage(),
        evals_by_stage=[len(r) for r in ladder.records],
        stages=[s.evaluator.name for s in ladder.stages],
        wall_seconds=wall0 + time.perf_counter() - t0,
        uses_test_split=ladder.uses_test_split,
        chosen_values=_chosen_values(ladder, ch),
        trajectory=trajectory, steps=steps, rejected=len(rejected))
    save(result)
    return result


def _exchange(ladder: Ladder, searcher: Searcher) -> None:
    """What evaluators and the searcher tell each other between steps: the population (a
    supernet fine-tunes on it) and candidates an evaluator found (a supernet's
    gradient-guided search), which join the searcher's next proposals."""
    for st in ladder.stages:
        ev = st.evaluator
        observe = getattr(ev, "observe_population", None)
        if observe is not None:
            observe(searcher.members())
        take = getattr(ev, "take_suggestions", None)
        if take is not None:
            found = take()
            if found and searcher.accepts_injection:
                searcher.inject(found)


def _chosen_values(ladder: Ladder, ch) -> dict[str, float]:
    """The chosen cell's value at every stage it reached, and the proxy components' raw
    scores (``stage/component``)."""
    if ch is None:
        return {}
    out: dict[str, float] = {}
    for s, stage in enumerate(ladder.stages):
        rec = ladder.records[s].get(ch.canonical)
        if rec is None:
            continue
        out[stage.evaluator.name] = float(ladder.values(s)[ch.canonical])
        for k, v in rec.meta.items():
            if isinstance(v, float) and k != "cached":
                out[f"{stage.evaluator.name}/{k}"] = v
    return out
