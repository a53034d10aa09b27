"""Finding and opening the NATS-Bench lookup data under the data roots.

Roots, in order: the ``root`` argument, else ``$ZCNAS_DATA`` then ``$TORCH_HOME``
(:func:`zcnas.paths.data_roots`). Under each root we look for the official fast-mode archive
folder (``NATS-tss-v1_0-3ffb9-simple`` / ``NATS-sss-v1_0-50262-simple``, directly or under
``nats-bench-sample/``) and, for the topology space, the compact table
``nats-tss/tss_test_accuracy.csv``. An archive folder counts as *full* when it holds a record
for every architecture of the space; otherwise it is a sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zcnas.errors import DataNotFoundError, UnknownNameError, UserError
from zcnas.lookup.archive import ARCHIVE_DIRS, META_FILE, NatsArchive, record_indices
from zcnas.lookup.base import Benchmark
from zcnas.lookup.table import TABLE_FILE, CompactTable
from zcnas.paths import ENV_DATA, data_roots
from zcnas.spaces import ArchOrder, canonical_space, get_space

KINDS: tuple[str, ...] = ("auto", "archive", "table", "export")
#: Compact tables per space: the file names looked for under each data root.
TABLE_CANDIDATES: dict[str, tuple[str, ...]] = {
    "nats-tss": (TABLE_FILE, "tss_test_accuracy.csv"),
}


@dataclass(frozen=True, slots=True)
class Located:
    """What lies under the data roots for one space (paths in search order)."""

    full_archives: tuple[Path, ...]
    sample_archives: tuple[Path, ...]
    tables: tuple[Path, ...]
    searched: tuple[Path, ...]
    exports: tuple[Path, ...] = ()


def covers(space: str) -> bool:
    """Whether NATS-Bench has lookup data (an archive or a compact table) for ``space``."""
    space = canonical_space(space)
    return space in ARCHIVE_DIRS or space in TABLE_CANDIDATES


def archive_candidates(space: str) -> list[str]:
    name = ARCHIVE_DIRS.get(canonical_space(space))
    return [name, f"nats-bench-sample/{name}"] if name is not None else []


def locate(space: str = "nats-tss", root: str | os.PathLike | None = None) -> Located:
    """Every archive folder and table for ``space`` under the data roots (nothing for a space
    NATS-Bench does not cover)."""
    from zcnas.lookup.export import EXPORT_FILES

    space = canonical_space(space)
    size = get_space(space).size
    full, sample, tables, searched, exports = [], [], [], [], []
    for r in data_roots(root):
        if space in EXPORT_FILES:
            p = r / EXPORT_FILES[space]
            searched.append(p)
            if p.is_file():
                exports.append(p)
        for cand in archive_candidates(space):
            p = r / cand
            searched.append(p)
            if (p / META_FILE).is_file():
                (full if len(record_indices(p)) >= size else sample).append(p)
        for cand in TABLE_CANDIDATES.get(space, ()):
            p = r / cand
            searched.append(p)
            if p.is_file():
                tables.append(p)
    return Located(tuple(full), tuple(sample), tuple(tables), tuple(searched), tuple(exports))


def _not_found(space: str, what: str, loc: Located, kind: str = "auto") -> DataNotFoundError:
    if not covers(space):
        return DataNotFoundError(f"{what} not found: NATS-Bench has no lookup for the {space} "
                                 "space")
    def kind_of(p: Path) -> str:
        if p.name == ARCHIVE_DIRS.get(space):
            return "archive"
        return "export" if p.suffix == ".parquet" else "table"

    paths = [p for p in loc.searched if kind == "auto" or kind_of(p) == kind]
    if not paths:
        return DataNotFoundError(
            f"{what} not found: no data folder given; pass --data PATH or set {ENV_DATA} "
            "(official archives may also live in TORCH_HOME)"
        )
    searched = ", ".join(str(p) for p in paths)
    return DataNotFoundError(
        f"{what} not found (searched {searched}); pass --data PATH or set {ENV_DATA}"
    )


def open_benchmark(
    space: str = "nats-tss",
    *,
    root: str | os.PathLike | None = None,
    kind: str = "auto",
) -> Benchmark:
    """Open the best available NATS-Bench lookup for ``space``.

    ``kind="auto"`` prefers an export of the official archive (``zcnas data export``: the same
    numbers, loaded in well under a second), then a full official archive, then the compact
    table (tss only), then a sample archive; ``"archive"`` takes the full archive, else a
    sample one; ``"table"`` the compact table; ``"export"`` the export. Nothing found: one-line
    :class:`DataNotFoundError` naming the places searched.
    """
    space = canonical_space(space)
    if kind not in KINDS:
        raise UnknownNameError(f"unknown lookup kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if kind == "table" and space not in TABLE_CANDIDATES:
        raise UserError(f"there is no compact table for {space}; use kind='archive'")
    loc = locate(space, root)
    if kind in ("auto", "export") and loc.exports:
        from zcnas.lookup.export import ExportedLookup

        return ExportedLookup(loc.exports[0])
    if kind in ("auto", "archive") and loc.full_archives:
        return NatsArchive(loc.full_archives[0], space)
    if kind in ("auto", "table") and loc.tables:
        return CompactTable(loc.tables[0])
    if kind in ("auto", "archive") and loc.sample_archives:
        return NatsArchive(loc.sample_archives[0], space)
    what = {
        "auto": f"NATS-Bench {space} lookup data (official archive or compact table)",
        "archive": f"NATS-Bench {space} archive ({ARCHIVE_DIRS.get(space, 'none')})",
        "table": f"NATS-Bench tss table ({TABLE_FILE})",
        "export": f"exported NATS-Bench {space} lookup (zcnas data export)",
    }[kind]
    raise _not_found(space, what, loc, kind)


def load_order(space: str = "nats-tss", root: str | os.PathLike | None = None) -> ArchOrder:
    """The benchmark's index <-> arch order, from the cheapest source available: the order
    the space computes (the size space), else the ``meta_archs`` of any archive folder (full or
    sample), else the compact table's ``arch`` column."""
    computed = get_space(space).index_order()
    if computed is not None:
        return computed
    space = canonical_space(space)
    loc = locate(space, root)
    archives = loc.full_archives + loc.sample_archives
    if archives:
        return NatsArchive(archives[0], space).order
    if loc.tables:
        return CompactTable(loc.tables[0]).order
    raise _not_found(space, f"NATS-Bench {space} arch list (archive meta or compact table)", loc)
