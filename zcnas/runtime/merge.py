"""Merging score stores: the scores of sharded runs (``zcnas score --shard I/N``, e.g. a SLURM
job array writing one store per task) become one store.

The same key in two stores must hold bitwise the same score (NaN equals NaN; the seconds a
score took may differ): anything else is a conflict, reported with both files, and nothing is
written. The output store may exist already; its scores take part in the check.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zcnas.errors import UserError


@dataclass(frozen=True)
class MergeReport:
    sources: int
    read: int  # records read, duplicates included
    written: int  # new records written to the output
    total: int  # records in the output afterwards


def _bits(value: float) -> bytes:
    return struct.pack(">d", value)


def merge_stores(sources: Sequence[str | os.PathLike], out: str | os.PathLike
                 ) -> MergeReport:
    from zcnas.runtime.store import ScoreStore

    out = Path(out)
    paths = [Path(p) for p in sources]
    if not paths:
        raise UserError("store merge needs at least one store to read")
    for p in paths:
        if not p.is_file():
            raise UserError(f"no score store at {p}")
        if out.exists() and p.resolve() == out.resolve():
            raise UserError(f"{p} is the output too; name another --out")
    seen: dict = {}
    read = 0
    origin: dict = {}
    inputs = ([out] if out.is_file() else []) + paths
    for p in inputs:
        with ScoreStore(p, readonly=True) as store:
            for rec in store.records():
                read += 1
                old = seen.get(rec.key)
                if old is None:
                    seen[rec.key] = rec
                    origin[rec.key] = p
                elif _bits(old.value) != _bits(rec.value):
                    k = rec.key
                    raise UserError(
                        f"conflicting scores for {k.proxy} of {k.canonical} ({k.space}, "
                        f"{k.dataset}, seed {k.seed}, {k.device_kind}): {old.value!r} in "
                        f"{origin[k]} and {rec.value!r} in {p}; nothing was written")
    with ScoreStore(out) as store:
        before = len(store)
        have = store.get_many(seen)
        new = [r for k, r in seen.items() if k not in have]
        store.put_many(new)
        return MergeReport(len(paths), read, len(new), before + len(new))
