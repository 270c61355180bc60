"""The SQLite catalogue of a collection: recordings, stored features and failures.

Every write is one transaction; the database runs in WAL mode so that readers (a server) see a
consistent state while an ``index`` run adds recordings. A collection on a read-only file system is opened
``immutable`` (no WAL files needed), so it can still be searched.

Paths are stored relative to the collection's *base* (the folder that holds the collection folder) when the
file lies below it, otherwise absolute; so an archive moved together with its collection keeps working. A file
name that is not valid UTF-8 is stored as its raw bytes (a BLOB), losslessly. The catalogue's interface speaks
absolute paths (``str``, undecodable bytes as surrogate escapes, as :func:`os.fsdecode` gives them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mirsearch.errors import CollectionError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recordings (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    sha1 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    duration REAL NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS features (
    recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    config_key TEXT NOT NULL,
    config TEXT NOT NULL,
    file TEXT NOT NULL,
    n_frames INTEGER NOT NULL,
    feature_rate REAL NOT NULL,
    PRIMARY KEY (recording_id, kind)
);
CREATE TABLE IF NOT EXISTS failures (path TEXT PRIMARY KEY, error TEXT NOT NULL, time REAL NOT NULL);
"""
#: columns added to ``failures`` after schema 1 (the file's size and mtime when it failed)
_FAILURE_COLUMNS = (("size", "INTEGER"), ("mtime", "REAL"))


@dataclass(frozen=True)
class Recording:
    """A recording in the catalogue (``path`` as indexed, absolute)."""

    id: int
    path: str
    sha1: str
    size: int
    mtime: float
    duration: float

    def to_dict(self) -> dict:
        path = self.path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")  # printable
        return {"id": self.id, "path": path, "duration": round(self.duration, 3), "sha1": self.sha1}


@dataclass(frozen=True)
class FeatureEntry:
    """One stored feature array of a recording."""

    recording_id: int
    kind: str
    config_key: str
    file: str
    n_frames: int
    feature_rate: float


def _stored(value: str) -> str | bytes:
    """A path as the database stores it: text, or raw bytes when it is not valid UTF-8."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return os.fsencode(value)


def _loaded(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _sqlite_uri(path: Path, **params: str) -> str:
    from urllib.parse import quote

    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{quote(os.fsencode(path.absolute()))}?{query}"


class Catalog:
    """Thin wrapper around the catalogue database (one connection).

    Parameters
    ----------
    path : Path
        The ``catalog.sqlite`` file.
    readonly : bool
        Open for reading only; when the folder cannot be written (a read-only mount) the database is opened
        ``immutable``.
    create : bool
        Create the database when it does not exist.
    base : Path, optional
        Folder that relative paths are stored against (default: the folder holding the collection folder).
    """

    def __init__(self, path: Path, *, readonly: bool = False, create: bool = False, base: Path | None = None):
        self.path = Path(path)
        self.base = (Path(base) if base is not None else self.path.absolute().parent.parent).resolve()
        if not create and not self.path.is_file():
            raise CollectionError(f"{self.path.parent}: not a mirsearch collection (no {self.path.name})")
        writable_folder = os.access(self.path.parent, os.W_OK)
        if not readonly and not writable_folder:
            raise CollectionError(
                f"{self.path.parent}: the collection folder is read-only (searching works; indexing needs write access)"
            )
        self.readonly = readonly
        try:
            self.db = self._connect(readonly=readonly, writable_folder=writable_folder)
            self.db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
                with self.db:
                    self.db.executescript(_SCHEMA)
                    self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    self._upgrade()
            version = self.get_meta("schema_version")
        except sqlite3.Error as exc:
            with contextlib.suppress(Exception):
                self.db.close()
            raise CollectionError(f"{self.path}: cannot open catalogue ({_sql_reason(exc)})") from None
        if version is None:
            raise CollectionError(f"{self.path}: catalogue has no schema version (not a mirsearch collection?)")
        if not str(version).isdigit() or int(version) > SCHEMA_VERSION:
            raise CollectionError(f"{self.path}: catalogue schema {version} is newer than this mirsearch")

    def _connect(self, *, readonly: bool, writable_folder: bool) -> sqlite3.Connection:
        """A connection; on a read-only folder a read-only one, ``immutable`` when SQLite cannot use the WAL there
        (then changes still in the WAL file are not seen: a warning says so)."""
        uri = _sqlite_uri(self.path, mode="ro" if readonly else "rwc")
        if not readonly or writable_folder:
            return sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)
        try:
            db = sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)
            db.execute("SELECT COUNT(*) FROM meta").fetchone()
            return db
        except sqlite3.Error:
            pass
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            log.warning("%s: read-only and its WAL file holds changes that cannot be read here", self.path)
        uri = _sqlite_uri(self.path, mode="ro", immutable="1")
        return sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)

    def _upgrade(self) -> None:
        """Bring an older catalogue up to date (inside the opening transaction): failure columns; absolute
        paths below the base stored relative (a collection moved with its archive keeps working)."""
        have = {row[1] for row in self.db.execute("PRAGMA table_info(failures)")}
        for column, kind in _FAILURE_COLUMNS:
            if column not in have:
                self.db.execute(f"ALTER TABLE failures ADD COLUMN {column} {kind}")
        for table, key in (("recordings", "id"), ("failures", "rowid")):
            rows = self.db.execute(f"SELECT {key}, path FROM {table}").fetchall()
            taken = {p for _, p in rows}
            for rid, value in rows:
                if isinstance(value, str) and os.path.isabs(value):
                    stored = self.to_stored(value)
                    if stored != value and stored not in taken:
                        self.db.execute(f"UPDATE {table} SET path = ? WHERE {key} = ?", (stored, rid))

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction; SQLite errors (disk full, read-only file system, corrupt file) become a one-line
        :class:`CollectionError` naming the catalogue, and the transaction is rolled back."""
        try:
            with self.db:
                yield self.db
        except sqlite3.Error as exc:
            raise CollectionError(f"{self.path}: cannot write catalogue ({_sql_reason(exc)})") from None

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise CollectionError(f"{self.path}: unreadable catalogue ({_sql_reason(exc)})") from None

    # -- paths ------------------------------------------------------------------------------------
    def to_stored(self, path: str) -> str | bytes:
        """How ``path`` (absolute) is stored: relative to :attr:`base` when below it."""
        p = Path(path)
        try:
            rel = p.relative_to(self.base.absolute())
        except ValueError:
            return _stored(str(p))
        return _stored(rel.as_posix()) if rel.parts and ".." not in rel.parts else _stored(str(p))

    def to_absolute(self, value: str | bytes) -> str:
        text = _loaded(value)
        return text if os.path.isabs(text) else str(self.base.absolute() / text)

    def _recording(self, row) -> Recording:
        return Recording(row[0], self.to_absolute(row[1]), *row[2:])

    # -- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str, default=None):
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return default if not rows else rows[0][0]

    def set_meta(self, key: str, value) -> None:
        with self.writing() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    def get_json(self, key: str, default=None):
        value = self.get_meta(key)
        if value is None:
            return default
        try:
            return json.loads(value)
        except ValueError:
            raise CollectionError(f"{self.path}: corrupt catalogue entry {key!r}") from None

    def set_json(self, key: str, value) -> None:
        self.set_meta(key, json.dumps(value, sort_keys=True))

    def generation(self) -> int:
        """Number of changes to the recordings so far (one SQL read; memoised views compare it)."""
        try:
            return int(self.get_meta("generation", 0))
        except ValueError:
            raise CollectionError(f"{self.path}: corrupt catalogue entry 'generation'") from None

    def _bump_generation(self) -> None:
        """Count a change; call inside the transaction that makes it."""
        self.db.execute(
            "INSERT INTO meta VALUES ('generation', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    # -- recordings -------------------------------------------------------------------------------
    _COLUMNS = "id, path, sha1, size, mtime, duration"

    def recordings(self) -> list[Recording]:
        return [self._recording(row) for row in self._read(f"SELECT {self._COLUMNS} FROM recordings ORDER BY id")]

    def stored_paths(self) -> dict[int, str]:
        """Each recording's path as stored (relative to :attr:`base` or absolute), for listings."""
        return {rid: _loaded(p) for rid, p in self._read("SELECT id, path FROM recordings ORDER BY id")}

    def recording(self, recording_id: int) -> Recording:
        rows = self._read(f"SELECT {self._COLUMNS} FROM recordings WHERE id = ?", (int(recording_id),))
        if not rows:
            raise CollectionError(f"recording_id={recording_id} is not in the collection")
        return self._recording(rows[0])

    def by_path(self, path: str) -> Recording | None:
        rows = self._read(f"SELECT {self._COLUMNS} FROM recordings WHERE path = ?", (self.to_stored(path),))
        return None if not rows else self._recording(rows[0])

    def by_sha1(self, sha1: str) -> list[Recording]:
        return [
            self._recording(r) for r in self._read(f"SELECT {self._COLUMNS} FROM recordings WHERE sha1 = ?", (sha1,))
        ]

    def features(self, kind: str) -> dict[int, FeatureEntry]:
        rows = self._read(
            "SELECT recording_id, kind, config_key, file, n_frames, feature_rate FROM features WHERE kind = ?", (kind,)
        )
        return {row[0]: FeatureEntry(*row) for row in rows}

    def feature_keys(self, recording_id: int) -> dict[str, str]:
        return dict(self._read("SELECT kind, config_key FROM features WHERE recording_id = ?", (recording_id,)))

    def put_recording(
        self,
        *,
        path: str,
        sha1: str,
        size: int,
        mtime: float,
        duration: float,
        features: list[tuple[str, str, dict, str, int, float]],
    ) -> int:
        """Insert or replace a recording and all its feature rows in one transaction; returns its id.

        ``features``: ``(kind, config_key, config, file, n_frames, feature_rate)`` per kind.
        """
        stored = self.to_stored(path)
        with self.writing() as db:
            row = db.execute("SELECT id FROM recordings WHERE path = ?", (stored,)).fetchone()
            if row is None:
                cur = db.execute(
                    "INSERT INTO recordings (path, sha1, size, mtime, duration, added) VALUES (?, ?, ?, ?, ?, ?)",
                    (stored, sha1, size, mtime, duration, time.time()),
                )
                rid = int(cur.lastrowid)
            else:
                rid = int(row[0])
                db.execute(
                    "UPDATE recordings SET sha1 = ?, size = ?, mtime = ?, duration = ? WHERE id = ?",
                    (sha1, size, mtime, duration, rid),
                )
            for kind, key, config, file, n_frames, rate in features:
                db.execute(
                    "INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (rid, kind, key, json.dumps(config, sort_keys=True), file, n_frames, rate),
                )
            db.execute("DELETE FROM failures WHERE path = ?", (stored,))
            self._bump_generation()
        return rid

    def touch(self, recording_id: int, *, size: int, mtime: float) -> None:
        with self.writing() as db:
            db.execute("UPDATE recordings SET size = ?, mtime = ? WHERE id = ?", (size, mtime, recording_id))

    def move(self, recording_id: int, path: str, *, size: int, mtime: float) -> None:
        """Give a recording a new path (its content, hence its features, unchanged)."""
        stored = self.to_stored(path)
        with self.writing() as db:
            taken = db.execute("SELECT id FROM recordings WHERE path = ?", (stored,)).fetchone()
            if taken is not None and int(taken[0]) != int(recording_id):
                db.execute("DELETE FROM recordings WHERE id = ?", (int(taken[0]),))
            db.execute(
                "UPDATE recordings SET path = ?, size = ?, mtime = ? WHERE id = ?", (stored, size, mtime, recording_id)
            )
            db.execute("DELETE FROM failures WHERE path = ?", (stored,))
            self._bump_generation()

    def remove(self, recording_id: int) -> None:
        self.remove_many([recording_id])

    def remove_many(self, recording_ids) -> None:
        """Delete recordings (and their feature rows) in one transaction."""
        with self.writing() as db:
            db.executemany("DELETE FROM recordings WHERE id = ?", [(int(r),) for r in recording_ids])
            self._bump_generation()

    def put_failure(self, path: str, error: str, *, size: int | None = None, mtime: float | None = None) -> None:
        with self.writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO failures (path, error, time, size, mtime) VALUES (?, ?, ?, ?, ?)",
                (self.to_stored(path), error, time.time(), size, mtime),
            )

    def failures(self) -> list[tuple[str, str]]:
        return [(self.to_absolute(p), e) for p, e in self._read("SELECT path, error FROM failures ORDER BY path")]

    def failed_before(self, path: str, *, size: int, mtime: float) -> str | None:
        """The error of an earlier run on this very file (same size and mtime), or None."""
        has_stat = "size" in {row[1] for row in self._read("PRAGMA table_info(failures)")}
        if not has_stat:
            return None
        rows = self._read("SELECT error, size, mtime FROM failures WHERE path = ?", (self.to_stored(path),))
        if rows and rows[0][1] == size and rows[0][2] == mtime:
            return rows[0][0]
        return None

    def forget_failures(self, paths) -> None:
        with self.writing() as db:
            db.executemany("DELETE FROM failures WHERE path = ?", [(self.to_stored(p),) for p in paths])

    def feature_files(self, recording_id: int) -> set[str]:
        return {row[0] for row in self._read("SELECT file FROM features WHERE recording_id = ?", (recording_id,))}

    def referenced_files(self) -> set[str]:
        return {row[0] for row in self._read("SELECT file FROM features")}


def _sql_reason(exc: sqlite3.Error) -> str:
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    hints = {
        "file is not a database": "the file is corrupt or not a catalogue",
        "database disk image is malformed": "the file is corrupt",
        "database or disk is full": "disk full",
        "attempt to write a readonly database": "read-only file or file system",
        "unable to open database file": "cannot open the file (missing folder or no permission)",
    }
    return next((f"{hint}: {reason}" for key, hint in hints.items() if key in reason), reason)
