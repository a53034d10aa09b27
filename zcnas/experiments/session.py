"""What ``zcnas search`` does, as a library object: a frozen :class:`SearchRequest` (what the
user asked) is resolved into run configurations (the data, the fitness, the methods and their
parameters), which are run, reported and written.

    req = SearchRequest(datasets=("cifar10",), methods=("mfea", "rea"), seeds=3, out="runs")
    session = SearchSession.create(req)
    results = session.run()
    print("\\n".join(session.report(results)))
    session.write(results)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zcnas._text import format_table
from zcnas.errors import DataNotFoundError, UserError
from zcnas.experiments.protocol import NATS_BUDGETS, config_grid, run_name, run_protocol
from zcnas.runtime.executors import check_executor, gpus_per_task
from zcnas.search.driver import (
    DATA_FREE_FITNESS,
    DEFAULT_FITNESS,
    SearchConfig,
    SearchPlan,
    SearchResult,
    build,
    check_checkpoint,
    check_finished,
)
from zcnas.search.method import TRAINING_BUDGET, get_method, list_methods

#: Default budget (seconds of proxy compute) of a search without a lookup table.
PROXY_ONLY_BUDGET = 60.0


@dataclass(frozen=True)
class SearchRequest:
    """Everything ``zcnas search`` takes, as given (names are resolved by
    :meth:`SearchSession.create`). ``methods`` may be ``("all",)`` (the methods that do not
    train); ``budget`` is seconds, ``"nats"`` or ``"auto"``; ``params`` are method
    parameters, ``(name, value)`` pairs, each applied to every selected method that has it
    (an error when none has it); ``ladder`` replaces the methods' default ladders."""

    space: str = "nats-tss"
    datasets: tuple[str, ...] = ("cifar10",)
    methods: tuple[str, ...] = ("mfea",)
    budget: str | float = "auto"
    seeds: int = 1
    fitness: str | None = None
    proxy_dataset: str | None = None
    select: str = "auto"
    split: str = "auto"
    max_params: float | None = None
    max_flops: float | None = None
    data: str | None = None
    lookup: str = "auto"
    store: str | None = None
    device: str = "cpu"
    out: str | None = None
    workers: int = 1
    params: tuple[tuple[str, Any], ...] = ()
    ladder: str | None = None
    executor: str = "process"
    address: str | None = None
    per_gpu: int | None = None
    oversubscribe: bool = False


OUT_FILES = ("config.json", "runs.parquet", "runs.csv", "summary.parquet", "summary.csv",
             "summary.md", "anytime.parquet", "anytime.png")


def _check_outputs(req: SearchRequest) -> None:
    """Every path the search writes, checked before any run (one line, nothing computed)."""
    import math

    from zcnas._io import check_output_dir, check_output_file
    from zcnas.runtime.devices import check_device

    check_device(req.device)
    for name, value in (("--max-params", req.max_params), ("--max-flops", req.max_flops)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UserError(f"{name} must be a positive, finite number, got {value!r}")
    if req.out is not None:
        check_output_dir(req.out, files=OUT_FILES, dirs=("runs",))
    if req.store is not None:
        check_output_file(req.store, "--store")


def _dedup(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _method_params(methods: Sequence[str], given: Sequence[tuple[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
    """Each method's share of the given parameters; one line for a parameter no selected
    method has."""
    fields = {m: {f.name for f in dataclasses.fields(get_method(m).params)} for m in methods}
    out: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for key, value in given:
        takers = [m for m in methods if key in fields[m]]
        if not takers:
            have = sorted({f for fs in fields.values() for f in fs})
            raise UserError(f"no selected method ({', '.join(methods)}) has a parameter "
                            f"{key!r}; theirs: {', '.join(have) or 'none'}")
        for m in takers:
            out[m][key] = value
    for m in methods:  # one line for a bad value, before any run; values as the method takes
        made = get_method(m).make_params(out[m])
        out[m] = {k: getattr(made, k) for k in out[m]}
    return out


@dataclass
class SearchSession:
    configs: list[SearchConfig]
    bench: Any
    root: Any
    lookup: str
    store: str | None
    out: Path | None
    workers: int
    notes: list[str]
    request: SearchRequest = field(default_factory=SearchRequest)
    _plans: dict = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def create(cls, request: SearchRequest | None = None, **overrides: Any) -> SearchSession:
        """Resolve a request (or its fields given as keywords) into run configurations and
        check them all (one line for any bad setting) before anything runs."""
        from zcnas.datasets import canonical_dataset
        from zcnas.ensemble import expand
        from zcnas.registry import create_scorer
        from zcnas.scoring.engine import check_inputs, image_source
        from zcnas.spaces import canonical_space

        req = replace(request or SearchRequest(), **overrides)
        space = canonical_space(req.space)
        dss = _dedup([canonical_dataset(d) for d in req.datasets])
        ms = (list_methods(lookup_only=True) if tuple(req.methods) == ("all",)
              else _dedup(req.methods))
        for m in ms:
            get_method(m)
        if not dss or not ms:
            raise UserError("no dataset or no method to search")
        if req.seeds < 1:
            raise UserError("--seeds must be >= 1")
        if req.workers < 1:
            raise UserError("--workers must be >= 1")
        check_executor(req.executor, req.address, req.device, req.per_gpu)
        _check_outputs(req)
        params = _method_params(ms, req.params)
        notes: list[str] = []
        bench = None
        if req.lookup != "none":
            from zcnas.lookup import open_benchmark

            try:
                bench = open_benchmark(space, root=req.data, kind=req.lookup)
            except DataNotFoundError:
                if req.lookup != "auto":
                    raise
                where = "in --data" if req.data else "(pass --data PATH or set ZCNAS_DATA)"
                notes.append(f"no NATS-Bench lookup found {where}: searching on proxies alone")
        if bench is not None:
            missing = [d for d in dss if d not in bench.datasets]
            if missing:
                raise UserError(f"{bench.source} has no {', '.join(missing)}")
        budget = req.budget
        auto_budget = budget == "auto"
        if budget == "auto":
            budget = "nats" if bench is not None else PROXY_ONLY_BUDGET
        if budget == "nats":
            budgets = {d: NATS_BUDGETS.get(d, 20_000.0) for d in dss}
        else:
            try:
                b = float(budget)
            except ValueError:
                raise UserError(f"--budget {budget!r} is not a number of seconds or 'nats'")\
                    from None
            if not b > 0 or b == float("inf"):
                raise UserError("--budget must be a positive, finite number of seconds")
            budgets = dict.fromkeys(dss, b)
        explicit = req.fitness is not None
        fit = req.fitness or DEFAULT_FITNESS
        pds = [canonical_dataset(req.proxy_dataset) if req.proxy_dataset else d for d in dss]
        custom_proxy = req.ladder is not None and "proxy" in req.ladder
        uses_fitness = [m for m in ms if bench is None or get_method(m).uses_fitness
                        or custom_proxy]
        if explicit and not uses_fitness:
            notes.append(f"--fitness is not used by {', '.join(ms)} here: their ladders read "
                         "the lookup only")
        for d in sorted(set(pds)) if uses_fitness else []:
            plain, _ = expand([create_scorer(fit)])
            images = image_source(d, req.data)
            try:
                check_inputs(plain, d, images)
            except UserError:
                if explicit:
                    raise
                have_c10 = d != "cifar10" and image_source("cifar10", req.data) is not None
                if have_c10 and not req.proxy_dataset:
                    raise UserError(
                        f"no {d} images for the proxies of {fit}; pass --proxy-dataset "
                        "cifar10 to score cells on CIFAR-10 images, or --fitness "
                        f"{DATA_FREE_FITNESS} (data-free)") from None
                fit = DATA_FREE_FITNESS
                notes.append(f"no {d} images found: the zero-cost fidelity is {fit} "
                             "(its components read no data)")
        if bench is None and auto_budget:  # the quick start: the methods' quick parameters
            given = {k for k, _ in req.params}
            for m in ms:
                quick = {k: v for k, v in get_method(m).quick_params if k not in given}
                if quick:
                    params[m] = {**params[m], **quick}
                    notes.append(f"{m} with {', '.join(f'{k}={v}' for k, v in quick.items())} "
                                 f"for a {PROXY_ONLY_BUDGET:.0f} s proxy-only budget")
        base = SearchConfig(space=space, fitness=fit, select=req.select, split=req.split,
                            max_params=req.max_params, max_flops=req.max_flops,
                            device=req.device, ladder=req.ladder)
        configs = []
        for c in config_grid(base, ms, dss, range(req.seeds), budgets):
            pd_ = pds[dss.index(c.dataset)]
            trains = get_method(c.method).trains
            configs.append(replace(
                c, proxy_dataset=pd_ if pd_ != c.dataset else None,
                params=params[c.method],
                budget=TRAINING_BUDGET if auto_budget and trains else c.budget))
        session = cls(configs, bench, req.data, bench.kind if bench is not None else "none",
                      req.store, Path(req.out) if req.out is not None else None, req.workers,
                      notes, req)
        session.check()
        return session

    def _plans_by_key(self) -> dict[tuple[str, str], SearchPlan]:
        """One plan per (method, dataset), built once: for checks and descriptions."""
        if not self._plans:
            for c in self.configs:
                k = (c.method, c.dataset)
                if k not in self._plans:
                    self._plans[k] = build(c, self.bench, root=self.root, store=None)
        return self._plans

    @property
    def _fingerprint(self) -> str | None:
        return self.bench.fingerprint if self.bench is not None else None

    def _reporting(self, dataset: str):
        """(reporter, index_of) of the lookup, as the protocol reports a run."""
        bench = self.bench
        if bench is None:
            return None, None
        return (lambda a: bench.accuracy(a, dataset, epochs=bench.full_epochs,
                                         split="test").value), bench.index

    def check(self) -> None:
        """Build every distinct configuration once and read every existing checkpoint's
        configuration, so bad settings fail before any run."""
        plans = self._plans_by_key()
        for c in self.configs:
            ck = None if self.out is None else self.out / "runs" / f"{run_name(c)}.json"
            if ck is not None and ck.is_file():
                stages = [s.evaluator.name for s in plans[(c.method, c.dataset)].ladder.stages]
                state = check_checkpoint(ck, c, stages, self._fingerprint)
                if state.get("result") is not None:  # a finished run must match the lookup
                    check_finished(ck, SearchResult.from_dict(state["result"]),
                                   *self._reporting(c.dataset))

    def describe(self) -> list[str]:
        lines = list(self.notes)
        lookup = self.bench.source if self.bench is not None else "none (proxies only)"
        lines.append(f"lookup: {lookup}")
        for plan in self._plans_by_key().values():
            c, ladder = plan.config, plan.ladder
            lines.append(f"{c.method} on {c.dataset}, budget {c.budget:,.0f} s, "
                         f"select {ladder.select}:")
            lines.extend("  " + s for s in ladder.describe())
            lines.extend(f"  proposer: {p.name} (booked on stage {p.stage})"
                         for p in plan.proposers)
        return lines

    def run(self, progress: bool | None = None) -> list:
        from zcnas.runtime.executors import open_executor
        from zcnas.runtime.progress import progress_bar

        req = self.request
        budgets = [c.budget for c in self.configs]
        spent = [0.0] * len(budgets)
        bar = progress_bar(round(sum(budgets)), progress, unit="s", desc="searching")
        bar.set_postfix_str(f"0/{len(budgets)} runs")
        finished, shown = [0], [0]

        def advance(i: int, now: float) -> None:  # the bar counts budget seconds spent
            spent[i] = min(max(now, spent[i]), budgets[i])
            step = round(sum(spent)) - shown[0]
            if step > 0:
                bar.update(step)
                shown[0] += step

        def done(r) -> None:
            i = self.configs.index(r.config)
            advance(i, budgets[i])  # a finished run has used its share, even if it stopped
            finished[0] += 1
            bar.set_postfix_str(f"{finished[0]}/{len(budgets)} runs")

        try:
            with open_executor(req.executor, self.workers, address=req.address,
                               gpus_per_task=gpus_per_task(req.device, req.per_gpu),
                               oversubscribe=req.oversubscribe) as ex:
                return run_protocol(self.configs, self.out, root=self.root, lookup=self.lookup,
                                    store_path=self.store, executor=ex, on_done=done,
                                    on_progress=advance)
        finally:
            bar.close()

    def _optimum(self, dataset: str) -> float:
        return self.bench.optimum(dataset, epochs=self.bench.full_epochs, split="test").value

    def report(self, results: Sequence) -> list[str]:
        from zcnas.analysis.search import TEST_SPLIT_NOTE, most_chosen, summarize

        lines: list[str] = []
        if self.bench is None:
            from zcnas.spaces import get_space

            for r in results:
                c = r.config
                idx = f"#{r.index} " if r.index is not None else ""
                lines.append(f"{c.method} on {c.dataset}, seed {c.seed}: chose {idx}{r.arch}")
                size = (get_space(c.space).costs(r.arch, c.dataset)
                        if r.arch is not None else None)
                if len(r.stages) == 1:
                    spent = (f"{r.evals_by_stage[0]} cells scored, {r.cost:.1f} s of proxy "
                             "compute (a cached score counts its recorded time)")
                else:
                    spent = ", ".join(f"{n} cells at {st.removeprefix('proxy:')}"
                                      for n, st in zip(r.evals_by_stage, r.stages, strict=True))
                    spent += f"; {r.cost:.1f} s of compute"
                if size is not None:
                    spent = f"params {size.params_m:.3f} M, FLOPs {size.flops_m:.1f} M; " + spent
                if r.arch is not None:
                    lines.append("  " + spent)
                lines.extend(f"  {k.removeprefix('proxy:')} = {v:.6g}"
                             for k, v in r.chosen_values.items())
            if results and results[0].arch is not None:
                r = results[0]
                lines.append(
                    "These are zero-cost scores of untrained networks, not accuracies: an "
                    "ensemble's value ranks a cell among the cells scored in this run (higher "
                    "is better), its components are the proxies' raw scores.")
                cell = r.index if r.index is not None else f'"{r.arch}"'
                lines.append(
                    "Next, with the NATS-Bench data (see Getting the data in the README): "
                    f"`zcnas arch {cell} --data PATH` shows its benchmark accuracy, and "
                    "`zcnas search --data PATH` escalates the best cells to benchmark lookups.")
            return lines
        df = summarize(results, optimum=self._optimum)
        rows = [[s.method, s.dataset, s.runs, f"{s['mean']:.2f} +- {s['std']:.2f}",
                 f"{s['min']:.2f} / {s['max']:.2f}", most_chosen(s), f"{s.optimum_share:.0%}",
                 f"{s.cost_mean_s:,.0f}", f"{s.wall_mean_s:.1f}"] for _, s in df.iterrows()]
        lines.append(format_table(rows, ["method", "dataset", "runs", "test acc (200 ep)",
                                         "min / max", "most chosen", "optimum",
                                         "cost s", "wall s"]))
        lines.extend(self._stalled(results))
        if len(results) == 1 and results[0].reported is not None:
            r = results[0]
            lines.append(f"chosen: #{r.index} {r.arch}  200-epoch test accuracy "
                         f"{r.reported:.2f}%")
        empty = [r for r in results if r.arch is None]
        if empty:
            lines.append(f"{len(empty)} run(s) chose nothing: the budget does not pay for one "
                         "evaluation, or the size constraints admit no cell evaluated")
        if any(r.uses_test_split for r in results):
            lines.append(TEST_SPLIT_NOTE)
        return lines

    @staticmethod
    def _stalled(results: Sequence) -> list[str]:
        """A line per (method, dataset) whose runs never escalated a cell past stage 0."""
        out = []
        groups: dict[tuple[str, str], list] = {}
        for r in results:
            groups.setdefault((r.config.method, r.config.dataset), []).append(r)
        for (m, ds), rs in groups.items():
            if all(len(r.stages) > 1 and not any(r.evals_by_stage[1:]) for r in rs):
                n = sum(r.evals_by_stage[0] for r in rs)
                out.append(f"{m} on {ds}: the budget was spent on the zero-cost stage: {n} "
                           "cells scored, none escalated; first runs compute proxy scores, "
                           "later runs read them from the store")
        return out

    def write(self, results: Sequence, *, plots: bool = True) -> list[Path]:
        from zcnas._io import atomic_write, write_figure, write_parquet, write_table
        from zcnas.analysis.search import (
            anytime_figure,
            anytime_frame,
            runs_frame,
            summarize,
            summary_markdown,
        )

        out = self.out
        out.mkdir(parents=True, exist_ok=True)
        paths = list(write_table(runs_frame(results), out / "runs"))
        paths.append(atomic_write(out / "config.json", json.dumps(
            {"lookup": self.bench.source if self.bench is not None else None,
             "notes": self.notes, "configs": [c.to_dict() for c in self.configs]}, indent=1)))
        if self.bench is None:
            return paths
        summ = summarize(results, optimum=self._optimum)
        paths.extend(write_table(summ, out / "summary"))
        paths.append(atomic_write(out / "summary.md",
                                  summary_markdown(summ, results, self.describe())))
        frame = anytime_frame(results)
        paths.append(write_parquet(frame, out / "anytime.parquet"))
        if plots:
            paths.append(write_figure(anytime_figure(frame), out / "anytime.png", dpi=110))
        return paths


def request_params(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Method parameters for a :class:`SearchRequest`, from a mapping (None values left out:
    not given)."""
    return tuple((k, v) for k, v in values.items() if v is not None)
