"""Merging score stores: the scores of sharded runs (``zcnas score --shard I/N``, e.g. a SLURM
job array writing one store per task) become one store.

The same key in two stores must hold bitwise the same score (NaN equals NaN; the seconds a
score took may differ): anything else is a conflict, reported with both files, and nothing is
written. One exception: a class-wide score computed by a zcnas older than the class
representative (:meth:`zcnas.spaces.base.SearchSpace.representative`) on another member of the
class. The engine would recompute such a record rather than read it, so where exactly one of the
two records was computed on the class's representative, that one is kept, in the output store
too, and the other (when its value differs) is counted as superseded. The output store may
exist already; its scores take part in the check.
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
    written: int  # new records written to the output (new keys)
    total: int  # records in the output afterwards
    superseded: int = 0  # records of another member dropped for the representative's


def _on_representative(rec, reps: dict) -> bool | None:
    """Whether ``rec`` was computed on its class's representative; None when that cannot be
    told (the space is not installed or not enumerable, or the key is not a class key)."""
    from zcnas.spaces import get_space

    space = rec.key.space
    if space not in reps:
        try:
            reps[space] = get_space(space)
        except Exception:  # noqa: BLE001 - a plugin space missing here: no preference
            reps[space] = None
    sp = reps[space]
    if sp is None:
        return None
    try:
        rep = sp.representative(rec.arch)
        if rep is None or sp.canonical_key(rec.arch) != rec.key.canonical:
            return None
    except Exception:  # noqa: BLE001 - an arch string the space does not read
        return None
    return rec.arch == rep


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
    read = superseded = 0
    origin: dict = {}
    replaced: set = set()  # keys whose kept record overwrites the output store's
    reps: dict = {}
    inputs = ([out] if out.is_file() else []) + paths
    for p in inputs:
        with ScoreStore(p, readonly=True) as store:
            for rec in store.records():
                read += 1
                old = seen.get(rec.key)
                if old is None:
                    seen[rec.key] = rec
                    origin[rec.key] = p
                    continue
                k = rec.key
                same = _bits(old.value) == _bits(rec.value)
                if old.arch != rec.arch:
                    mine, theirs = _on_representative(rec, reps), _on_representative(old, reps)
                    if mine is not None and theirs is not None and mine != theirs:
                        superseded += not same
                        if mine:  # the engine reads only the representative's record
                            seen[k], origin[k] = rec, p
                            replaced.add(k)
                        continue
                if not same:
                    raise UserError(
                        f"conflicting scores for {k.proxy} of {k.canonical} ({k.space}, "
                        f"{k.dataset}, seed {k.seed}, {k.device_kind}): {old.value!r} in "
                        f"{origin[k]} and {rec.value!r} in {p}; nothing was written")
    with ScoreStore(out) as store:
        before = len(store)
        have = store.get_many(seen)
        new = [r for k, r in seen.items() if k not in have]
        store.put_many(new + [seen[k] for k in replaced if k in have])
        return MergeReport(len(paths), read, len(new), before + len(new), superseded)
