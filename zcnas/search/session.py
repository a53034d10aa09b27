"""What ``zcnas search`` does, as a library object: resolve the data, the fitness and the
methods into run configurations, run them, report and write the results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from zcnas._text import format_table, markdown_table
from zcnas.errors import DataNotFoundError, UserError
from zcnas.search.protocol import (
    anytime_figure,
    anytime_frame,
    config_grid,
    published_rows,
    run_protocol,
    runs_frame,
    summarize,
)
from zcnas.search.run import (
    DATA_FREE_FITNESS,
    DEFAULT_FITNESS,
    METHODS,
    NATS_BUDGETS,
    TRAINING_BUDGET,
    TRAINING_METHODS,
    SearchConfig,
    build,
)

TEST_SPLIT_NOTE = (
    "Selection used test-split lookups: this lookup (the compact table) has no validation "
    "split, so the 12-epoch *test* accuracy served as a low fidelity. The 200-epoch test "
    "accuracy reported was never seen by the search.")


#: Methods whose ladder starts with a zero-cost stage (with a lookup table).
PROXY_METHODS = ("mfea", "mfnas", "oneshot")
#: Default budget (seconds of proxy compute) of a search without a lookup table.
PROXY_ONLY_BUDGET = 60.0


def _split_list(text: str) -> list[str]:
    return [x.strip() for x in str(text).split(",") if x.strip()]


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
    _ladder_cache: dict = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def create(cls, *, space: str = "nats-tss", datasets: str = "cifar10",
               methods: str = "mfea", budget: str | float = "auto", seeds: int = 1,
               fitness: str | None = None, proxy_dataset: str | None = None,
               select: str = "auto", split: str = "auto", max_params: float | None = None,
               max_flops: float | None = None, data: Any = None, lookup: str = "auto",
               store: str | None = None, device: str = "cpu", out: Any = None,
               workers: int = 1, train_epochs: int = 12, warmup_epochs: float = 5.0,
               population: int = 100, image_limit: int | None = None) -> SearchSession:
        from zcnas.datasets import canonical_dataset
        from zcnas.ensemble import expand
        from zcnas.registry import create_proxy
        from zcnas.scoring.engine import check_inputs, image_source
        from zcnas.spaces import canonical_space

        space = canonical_space(space)
        dss = [canonical_dataset(d) for d in _split_list(datasets)]
        ms = ([m for m in METHODS if m not in TRAINING_METHODS] if methods == "all"
              else _split_list(methods))
        for m in ms:
            if m not in METHODS:
                raise UserError(f"unknown search method {m!r}; valid: {', '.join(METHODS)}")
        if not dss or not ms:
            raise UserError("no dataset or no method to search")
        if seeds < 1:
            raise UserError("--seeds must be >= 1")
        if workers < 1:
            raise UserError("--workers must be >= 1")
        notes: list[str] = []
        bench = None
        if lookup != "none":
            from zcnas.lookup import open_benchmark

            try:
                bench = open_benchmark(space, root=data, kind=lookup)
            except DataNotFoundError as e:
                if lookup != "auto":
                    raise
                notes.append(f"no lookup table found ({e}); searching on proxies alone")
        if bench is not None:
            missing = [d for d in dss if d not in bench.datasets]
            if missing:
                raise UserError(f"{bench.source} has no {', '.join(missing)}")
            lookup_kind = "table" if type(bench).__name__ == "CompactTable" else "archive"
        else:
            lookup_kind = "none"
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
            if not b > 0:
                raise UserError("--budget must be > 0 seconds")
            budgets = dict.fromkeys(dss, b)
        explicit = fitness is not None
        fit = fitness or DEFAULT_FITNESS
        pds = [canonical_dataset(proxy_dataset) if proxy_dataset else d for d in dss]
        uses_proxies = bench is None or any(m in PROXY_METHODS for m in ms)
        for d in sorted(set(pds)) if uses_proxies else []:
            plain, _ = expand([create_proxy(fit)])
            images = image_source(d, data)
            try:
                check_inputs(plain, d, images)
            except UserError:
                if explicit:
                    raise
                have_c10 = d != "cifar10" and image_source("cifar10", data) is not None
                if have_c10 and not proxy_dataset:
                    raise UserError(
                        f"no {d} images for the proxies of {fit}; pass --proxy-dataset "
                        "cifar10 to score cells on CIFAR-10 images, or --fitness "
                        f"{DATA_FREE_FITNESS} (data-free)") from None
                fit = DATA_FREE_FITNESS
                notes.append(f"no {d} images found: the zero-cost fidelity is {fit} "
                             "(its components read no data)")
        base = SearchConfig(space=space, fitness=fit, select=select, split=split,
                            max_params=max_params, max_flops=max_flops, device=device,
                            train_epochs=train_epochs, warmup_epochs=warmup_epochs,
                            population=population, image_limit=image_limit)
        configs = []
        for c in config_grid(base, ms, dss, range(seeds), budgets):
            configs.append(replace(c, proxy_dataset=pds[dss.index(c.dataset)]
                                   if pds[dss.index(c.dataset)] != c.dataset else None))
        if bench is None:
            configs = [replace(c, budget=budgets[c.dataset]) for c in configs]
        if auto_budget:  # a training method spends real seconds of this machine
            configs = [replace(c, budget=TRAINING_BUDGET) if c.method in TRAINING_METHODS
                       else c for c in configs]
        session = cls(configs, bench, data, lookup_kind, store,
                      Path(out) if out is not None else None, workers, notes)
        session.check()
        return session

    def _ladders(self) -> dict[tuple[str, str], Any]:
        """One ladder per (method, dataset), built once: for checks and descriptions."""
        if not self._ladder_cache:
            for c in self.configs:
                k = (c.method, c.dataset)
                if k not in self._ladder_cache:
                    self._ladder_cache[k] = (c, build(c, self.bench, root=self.root,
                                                      store=None)[1])
        return self._ladder_cache

    def check(self) -> None:
        """Build every distinct configuration once and read every existing checkpoint's
        configuration, so bad settings fail before any run."""
        from zcnas.search.protocol import run_name
        from zcnas.search.run import check_checkpoint

        ladders = self._ladders()
        for c in self.configs:
            ck = None if self.out is None else self.out / "runs" / f"{run_name(c)}.json"
            if ck is not None and ck.is_file():
                stages = [s.evaluator.name for s in ladders[(c.method, c.dataset)][1].stages]
                check_checkpoint(ck, c, stages)

    def describe(self) -> list[str]:
        lines = list(self.notes)
        lookup = self.bench.source if self.bench is not None else "none (proxies only)"
        lines.append(f"lookup: {lookup}")
        for c, ladder in self._ladders().values():
            lines.append(f"{c.method} on {c.dataset}, budget {c.budget:,.0f} s, "
                         f"select {ladder.select}:")
            lines.extend("  " + s for s in ladder.describe())
        return lines

    def run(self, progress: bool | None = None) -> list:
        from zcnas.runtime.progress import progress_bar

        bar = progress_bar(len(self.configs), progress, unit="run", desc="searching")
        try:
            return run_protocol(self.configs, self.out, root=self.root, lookup=self.lookup,
                                store_path=self.store, workers=self.workers,
                                on_done=lambda r: bar.update(1))
        finally:
            bar.close()

    def _optimum(self, dataset: str) -> float:
        return self.bench.optimum(dataset, epochs=self.bench.full_epochs, split="test").value

    def report(self, results: Sequence) -> list[str]:
        lines: list[str] = []
        if self.bench is None:
            from zcnas.spaces.plan import count_costs, tss_plan

            for r in results:
                c = r.config
                lines.append(f"{c.method} on {c.dataset}, seed {c.seed}: chosen {r.arch}")
                if c.space == "nats-tss" and r.arch is not None:
                    size = count_costs(tss_plan(r.arch, c.dataset))
                    if len(r.stages) == 1:
                        spent = (f"{r.evals_by_stage[0]} cells scored, {r.cost:.1f} s of proxy "
                                 "compute (a cached score counts its recorded time)")
                    else:
                        spent = ", ".join(f"{n} cells at {st.removeprefix('proxy:')}"
                                          for n, st in zip(r.evals_by_stage, r.stages,
                                                           strict=True))
                        spent += f"; {r.cost:.1f} s of compute"
                    lines.append(f"  params {size.params_m:.3f} M, FLOPs {size.flops_m:.1f} M; "
                                 + spent)
                lines.extend(f"  {k.removeprefix('proxy:')} = {v:.6g}"
                             for k, v in r.chosen_values.items())
            return lines
        df = summarize(results, optimum=self._optimum)
        rows = [[s.method, s.dataset, s.runs, f"{s['mean']:.2f} +- {s['std']:.2f}",
                 f"{s['min']:.2f} / {s['max']:.2f}",
                 f"{s.top_index} ({s.top_index_share:.0%})", f"{s.optimum_share:.0%}",
                 f"{s.cost_mean_s:,.0f}", f"{s.wall_mean_s:.1f}"] for _, s in df.iterrows()]
        lines.append(format_table(rows, ["method", "dataset", "runs", "test acc (200 ep)",
                                         "min / max", "most chosen", "optimum",
                                         "cost s (sim.)", "wall s"]))
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

    def write(self, results: Sequence, *, plots: bool = True) -> list[Path]:
        from zcnas.scoring.engine import write_table

        out = self.out
        out.mkdir(parents=True, exist_ok=True)
        paths = list(write_table(runs_frame(results), out / "runs"))
        (out / "config.json").write_text(json.dumps(
            {"lookup": self.bench.source if self.bench is not None else None,
             "notes": self.notes, "configs": [asdict(c) for c in self.configs]}, indent=1))
        paths.append(out / "config.json")
        if self.bench is None:
            return paths
        summ = summarize(results, optimum=self._optimum)
        paths.extend(write_table(summ, out / "summary"))
        md = out / "summary.md"
        md.write_text(summary_markdown(summ, results, self.describe()))
        paths.append(md)
        frame = anytime_frame(results)
        frame.to_parquet(out / "anytime.parquet", index=False)
        paths.append(out / "anytime.parquet")
        if plots:
            fig = anytime_figure(frame)
            fig.savefig(out / "anytime.png", dpi=110)
            paths.append(out / "anytime.png")
        return paths


def summary_markdown(summ, results, description: Sequence[str]) -> str:
    rows = [[s.method, s.dataset, s.runs, f"{s.budget_s:,.0f}",
             f"**{s['mean']:.2f}** +- {s['std']:.2f}",
             f"{s['min']:.2f} / {s['max']:.2f}", f"{s.top_index} ({s.top_index_share:.0%})",
             f"{s.optimum_share:.0%}", f"{s.cost_mean_s:,.0f} (max {s.cost_max_s:,.0f})",
             f"{s.wall_mean_s:.1f}"] for _, s in summ.iterrows()]
    parts = ["# Search results", "",
             markdown_table(rows, ["method", "dataset", "runs", "budget s", "test acc (200 ep)",
                                   "min / max", "most chosen cell", "runs at optimum",
                                   "simulated cost s", "wall s / run"]), ""]
    datasets = list(dict.fromkeys(summ["dataset"]))
    parts += ["Published (200-epoch test accuracy, %):", "",
              markdown_table([list(r) for r in published_rows(datasets)],
                             ["method", "dataset", "accuracy", "protocol / source"]), ""]
    if any(r.uses_test_split for r in results):
        parts += [TEST_SPLIT_NOTE, ""]
    parts += ["Ladders:", "", *[f"    {line}" for line in description], ""]
    return "\n".join(parts)
