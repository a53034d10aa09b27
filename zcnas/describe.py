"""Text descriptions of architectures for the CLI (``zcnas arch``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from zcnas._text import format_table
from zcnas.datasets import canonical_dataset
from zcnas.errors import CorruptDataError, DataNotFoundError, UserError
from zcnas.spaces import canonical_space, get_space, nats_tss, resolve_arch
from zcnas.spaces.plan import count_costs, sss_plan, tss_plan

REPORT_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def _try_order(space: str, root: str | os.PathLike | None):
    from zcnas.lookup import load_order

    if space != "nats-tss":
        return None
    try:
        return load_order(space, root)
    except DataNotFoundError:
        return None


def _try_benchmark(space: str, root: str | os.PathLike | None):
    from zcnas.lookup import open_benchmark

    try:
        return open_benchmark(space, root=root)
    except DataNotFoundError:
        return None


def _iso_members(key: str, order) -> str:
    if order is None:
        n = sum(nats_tss.canonical_key(c) == key for c in nats_tss.all_cells())
        return f"{n} cell(s) share it"
    members = [i for i, a in enumerate(order.archs) if nats_tss.canonical_key(a) == key]
    shown = ", ".join(map(str, members[:8])) + (", ..." if len(members) > 8 else "")
    return f"{len(members)} cell(s) share it: indices {shown}"


def describe_arch(
    text: str, *, space: str = "nats-tss", root=None, datasets: Sequence[str] | None = None
) -> str:
    """Validate ``text`` (arch string or index) and describe it in a few aligned lines."""
    space = canonical_space(space)
    datasets = [canonical_dataset(d) for d in (datasets or REPORT_DATASETS)]
    mod = get_space(space)
    order = _try_order(space, root)
    genotype, index = resolve_arch(text, space, order)
    lines = [("arch", mod.format_arch(genotype)), ("space", space)]
    if index is not None:
        lines.append(("index", str(index)))
    else:
        lines.append(("index", "unknown (no benchmark order found; set ZCNAS_DATA)"))
    if space == "nats-tss":
        key = nats_tss.canonical_key(genotype)
        lines.append(("iso key", key))
        lines.append(("iso class", _iso_members(key, order)))
        live = nats_tss.live_edges(genotype)
        lines.append(("live edges", f"{sum(live)} of {len(live)}"))
    out = [f"{k:<11} {v}" for k, v in lines]

    bench = _try_benchmark(space, root)
    header = ["dataset", "params (M)", "FLOPs (M)"]
    epochs = (12, 200) if space == "nats-tss" else (12, 90)
    if bench is not None:
        header += [f"test acc @{e}ep" for e in epochs]
    rows = []
    for ds in datasets:
        plan = tss_plan(genotype, ds) if space == "nats-tss" else sss_plan(genotype, ds)
        costs = count_costs(plan)
        row = [ds, f"{costs.params_m:.6f}", f"{costs.flops_m:.5f}"]
        if bench is not None:
            for e in epochs:
                try:
                    acc = bench.accuracy(genotype, ds, epochs=e, split="test")
                    row.append(f"{acc.value:.4f}")
                except CorruptDataError:
                    raise  # a damaged file is an error; only missing data is n/a
                except UserError:
                    row.append("n/a")
        rows.append(row)
    out.append("")
    out.append(format_table(rows, header))
    if bench is not None:
        out.append(f"\naccuracies from {bench.source}")
    else:
        out.append("\nno lookup table found: set ZCNAS_DATA to see benchmark accuracies")
    return "\n".join(out)
