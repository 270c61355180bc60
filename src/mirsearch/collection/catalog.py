"""The SQLite catalogue of a collection: recordings, stored features and failures.

Every write is one transaction; the database runs in WAL mode so that readers (a server) see a
consistent state while an ``index`` run adds recordings.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from mirsearch.errors import CollectionError

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
        return {"id": self.id, "path": self.path, "duration": round(self.duration, 3), "sha1": self.sha1}


@dataclass(frozen=True)
class FeatureEntry:
    """One stored feature array of a recording."""

    recording_id: int
    kind: str
    config_key: str
    file: str
    n_frames: int
    feature_rate: float


class Catalog:
    """Thin wrapper around the catalogue database (one connection)."""

    def __init__(self, path: Path, *, readonly: bool = False, create: bool = False):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise CollectionError(f"{self.path.parent}: not a mirsearch collection (no {self.path.name})")
        uri = f"file:{self.path}?mode={'ro' if readonly else 'rwc'}"
        try:
            self.db = sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)
        except sqlite3.Error as exc:
            raise CollectionError(f"{self.path}: cannot open catalogue ({exc})") from None
        self.readonly = readonly
        self.db.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            with self.db:
                self.db.executescript(_SCHEMA)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        version = self.get_meta("schema_version")
        if version is None:
            raise CollectionError(f"{self.path}: catalogue has no schema version (not a mirsearch collection?)")
        if int(version) > SCHEMA_VERSION:
            raise CollectionError(f"{self.path}: catalogue schema {version} is newer than this mirsearch")

    def close(self) -> None:
        self.db.close()

    # -- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str, default=None):
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError as exc:
            raise CollectionError(f"{self.path}: unreadable catalogue ({exc})") from None
        return default if row is None else row[0]

    def set_meta(self, key: str, value) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    def get_json(self, key: str, default=None):
        value = self.get_meta(key)
        return default if value is None else json.loads(value)

    def set_json(self, key: str, value) -> None:
        self.set_meta(key, json.dumps(value, sort_keys=True))

    def generation(self) -> int:
        """Number of changes to the recordings so far (one SQL read; memoised views compare it)."""
        return int(self.get_meta("generation", 0))

    def _bump_generation(self) -> None:
        """Count a change; call inside the transaction that makes it."""
        self.db.execute(
            "INSERT INTO meta VALUES ('generation', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    # -- recordings -------------------------------------------------------------------------------
    def recordings(self) -> list[Recording]:
        rows = self.db.execute("SELECT id, path, sha1, size, mtime, duration FROM recordings ORDER BY id")
        return [Recording(*row) for row in rows]

    def recording(self, recording_id: int) -> Recording:
        row = self.db.execute(
            "SELECT id, path, sha1, size, mtime, duration FROM recordings WHERE id = ?", (int(recording_id),)
        ).fetchone()
        if row is None:
            raise CollectionError(f"recording_id={recording_id} is not in the collection")
        return Recording(*row)

    def by_path(self, path: str) -> Recording | None:
        row = self.db.execute(
            "SELECT id, path, sha1, size, mtime, duration FROM recordings WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else Recording(*row)

    def features(self, kind: str) -> dict[int, FeatureEntry]:
        rows = self.db.execute(
            "SELECT recording_id, kind, config_key, file, n_frames, feature_rate FROM features WHERE kind = ?",
            (kind,),
        )
        return {row[0]: FeatureEntry(*row) for row in rows}

    def feature_keys(self, recording_id: int) -> dict[str, str]:
        rows = self.db.execute("SELECT kind, config_key FROM features WHERE recording_id = ?", (recording_id,))
        return dict(rows.fetchall())

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
        with self.db:
            row = self.db.execute("SELECT id FROM recordings WHERE path = ?", (path,)).fetchone()
            if row is None:
                cur = self.db.execute(
                    "INSERT INTO recordings (path, sha1, size, mtime, duration, added) VALUES (?, ?, ?, ?, ?, ?)",
                    (path, sha1, size, mtime, duration, time.time()),
                )
                rid = int(cur.lastrowid)
            else:
                rid = int(row[0])
                self.db.execute(
                    "UPDATE recordings SET sha1 = ?, size = ?, mtime = ?, duration = ? WHERE id = ?",
                    (sha1, size, mtime, duration, rid),
                )
            for kind, key, config, file, n_frames, rate in features:
                self.db.execute(
                    "INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (rid, kind, key, json.dumps(config, sort_keys=True), file, n_frames, rate),
                )
            self.db.execute("DELETE FROM failures WHERE path = ?", (path,))
            self._bump_generation()
        return rid

    def touch(self, recording_id: int, *, size: int, mtime: float) -> None:
        with self.db:
            self.db.execute("UPDATE recordings SET size = ?, mtime = ? WHERE id = ?", (size, mtime, recording_id))

    def remove(self, recording_id: int) -> None:
        with self.db:
            self.db.execute("DELETE FROM recordings WHERE id = ?", (recording_id,))
            self._bump_generation()

    def put_failure(self, path: str, error: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?)", (path, error, time.time()))

    def failures(self) -> list[tuple[str, str]]:
        return list(self.db.execute("SELECT path, error FROM failures ORDER BY path"))

    def feature_files(self, recording_id: int) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT file FROM features WHERE recording_id = ?", (recording_id,))}

    def referenced_files(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT file FROM features")}
