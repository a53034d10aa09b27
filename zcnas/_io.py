"""Writing output files safely: through a temporary file in the same folder and
``os.replace`` (a reader sees the old file or the new one, never a partial one), and output
table names that never lose part of what the user typed (``--out run.v2`` writes
``run.v2.parquet``, not ``run.parquet``). No torch, no pandas."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TABLE_SUFFIXES = (".parquet", ".csv")


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (a unique temporary file per write)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def table_paths(out: str | os.PathLike) -> tuple[Path, Path]:
    """``(OUT.parquet, OUT.csv)``: the suffixes are appended to the whole name, unless it
    already ends in one of them."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in TABLE_SUFFIXES else out
    return stem.with_name(stem.name + ".parquet"), stem.with_name(stem.name + ".csv")


def write_table(df, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write a DataFrame as Parquet and CSV (see :func:`table_paths`), each atomically."""
    import io

    parquet, csv = table_paths(out)
    parquet.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write(parquet, buf.getvalue())
    atomic_write(csv, df.to_csv(index=False))
    return parquet, csv
