"""What data is where: the datasets and lookup files found under the data roots (``zcnas info``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from zcnas.errors import DataNotFoundError


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # "images" or "lookup"
    name: str
    status: str
    where: str


def inventory(root: str | os.PathLike | None = None) -> list[Item]:
    """One row per dataset and per lookup source, found or missing."""
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
        items.append(Item("images", name, status, str(path)))
    for space in filter(covers, list_spaces()):
        loc = locate_lookup(space, root)
        found = (
            [("full archive", p) for p in loc.full_archives]
            + [("compact table", p) for p in loc.tables]
            + [("sample archive", p) for p in loc.sample_archives]
        )
        if not found:
            items.append(Item("lookup", space, "missing", "-"))
        for status, path in found:
            items.append(Item("lookup", space, status, str(path)))
    return items
