import json
import math
import os
import random
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime import _store_writer as writer
from zcnas.errors import CorruptDataError, UserError
from zcnas.runtime import (
    SCHEMA_VERSION,
    STORE_FORMAT,
    ScoreKey,
    ScoreRecord,
    ScoreStore,
    StoreError,
    config_string,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = config_string({"batch_size": 64, "input": "real", "params": {"bn": "train"}})


def key(canonical="|nor_conv_3x3~0|", proxy="synflow", seed=0, **fields):
    values = dict(
        space="nats_tss",
        canonical=canonical,
        proxy=proxy,
        version="1",
        dataset="cifar10",
        config=CONFIG,
        seed=seed,
        device_kind="cpu",
    )
    values.update(fields)
    return ScoreKey(**values)


def record(k, value=1.5, seconds=0.25, arch="arch", created=1_700_000_000.5):
    return ScoreRecord(k, value, seconds, arch, created)


def bits(x):
    return struct.pack(">d", x)


def from_bits(hex_bits):
    return struct.unpack(">d", bytes.fromhex(hex_bits))[0]


def make_store(path, n=0, arch_len=10):
    with ScoreStore(path) as store:
        store.put_many(record(key(f"a{i}"), float(i), arch="x" * arch_len) for i in range(n))
    return path


def assert_store_error(path, fragment, *, readonly=False):
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(StoreError) as info:
        ScoreStore(path, readonly=readonly)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message, message
    assert fragment in message, message
    if before is not None:  # a file that is not a healthy store is never modified
        assert path.read_bytes() == before
    return message


# -- round trip ------------------------------------------------------------------------------

SPECIAL = {
    "nan": float("nan"),
    "nan-payload": from_bits("7ff8000000abcdef"),
    "negative-nan-payload": from_bits("fff8000000000123"),
    "signalling-nan": from_bits("7ff0000000000001"),
    "inf": math.inf,
    "-inf": -math.inf,
    "-0.0": -0.0,
    "0.0": 0.0,
    "subnormal": 5e-324,
    "max": 1.7976931348623157e308,
    "third": 1 / 3,
    "negative": -123.456,
}


def test_round_trip_is_bit_exact_across_reopen(tmp_path):
    path = tmp_path / "scores.sqlite"
    records = [
        record(key(name, seed=i), value, seconds=0.5 + i, arch=f"arch {name}", created=1e9 + i)
        for i, (name, value) in enumerate(SPECIAL.items())
    ]
    with ScoreStore(path) as store:
        assert store.path == path
        store.put_many(records)
        assert len(store) == len(records)
    for readonly in (False, True):
        with ScoreStore(path, readonly=readonly) as store:
            for want in records:
                got = store.get(want.key)
                assert got is not None
                assert bits(got.value) == bits(want.value), want.key.canonical
                assert (got.key, got.seconds, got.arch, got.created) == (
                    want.key,
                    want.seconds,
                    want.arch,
                    want.created,
                )
            many = store.get_many(r.key for r in records)
            assert {k: bits(r.value) for k, r in many.items()} == {
                r.key: bits(r.value) for r in records
            }
            listed = list(store.records())
            assert sorted(bits(r.value) for r in listed) == sorted(bits(r.value) for r in records)
    # the NaN payloads really are in the file, as 8 big-endian bytes
    with sqlite3.connect(path) as raw:
        blobs = {row[0] for row in raw.execute("SELECT value FROM scores")}
    assert bytes.fromhex("7ff8000000abcdef") in blobs
    assert bytes.fromhex("fff8000000000123") in blobs
    assert bytes.fromhex("8000000000000000") in blobs  # -0.0


def test_every_key_field_tells_records_apart(tmp_path):
    base = key()
    variants = [
        base,
        key(space="nats_sss"),
        key(canonical="|skip_connect~0|"),
        key(proxy="snip"),
        key(version="2"),
        key(dataset="cifar100"),
        key(config=config_string({"batch_size": 128})),
        key(seed=1),
        key(device_kind="cuda"),
    ]
    assert len(set(variants)) == len(variants)
    with ScoreStore(tmp_path / "s.sqlite") as store:
        store.put_many(record(k, float(i)) for i, k in enumerate(variants))
        assert len(store) == len(variants)
        for i, k in enumerate(variants):
            assert store.get(k).value == float(i)


def test_overwrite_replaces_the_record(tmp_path):
    k = key()
    with ScoreStore(tmp_path / "s.sqlite") as store:
        store.put_many([record(k, 1.0, arch="first")])
        store.put_many([record(k, float("nan"), seconds=9.0, arch="second", created=2e9)])
        assert len(store) == 1
        got = store.get(k)
        assert math.isnan(got.value) and got.seconds == 9.0 and got.arch == "second"
        assert got.created == 2e9
        store.put_many([record(k, 3.0), record(k, 4.0)])  # the last of equal keys wins
        assert len(store) == 1 and store.get(k).value == 4.0


def test_missing_keys_and_empty_calls(tmp_path):
    with ScoreStore(tmp_path / "s.sqlite") as store:
        assert store.get(key()) is None
        assert store.get_many([]) == {}
        store.put_many([])
        assert len(store) == 0 and list(store.records()) == []
        store.put_many([record(key("a"))])
        found = store.get_many([key("a"), key("b"), key("a")])  # duplicates and misses
        assert list(found) == [key("a")]
        with pytest.raises(TypeError):
            store.get(("nats_tss", "a"))
        with pytest.raises(TypeError):
            store.put_many([key("a")])


def test_get_many_with_100k_keys(tmp_path):
    n = 100_000
    keys = [key(f"arch-{i}") for i in range(n)]
    with ScoreStore(tmp_path / "s.sqlite") as store:
        store.put_many(record(k, float(i)) for i, k in enumerate(keys) if i % 3)
        asked = keys + [key(f"missing-{i}") for i in range(1000)]
        random.Random(0).shuffle(asked)
        found = store.get_many(iter(asked))
        assert len(found) == len(store) == n - len(range(0, n, 3))
        assert all(found[k].value == float(i) for i, k in enumerate(keys) if i % 3)
        assert all(found[k].key == k for k in found)
        assert not any(keys[i] in found for i in range(0, n, 3))


def test_reading_while_listing(tmp_path):
    with ScoreStore(tmp_path / "s.sqlite") as store:
        store.put_many(record(key(f"a{i:04d}"), float(i)) for i in range(3000))
        seen = 0
        for got in store.records():
            assert store.get_many([got.key, key("missing")]) == {got.key: got}
            seen += 1
        assert seen == 3000


def test_records_are_listed_in_key_order(tmp_path):
    with ScoreStore(tmp_path / "s.sqlite") as store:
        store.put_many(record(key(f"a{i:04d}"), float(i)) for i in reversed(range(2500)))
        listed = list(store.records())
    assert [r.key.canonical for r in listed] == [f"a{i:04d}" for i in range(2500)]
    assert [r.value for r in listed] == [float(i) for i in range(2500)]


# -- file handling ----------------------------------------------------------------------------


def test_new_store_creates_folders_and_writes_meta(tmp_path):
    path = tmp_path / "deep" / "er" / "scores.sqlite"
    with ScoreStore(path) as store:
        assert path.is_file()
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    with sqlite3.connect(path) as raw:
        meta = dict(raw.execute("SELECT name, value FROM meta"))
    assert meta["format"] == STORE_FORMAT == "zcnas-score-store"
    assert meta["schema_version"] == str(SCHEMA_VERSION) == "1"


def test_empty_file_is_initialised(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()
    with ScoreStore(path) as store:
        store.put_many([record(key())])
    with ScoreStore(path, readonly=True) as store:
        assert len(store) == 1


def test_readonly_never_creates_or_writes(tmp_path):
    missing = tmp_path / "sub" / "missing.sqlite"
    assert_store_error(missing, "does not exist", readonly=True)
    assert not missing.exists() and not missing.parent.exists()
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    assert_store_error(empty, "is empty", readonly=True)
    assert empty.read_bytes() == b""
    path = make_store(tmp_path / "s.sqlite", 3)
    with ScoreStore(path, readonly=True) as store:
        assert store.readonly and len(store) == 3
        with pytest.raises(ValueError, match="read-only"):
            store.put_many([record(key())])
        assert len(store) == 3


def test_a_reader_sees_commits_of_an_open_writer(tmp_path):
    path = tmp_path / "s.sqlite"
    with ScoreStore(path) as store:
        store.put_many([record(key("a"), 1.0)])
        with ScoreStore(path, readonly=True) as reader:
            assert reader.get(key("a")).value == 1.0
            store.put_many([record(key("b"), 2.0)])
            assert reader.get_many([key("a"), key("b")])[key("b")].value == 2.0


def test_a_second_writer_gets_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("zcnas.runtime.store.BUSY_TIMEOUT_S", 0.05)
    path = make_store(tmp_path / "s.sqlite", 1)
    with ScoreStore(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
            with pytest.raises(StoreError, match="locked by another process") as info:
                store.put_many([record(key("b"))])
            assert str(path) in str(info.value) and "\n" not in str(info.value)
            other.execute("ROLLBACK")
        finally:
            other.close()
        store.put_many([record(key("b"))])  # the lock is gone: it works again
        assert len(store) == 2


def test_an_empty_file_with_a_leftover_log_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    path.touch()
    (tmp_path / "s.sqlite-wal").write_bytes(b"x" * 64)
    assert_store_error(path, "write-ahead log")


def test_closed_store(tmp_path):
    store = ScoreStore(tmp_path / "s.sqlite")
    with store:
        pass
    store.close()  # idempotent
    assert "closed" in repr(store)
    with pytest.raises(ValueError, match="closed"):
        store.get(key())
    with pytest.raises(ValueError, match="closed"):
        len(store)


def _write_foreign_sqlite(path):
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)")
        raw.execute("INSERT INTO things (name) VALUES ('precious')")
    raw.close()


def _write_foreign_meta(path):
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE meta (k TEXT, v TEXT)")
        raw.execute("INSERT INTO meta VALUES ('format', 'mine')")
    raw.close()


def _write_other_format(path):
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE meta (name TEXT, value TEXT)")
        raw.execute("INSERT INTO meta VALUES ('format', 'some-other-store')")
    raw.close()


def _edit_meta(path, value):
    make_store(path, 5)
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (value,))
    raw.close()


def _truncate(path, keep):
    make_store(path, 3000, arch_len=100)
    data = path.read_bytes()
    path.write_bytes(data[: keep(len(data))])


def _smash_middle_page(path):
    make_store(path, 3000, arch_len=100)
    data = bytearray(path.read_bytes())
    page = struct.unpack(">H", data[16:18])[0]
    middle = (len(data) // page // 2) * page
    data[middle : middle + page] = bytes(range(256)) * (page // 256)
    path.write_bytes(bytes(data))


BAD_FILES = {
    "random-bytes": (
        lambda p: p.write_bytes(random.Random(0).randbytes(8192)),
        "not an SQLite file",
    ),
    "text-file": (lambda p: p.write_text("arch,score\na,1.0\n"), "not an SQLite file"),
    "parquet-file": (lambda p: p.write_bytes(b"PAR1" + bytes(200) + b"PAR1"), "not an SQLite file"),
    "foreign-sqlite": (_write_foreign_sqlite, "no zcnas meta table"),
    "foreign-meta-table": (_write_foreign_meta, "meta table is not a zcnas one"),
    "other-format": (_write_other_format, "meta format is 'some-other-store'"),
    "newer-schema": (lambda p: _edit_meta(p, "2"), "newer zcnas"),
    "garbled-schema-version": (lambda p: _edit_meta(p, "one"), "damaged"),
    "truncated-file": (lambda p: _truncate(p, lambda n: n // 2), "damaged"),
    "truncated-header": (lambda p: _truncate(p, lambda n: 60), "damaged"),
    "smashed-page": (_smash_middle_page, "damaged"),
}


@pytest.mark.parametrize("readonly", [False, True], ids=["rw", "ro"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_file_that_is_not_a_healthy_store_is_refused(tmp_path, case, readonly):
    path = tmp_path / "scores.sqlite"
    write, fragment = BAD_FILES[case]
    write(path)
    message = assert_store_error(path, fragment, readonly=readonly)
    fix = "upgrade zcnas" if case == "newer-schema" else "pass another --store path"
    assert fix in message
    if fragment == "not an SQLite file" or "foreign" in case or case == "other-format":
        assert "is not a zcnas score store" in message


def test_the_error_names_the_fix_in_one_line(tmp_path):
    path = tmp_path / "x" / "y.sqlite"
    path.parent.mkdir()
    _write_foreign_sqlite(path)
    message = assert_store_error(path, "no zcnas meta table")
    assert message == (
        f"{path} is not a zcnas score store (no zcnas meta table); "
        "pass another --store path or delete the file"
    )
    with sqlite3.connect(path) as raw:  # the foreign data is untouched
        assert raw.execute("SELECT name FROM things").fetchall() == [("precious",)]
    raw.close()


def test_a_folder_is_refused(tmp_path):
    assert_store_error(tmp_path, "is a folder")


def test_store_error_is_a_user_error():
    assert issubclass(StoreError, CorruptDataError) and issubclass(StoreError, UserError)
    assert StoreError("x").exit_code == 2


# -- keys, records, config strings -----------------------------------------------------------


class _Index:  # what numpy integers look like to operator.index
    def __index__(self):
        return 5


def test_key_validation():
    assert key(seed=_Index()).seed == 5 and type(key(seed=_Index()).seed) is int
    assert key(seed=_Index()) == key(seed=5)
    with pytest.raises(ValueError, match="device_kind"):
        key(device_kind="cuda:0")
    with pytest.raises(TypeError, match="seed"):
        key(seed=True)
    with pytest.raises(TypeError, match="seed"):
        key(seed=1.0)
    with pytest.raises(ValueError, match="64-bit"):
        key(seed=2**63)
    with pytest.raises(TypeError, match="proxy"):
        key(proxy=None)


def test_record_validation():
    assert record(key(), value=3).value == 3.0 and type(record(key(), value=3).value) is float
    with pytest.raises(TypeError, match="value"):
        record(key(), value="1.5")
    with pytest.raises(ValueError, match="seconds"):
        record(key(), seconds=float("nan"))
    with pytest.raises(ValueError, match="created"):
        record(key(), created=math.inf)
    with pytest.raises(TypeError, match="key"):
        ScoreRecord("k", 1.0, 0.0, "a", 0.0)


def test_config_string_is_canonical():
    a = config_string({"b": 1, "a": {"y": [1, 2.5], "x": None}, "c": True})
    assert a == '{"a":{"x":null,"y":[1,2.5]},"b":1,"c":true}'
    assert config_string({"c": True, "a": {"x": None, "y": (1, 2.5)}, "b": 1}) == a
    assert json.loads(a) == {"a": {"x": None, "y": [1, 2.5]}, "b": 1, "c": True}
    assert config_string({"name": "é"}) == '{"name":"\\u00e9"}'
    assert config_string({}) == "{}"
    with pytest.raises(TypeError, match="key 1"):
        config_string({1: "a"})
    with pytest.raises(ValueError, match="config.lr"):
        config_string({"lr": float("nan")})
    with pytest.raises(TypeError, match="Path"):
        config_string({"root": Path("/data")})
    with pytest.raises(TypeError, match="mapping"):
        config_string([("a", 1)])


def test_no_torch_import():
    code = "import sys, zcnas.runtime; assert 'torch' not in sys.modules, 'torch imported'"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)


# -- crash safety ----------------------------------------------------------------------------


def _run_and_kill(path, batch, commits):
    """Start the writer, SIGKILL it once it has reported ``commits`` commits; return every
    (START, END) it reported before it died."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(Path(writer.__file__)), str(path), str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        reported = []
        while len(reported) < commits:
            line = child.stdout.readline()
            if not line:
                child.wait(10)
                pytest.fail(f"writer exited early ({child.returncode}): {child.stderr.read()}")
            word, start, end = line.split()
            assert word == "committed"
            reported.append((int(start), int(end)))
        child.kill()  # SIGKILL on POSIX: no cleanup, no checkpoint, mid-transaction at best
        child.wait(10)
        # what it printed before it died is still in the pipe: every line is a finished commit
        for line in child.stdout:
            word, start, end = line.split()
            reported.append((int(start), int(end)))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode != 0
    assert all(a[1] == b[0] for a, b in zip(reported, reported[1:], strict=False))
    assert all(end - start == batch for start, end in reported)
    return reported


def _check_after_kill(path, reported_end, batch, readonly):
    with ScoreStore(path, readonly=readonly) as store:
        assert store._conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        n = int(store.get(writer.NEXT).value)
        # every reported commit is there; at most the batch in flight more, all of it or none
        assert reported_end <= n <= reported_end + batch
        assert len(store) == n + 1
        found = store.get_many(writer.key(i) for i in range(n + batch))
        assert len(found) == n
        for i in range(n):
            got = found[writer.key(i)]
            assert writer.bits(got.value) == writer.bits(writer.value(i)), i
            assert got.arch == f"arch #{i}" and got.seconds == 0.001 * i
    return n


@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL semantics are POSIX")
def test_a_killed_writer_loses_nothing_it_reported_committed(tmp_path):
    path = tmp_path / "scores.sqlite"
    total = 0
    for batch, commits in [(1, 25), (40, 10), (400, 4)]:  # kill at a few points, resume each time
        reported = _run_and_kill(path, batch, commits)
        assert reported[0][0] == total  # it resumed where the last one was killed
        reported_end = reported[-1][1]
        # a reader first (recovers from the WAL without writing), then the writer
        n = _check_after_kill(path, reported_end, batch, readonly=True)
        assert _check_after_kill(path, reported_end, batch, readonly=False) == n
        total = n
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    raw.close()
