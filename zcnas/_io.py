"""Writing output files safely: through a temporary file in the same folder and
``os.replace`` (a reader sees the old file or the new one, never a partial one), and output
table names that never lose part of what the user typed (``--out run.v2`` writes
``run.v2.parquet``, not ``run.parquet``), checked before any work is done (a folder, FIFO or
symbolic link in the way, an unwritable folder: one line, nothing computed). No torch, no
pandas."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from zcnas.errors import UserError

TABLE_SUFFIXES = (".parquet", ".csv")


def _file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give (0o666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (a unique temporary file per write), with the
    permissions a plain write would give."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())
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
    parquet, csv = table_paths(out)
    parquet.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(df, parquet)
    atomic_write(csv, df.to_csv(index=False))
    return parquet, csv


def write_figure(fig, path: str | os.PathLike, *, dpi: int) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write(path, buf.getvalue())


def write_parquet(df, path: str | os.PathLike) -> Path:
    """Write a DataFrame as one Parquet file atomically."""
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return atomic_write(path, buf.getvalue())


def _refuse_special(path: Path, what: str) -> None:
    if path.is_symlink():
        raise UserError(f"{what} {path} is a symbolic link; zcnas writes only to paths it "
                        "creates: remove the link or pick another path")
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise UserError(f"{what} {path} is {kind}; pick a file path")


def _writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (and its parents) and prove it takes a file; one line otherwise."""
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{what}: {parent} is a file, not a folder")
        if parent.exists():
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".zcnas-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"{what}: cannot write to folder {folder} "
                        f"({err.strerror or type(err).__name__})") from None


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """Before any work: ``path`` names a file zcnas may write (not empty, not a folder, FIFO
    or symbolic link, its folder created and writable). Returns it."""
    if not str(path).strip():
        raise UserError(f"{what} is empty; name the output file")
    p = Path(path)
    _refuse_special(p, what)
    _writable_folder(p.parent if str(p.parent) else Path("."), what)
    return p


def check_output_table(out: str | os.PathLike, what: str = "--out") -> tuple[Path, Path]:
    """:func:`check_output_file` for both files of a table (``OUT.parquet``, ``OUT.csv``)."""
    if not str(out).strip():
        raise UserError(f"{what} is empty; name the output table")
    paths = table_paths(out)
    for p in paths:
        check_output_file(p, what)
    return paths


def check_output_dir(path: str | os.PathLike, what: str = "--out",
                     files: tuple[str, ...] = (), dirs: tuple[str, ...] = ()) -> Path:
    """Before any work: ``path`` is (or becomes) a writable folder, not a file or a link;
    the ``dirs`` inside it are folders and the ``files`` inside it regular files, if present."""
    if not str(path).strip():
        raise UserError(f"{what} is empty; name the output folder")
    p = Path(path)
    if p.is_symlink():
        raise UserError(f"{what} {p} is a symbolic link; pick a folder zcnas may create")
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {p} is a file; pick a folder")
    _writable_folder(p, what)
    for d in dirs:
        sub = p / d
        if sub.is_symlink() or (sub.exists() and not sub.is_dir()):
            raise UserError(f"{what}: {sub} is in the way (not a folder); move it aside")
        _writable_folder(sub, what)
    for f in files:
        _refuse_special(p / f, what)
    return p
