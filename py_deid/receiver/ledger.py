"""The SQLite ledger: what arrived (from which site, when, sha256), the forwarding queue, certificates.

One connection shared by the server's threads behind a lock; WAL journal with synchronous=FULL, so a
committed row survives a crash. A second connection, behind the same lock, is kept at synchronous=NORMAL for
the transactions that are not flushed (no PRAGMA switched back and forth per request). Rows hold UIDs,
hashes and sizes of de-identified instances only.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    modality TEXT NOT NULL DEFAULT '',
    transfer_syntax TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    site TEXT NOT NULL,
    received REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'stored')),
    pack TEXT,
    pack_offset INTEGER
);
CREATE INDEX IF NOT EXISTS instances_study ON instances (study_uid, series_uid);
CREATE TABLE IF NOT EXISTS forward_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sop_uid TEXT NOT NULL UNIQUE REFERENCES instances (sop_uid),
    state TEXT NOT NULL CHECK (state IN ('queued', 'done', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS forward_due ON forward_queue (state, next_at);
CREATE TABLE IF NOT EXISTS certificates (
    id TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL,
    batch TEXT NOT NULL,
    site TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    received REAL NOT NULL,
    UNIQUE (study_uid, batch)
);
"""


# A packed instance's row as a pack's record holds it (storage.Pack.seal), in this order; with its pack's name
# and state it is the whole row.
RECORD_FIELDS = ("sop_uid", "study_uid", "series_uid", "sop_class_uid", "modality", "transfer_syntax", "sha256",
                 "size", "site", "received", "pack_offset")
# A packed instance's row inserted as stored: the RECORD_FIELDS, then its pack's name.
INSERT_PACKED = (f"INSERT INTO instances ({', '.join(RECORD_FIELDS)}, pack, state) "
                 f"VALUES ({', '.join('?' * len(RECORD_FIELDS))}, ?, 'stored')")


class Ledger:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
            # A ledger written before packs (storage.Pack): its rows keep a NULL pack and name their own file.
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(instances)")}
            for column, kind in (("pack", "TEXT"), ("pack_offset", "INTEGER")):
                if column not in columns:
                    self._db.execute(f"ALTER TABLE instances ADD COLUMN {column} {kind}")
            # The unflushed transactions' connection: the same WAL file, so a later flushed commit on _db
            # (its fsync of the WAL) makes them durable too, as when they ran on _db.
            self._unflushed = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._unflushed.execute("PRAGMA synchronous=NORMAL")
            self._unflushed.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        with self._lock:
            self._unflushed.close()
            self._db.close()

    @contextmanager
    def transaction(self, flush: bool = True):
        """One transaction. flush=False: its commit is not fsynced (synchronous=NORMAL for it): it survives
        the process being killed, not a power loss, until the next flushed commit, which makes it durable
        too (the WAL is written in order)."""
        db = self._db if flush else self._unflushed  # (both behind the lock: one writer at a time)
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _all(self, sql: str, args=()) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

    # instances
    def instance(self, sop_uid: str) -> dict | None:
        rows = self._all("SELECT * FROM instances WHERE sop_uid = ?", (sop_uid,))
        return rows[0] if rows else None

    def hashes(self, sop_uids: list[str]) -> dict[str, str]:
        """sop_uid -> sha256 of the rows (pending or stored) among sop_uids."""
        out: dict[str, str] = {}
        for i in range(0, len(sop_uids), 500):
            chunk = sop_uids[i:i + 500]
            with self._lock:
                rows = self._db.execute(f"SELECT sop_uid, sha256 FROM instances WHERE sop_uid IN "
                                        f"({', '.join('?' for _ in chunk)})", chunk).fetchall()
            out.update({r[0]: r[1] for r in rows})
        return out

    def mark_stored(self, sop_uid: str, forward: bool) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute("UPDATE instances SET state = 'stored' WHERE sop_uid = ?", (sop_uid,))
            if forward:
                db.execute("INSERT OR IGNORE INTO forward_queue (sop_uid, state, next_at, updated) "
                           "VALUES (?, 'queued', ?, ?)", (sop_uid, now, now))

    def insert_stored(self, rows: list[tuple], pack: str, forward: bool) -> None:
        """Rows of a pack's record (RECORD_FIELDS), inserted as 'stored' (storage's recover())."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(INSERT_PACKED, [(*r, pack) for r in rows])
            if forward:
                db.executemany("INSERT OR IGNORE INTO forward_queue (sop_uid, state, next_at, updated) "
                               "VALUES (?, 'queued', ?, ?)", [(r[0], now, now) for r in rows])

    def delete(self, sop_uid: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM forward_queue WHERE sop_uid = ?", (sop_uid,))
            db.execute("DELETE FROM instances WHERE sop_uid = ?", (sop_uid,))

    def pack_names(self) -> set[str]:
        """The packs that stored or pending rows point into."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT DISTINCT pack FROM instances WHERE pack IS NOT NULL")}

    def pending(self) -> list[dict]:
        return self._all("SELECT * FROM instances WHERE state = 'pending'")

    def stored_count(self, site: str | None = None) -> int:
        where, args = _site_filter(site)
        return self._all(f"SELECT count(*) AS n FROM instances WHERE state = 'stored' {where}", args)[0]["n"]

    # Reads take `site`: None sees every site's instances (a sponsor-wide reader), a name only that site's.
    def studies(self, site: str | None = None) -> list[dict]:
        where, args = _site_filter(site)
        return self._all(
            "SELECT study_uid, count(DISTINCT series_uid) AS series, count(*) AS instances, "
            "group_concat(DISTINCT modality) AS modalities, min(received) AS first_received "
            f"FROM instances WHERE state = 'stored' {where} GROUP BY study_uid ORDER BY first_received, study_uid",
            args)

    def series(self, study_uid: str, site: str | None = None) -> list[dict]:
        where, args = _site_filter(site)
        return self._all(
            "SELECT study_uid, series_uid, min(modality) AS modality, count(*) AS instances, "
            f"min(received) AS first_received FROM instances WHERE state = 'stored' AND study_uid = ? {where} "
            "GROUP BY series_uid ORDER BY first_received, series_uid", (study_uid, *args))

    def instances(self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None,
                  site: str | None = None) -> list[dict]:
        where, args = "state = 'stored' AND study_uid = ?", [study_uid]
        for column, value in (("series_uid", series_uid), ("sop_uid", sop_uid), ("site", site)):
            if value is not None:
                where += f" AND {column} = ?"
                args.append(value)
        return self._all(f"SELECT * FROM instances WHERE {where} ORDER BY received, sop_uid", tuple(args))

    # forwarding queue
    def enqueue_unforwarded(self) -> int:
        """Queue stored instances that never were (forwarding switched on for an existing store)."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute("INSERT OR IGNORE INTO forward_queue (sop_uid, state, next_at, updated) "
                             "SELECT sop_uid, 'queued', ?, ? FROM instances WHERE state = 'stored'", (now, now))
            return cur.rowcount

    def due(self, now: float, limit: int) -> list[dict]:
        return self._all(
            "SELECT q.id, q.sop_uid, q.attempts, i.study_uid, i.series_uid, i.size, i.sha256, i.pack, i.pack_offset "
            "FROM forward_queue q JOIN instances i USING (sop_uid) "
            "WHERE q.state = 'queued' AND q.next_at <= ? ORDER BY q.next_at, q.id LIMIT ?", (now, limit))

    def next_due(self) -> float | None:
        rows = self._all("SELECT min(next_at) AS t FROM forward_queue WHERE state = 'queued'")
        return rows[0]["t"]

    def forward_done(self, ids: list[int], state: str = "done", error: str = "") -> None:
        now = time.time()
        with self.transaction() as db:
            db.executemany("UPDATE forward_queue SET state = ?, last_error = ?, updated = ? WHERE id = ?",
                           [(state, error, now, i) for i in ids])

    def forward_retry(self, items: list[tuple[int, int, float]], error: str) -> None:
        """items: (id, attempts, next_at)."""
        now = time.time()
        with self.transaction() as db:
            db.executemany("UPDATE forward_queue SET attempts = ?, next_at = ?, last_error = ?, updated = ? "
                           "WHERE id = ?", [(a, t, error, now, i) for i, a, t in items])

    def forward_resume(self, error_prefix: str) -> None:
        """Make rows deferred for this kind of error due now (the upstream answered again)."""
        now = time.time()
        with self.transaction() as db:
            db.execute("UPDATE forward_queue SET next_at = ? WHERE state = 'queued' AND next_at > ? "
                       "AND last_error LIKE ?", (now, now, error_prefix.replace("%", "") + "%"))

    def forward_counts(self) -> dict[str, int]:
        rows = self._all("SELECT state, count(*) AS n FROM forward_queue GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    # certificates
    def certificate(self, study_uid: str, cert_id: str | None = None, batch: str | None = None) -> dict | None:
        if cert_id is not None:
            rows = self._all("SELECT * FROM certificates WHERE study_uid = ? AND id = ?", (study_uid, cert_id))
        else:
            rows = self._all("SELECT * FROM certificates WHERE study_uid = ? AND batch = ?", (study_uid, batch))
        return rows[0] if rows else None

    def certificates(self, study_uid: str, site: str | None = None) -> list[dict]:
        where, args = _site_filter(site)
        return self._all(f"SELECT * FROM certificates WHERE study_uid = ? {where} ORDER BY received",
                         (study_uid, *args))

    def add_certificate(self, row: dict) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO certificates (id, study_uid, batch, site, sha256, size, received) "
                       "VALUES (:id, :study_uid, :batch, :site, :sha256, :size, :received)", row)

    def instance_hashes(self, sop_uids: list[str]) -> dict[str, tuple[str, str]]:
        """sop_uid -> (sha256, study_uid) of the stored ones among sop_uids."""
        out: dict[str, tuple[str, str]] = {}
        for i in range(0, len(sop_uids), 500):
            chunk = sop_uids[i:i + 500]
            rows = self._all(f"SELECT sop_uid, sha256, study_uid FROM instances WHERE state = 'stored' AND sop_uid IN "
                             f"({', '.join('?' for _ in chunk)})", chunk)
            out.update({r["sop_uid"]: (r["sha256"], r["study_uid"]) for r in rows})
        return out


def _site_filter(site: str | None) -> tuple[str, tuple]:
    return ("AND site = ?", (site,)) if site is not None else ("", ())
