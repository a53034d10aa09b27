"""A persistent, crash-safe cache of zero-cost proxy scores (one SQLite file).

One float per (architecture x proxy x everything that changes the score) is kept so that a
re-run reads it instead of recomputing it, and a run killed with ``SIGKILL`` and restarted
recomputes at most what was in flight::

    with ScoreStore("runs/scores.sqlite") as store:
        done = store.get_many(keys)                  # one batched query, fast for 100k keys
        store.put_many(records_of_the_missing_keys)  # one transaction, durable on return

File format
    An SQLite database with a ``meta`` table (``format`` = :data:`STORE_FORMAT`,
    ``schema_version`` = :data:`SCHEMA_VERSION`, written at creation) and a ``scores`` table
    keyed by every field of :class:`ScoreKey`. A score is stored as its 8 IEEE-754 bytes
    (big-endian ``BLOB``), never as an SQL ``REAL``: SQLite turns NaN into NULL, and the
    bytes keep NaN (with its payload), +inf, -inf and -0.0 bit for bit.

Opening
    A missing path (or a 0-byte file) becomes a new store, parent folders included, unless
    ``readonly``. Anything else that is not a healthy store of a schema this code knows (not
    SQLite at all, another program's SQLite database, a newer schema, a truncated or damaged
    file that fails ``PRAGMA quick_check``) raises :class:`StoreError`, a one-line message
    naming the path and the fix; such a file is never modified. ``quick_check`` reads the
    whole file once per open (about 0.3 s per 100 MB, i.e. per ~400k scores).
    A writer (``readonly=False``) checks at open that it can write the file and its folder
    (``os.access``, then a write that is rolled back, which also catches root on a read-only
    or immutable file): reading a store you cannot write needs an explicit ``readonly=True``.

Damage found later
    ``quick_check`` does not look inside rows: a byte flipped in a data page can pass it. When
    a read fails (a row that is not valid UTF-8, an unreadable page, a stored value of the
    wrong type such as a non-numeric ``seconds``), the store runs ``PRAGMA integrity_check``,
    raises a one-line :class:`StoreError` and from then on refuses every call, writes
    included: a damaged file is never written to. :func:`check_store` (``zcnas store check``)
    runs the full integrity check and reads every row.

Durability and concurrency
    WAL journal with ``synchronous=NORMAL``: a transaction that has committed survives the
    death of the process (not necessarily a power cut, which may lose the last commits but
    never corrupts the file). :meth:`ScoreStore.put_many` is one transaction: after a kill a
    batch is either all there or not at all. **One writer process per store**: open it in the
    parent of a process pool and send the scores back to it; never share a :class:`ScoreStore`
    across ``fork`` or threads. Any number of ``readonly=True`` readers may open the same file
    meanwhile (they see the last committed state). Waits for a lock up to
    :data:`BUSY_TIMEOUT_S` seconds, then raises :class:`StoreError`.

Besides ``zcnas.errors`` this module imports only the standard library (no torch).
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import os
import re
import sqlite3
import struct
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zcnas._version import __version__
from zcnas.errors import CorruptDataError

__all__ = [
    "BUSY_TIMEOUT_S",
    "DEVICE_KINDS",
    "SCHEMA_VERSION",
    "STORE_FORMAT",
    "ScoreKey",
    "ScoreRecord",
    "ScoreStore",
    "StoreError",
    "StoreReport",
    "check_store",
    "config_string",
    "default_store_path",
]

STORE_FORMAT = "zcnas-score-store"
SCHEMA_VERSION = 1
DEVICE_KINDS = ("cpu", "cuda")
BUSY_TIMEOUT_S = 30.0

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_HEADER_BYTES = 100
_DOUBLE = struct.Struct(">d")
_SEED_MIN, _SEED_MAX = -(2**63), 2**63 - 1  # SQLite INTEGER range

# Primary-key order: the "same experiment" fields first, so that every score of one
# (space, proxy, recipe, dataset, config, seed, device) is one contiguous range of the table.
_KEY_COLUMNS = (
    "space",
    "proxy",
    "version",
    "dataset",
    "config",
    "seed",
    "device_kind",
    "canonical",
)
_VALUE_COLUMNS = ("value", "seconds", "arch", "created")
_COLUMNS = _KEY_COLUMNS + _VALUE_COLUMNS
_key_row = operator.attrgetter(*_KEY_COLUMNS)
_RECORD_FIELDS = ("key", "value", "seconds", "arch", "created")

_SCHEMA = f"""
CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE scores (
    space       TEXT NOT NULL,
    proxy       TEXT NOT NULL,
    version     TEXT NOT NULL,
    dataset     TEXT NOT NULL,
    config      TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    device_kind TEXT NOT NULL,
    canonical   TEXT NOT NULL,
    value       BLOB NOT NULL CHECK (typeof(value) = 'blob' AND length(value) = 8),
    seconds     REAL NOT NULL,
    arch        TEXT NOT NULL,
    created     REAL NOT NULL,
    PRIMARY KEY ({", ".join(_KEY_COLUMNS)})
) WITHOUT ROWID;
"""

_MOVE_ASIDE = (
    "move it aside or delete it (its scores will be recomputed), or pass another --store path"
)
_NOT_OURS = "pass another --store path or delete the file"
_NOT_WRITABLE = (
    "make the file and its folder writable, open it read-only (readonly=True) to only read it, "
    "or pass another --store path"
)
_PERMISSIONS = "check the permissions of the file and its folder, or pass another --store path"
_LOCKED = (
    "only one zcnas process may write a score store at a time; wait for it or pass another "
    "--store path"
)
_INTEGRITY_ROWS = 3  # problems quoted from PRAGMA integrity_check


class StoreError(CorruptDataError):
    """A score store cannot be opened or used; the message is one line naming the path and fix."""


def _error(path: Path, problem: str, fix: str) -> StoreError:
    text = f"{path} {problem}; {fix}"
    return StoreError(" ".join(text.split()))  # one line, whatever SQLite said


def _short(text: object, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _can_create_in(folder: Path) -> bool:
    """Whether this process can really create a file in ``folder`` (``os.access`` says yes to
    root on an immutable folder); the probe file is removed at once."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".zcnas-probe-"):
            return True
    except OSError:
        return False


def default_store_path() -> Path:
    """The default score store: ``$ZCNAS_CACHE/scores.sqlite``, else
    ``~/.cache/zcnas/scores.sqlite``."""
    cache = os.environ.get("ZCNAS_CACHE") or Path.home() / ".cache" / "zcnas"
    return Path(cache).expanduser() / "scores.sqlite"


def _check_str(owner: str, name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{owner}.{name} must be a str, got {type(value).__name__}: {value!r}")


@dataclass(frozen=True)
class ScoreKey:
    """Everything that changes a score: two runs with equal keys must compute equal values.

    ``canonical`` is the space's canonical arch string, ``version`` the proxy's recipe version,
    ``config`` a :func:`config_string` of the batch config, proxy parameters and input source,
    ``device_kind`` ``"cpu"`` or ``"cuda"`` (not a device index: any GPU gives the same score).
    """

    space: str
    canonical: str
    proxy: str
    version: str
    dataset: str
    config: str
    seed: int
    device_kind: str

    def __post_init__(self) -> None:
        for name in ("space", "canonical", "proxy", "version", "dataset", "config", "device_kind"):
            _check_str("ScoreKey", name, getattr(self, name))
        if isinstance(self.seed, bool):
            raise TypeError(f"ScoreKey.seed must be an int, got bool: {self.seed!r}")
        try:
            seed = operator.index(self.seed)  # numpy integers become int: equal keys hash equal
        except TypeError:
            raise TypeError(
                f"ScoreKey.seed must be an int, got {type(self.seed).__name__}: {self.seed!r}"
            ) from None
        if not _SEED_MIN <= seed <= _SEED_MAX:
            raise ValueError(f"ScoreKey.seed must fit in a signed 64-bit integer, got {seed}")
        object.__setattr__(self, "seed", int(seed))
        if self.device_kind not in DEVICE_KINDS:
            raise ValueError(
                f"ScoreKey.device_kind must be one of {', '.join(DEVICE_KINDS)}, "
                f"got {self.device_kind!r}"
            )

    def _row(self) -> tuple:
        return _key_row(self)


def _real(owner: str, name: str, value: object) -> float:
    if type(value) is float:  # the common case, without the slower ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}.{name} must be a real number, got {type(value).__name__}")
    return float(value)


@dataclass(frozen=True)
class ScoreRecord:
    """One stored score: ``value`` (any float, NaN and infinities included, kept bit for bit),
    the ``seconds`` it took, the ``arch`` string as the user gave it and the unix time
    ``created``."""

    key: ScoreKey
    value: float
    seconds: float
    arch: str
    created: float

    def __post_init__(self) -> None:
        if not isinstance(self.key, ScoreKey):
            raise TypeError(f"ScoreRecord.key must be a ScoreKey, got {type(self.key).__name__}")
        object.__setattr__(self, "value", _real("ScoreRecord", "value", self.value))
        for name in ("seconds", "created"):
            number = _real("ScoreRecord", name, getattr(self, name))
            if not math.isfinite(number):
                raise ValueError(f"ScoreRecord.{name} must be finite, got {number!r}")
            object.__setattr__(self, name, number)
        _check_str("ScoreRecord", "arch", self.arch)

    def _row(self) -> tuple:
        return (*self.key._row(), _DOUBLE.pack(self.value), self.seconds, self.arch, self.created)


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON types; anything whose text form could be ambiguous is refused."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"config_string: {where} is {value!r}; use a finite number or a str")
        return value
    if isinstance(value, Mapping):
        out = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise TypeError(f"config_string: key {name!r} in {where} must be a str")
            out[name] = _plain(item, f"{where}.{name}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"config_string: {where} is a {type(value).__name__} ({value!r}); "
        "convert it to a str, number, bool, None, list or mapping first"
    )


def config_string(mapping: Mapping[str, Any]) -> str:
    """Canonical JSON of ``mapping``: sorted keys, no spaces, ASCII only; equal mappings give
    equal strings in every run and on every machine (tuples are written as lists).

    Only str keys and str / int / float (finite) / bool / None / list / tuple / mapping values
    are accepted; convert paths, numpy scalars and enums first (a :class:`TypeError` says where).
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(f"config_string needs a mapping, got {type(mapping).__name__}")
    return json.dumps(
        _plain(mapping, "config"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )


class ScoreStore:
    """A score cache in one SQLite file; see the module docstring for format and guarantees.

    ``ScoreStore(path)`` opens ``path`` or creates it (and its parent folders);
    ``readonly=True`` never creates or writes anything and fails on a missing file.
    Use it as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self._path = Path(os.fspath(path)).expanduser()
        self._readonly = bool(readonly)
        self._conn: sqlite3.Connection | None = None
        self._damage: str | None = None  # set once a read finds the file damaged
        self._conn = self._open()

    # -- opening ---------------------------------------------------------------------------

    def _connect(self, mode: str) -> sqlite3.Connection:
        uri = f"{self._path.absolute().as_uri()}?mode={mode}"
        try:
            return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise self._unusable(exc) from exc

    def _open(self) -> sqlite3.Connection:
        path = self._path
        if path.is_dir():
            raise _error(
                path, "is a folder, not a zcnas score store", "pass a file path as --store"
            )
        if not path.exists():
            if self._readonly:
                raise _error(
                    path, "does not exist (opened read-only)", "pass an existing --store path"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _error(
                    path,
                    f"cannot be created: its folder is not writable ({exc.strerror or exc})",
                    _NOT_WRITABLE,
                ) from exc
            self._check_writable()
            return self._create()
        try:
            with open(path, "rb") as handle:
                header = handle.read(_SQLITE_HEADER_BYTES)
        except OSError as exc:
            raise _error(path, f"cannot be read ({exc.strerror or exc})", _PERMISSIONS) from exc
        if not header:
            if self._readonly:
                raise _error(
                    path, "is empty, not a zcnas score store (opened read-only)", _NOT_OURS
                )
            wal = path.with_name(path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise _error(
                    path,
                    f"is empty but its write-ahead log {wal.name} is not",
                    "delete both files or pass another --store path",
                )
            self._check_writable()
            return self._create()
        if not header.startswith(_SQLITE_MAGIC):
            raise _error(path, "is not a zcnas score store (not an SQLite file)", _NOT_OURS)
        if len(header) < _SQLITE_HEADER_BYTES:
            raise _error(path, "is a damaged zcnas score store (truncated header)", _MOVE_ASIDE)
        conn = self._connect("ro" if self._readonly else "rw")
        try:
            self._validate(conn)
            if not self._readonly:
                self._check_writable()  # after the checks of what the file is
            self._configure(conn)
            if not self._readonly:
                self._probe_write(conn)  # needs the journal mode set by _configure
        except sqlite3.OperationalError as exc:
            conn.close()
            raise self._unusable(exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _unusable(self, exc: sqlite3.Error) -> StoreError:
        if not self._readonly and not _can_create_in(self._path.parent):
            return self._read_only_folder()
        how = "read" if self._readonly else "opened for writing"
        return _error(self._path, f"cannot be {how} ({exc})", _PERMISSIONS)

    def _read_only_folder(self) -> StoreError:
        return _error(
            self._path,
            f"is not writable by this process: its folder {self._path.parent} is read-only "
            "(SQLite keeps its journal beside the file)",
            _NOT_WRITABLE,
        )

    def _check_writable(self) -> None:
        """A writer needs the file (when it exists) and its folder (SQLite's journal and
        write-ahead log live beside the file) to be writable by this process."""
        path = self._path
        if path.exists() and not os.access(path, os.W_OK):
            raise _error(path, "is not writable by this process (a read-only file)", _NOT_WRITABLE)
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise self._read_only_folder()

    def _probe_write(self, conn: sqlite3.Connection) -> None:
        """Write one page and roll it back: SQLite opens a file it cannot write read-only
        without a word (an immutable file, a read-only mount, root's view of chmod 0444), and
        the first ``put_many`` would fail after the first computed cell. Nothing reaches the
        file."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("UPDATE meta SET value = value WHERE name = 'format'")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise self._locked(exc) from exc
            raise _error(
                self._path, f"is not writable by this process ({_short(exc)})", _NOT_WRITABLE
            ) from exc

    def _locked(self, exc: sqlite3.Error) -> StoreError:
        return _error(self._path, f"is locked by another process ({exc})", _LOCKED)

    def _integrity_problems(self, conn: sqlite3.Connection) -> str | None:
        """The first problems ``PRAGMA integrity_check`` finds (one line), None when none."""
        try:
            rows = conn.execute(f"PRAGMA integrity_check({_INTEGRITY_ROWS})").fetchall()
        except sqlite3.Error as exc:
            return _short(exc)
        found = [_short(row[0]) for row in rows if row and row[0] != "ok"]
        return _short("; ".join(found), 300) if found else None

    def _damaged(self, detail: str) -> StoreError:
        """Mark the store damaged (every later call is refused) and return the error."""
        self._damage = f"is a damaged zcnas score store ({_short(detail, 400)})"
        return _error(self._path, self._damage, _MOVE_ASIDE)

    def _read_failed(self, exc: sqlite3.Error) -> StoreError:
        """The error for an SQLite failure while reading: a lock, damage (confirmed or named
        by ``PRAGMA integrity_check``), or a file that cannot be read."""
        if _is_locked(exc):
            return self._locked(exc)
        text = str(exc)
        decode = re.match(r"Could not decode to UTF-8 column '([^']*)'", text)
        problem = (
            f"column {decode.group(1)!r} of a stored row is not UTF-8 text"
            if decode
            else _short(text)
        )
        conn = self._conn
        problems = None if conn is None else self._integrity_problems(conn)
        if problems is None and decode is None and isinstance(exc, sqlite3.OperationalError):
            return self._unusable(exc)  # e.g. an I/O error: not shown to be damage
        return self._damaged(problem + (f"; integrity check: {problems}" if problems else ""))

    def _create(self) -> sqlite3.Connection:
        conn = self._connect("rwc")
        try:
            conn.execute("BEGIN IMMEDIATE")  # schema and meta in one transaction: all or nothing
            try:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.executemany(
                        "INSERT INTO meta (name, value) VALUES (?, ?)",
                        [
                            ("format", STORE_FORMAT),
                            ("schema_version", str(SCHEMA_VERSION)),
                            ("created", repr(time.time())),
                            ("zcnas_version", __version__),
                        ],
                    )
                # else another process created it meanwhile: validate theirs below
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            self._validate(conn)
            self._configure(conn)
        except sqlite3.OperationalError as exc:
            conn.close()
            raise self._unusable(exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _validate(self, conn: sqlite3.Connection) -> None:
        path = self._path
        try:
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.OperationalError as exc:  # cannot open or lock it, not a bad file
            raise self._unusable(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise _error(path, f"is a damaged SQLite file ({exc})", _MOVE_ASIDE) from exc
        if "meta" not in tables:
            raise _error(path, "is not a zcnas score store (no zcnas meta table)", _NOT_OURS)
        try:
            meta = dict(conn.execute("SELECT name, value FROM meta"))
        except sqlite3.OperationalError as exc:
            if "no such column" not in str(exc):
                raise _error(path, f"is a damaged zcnas score store ({exc})", _MOVE_ASIDE) from exc
            raise _error(
                path, "is not a zcnas score store (its meta table is not a zcnas one)", _NOT_OURS
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise _error(path, f"is a damaged zcnas score store ({exc})", _MOVE_ASIDE) from exc
        if meta.get("format") != STORE_FORMAT:
            raise _error(
                path,
                f"is not a zcnas score store (meta format is {meta.get('format')!r}, "
                f"expected {STORE_FORMAT!r})",
                _NOT_OURS,
            )
        raw_version = meta.get("schema_version")
        try:
            version = int(raw_version)
        except (TypeError, ValueError):
            raise _error(
                path,
                f"is a damaged zcnas score store (schema version {raw_version!r})",
                _MOVE_ASIDE,
            ) from None
        if version > SCHEMA_VERSION:
            raise _error(
                path,
                f"was written by a newer zcnas (score store schema version {version}, this zcnas "
                f"reads up to {SCHEMA_VERSION})",
                "upgrade zcnas or pass another --store path",
            )
        if version < 1:
            raise _error(
                path, f"is a damaged zcnas score store (schema version {version})", _MOVE_ASIDE
            )
        try:
            columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(scores)"))
            check = conn.execute("PRAGMA quick_check(1)").fetchone()
        except sqlite3.DatabaseError as exc:
            raise _error(path, f"is a damaged zcnas score store ({exc})", _MOVE_ASIDE) from exc
        if sorted(columns) != sorted(_COLUMNS):
            raise _error(
                path,
                "is a damaged zcnas score store (the scores table is missing or altered)",
                _MOVE_ASIDE,
            )
        if check is None or check[0] != "ok":
            detail = check[0] if check else "no answer"
            raise _error(
                path, f"is a damaged zcnas score store (integrity check: {detail})", _MOVE_ASIDE
            )

    def _configure(self, conn: sqlite3.Connection) -> None:
        if not self._readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            # WAL needs shared memory (not on some network file systems); the rollback journal
            # is then used, with full syncs so that it is no less safe.
            conn.execute(f"PRAGMA synchronous = {'NORMAL' if mode == 'wal' else 'FULL'}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS wanted ({', '.join(_KEY_COLUMNS)})")

    # -- reading and writing ---------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The store file."""
        return self._path

    @property
    def readonly(self) -> bool:
        return self._readonly

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError(f"the score store {self._path} is closed")
        if self._damage is not None:
            raise _error(self._path, self._damage, _MOVE_ASIDE)
        return self._conn

    def _record(self, row: tuple, key: ScoreKey | None = None) -> ScoreRecord:
        """A record from a row of ``_COLUMNS`` (or of ``_VALUE_COLUMNS`` when ``key`` is known)."""
        n = len(_KEY_COLUMNS)
        if key is None:
            try:
                key = ScoreKey(**dict(zip(_KEY_COLUMNS, row[:n], strict=True)))
            except (TypeError, ValueError) as exc:
                raise self._damaged(f"a stored row has an invalid key: {exc}") from None
            row = row[n:]
        blob, seconds, arch, created = row
        if not isinstance(blob, bytes) or len(blob) != _DOUBLE.size:
            raise self._damaged(
                f"the stored value of the {key.proxy} score of {key.canonical} is "
                f"{_short(repr(blob), 60)}, not 8 bytes"
            )
        if type(seconds) is not float or type(created) is not float or type(arch) is not str:
            try:  # ScoreRecord validates; a value this code never writes means damage
                return ScoreRecord(key, _DOUBLE.unpack(blob)[0], seconds, arch, created)
            except (TypeError, ValueError) as exc:
                raise self._damaged(
                    f"the {key.proxy} score of {_short(key.canonical, 100)} is unreadable: {exc}"
                ) from None
        record = object.__new__(ScoreRecord)  # already valid: skip __post_init__ (2x faster)
        for name, value in zip(
            _RECORD_FIELDS, (key, _DOUBLE.unpack(blob)[0], seconds, arch, created), strict=True
        ):
            object.__setattr__(record, name, value)
        return record

    def get(self, key: ScoreKey) -> ScoreRecord | None:
        """The record stored under ``key``, or None."""
        if not isinstance(key, ScoreKey):
            raise TypeError(f"get needs a ScoreKey, got {type(key).__name__}")
        conn = self._connection()
        try:
            row = conn.execute(f"SELECT {_SELECT} FROM scores WHERE {_WHERE_KEY}", key._row())
            row = row.fetchone()
        except sqlite3.Error as exc:
            raise self._read_failed(exc) from exc
        return None if row is None else self._record(row)

    def get_many(self, keys: Iterable[ScoreKey]) -> dict[ScoreKey, ScoreRecord]:
        """The stored records among ``keys`` (missing keys are left out), in one query.

        The keys go to a temporary in-memory table joined with the scores table in one query:
        100k keys take about half a second.
        """
        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            if not isinstance(key, ScoreKey):
                raise TypeError(f"get_many needs ScoreKey items, got {type(key).__name__}")
        if not wanted:
            return {}
        conn = self._connection()
        try:
            conn.execute("BEGIN")  # one snapshot; the temp table is emptied before returning
            try:
                conn.executemany(
                    _INSERT_WANTED, ((i, *_key_row(k)) for i, k in enumerate(wanted))
                )
                rows = conn.execute(_SELECT_WANTED).fetchall()
            finally:
                conn.execute("DELETE FROM temp.wanted")
                conn.execute("COMMIT")  # not ROLLBACK, which would abort a records() iteration
        except sqlite3.Error as exc:
            raise self._read_failed(exc) from exc
        records = (self._record(row[1:], wanted[row[0]]) for row in rows)
        return {record.key: record for record in records}

    def put_many(self, records: Iterable[ScoreRecord]) -> None:
        """Store ``records`` in one transaction (an existing key is overwritten; the last of
        equal keys wins). When this returns they survive the death of the process."""
        batch = list(records)
        for record in batch:
            if not isinstance(record, ScoreRecord):
                raise TypeError(f"put_many needs ScoreRecord items, got {type(record).__name__}")
        if self._readonly:
            raise ValueError(f"the score store {self._path} was opened read-only")
        conn = self._connection()  # a closed or damaged store refuses even an empty batch
        if not batch:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT, (record._row() for record in batch))
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise self._locked(exc) from exc
            if "readonly" in str(exc):
                raise _error(
                    self._path, f"is not writable by this process ({exc})", _NOT_WRITABLE
                ) from exc
            raise _error(
                self._path,
                f"cannot be written ({_short(exc)})",
                "check the free disk space and the permissions of the file and its folder, "
                "or pass another --store path",
            ) from exc
        except sqlite3.DatabaseError as exc:  # SQLite met damage while writing: rolled back
            raise self._read_failed(exc) from exc

    def __len__(self) -> int:
        conn = self._connection()
        try:
            return conn.execute("SELECT count(*) FROM scores").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._read_failed(exc) from exc

    def records(self) -> Iterator[ScoreRecord]:
        """Every stored record, in key order (lazily; do not write while iterating)."""
        conn = self._connection()
        try:
            cursor = conn.execute(f"SELECT {_SELECT} FROM scores ORDER BY {_ORDER}")
        except sqlite3.Error as exc:
            raise self._read_failed(exc) from exc
        try:
            while True:
                try:
                    rows = cursor.fetchmany(1024)
                except sqlite3.Error as exc:
                    raise self._read_failed(exc) from exc
                if not rows:
                    break
                for row in rows:
                    yield self._record(row)
        finally:
            cursor.close()

    def check(self) -> StoreReport:
        """Run the full ``PRAGMA integrity_check`` and read every row; a one-line
        :class:`StoreError` names the first problem (and the store then refuses every call).
        Reads the whole file: seconds per 100 MB."""
        conn = self._connection()
        problems = self._integrity_problems(conn)
        if problems is not None:
            raise self._damaged(f"integrity check: {problems}")
        proxies: dict[str, int] = {}
        for record in self.records():
            proxies[record.key.proxy] = proxies.get(record.key.proxy, 0) + 1
        try:
            version = int(conn.execute(
                "SELECT value FROM meta WHERE name = 'schema_version'"
            ).fetchone()[0])
        except sqlite3.Error as exc:
            raise self._read_failed(exc) from exc
        return StoreReport(
            path=self._path,
            schema_version=version,
            rows=sum(proxies.values()),
            proxies=dict(sorted(proxies.items())),
            size_bytes=self._path.stat().st_size,
        )

    def close(self) -> None:
        """Close the file (idempotent). The write-ahead log is folded into the file."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> ScoreStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else ("read-only" if self._readonly else "open")
        return f"ScoreStore({str(self._path)!r}, {state})"


@dataclass(frozen=True)
class StoreReport:
    """What :func:`check_store` found in a healthy store."""

    path: Path
    schema_version: int
    rows: int
    proxies: Mapping[str, int]  # scores per proxy name
    size_bytes: int

    def summary(self) -> str:
        return (
            f"{self.path}: healthy zcnas score store (schema {self.schema_version}), "
            f"{self.rows:,} scores of {len(self.proxies)} "
            f"prox{'y' if len(self.proxies) == 1 else 'ies'}, {self.size_bytes / 1e6:.1f} MB; "
            "integrity check ok, every row readable"
        )


def check_store(path: str | os.PathLike[str]) -> StoreReport:
    """Check a score store without writing to it: the open checks, the full SQLite
    ``integrity_check`` and every row read back. A store that fails raises a one-line
    :class:`StoreError` naming the problem and the fix; a healthy one gives its report."""
    with ScoreStore(path, readonly=True) as store:
        return store.check()


_SELECT = ", ".join(_COLUMNS)
_ORDER = ", ".join(_KEY_COLUMNS)
_WHERE_KEY = " AND ".join(f"{name} = ?" for name in _KEY_COLUMNS)
_INSERT_WANTED = (
    f"INSERT INTO temp.wanted (rowid, {_ORDER}) VALUES (?, {', '.join('?' for _ in _KEY_COLUMNS)})"
)
_SELECT_WANTED = (  # w.rowid is the index into the list of wanted keys
    f"SELECT w.rowid, {', '.join('s.' + name for name in _VALUE_COLUMNS)} FROM temp.wanted AS w "
    f"JOIN main.scores AS s ON {' AND '.join(f's.{name} = w.{name}' for name in _KEY_COLUMNS)}"
)
_UPSERT = (
    f"INSERT OR REPLACE INTO main.scores ({_SELECT}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
