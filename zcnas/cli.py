"""The ``zcnas`` command.

Sub-commands import what they need when they run, so ``zcnas --help`` stays fast (no torch).
An error the user can fix prints one line and exits with code 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import sys
import warnings

import click

from zcnas._text import format_table
from zcnas._version import __version__
from zcnas.errors import UserError, clip_quoted, one_line

DATA_HELP = "Data folder (default: $ZCNAS_DATA, then $TORCH_HOME)."
#: Seeds: what numpy and the score store take.
SEED = click.IntRange(0, 2**63 - 1)


class _Positive(click.ParamType):
    name = "number"

    def convert(self, value, param, ctx):
        import math

        try:
            x = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not (math.isfinite(x) and x > 0):
            self.fail(f"{value!r} must be a positive, finite number", param, ctx)
        return x


class _HeldOut(click.ParamType):
    """Held-out images: a count (``500``) or a fraction of the split (``0.1``)."""

    name = "count|fraction"

    def convert(self, value, param, ctx):
        import math

        if isinstance(value, int | float) and not isinstance(value, bool):
            text = repr(value)
        else:
            text = str(value).strip()
        if text.isascii() and text.isdigit():
            if int(text) < 1:
                self.fail("a count of held-out images must be at least 1", param, ctx)
            return int(text)
        try:
            x = float(text)
        except ValueError:
            self.fail(f"{value!r} is neither a count nor a fraction", param, ctx)
        if not (math.isfinite(x) and 0 < x < 1):
            self.fail(f"{value!r}: a fraction is between 0 and 1 (exclusive); a count is a "
                      "whole number", param, ctx)
        return x


POSITIVE = _Positive()
HELD_OUT = _HeldOut()


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"zcnas: warning: {message}", err=True)


def _error(text: str, code: int) -> None:
    click.echo(f"zcnas: error: {clip_quoted(' '.join(str(text).split()))}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """A click group whose every failure is one line on stderr: a :class:`UserError` or a bad
    option (exit code 2), an interruption (130), anything unexpected (1, with the hint to rerun
    with ``--debug`` for the traceback)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        debug = "--debug" in (sys.argv[1:] if args is None else list(args))
        if args is None:  # the zcnas command itself (not a caller's process, a test's runner):
            # it scores (one worker) or drives the scoring; keep the memory passes free
            from zcnas.runtime.allocator import tune_allocator

            tune_allocator()
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as e:  # --help, --version
            sys.exit(e.exit_code)
        except click.UsageError as e:
            hint = f" (`{e.ctx.command_path} -h` for usage)" if e.ctx is not None else ""
            _error(e.format_message() + hint, 2)
        except click.ClickException as e:
            _error(e.format_message(), e.exit_code)
        except click.Abort:
            _error("aborted", 1)
        except UserError as err:
            if debug:
                raise
            _error(str(err), err.exit_code)
        except KeyboardInterrupt:
            if debug:
                raise
            _error("interrupted", 130)
        except Exception as err:  # noqa: BLE001 - a bug: one line, the traceback on --debug
            if debug:
                raise
            _error(f"internal error ({one_line(err)}); rerun with --debug for the traceback "
                   "and report it", 1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


@click.group(name="zcnas", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zcnas")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """zcnas: zero-cost and multi-fidelity neural architecture search on NATS-Bench."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if not debug:
        warnings.showwarning = _one_line_warning


@main.command()
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
def info(data: str | None) -> None:
    """Show the spaces, the datasets, and which data files were found where."""
    from zcnas.inventory import inventory
    from zcnas.paths import data_roots
    from zcnas.spaces import SPACES, list_spaces

    click.echo("Search spaces")
    spaces, broken = SPACES.load_all()
    click.echo(format_table(
        [(name, f"{sp.size:,}" if sp.size is not None else "-", sp.arch_format)
         for name in list_spaces() if (sp := spaces.get(name)) is not None],
        ("name", "size", "arch format"),
    ))
    for b in broken:
        click.echo(f"  broken: {b.name} from {b.source}: {b.error}")
    roots = data_roots(data)
    click.echo("\nData folders searched: " + (", ".join(map(str, roots)) or
                                              "none (pass --data or set ZCNAS_DATA)"))
    click.echo(format_table([(i.kind, i.name, i.status, i.where) for i in inventory(data)],
                      ("kind", "name", "status", "where")))


@main.command()
@click.argument("arch")
@click.option("--space", default="nats-tss", show_default=True,
              help="Search space (`zcnas info` lists them).")
@click.option("--dataset", "datasets", multiple=True,
              help="Only this dataset (repeatable; default: cifar10, cifar100, ImageNet16-120).")
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
def arch(arch: str, space: str, datasets: tuple[str, ...], data: str | None) -> None:
    """Validate ARCH (an arch string or a benchmark index) and describe it.

    Prints its benchmark index, isomorphism class, parameters and FLOPs per dataset, and the
    benchmark accuracies when a lookup table is found.
    """
    from zcnas.describe import describe_arch

    click.echo(describe_arch(arch, space=space, root=data, datasets=datasets or None))


@main.group()
def data() -> None:
    """Manage datasets (nothing is ever downloaded unless you ask here)."""


@data.command("download")
@click.argument("dataset")
@click.option("--data", "root", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
@click.option("--url", default=None, help="Fetch from this URL instead of the official one.")
def data_download(dataset: str, root: str | None, url: str | None) -> None:
    """Download DATASET's official archive into the data folder and verify its checksum."""
    from zcnas.data.download import download

    path = download(dataset, root, url=url)
    click.echo(f"{dataset}: ready at {path}")



@data.command("export")
@click.option("--archive", "archive", required=True, type=click.Path(file_okay=False),
              help="The official NATS-Bench fast-mode archive folder "
                   "(NATS-tss-v1_0-3ffb9-simple or NATS-sss-v1_0-50262-simple).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The Parquet file to write; put it at DATA/nats-tss/lookup.parquet (or "
                   "nats-sss/) and every command finds it.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes reading records (default: the CPUs this process may use).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr.")
def data_export(archive: str, out: str, workers: int | None, progress: bool | None) -> None:
    """Export a compact lookup from the official archive: accuracies of every schedule and
    split, the learning curves, training times, parameters and FLOPs, in one Parquet file
    that loads in well under a second (read like the archive itself)."""
    import time

    from zcnas._io import check_output_file
    from zcnas.lookup import NatsArchive
    from zcnas.lookup.export import export_lookup
    from zcnas.runtime.executors import check_workers, usable_cpus
    from zcnas.runtime.progress import progress_bar

    check_output_file(out)
    src = NatsArchive(archive)
    workers = check_workers(workers or usable_cpus())
    start = time.perf_counter()
    bar = progress_bar(len(src.available_indices), progress, unit="record", desc="exporting")
    try:
        path = export_lookup(src, out, progress=lambda n: bar.update(1), workers=workers)
    finally:
        bar.close()
    click.echo(f"exported {len(src.available_indices):,} records of {src.space} to {path} "
               f"({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")


@main.group()
def proxies() -> None:
    """Installed zero-cost proxies (built-in and third-party, via entry points)."""


@proxies.command("list")
@click.argument("filter", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
def proxies_list(filter: str | None, fmt: str) -> None:
    """List proxies matching FILTER (fnmatch pattern; plain text matches a substring).

    Shows each proxy's source distribution and version, its own version and recipe metadata.
    Plugins that fail to import or validate are listed as broken with the error (set
    ZCNAS_PLUGIN_RAISE=1 for the traceback); the exit code stays 0.
    """
    import json

    from zcnas.registry import PROXIES

    loaded, broken = PROXIES.load_all(filter)
    sources = {e.name: e for e in PROXIES.entries(filter)}
    if fmt == "json":
        rows = [{"name": name, "status": "ok", "distribution": sources[name].dist,
                 "distribution_version": sources[name].version, "target": sources[name].target,
                 "info": {k: list(v) if isinstance(v, tuple) else v
                          for k, v in cls.info.as_dict().items()}}
                for name, cls in loaded.items()]
        rows += [{"name": b.name, "status": "broken", "distribution": b.dist,
                  "distribution_version": b.version, "target": b.target, "error": b.error}
                 for b in broken]
        click.echo(json.dumps(sorted(rows, key=lambda r: (r["name"], r["distribution"])),
                              indent=2))
        return
    if not loaded and not broken:
        click.echo(f"no proxies match {filter!r}" if filter else "no proxies installed")
        return

    def yn(flag: bool) -> str:
        return "yes" if flag else "-"

    import textwrap

    inits = {"default": "torch", "kaiming_normal_fan_in": "kaiming-in",
             "kaiming_normal_fan_out": "kaiming-out", "normal": "N(0,1)", "n/a": "-"}
    rows = []
    for name, cls in loaded.items():
        i = cls.info
        rows.append((name, i.input, yn(i.needs_labels), "higher" if i.higher_is_better
                     else "lower", i.bn if i.bn != "n/a" else "-", inits.get(i.init, i.init),
                     f"{i.batch_size}x{i.n_batches}", i.transform if i.transform != "none"
                     else "-", ", ".join(i.spaces) if i.spaces else "any",
                     f"{sources[name].dist} v{i.version}"))
    if rows:
        click.echo(format_table(rows, ("proxy", "input", "labels", "better", "BN", "init",
                                       "batch", "report", "spaces", "from")))
        click.echo(_wrap("input: what the network is fed (real images, Gaussian noise, "
                         "all-ones, none: analytic); labels: the score reads them; BN: batch "
                         "statistics (train), fresh running statistics (eval) or none; init: "
                         "weight initialisation; report: "
                         "transform of the raw value. `--format json` has the references and "
                         "deviations."))
        own = [name for name, cls in loaded.items() if cls.info.per_arch]
        if own:
            click.echo(_wrap("Scored for each architecture (the value reads dead edges too): "
                             f"{', '.join(own)}; the others once per isomorphism class."))
    if broken:
        click.echo(("\n" if rows else "") + f"Broken ({len(broken)}):")
        for b in broken:  # the error on its own lines: the table stays 100 columns wide
            click.echo(f"{b.name}  from {b.source}  ({b.target})")
            click.echo(textwrap.indent(_wrap(b.error, 96), "    "))
    if rows and not filter:
        from zcnas.ensemble import METHODS, PRESETS

        click.echo("\n" + _wrap(
            "Ensembles (rank aggregations over the scored population): "
            f"ensemble:METHOD(A,B,...) with METHOD one of {', '.join(METHODS)}; presets: "
            + ", ".join(f"ensemble:{k}" for k in PRESETS)))



@main.group()
def methods() -> None:
    """Installed search methods and ladder stages (built-in and third-party)."""


@methods.command("list")
def methods_list() -> None:
    """List every search method with its parameters and every ladder stage (evaluator), with
    the distribution each comes from; broken plugins and name clashes are listed with why."""
    import dataclasses

    from zcnas.fidelity import EVALUATORS
    from zcnas.search.method import METHODS, list_methods

    sources = {e.name: e.source for e in METHODS.entries()}
    loaded, broken = METHODS.load_all()
    rows = []
    for name in list_methods():
        if name not in loaded:
            continue
        m = loaded[name]
        ps = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(m.params)) or "-"
        flags = ", ".join(x for x, on in (("trains", m.trains), ("needs lookup",
                                          m.needs_lookup)) if on) or "-"
        rows.append((name, sources.get(name, "?"), flags, _clip(ps, 60)))
    click.echo(format_table(rows, ("method", "from", "kind", "parameters")))
    stages, broken_stages = EVALUATORS.load_all()
    evs = {e.name: e for e in EVALUATORS.entries()}
    click.echo("\nLadder stages (--ladder):")
    click.echo(format_table([(n, evs[n].source if n in evs else "?") for n in stages],
                            ("stage", "from")))
    bad = broken + broken_stages
    if bad:
        click.echo(f"\nBroken or ignored ({len(bad)}):")
        click.echo(format_table([(b.name, b.source, b.error) for b in bad],
                                ("name", "from", "why")))


def executor_options(fn):
    """--executor, --address, --per-gpu, --oversubscribe: where the work of a command runs."""
    options = [
        click.option("--executor", default="process", show_default=True,
                     type=click.Choice(["process", "inprocess", "ray"]),
                     help="Where the work runs: a local process pool, this process, or Ray "
                          "(pip install \"zcnas[ray]\")."),
        click.option("--address", default=None,
                     help="With --executor ray: an existing cluster (auto, HOST:PORT or "
                          "ray://HOST:PORT); default: start a local Ray instance."),
        click.option("--per-gpu", type=click.IntRange(1, 1024), default=None,
                     help="With --executor ray --device cuda: tasks sharing one GPU (default "
                          "1)."),
        click.option("--oversubscribe", is_flag=True,
                     help="Allow more --workers than the CPUs this process may use."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _wrap(text: str, width: int = 100) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


@main.command()
@click.option("--space", default="nats-tss", show_default=True,
              help="Search space (`zcnas info` lists them).")
@click.option("--proxies", "proxy_list", default="synflow,naswot,stable", show_default=True,
              help="Comma-separated proxy specs, e.g. 'synflow,stable(n_batches=4)'; "
                   "see `zcnas proxies list`.")
@click.option("--archs", default="all", show_default=True,
              help="'all', a number N (a seeded sample), or a file of arch strings / indices "
                   "(one per line, or a CSV/Parquet table with an 'arch' column).")
@click.option("--dataset", default="cifar10", show_default=True,
              help="Network head and images: cifar10, cifar100 or ImageNet16-120.")
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda (cuda:N).")
@click.option("--workers", type=int, default=None,
              help="Worker processes (default: the CPUs this process may use, 1 on cuda).")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the network initialisation, the fixed batches and --archs N.")
@click.option("--store", "store_path", default=None,
              help="Score store (default: $ZCNAS_CACHE/scores.sqlite or "
                   "~/.cache/zcnas/scores.sqlite).")
@click.option("--no-store", is_flag=True, help="Neither read nor write the score store.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output table; written as OUT.parquet and OUT.csv.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar with rate and ETA on stderr (default: on; every 30 s when "
                   "stderr is not a terminal).")
@executor_options
@click.option("--shard", default=None, metavar="I/N",
              help="Score only the I-th of N deterministic slices (SLURM job arrays); merge "
                   "the stores with `zcnas store merge`.")
def score(space, proxy_list, archs, dataset, data, device, workers, seed, store_path, no_store,
          out, progress, executor, address, per_gpu, oversubscribe, shard) -> None:
    """Score architectures with zero-cost proxies.

    Isomorphic architectures are scored once; the proxies of one architecture share network
    builds and passes; scores are cached in the store, so a re-run (or a run restarted after a
    crash) computes only what is missing. Writes a tidy long table: arch, index, canonical,
    proxy, value, seconds (compute time of the score), device, version, dataset, seed, origin
    (computed in this run, isomorph = copied from an isomorphic architecture, or store).
    """
    import time

    from zcnas.experiments.scoring import ScoreRequest, parse_shard, run_score
    from zcnas.runtime.store import default_store_path

    start = time.perf_counter()
    req = ScoreRequest(out=out, space=space, proxies=proxy_list, archs=archs, dataset=dataset,
                       data=data, device=device, workers=workers, seed=seed,
                       store=None if no_store else (store_path or str(default_store_path())),
                       progress=progress, executor=executor, address=address,
                       per_gpu=per_gpu, oversubscribe=oversubscribe,
                       shard=parse_shard(shard) if shard is not None else None)
    res = run_score(req, log=lambda line: click.echo(line, err=True))
    click.echo(format_table(res.summary, ("proxy", "archs", "computed", "from store",
                                          "degenerate", "s/arch")))
    click.echo(f"wrote {res.paths[0]} and {res.paths[1]} in {time.perf_counter() - start:.1f} s")


@main.command()
@click.argument("tables", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--proxies", "proxy_list", default="all", show_default=True,
              help="'all' (every proxy in the tables) and/or proxy names and ensemble specs, "
                   "e.g. 'all,ensemble:az_nas,ensemble:mean_rank(naswot,synflow)'.")
@click.option("--space", default="nats-tss", show_default=True,
              help="The space the tables were scored in.")
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
@click.option("--lookup", "lookup_kind", default="auto", show_default=True,
              type=click.Choice(["auto", "export", "table", "archive"]),
              help="Which NATS-Bench lookup to read accuracies from.")
@click.option("--datasets", default="all", show_default=True,
              help="Comma list of datasets to correlate against, or 'all' the lookup has.")
@click.option("--epochs", default="200,12", show_default=True,
              help="Training schedules (hp) of the accuracies; each is its own column set.")
@click.option("--split", default="test", show_default=True,
              help="test, or valid (official archive only).")
@click.option("--archs", default="all", show_default=True,
              help="'all' scored architectures, or N: a seeded sample of N of them.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of --archs N and of the bootstrap.")
@click.option("--bootstrap", type=int, default=200, show_default=True,
              help="Bootstrap resamples for the 95% intervals (0: none; at most 100,000).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: writes correlations.parquet, .csv and .md, "
                   "heatmap-EPOCHSep.png per --epochs, scatter.png.")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write the figures.")
@click.option("--published/--no-published", default=True, show_default=True,
              help="Print published correlations (with sources) beside ours.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr.")
def correlate(tables, space, proxy_list, data, lookup_kind, datasets, epochs, split, archs,
              seed, bootstrap, out, plots, published, progress) -> None:
    """Rank correlations of proxy scores (TABLES from `zcnas score`) against NATS-Bench.

    For each proxy (and each ensemble asked for) and dataset: Spearman rho, Kendall tau,
    precision of the top 1/5/10 %, NDCG of the top 10 %, each with a bootstrap 95% interval,
    against the 200-epoch accuracy and, as a separate column set, the 12-epoch one.
    Degenerate scores (NaN, inf) are ranked last, never dropped.
    """
    import time

    from zcnas.experiments.correlation import CorrelateRequest, run_correlate

    start = time.perf_counter()
    try:
        eps = tuple(int(e) for e in epochs.split(","))
    except ValueError:
        raise UserError(f"--epochs {epochs!r} is not a comma list of integers") from None
    res = run_correlate(CorrelateRequest(
        tables=tuple(tables), out=out, space=space, proxies=proxy_list, data=data,
        lookup=lookup_kind, datasets=datasets, epochs=eps, split=split, archs=archs,
        seed=seed, bootstrap=bootstrap, plots=plots, published=published, progress=progress))
    w = res.spearman
    click.echo(format_table([[p, *[f"{x:.3f}" for x in w.loc[p]]] for p in w.index],
                            ["Spearman rho", *w.columns]))
    click.echo(f"wrote {', '.join(str(p) for p in res.paths)} in "
               f"{time.perf_counter() - start:.1f} s")


@main.command()
@click.option("--space", default="nats-tss", show_default=True, help="Search space.")
@click.option("--dataset", "datasets", default="cifar10", show_default=True,
              help="Dataset(s) to search, comma-separated: cifar10, cifar100, ImageNet16-120.")
@click.option("--method", "methods", default="mfea", show_default=True,
              help="Method(s), comma-separated, or 'all' (the methods that do not train); "
                   "`zcnas methods list` shows every installed one.")
@click.option("--budget", default="auto", show_default=True,
              help="Simulated seconds per run; 'nats' = the NATS-Bench budgets (20,000 / "
                   "40,000 / 120,000 s for cifar10 / cifar100 / ImageNet16-120); auto = nats "
                   "with a lookup table, 60 s of proxy compute without one; 3,600 s of this "
                   "machine for oneshot.")
@click.option("--seeds", type=click.IntRange(1, 100_000), default=1, show_default=True,
              help="Runs 0..SEEDS-1.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Runs in parallel; a single run scores its population on them.")
@click.option("--fitness", default=None,
              help="Zero-cost fidelity: a proxy or ensemble spec (default: ensemble:zcnas; "
                   "ensemble:data_free when no images are found).")
@click.option("--proxy-dataset", default=None,
              help="Images (and head) the proxies use (default: the dataset searched).")
@click.option("--select", default="auto", show_default=True,
              help="Final choice: top (best at the highest fidelity reached), fused (rank "
                   "aggregation over fidelities), auto (the method's default).")
@click.option("--split", default="auto", show_default=True,
              help="Split lookups are read from for selection: valid, or test of the short "
                   "schedule; auto = valid when the lookup has it.")
@click.option("--max-params", type=POSITIVE, default=None, help="Constraint, millions.")
@click.option("--max-flops", type=POSITIVE, default=None, help="Constraint, MFLOPs.")
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
@click.option("--lookup", "lookup_kind", default="auto", show_default=True,
              type=click.Choice(["auto", "export", "table", "archive", "none"]),
              help="NATS-Bench lookup to use; none = proxies only.")
@click.option("--store", "store_path", default=None,
              help="Score store (default: $ZCNAS_CACHE/scores.sqlite or "
                   "~/.cache/zcnas/scores.sqlite).")
@click.option("--no-store", is_flag=True, help="Neither read nor write the score store.")
@click.option("--device", default="cpu", show_default=True, help="Device of the proxies.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Output folder: runs (checkpointed; a re-run resumes), tables, plots.")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write the figure.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A method parameter (repeatable), given to every selected method that has "
                   "it; `zcnas methods list` shows them.")
@click.option("--ladder", default=None,
              help="Replace the methods' ladders, e.g. 'proxy(promote_fraction=0.05),"
                   "lookup(epochs=12)' (stages: `zcnas methods list`).")
@click.option("--train-epochs", type=int, default=None,
              help="= --param train_epochs=N (oneshot: stand-alone training epochs, 12).")
@click.option("--warmup-epochs", type=float, default=None,
              help="= --param warmup_epochs=E (supernet warm-up epochs: oneshot 30; genas, "
                   "gevonas, ftga 50).")
@click.option("--population", type=int, default=None,
              help="= --param population=N (population size: oneshot 100; genas, gevonas, "
                   "ftga 20).")
@click.option("--image-limit", type=int, default=None,
              help="= --param image_limit=N (oneshot: first N training images only).")
@executor_options
def search(space, datasets, methods, budget, seeds, workers, fitness, proxy_dataset, select,
           split, max_params, max_flops, data, lookup_kind, store_path, no_store, device, out,
           plots, progress, params, ladder, train_epochs, warmup_epochs, population,
           image_limit, executor, address, per_gpu, oversubscribe) -> None:
    """Search for the best architecture under a budget of simulated seconds.

    Every run reports the 200-epoch test accuracy of the cell it chose (never used to choose),
    its benchmark index, the simulated cost (proxy wall time + the benchmark's training time
    of every lookup) and the wall time. Over several seeds: mean +- std, and anytime curves.
    Without a lookup table the search runs on proxies alone and prints the chosen cell with
    its scores.
    """
    import time

    from zcnas.experiments.session import SearchRequest, SearchSession
    from zcnas.runtime.store import default_store_path

    start = time.perf_counter()
    named = {"train_epochs": train_epochs, "warmup_epochs": warmup_epochs,
             "population": population, "image_limit": image_limit}
    given = [_param(p) for p in params] + [(k, v) for k, v in named.items() if v is not None]
    session = SearchSession.create(SearchRequest(
        space=space, datasets=tuple(_comma_list(datasets)), methods=tuple(_comma_list(methods)),
        budget=budget, seeds=seeds, fitness=fitness, proxy_dataset=proxy_dataset,
        select=select, split=split, max_params=max_params, max_flops=max_flops, data=data,
        lookup=lookup_kind,
        store=None if no_store else (store_path or str(default_store_path())),
        device=device, out=out, workers=workers, params=tuple(given), ladder=ladder,
        executor=executor, address=address, per_gpu=per_gpu, oversubscribe=oversubscribe))
    for line in session.describe():
        click.echo(line, err=True)
    results = session.run(progress=progress)
    for line in session.report(results):
        click.echo(line)
    if out is not None:
        paths = session.write(results, plots=plots)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}")
    click.echo(f"{len(results)} run{'s' if len(results) != 1 else ''} in "
               f"{time.perf_counter() - start:.1f} s")


def _comma_list(text: str) -> list[str]:
    return [x.strip() for x in str(text).split(",") if x.strip()]


def _param(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise UserError(f"--param {text!r}: expected NAME=VALUE")
    return key.strip(), value.strip()


def _training_data(dataset: str, data: str | None, valid: int | float, limit: int | None):
    """``valid``: a count of held-out images (int) or a fraction of the split (float)."""
    from zcnas.data.training import TrainingData

    return TrainingData.load(dataset, data, valid=valid, limit=limit)


def _arch_arg(text: str, data: str | None) -> str:
    """A topology-space cell (the supernet's and the training commands' space) from an arch
    string or a benchmark index."""
    from zcnas.lookup import load_order
    from zcnas.spaces import get_space, resolve_arch

    tss = get_space("nats-tss")
    s = str(text).strip()
    order = load_order(tss, data) if s.isascii() and s.isdigit() else None
    return tss.format_arch(resolve_arch(s, tss, order)[0])


_VALID_HELP = "Held-out training images: a count, or a fraction of the training split."


@main.command()
@click.argument("arch")
@click.option("--dataset", default="cifar10", show_default=True)
@click.option("--epochs", type=click.IntRange(1, 100_000), default=12, show_default=True,
              help="Schedule length (NATS-Bench: 12 or 200); the cosine spans it.")
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
@click.option("--valid", type=HELD_OUT, default="0.1", show_default=True, help=_VALID_HELP)
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Use the first N training images only.")
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=256, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint file, written after every epoch.")
@click.option("--resume/--restart", default=None,
              help="Resume from --checkpoint (an error if it is missing) / start over; "
                   "default: resume when it exists.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the result and per-epoch history as JSON.")
def train(arch, dataset, epochs, data, valid, limit, batch_size, seed, device, checkpoint,
          resume, out) -> None:
    """Train ARCH (an arch string or index) from scratch with the NATS-Bench recipe.

    SGD (momentum 0.9, Nesterov), lr 0.1 cosine to 0, weight decay 5e-4, random crop + flip;
    reports the accuracy on held-out training images (never the test split) and the seconds
    per epoch.
    """
    import json
    from dataclasses import asdict
    from pathlib import Path

    from zcnas._io import atomic_write, check_output_file
    from zcnas.fidelity.train import Recipe, train_arch
    from zcnas.runtime.devices import check_device

    device = check_device(device)
    if resume and (checkpoint is None or not Path(checkpoint).is_file()):
        raise UserError(f"--resume: no checkpoint at {checkpoint}; train without --resume to "
                        "create one" if checkpoint else "--resume needs --checkpoint FILE")
    for path, what in ((checkpoint, "--checkpoint"), (out, "--out")):
        if path is not None:
            check_output_file(path, what)
    arch_s = _arch_arg(arch, data)
    d = _training_data(dataset, data, valid, limit)
    click.echo(f"training {arch_s} on {len(d.y_train)} {d.spec.name} images "
               f"({len(d.y_valid)} held out), {epochs} epochs, {device}", err=True)

    def show(row):
        click.echo(f"epoch {row['epoch']:>3}  loss {row['train_loss']:.3f}  train "
                   f"{row['train_acc']:5.2f}%  held-out {row['valid_acc']:5.2f}%  "
                   f"{row['seconds']:.1f} s", err=True)

    res = train_arch(arch_s, data=d, recipe=Recipe(epochs=epochs, batch_size=batch_size),
                     seed=seed, device=device, checkpoint=checkpoint,
                     resume="auto" if resume is None else resume, progress=show)
    if res.resumed_from:
        click.echo(f"resumed from epoch {res.resumed_from} of {checkpoint}", err=True)
    click.echo(f"{arch_s}: held-out accuracy {res.valid_acc:.2f}% after {res.epochs} epochs "
               f"({res.seconds_per_epoch:.1f} s/epoch, {res.seconds:.0f} s, {device})")
    if out is not None:
        atomic_write(out, json.dumps({**asdict(res), "device": device,
                                      "seconds_per_epoch": res.seconds_per_epoch}, indent=1))


@main.group()
def supernet() -> None:
    """Train, prune and query the weight-sharing supernet of the topology space."""


@supernet.command("train")
@click.option("--dataset", default="cifar10", show_default=True)
@click.option("--epochs", type=click.IntRange(1, 100_000), default=30, show_default=True,
              help="Length of the cosine schedule; a re-run continues the same schedule.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Supernet checkpoint, written after every epoch; an existing one resumes.")
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
@click.option("--valid", type=HELD_OUT, default="0.1", show_default=True, help=_VALID_HELP)
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Use the first N training images only.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--pool", default=None,
              help="Fine-tune on these cells only (comma-separated arch strings or indices, "
                   "or @FILE with one per line) instead of the whole supernet.")
def supernet_train(dataset, epochs, out, data, valid, limit, seed, device, pool) -> None:
    """Train the supernet: uniform de-isomorphic single paths (SPOS), BN without affine."""
    from pathlib import Path

    from zcnas._io import check_output_file
    from zcnas.fidelity.supernet import SupernetTrainer
    from zcnas.runtime.devices import check_device

    device = check_device(device)
    check_output_file(out)
    d = _training_data(dataset, data, valid, limit)
    t = SupernetTrainer(dataset, data=d, seed=seed, device=device)
    if Path(out).is_file():
        t.load(out)
        click.echo(f"resuming {out} at epoch {t.epochs_done:g}", err=True)

    def show(row):
        click.echo(f"{row['what']}: loss {row['train_loss']:.3f}  train {row['train_acc']:5.2f}%"
                   f"  {row['seconds']:.1f} s", err=True)

    if pool:
        cells = [_arch_arg(a, data) for a in _arch_list(pool)]
        t.train(epochs, pool=cells, lr=(0.01, t.recipe.min_lr), label="fine-tune")
        t.save(out)
        show(t.history[-1])
    else:
        t.train_schedule(epochs, checkpoint=out, progress=show)
    click.echo(f"supernet at epoch {t.epochs_done:g} ({t.net.space_size():,} cells inside) "
               f"saved to {out}")


def _arch_list(text: str) -> list[str]:
    from pathlib import Path

    if text.startswith("@"):
        p = Path(text[1:])
        if not p.is_file():
            raise UserError(f"no such file: {p}")
        return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    return [a.strip() for a in text.split(",") if a.strip()]


def _open_supernet(path: str, data: str | None, device: str):
    from zcnas.fidelity.supernet import SupernetTrainer, read_supernet
    from zcnas.runtime.devices import check_device

    device = check_device(device)
    state = read_supernet(path)
    d = _training_data(state["dataset"], data, int(state["valid"]), state.get("limit"))
    t = SupernetTrainer(state["dataset"], data=d, device=device)
    t.load(path)
    return t


@supernet.command("score")
@click.argument("archs", nargs=-1, required=True)
@click.option("--supernet", "path", type=click.Path(dir_okay=False), required=True,
              help="A checkpoint from `zcnas supernet train`.")
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
@click.option("--device", default="cpu", show_default=True)
def supernet_score(archs, path, data, device) -> None:
    """Held-out accuracy of ARCHS (arch strings, indices or @FILE) with inherited weights,
    BN statistics re-estimated per cell."""
    t = _open_supernet(path, data, device)
    cells = [_arch_arg(a, data) for x in archs for a in _arch_list(x)]
    rows = []
    for c in cells:
        acc, loss = t.accuracy(c)
        rows.append((c, f"{acc:.2f}", f"{loss:.3f}"))
    click.echo(format_table(rows, ("arch", "held-out acc %", "loss")))


@supernet.command("prune")
@click.argument("elites", nargs=-1, required=True)
@click.option("--supernet", "path", type=click.Path(dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--data", "data", type=click.Path(file_okay=False), default=None, help=DATA_HELP)
def supernet_prune(elites, path, out, data) -> None:
    """Keep on every edge only the ops some of ELITES uses (G-EvoNAS), save to --out."""
    from zcnas._io import check_output_file

    check_output_file(out)
    t = _open_supernet(path, data, "cpu")
    cells = [_arch_arg(a, data) for x in elites for a in _arch_list(x)]
    removed = t.prune(cells, label="cli")
    t.save(out)
    click.echo(f"removed {len(removed)} edge ops; {t.net.space_size():,} cells remain; "
               f"saved to {out}")



@main.group()
def store() -> None:
    """Inspect and merge score stores (the cache of computed proxy scores)."""


@store.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=True))
def store_check(path: str | None) -> None:
    """Check the score store PATH (default: the store `zcnas score` uses) without writing to it.

    Runs SQLite's full integrity check and reads every row back. A damaged or foreign file is
    one line and exit code 2; a healthy store prints its size and the scores per proxy.
    """
    from zcnas.runtime.store import check_store, default_store_path

    report = check_store(path or default_store_path())
    click.echo(report.summary())
    click.echo(format_table([(name, f"{n:,}") for name, n in report.proxies.items()],
                            ("proxy", "scores")))


@store.command("merge")
@click.argument("stores", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The merged store (created, or added to when it exists).")
def store_merge(stores: tuple[str, ...], out: str) -> None:
    """Merge score STORES (e.g. one per `zcnas score --shard I/N` job) into --out.

    The same score in two stores must have bitwise the same value: a conflict names both
    files, and nothing is written. A class-wide score an older zcnas computed on a member
    other than the class's representative gives way to the representative's.
    """
    from zcnas.runtime.merge import merge_stores

    r = merge_stores(stores, out)
    click.echo(f"read {r.read:,} scores from {r.sources} store{'s' if r.sources != 1 else ''}; "
               f"wrote {r.written:,} new; {out} holds {r.total:,}"
               + (f"; {r.superseded:,} computed on a member other than its class's "
                  "representative (by an older zcnas) gave way to the representative's"
                  if r.superseded else ""))


if __name__ == "__main__":  # pragma: no cover
    main()
