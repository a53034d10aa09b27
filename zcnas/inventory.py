"""What data is where: the datasets and lookup files found under the data roots (``zcnas info``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zcnas.errors import DataNotFoundError, UserError


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # "images" or "lookup"
    name: str
    status: str
    where: str


def _verify_images(name: str, root) -> str:
    """"" when both splits read back with the right shapes and labels, else why not."""
    from zcnas.data import load_arrays

    try:
        for split in ("train", "test"):
            load_arrays(name, split, root)
    except UserError as err:
        return " ".join(str(err).split())[:160]
    return ""


def _verify_lookup(space: str, path: Path, status: str) -> str:
    """"" when the file opens as the lookup it claims to be (every row of a table, the meta
    list and one record of an archive), else why not."""
    from zcnas.lookup import CompactTable, NatsArchive

    try:
        if status == "export":
            from zcnas.lookup.export import ExportedLookup

            ExportedLookup(path)
        elif status == "compact table":
            CompactTable(path)
        else:
            bench = NatsArchive(path, space)
            first = min(bench.available_indices) if bench.available_indices else None
            if first is not None:
                bench.cost(first, bench.datasets[0], epochs=bench.full_epochs)
    except UserError as err:
        return " ".join(str(err).split())[:160]
    return ""


def inventory(root: str | os.PathLike | None = None, *, verify: bool = True) -> list[Item]:
    """One row per dataset and per lookup source, found or missing; with ``verify`` each
    found file is read (a truncated or random file is reported as damaged, with why)."""
    from zcnas.data import DATASETS, locate
    from zcnas.lookup.locate import covers
    from zcnas.lookup.locate import locate as locate_lookup
    from zcnas.spaces import list_spaces

    items = []
    for name in DATASETS:
        try:
            path = locate(name, root)
        except DataNotFoundError:
            items.append(Item("images", name, "missing", "-"))
            continue
        status = "subset (.npz)" if path.suffix == ".npz" else "official"
        why = _verify_images(name, root) if verify else ""
        items.append(Item("images", name, f"damaged: {why}" if why else status, str(path)))
    for space in filter(covers, list_spaces()):
        loc = locate_lookup(space, root)
        found = (
            [("export", p) for p in loc.exports]
            + [("full archive", p) for p in loc.full_archives]
            + [("compact table", p) for p in loc.tables]
            + [("sample archive", p) for p in loc.sample_archives]
        )
        if not found:
            items.append(Item("lookup", space, "missing", "-"))
        for status, path in found:
            why = _verify_lookup(space, path, status) if verify else ""
            items.append(Item("lookup", space, f"damaged: {why}" if why else status,
                              str(path)))
    return items
