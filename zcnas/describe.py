"""Text descriptions of architectures for the CLI (``zcnas arch``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from zcnas._text import format_table
from zcnas.datasets import canonical_dataset
from zcnas.errors import CorruptDataError, DataNotFoundError, UserError
from zcnas.spaces import SearchSpace, get_space, resolve_arch

REPORT_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def _try_order(space: SearchSpace, root: str | os.PathLike | None):
    from zcnas.lookup import load_order

    if not space.indexed:
        return None
    try:
        return load_order(space, root)
    except DataNotFoundError:
        return None


def _try_benchmark(space: SearchSpace, root: str | os.PathLike | None):
    from zcnas.lookup import open_benchmark

    try:
        return open_benchmark(space, root=root)
    except DataNotFoundError:
        return None


def _iso_members(space: SearchSpace, key: str, order) -> str | None:
    """How many genotypes share ``key`` (with their indices when the order is known); None
    when the space cannot be enumerated or is too large to count here."""
    if order is not None:
        members = [i for i, a in enumerate(order.archs) if space.canonical_key(a) == key]
        shown = ", ".join(map(str, members[:8])) + (", ..." if len(members) > 8 else "")
        return f"{len(members)} cell(s) share it: indices {shown}"
    if space.size is None or space.size > 100_000:
        return None
    try:
        n = sum(space.canonical_key(g) == key for g in space.all_archs())
    except UserError:
        return None
    return f"{n} cell(s) share it"


def describe_arch(
    text: str, *, space: str = "nats-tss", root=None, datasets: Sequence[str] | None = None
) -> str:
    """Validate ``text`` (arch string or index) and describe it in a few aligned lines."""
    sp = get_space(space)
    datasets = [canonical_dataset(d) for d in (datasets or REPORT_DATASETS)]
    order = _try_order(sp, root)
    genotype, index = resolve_arch(text, sp, order)
    lines = [("arch", sp.format_arch(genotype)), ("space", sp.name)]
    if index is not None:
        lines.append(("index", str(index)))
    elif sp.indexed:
        lines.append(("index", "unknown (no benchmark order found; set ZCNAS_DATA)"))
    extra = sp.describe(genotype)
    lines.extend(extra[:1])
    key = sp.canonical_key(genotype)
    if key != sp.format_arch(genotype):  # a space with isomorphs: who shares the function
        members = _iso_members(sp, key, order)
        if members is not None:
            lines.append(("iso class", members))
    lines.extend(extra[1:])
    out = [f"{k:<11} {v}" for k, v in lines]

    bench = _try_benchmark(sp, root) if sp.indexed else None
    header = ["dataset", "params (M)", "FLOPs (M)"]
    epochs = (12, bench.full_epochs) if bench is not None else ()
    header += [f"test acc @{e}ep" for e in epochs]
    rows = []
    for ds in datasets:
        costs = sp.costs(genotype, ds)
        if costs is None:
            from zcnas.scoring.context import ScoringContext

            costs = ScoringContext(genotype, space=sp, dataset=ds).costs()
        row = [ds, f"{costs.params_m:.6f}", f"{costs.flops_m:.5f}"]
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
    elif sp.indexed:
        out.append("\nno lookup table found: set ZCNAS_DATA to see benchmark accuracies")
    return "\n".join(out)
