"""One search run: a searcher and a fidelity ladder under a budget of seconds.

:func:`build` turns a :class:`SearchConfig` into a :class:`SearchPlan` (the method's searcher,
ladder and proposers, from its registered :class:`~zcnas.search.Method` record);
:func:`run_search` drives them (ask -> reject over-size or inadmissible cells -> evaluate at
stage 0 -> escalate -> tell the fitness of every member -> show the population to the
evaluators -> inject what the proposers found) until the next evaluation no longer fits in
the budget or the space is exhausted, checkpointing as it goes, and returns a
:class:`SearchResult` with an anytime trajectory.

The number reported for the chosen cell (the full-schedule test accuracy) comes from a
separate ``reporter`` and is never shown to the searcher or the ladder. No torch here.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from zcnas._io import atomic_write
from zcnas.errors import UserError
from zcnas.search.base import Searcher
from zcnas.search.ladder import SELECT_RULES, Budget, Ladder
from zcnas.search.method import BuildContext, Method, get_method
from zcnas.search.proposer import Proposer

DEFAULT_FITNESS = "ensemble:zcnas"
#: The data-free ensemble used when no images are available (every component reads no data;
#: chosen in benchmarks/data_free_ensemble.py).
DATA_FREE_FITNESS = "ensemble:data_free"


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a run (and must match to resume from a checkpoint).

    ``split``: the split lookups are read from for selection: ``auto`` = validation when the
    benchmark has it, else test of the *shorter* schedule only (flagged in reports).
    ``select``: ``top`` (best at the highest stage) or ``fused``; ``auto`` = the method's
    default. ``proxy_dataset``: the dataset whose images (and head) the proxies use (default:
    ``dataset``). ``params``: the method's own parameters, ``(name, value)`` pairs (its
    :class:`~zcnas.search.Method` record lists them and their defaults). ``ladder``: a ladder
    spec replacing the method's default ladder (see :func:`zcnas.search.parse_ladder`).
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
    params: tuple[tuple[str, Any], ...] = ()
    ladder: str | None = None

    def __post_init__(self) -> None:
        items = self.params.items() if isinstance(self.params, Mapping) else self.params
        object.__setattr__(self, "params", tuple(sorted((str(k), v) for k, v in items)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"] = dict(self.params)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TypeError(f"unknown search configuration field(s) {', '.join(unknown)}")
        return cls(**d)


@dataclass
class SearchResult:
    config: SearchConfig
    arch: str | None
    index: int | None
    reported: float | None  # full-schedule test accuracy of the chosen cell (None: no lookup)
    cost: float  # seconds spent (simulated for lookups, measured for the rest)
    cost_by_stage: list[float]
    evals_by_stage: list[int]
    stages: list[str]
    wall_seconds: float
    uses_test_split: bool
    chosen_values: dict[str, float]
    trajectory: list[tuple[float, int | None, float | None]] = field(default_factory=list)
    steps: int = 0
    rejected: int = 0  # cells refused by the size constraints (never evaluated, no cost)
    #: Seconds by part: "STAGE: part" from evaluators that break their cost down, and
    #: "proposals" (proposers' searches).
    cost_parts: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchResult:
        d = dict(d)
        d["config"] = SearchConfig.from_dict(d["config"])
        d["trajectory"] = [tuple(x) for x in d["trajectory"]]
        return cls(**d)


# --- building a run ------------------------------------------------------------------------


@dataclass
class SearchPlan:
    """A method ready to run: its record, parameters, searcher, ladder and proposers."""

    config: SearchConfig
    method: Method
    params: Any
    searcher: Searcher
    ladder: Ladder
    proposers: list[Proposer] = field(default_factory=list)

    def run(self, **kwargs: Any) -> SearchResult:
        """:func:`run_search` of this plan (``reporter``, ``index_of``, ``checkpoint``...)."""
        return run_search(self.config, self.searcher, self.ladder, proposers=self.proposers,
                          batch=self.method.batch, **kwargs)


def build(config: SearchConfig, bench: Any = None, *, root: Any = None, store: Any = None,
          workdir: Any = None, executor: Any = None) -> SearchPlan:
    """The searcher, ladder and proposers of ``config.method``; ``bench`` None = no lookup.
    ``workdir``: where training fidelities keep their checkpoints (so a resumed run continues
    them); ``executor``: scores a population in parallel (:mod:`zcnas.runtime.executors`).
    One-line :class:`UserError` for an unknown method, parameter or setting."""
    method = get_method(config.method)
    if config.select not in ("auto", *SELECT_RULES):
        raise UserError(f"unknown selection rule {config.select!r}; valid: auto, "
                        f"{', '.join(SELECT_RULES)}")
    from zcnas.spaces import canonical_space

    space = canonical_space(config.space)
    if not method.supports(space):
        raise UserError(f"the {method.name} method is defined for the "
                        f"{', '.join(method.spaces)} space(s), not {space}")
    if method.needs_lookup and bench is None:
        raise UserError(f"the {method.name} method needs a NATS-Bench lookup; pass --data "
                        "PATH with the lookup table or archive")
    params = method.make_params(dict(config.params))
    ctx = BuildContext(config, params, bench, root, store, workdir, executor)
    searcher = method.searcher(ctx)
    if config.ladder is not None:
        from zcnas.search.spec import parse_ladder

        ladder = parse_ladder(config.ladder, ctx)
    else:
        ladder = method.ladder(ctx, searcher)
    proposers = list(method.proposers(ctx, searcher, ladder)) if method.proposers else []
    return SearchPlan(config, method, params, searcher, ladder, proposers)


# --- running -------------------------------------------------------------------------------


def _size_check(config: SearchConfig) -> Callable[[str], bool]:
    if config.max_params is None and config.max_flops is None:
        return lambda arch: True
    from zcnas.spaces import get_space

    space = get_space(config.space)

    def ok(arch: str) -> bool:
        c = space.costs(arch, config.dataset)
        if c is None:
            raise UserError(f"the {space.name} space has no analytic size count, so "
                            "--max-params / --max-flops cannot be checked before evaluating")
        return ((config.max_params is None or c.params_m <= config.max_params)
                and (config.max_flops is None or c.flops_m <= config.max_flops))
    return ok


def _read_checkpoint(path: Path) -> tuple[SearchConfig, dict[str, Any]]:
    try:
        state = json.loads(path.read_text())
        return SearchConfig.from_dict(state["config"]), state
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); "
                        "delete it to start over") from None


def check_checkpoint(path: str | os.PathLike, config: SearchConfig, stages: list[str],
                     lookup: str | None = None) -> dict[str, Any]:
    """The checkpoint's state, after checking it belongs to ``config`` run through a ladder
    with these stage names (the split is part of them) on the lookup whose fingerprint is
    ``lookup``; one-line errors."""
    saved, state = _read_checkpoint(Path(path))
    if saved != config:
        raise UserError(f"checkpoint {path} belongs to another search configuration; "
                        "delete it or pick another --out")
    if state.get("lookup") != lookup:
        raise UserError(f"checkpoint {path} was made with another lookup "
                        f"({state.get('lookup') or 'none'}, now {lookup or 'none'}); delete it "
                        "or pick another --out")
    if state.get("stages") != stages:
        raise UserError(f"checkpoint {path} was made with another ladder "
                        f"({' -> '.join(state.get('stages') or ['?'])}, now "
                        f"{' -> '.join(stages)}: another lookup or split?); delete it or pick "
                        "another --out")
    return state


def check_finished(path: Path, result: SearchResult, reporter, index_of) -> SearchResult:
    """A finished run read back from its checkpoint, after checking that what it reports
    is what this lookup says (a tampered or stale file is refused, never averaged in)."""
    from zcnas.spaces import get_space

    bad = None
    try:
        if result.arch is not None:
            get_space(result.config.space).parse_arch(result.arch)
            if index_of is not None and index_of(result.arch) != result.index:
                bad = f"index {result.index} is not that of {result.arch}"
            elif reporter is not None and result.reported is not None and not math.isclose(
                    reporter(result.arch), result.reported, rel_tol=0, abs_tol=1e-9):
                bad = f"the reported accuracy {result.reported} is not the lookup's"
        elif result.reported is not None or result.index is not None:
            bad = "it reports a result without a chosen cell"
    except UserError as err:
        bad = str(err)
    if bad is not None:
        raise UserError(f"checkpoint {path} does not match the lookup ({bad}); delete it to "
                        "run that search again")
    return result


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically, through a temporary file of its own (concurrent
    writers never share one)."""
    atomic_write(path, json.dumps(obj))


def run_search(config: SearchConfig, searcher: Searcher, ladder: Ladder, *,
               proposers: Sequence[Proposer] = (), batch: int | None = None,
               reporter: Callable[[str], float] | None = None,
               index_of: Callable[[str], int] | None = None,
               checkpoint: str | os.PathLike | None = None,
               checkpoint_seconds: float = 5.0,
               max_steps: int | None = None, lookup: str | None = None,
               progress: Callable[[float], None] | None = None) -> SearchResult:
    """Drive ``searcher`` and ``ladder`` until the budget is spent.

    ``batch``: cells asked per step (None: the registered method's, 64 for an unregistered
    one). ``proposers``: asked after every step;
    what they find is injected into the searcher, and their seconds are charged.
    ``reporter(arch)`` gives the number reported for a chosen cell (never used to select);
    ``index_of(arch)`` its benchmark index. ``checkpoint``: a JSON file written atomically
    every ``checkpoint_seconds`` and at the end; when it exists and holds this config, the
    run resumes from it (a finished run is returned after checking it against ``reporter``
    and ``index_of``). ``lookup``: the lookup's fingerprint, recorded in the checkpoint so a
    run with another table never reuses it. ``progress(spent)`` hears the seconds of budget
    spent after every step. ``max_steps`` stops early (tests).
    """
    if batch is None:
        from zcnas.search.method import METHODS

        batch = METHODS.get(config.method).batch if config.method in METHODS else 64
    budget = Budget(config.budget)
    size_ok = _size_check(config)
    evaluators = [s.evaluator for s in ladder.stages]

    def admitted(arch: str) -> bool:  # e.g. inside a pruned supernet
        return all(ev.admits(arch) for ev in evaluators)

    ckpt = Path(checkpoint) if checkpoint is not None else None
    trajectory: list[tuple[float, int | None, float | None]] = []
    steps, wall0, rejected = 0, 0.0, set()
    stage_names = [ev.name for ev in evaluators]
    if ckpt is not None and ckpt.is_file():
        state = check_checkpoint(ckpt, config, stage_names, lookup)
        try:
            if state.get("result") is not None:
                return check_finished(ckpt, SearchResult.from_dict(state["result"]),
                                       reporter, index_of)
            searcher.load_state_dict(state["searcher"])
            ladder.load_state_dict(state["ladder"])
            for p, ps in zip(proposers, state.get("proposers", [{}] * len(proposers)),
                             strict=True):
                p.load_state_dict(ps)
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
        head = {"config": config.to_dict(), "stages": stage_names, "lookup": lookup}
        if result is not None:  # finished: the result is all a re-run needs
            write_json(ckpt, {**head, "result": result.to_dict()})
            return
        write_json(ckpt, {**head, "searcher": searcher.state_dict(),
                          "ladder": ladder.state_dict(),
                          "proposers": [p.state_dict() for p in proposers],
                          "spent": budget.spent, "trajectory": trajectory, "steps": steps,
                          "wall": wall0 + time.perf_counter() - t0,
                          "rejected": sorted(rejected), "result": None})

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
        ladder.refresh()
        told = [(a, -math.inf) for a in bad] + [(e.arch, ladder.fitness(e.canonical))
                                                 for e in done]
        told += [(a, ladder.fitness(searcher.key(a))) for a in searcher.members()]
        searcher.tell(told)
        members = searcher.members()
        for ev in evaluators:
            ev.observe_population(members)
        if _propose(proposers, ladder, searcher, budget):
            out_of_budget = True
        idx, rep, arch = current()
        if arch is not None and (idx, rep) != last_choice:
            trajectory.append((budget.spent, idx, rep))
            last_choice = (idx, rep)
        if progress is not None:
            progress(budget.spent)
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
        stages=stage_names,
        wall_seconds=wall0 + time.perf_counter() - t0,
        uses_test_split=ladder.uses_test_split,
        chosen_values=_chosen_values(ladder, ch),
        trajectory=trajectory, steps=steps, rejected=len(rejected),
        cost_parts=_cost_parts(ladder))
    save(result)
    return result


def _propose(proposers: Sequence[Proposer], ladder: Ladder, searcher: Searcher,
             budget: Budget) -> bool:
    """Run the proposers that are due, inject what they find, charge their seconds; True
    when one ran past the budget (its proposals are discarded, the seconds left spent)."""
    for p in proposers:
        if not p.due(ladder, searcher):
            continue
        start = time.perf_counter()
        found = p.propose(ladder, searcher, time_limit=max(0.0, budget.left))
        seconds = time.perf_counter() - start
        if seconds > budget.left + 1e-9:
            ladder.upkeep(p.stage, max(0.0, budget.left))
            budget.charge(max(0.0, budget.left))
            return True
        ladder.upkeep(p.stage, seconds)
        budget.charge(seconds)
        if found and searcher.accepts_injection:
            searcher.inject(found)
    return False


def _cost_parts(ladder: Ladder) -> dict[str, float]:
    out = {f"{st.evaluator.name}: {k}": float(v)
           for st in ladder.stages for k, v in st.evaluator.cost_parts().items()}
    proposals = sum(c for _, k, c in ladder.log if k == "")
    if proposals:
        out["proposals"] = proposals
    return out


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
