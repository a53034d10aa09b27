"""Score stores that are damaged, edited or not writable: one line, and the file left alone.

SQLite's ``quick_check`` (run at every open) does not look inside rows: a store with flipped
bytes in a data page opens, and the damage shows only when a row is read (or under
``PRAGMA integrity_check``). These tests build real stores, damage them the way a disk or an
editor would, and hold that every failure is a one-line :class:`StoreError` and that a damaged
or read-only file is never written to.
"""

from __future__ import annotations

import random
import sqlite3
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests._cli import one_line_error
from tests.runtime.test_store import key, make_store, record
from zcnas.cli import main
from zcnas.runtime.store import ScoreStore, StoreError, StoreReport, check_store

ROWS = 300


def build(path: Path, n: int = ROWS) -> list:
    """A real store of ``n`` rows whose arch texts are easy to find in the file."""
    keys = [key(f"cell-{i:05d}") for i in range(n)]
    with ScoreStore(path) as store:
        store.put_many(
            record(k, float(i), seconds=0.5, arch=f"ARCH<{i:05d}>" + "x" * 40)
            for i, k in enumerate(keys)
        )
    return keys


def snapshot(path: Path) -> tuple:
    """The file's bytes and mtime, and the size of its write-ahead log (readers may leave an
    empty one behind; a pending write would not be empty)."""
    st = path.stat()
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes(), st.st_mtime_ns, wal.stat().st_size if wal.exists() else 0


def page_size(data: bytes) -> int:
    size = struct.unpack(">H", data[16:18])[0]
    return 65536 if size == 1 else size


def flip(path: Path, needle: bytes, at: int = 2, width: int = 4) -> int:
    """XOR ``width`` bytes of ``needle``'s text in the file (from its ``at``-th byte) with 0xFF;
    the offset must lie past the first page (the header and the schema)."""
    data = bytearray(path.read_bytes())
    where = data.find(needle)
    assert where >= 0 and data.find(needle, where + 1) < 0, needle
    offset = where + at
    assert offset >= page_size(data), "the flip must hit a data page, not the header page"
    for i in range(offset, offset + width):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return offset


def pragma(path: Path, name: str) -> str:
    raw = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return raw.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        raw.close()


def assert_one_line(error: BaseException, path: Path, *fragments: str) -> str:
    message = str(error)
    assert isinstance(error, StoreError), repr(error)
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert "pass another --store path" in message, message
    return message


# -- flipped bytes in a data page -------------------------------------------------------------


def test_a_byte_flipped_row_that_passes_quick_check_is_refused_and_never_written(tmp_path):
    path = tmp_path / "scores.sqlite"
    keys = build(path)
    flip(path, b"ARCH<00150>")
    assert pragma(path, "quick_check") == "ok"  # the case of the issue: the open check passes
    before = snapshot(path)

    store = ScoreStore(path)  # opens: the damage is inside a row
    try:
        assert store.get(keys[0]).value == 0.0  # an intact row still reads
        with pytest.raises(StoreError) as info:
            store.get_many(keys)
        assert_one_line(info.value, path, "damaged", "arch")
        # from now on the store refuses everything, writes first
        with pytest.raises(StoreError) as again:
            store.put_many([record(key("new"))])
        assert str(again.value) == str(info.value)
        with pytest.raises(StoreError):
            store.get(keys[1])
    finally:
        store.close()
    assert snapshot(path) == before

    for readonly in (False, True):  # each read path says the same
        with ScoreStore(path, readonly=readonly) as store:
            with pytest.raises(StoreError) as info:
                list(store.records())
            assert_one_line(info.value, path, "damaged")
            with pytest.raises(StoreError):
                store.get(keys[150])
    assert snapshot(path) == before


def test_a_flipped_key_breaks_the_order_and_integrity_check_finds_it(tmp_path):
    """A flip that keeps the text valid UTF-8 but puts a key out of order: reads succeed, the
    full integrity check (``check_store``, ``zcnas store check``) refuses the file."""
    path = tmp_path / "scores.sqlite"
    build(path)
    data = bytearray(path.read_bytes())
    where = data.find(b"cell-00150")
    assert where >= page_size(data) and data.count(b"cell-00150") == 1
    data[where : where + 10] = b"cell-99999"  # same length, still UTF-8, now out of order
    path.write_bytes(bytes(data))
    assert pragma(path, "quick_check") == "ok"
    assert pragma(path, "integrity_check") != "ok"
    before = snapshot(path)
    with pytest.raises(StoreError) as info:
        check_store(path)
    assert_one_line(info.value, path, "damaged", "integrity check")
    assert snapshot(path) == before
    result = CliRunner().invoke(main, ["store", "check", str(path)])
    one_line_error(result, "integrity check")
    assert snapshot(path) == before


def test_store_check_on_a_byte_flipped_row(tmp_path):
    path = tmp_path / "scores.sqlite"
    build(path)
    flip(path, b"ARCH<00007>")
    before = snapshot(path)
    with pytest.raises(StoreError) as info:
        check_store(path)
    assert_one_line(info.value, path, "damaged")
    one_line_error(CliRunner().invoke(main, ["store", "check", str(path)]), "damaged")
    assert snapshot(path) == before


def test_random_flips_in_data_pages_fail_only_with_one_line_store_errors(tmp_path):
    """Seeded flips anywhere past the header page: opening, reading every row and writing
    either work or raise a one-line StoreError, and a refused file is never written."""
    healthy = tmp_path / "healthy.sqlite"
    keys = build(healthy)
    data = healthy.read_bytes()
    size = page_size(data)
    refused = 0
    for seed in range(16):
        rng = random.Random(seed)
        path = tmp_path / f"flip{seed}" / "scores.sqlite"
        path.parent.mkdir()
        damaged = bytearray(data)
        offset = rng.randrange(size, len(data) - 8)
        for i in range(offset, offset + 4):
            damaged[i] ^= 0xFF
        path.write_bytes(bytes(damaged))
        before = snapshot(path)
        try:
            with ScoreStore(path) as store:
                store.get_many(keys)
                list(store.records())
                store.put_many([record(key("new"))])
        except StoreError as error:
            assert_one_line(error, path)
            assert snapshot(path) == before, seed
            refused += 1
    assert refused >= 4  # most flips hit a row or a page structure


# -- rows edited into a shape this code never writes ------------------------------------------

EDITS = {
    "seconds-text": ("UPDATE scores SET seconds = 'slow' WHERE canonical = 'a2'", "seconds"),
    "created-text": ("UPDATE scores SET created = 'today' WHERE canonical = 'a2'", "created"),
    "arch-blob": ("UPDATE scores SET arch = x'41' WHERE canonical = 'a2'", "arch"),
    "seed-text": ("UPDATE scores SET seed = 'zero' WHERE canonical = 'a2'", "seed"),
    "device-kind": ("UPDATE scores SET device_kind = 'tpu' WHERE canonical = 'a2'", "device_kind"),
    # the CHECK constraint on value: quick_check sees this one already at open
    "value-7-bytes": (
        "UPDATE scores SET value = x'00000000000000' WHERE canonical = 'a2'",
        "CHECK constraint",
    ),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_row_is_one_line_not_a_traceback(tmp_path, edit):
    path = make_store(tmp_path / "scores.sqlite", 5)
    statement, fragment = EDITS[edit]
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA ignore_check_constraints = ON")  # as another program might
    raw.execute(statement)
    raw.commit()
    raw.close()
    before = snapshot(path)
    if edit == "value-7-bytes":
        with pytest.raises(StoreError) as info:
            ScoreStore(path)
        assert_one_line(info.value, path, "damaged", fragment)
        assert snapshot(path) == before
        return
    wanted = key("a2")
    if edit in ("seed-text", "device-kind"):  # the key no longer matches: find it by listing
        wanted = None
    with ScoreStore(path) as store:
        if wanted is not None:
            with pytest.raises(StoreError) as info:
                store.get(wanted)
            assert_one_line(info.value, path, "damaged", fragment)
            with pytest.raises(StoreError):
                store.get_many([key("a1"), wanted])
        with pytest.raises(StoreError) as info:
            list(store.records())
        assert_one_line(info.value, path, "damaged", fragment)
        with pytest.raises(StoreError):
            store.put_many([record(key("new"))])
    assert snapshot(path) == before
    with pytest.raises(StoreError) as info:
        check_store(path)
    assert_one_line(info.value, path, "damaged", fragment)


# -- store check on healthy files ------------------------------------------------------------


def test_check_store_reports_a_healthy_store(tmp_path):
    path = tmp_path / "scores.sqlite"
    build(path, 40)
    with ScoreStore(path) as store:
        store.put_many([record(key("other", proxy="naswot"), float("nan"))])
    before = snapshot(path)
    report = check_store(path)
    assert isinstance(report, StoreReport)
    assert report.path == path and report.rows == 41 and report.schema_version == 1
    assert report.proxies == {"naswot": 1, "synflow": 40}
    assert "41 scores" in report.summary() and "integrity check ok" in report.summary()
    result = CliRunner().invoke(main, ["store", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "41 scores" in result.output and "naswot" in result.output
    assert snapshot(path) == before


def test_store_check_of_a_missing_or_foreign_file(tmp_path):
    missing = tmp_path / "none.sqlite"
    one_line_error(CliRunner().invoke(main, ["store", "check", str(missing)]), "does not exist")
    assert not missing.exists()
    text = tmp_path / "scores.csv"
    text.write_text("arch,value\n")
    one_line_error(CliRunner().invoke(main, ["store", "check", str(text)]), "not an SQLite")


def test_store_check_uses_the_default_store(tmp_path, monkeypatch):
    monkeypatch.setenv("ZCNAS_CACHE", str(tmp_path / "cache"))
    make_store(tmp_path / "cache" / "scores.sqlite", 3)
    result = CliRunner().invoke(main, ["store", "check"])
    assert result.exit_code == 0, result.output
    assert "3 scores" in result.output


# -- files and folders this process cannot write ---------------------------------------------


def test_a_read_only_file_is_refused_at_open_in_one_line(tmp_path, unwritable):
    path = make_store(tmp_path / "scores.sqlite", 3)
    unwritable(path)
    before = snapshot(path)
    with pytest.raises(StoreError) as info:
        ScoreStore(path)  # before: opened, then failed on the first put_many with a traceback
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "not writable" in message
    assert "readonly" in message or "read-only" in message
    with ScoreStore(path, readonly=True) as store:  # reading it stays possible, explicitly
        assert len(store) == 3
    assert snapshot(path) == before


def test_a_store_in_a_read_only_folder_is_refused_at_open(tmp_path, unwritable):
    folder = tmp_path / "ro"
    path = make_store(folder / "scores.sqlite", 3)
    unwritable(folder)
    before = snapshot(path)
    with pytest.raises(StoreError) as info:
        ScoreStore(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "not writable" in message
    assert snapshot(path) == before
    for new in (folder / "new.sqlite", folder / "sub" / "new.sqlite"):
        with pytest.raises(StoreError) as info:
            ScoreStore(new)
        assert "\n" not in str(info.value) and str(new) in str(info.value)
        assert not new.exists()


def test_the_cli_says_one_line_for_a_read_only_store(tmp_path, unwritable, monkeypatch):
    monkeypatch.delenv("ZCNAS_DATA", raising=False)
    monkeypatch.delenv("TORCH_HOME", raising=False)
    path = make_store(tmp_path / "scores.sqlite", 3)
    unwritable(path)
    result = CliRunner().invoke(
        main,
        ["score", "--archs", "1", "--proxies", "params", "--workers", "1",
         "--store", str(path), "--out", str(tmp_path / "out")],
    )
    one_line_error(result, "not writable")
