"""The store: a folder of instances named only by validated UIDs, plus the ledger.

Writes are atomic: a part is in a temp file in the store's tmp/ folder, fsynced; then, under one lock, a
'pending' ledger row is committed (not flushed), the file is renamed into place, its folder is fsynced and
the row becomes 'stored' (with its forwarding entry) in one flushed transaction, before the answer. After a
crash, recover() removes every temp file and settles each 'pending' row: complete file with the right hash
-> stored, else both go. So the store never holds a partial instance nor a row without its file.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..structure import valid_uid
from .ledger import Ledger

STORED, DUPLICATE, CONFLICT = "stored", "duplicate", "conflict"


class StoreError(Exception):
    pass


@dataclass
class Candidate:
    """A verified part waiting in tmp/ to be committed."""

    temp: Path
    sop_uid: str
    study_uid: str
    series_uid: str
    sop_class_uid: str
    modality: str
    transfer_syntax: str
    sha256: str
    size: int
    outcome: str = ""


def fsync_dir(path: Path) -> None:
    fsync_file(path)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.instances_dir = root / "instances"
        self.tmp_dir = root / "tmp"
        self.certificates_dir = root / "certificates"
        for d in (root, self.instances_dir, self.tmp_dir, self.certificates_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._instances_prefix = os.path.join(str(self.instances_dir), "")  # (str paths: the commit makes many)
        self.ledger = Ledger(root / "ledger.sqlite")
        self.lock = threading.Lock()
        self.syncer = Syncer()

    def close(self) -> None:
        self.syncer.close()
        self.ledger.close()

    def instance_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return Path(self._instance_file(study_uid, series_uid, sop_uid))

    def _instance_file(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        # Paths come only from UIDs that match the UID grammar: digits and dots, no traversal possible.
        if not (valid_uid(study_uid) and valid_uid(series_uid) and valid_uid(sop_uid)):
            raise StoreError("invalid UID")
        return f"{self._instances_prefix}{study_uid}{os.sep}{series_uid}{os.sep}{sop_uid}.dcm"

    def temp_file(self, suffix: str) -> tuple[int, Path]:
        path = self.temp_name(suffix)
        return self.open_temp(path), path

    def temp_name(self, suffix: str) -> Path:
        """A fresh name in tmp/ (not created)."""
        return self.tmp_dir / f"{os.urandom(12).hex()}{suffix}"

    @staticmethod
    def open_temp(path: Path) -> int:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def recover(self, forward: bool = False) -> dict[str, int]:
        """Settle what a crash left behind (call before serving)."""
        removed = 0
        for p in self.tmp_dir.iterdir():
            if p.is_file() or p.is_symlink():
                p.unlink()
                removed += 1
        kept = dropped = 0
        for row in self.ledger.pending():
            path = self.instance_path(row["study_uid"], row["series_uid"], row["sop_uid"])
            if path.is_file() and sha256_file(path) == row["sha256"]:
                self.ledger.mark_stored(row["sop_uid"], forward=forward)
                kept += 1
            else:
                path.unlink(missing_ok=True)
                self.ledger.delete(row["sop_uid"])
                dropped += 1
        return {"temp_removed": removed, "pending_kept": kept, "pending_dropped": dropped}

    def commit(self, candidates: list[Candidate], site: str, forward: bool) -> None:
        """Store verified candidates; sets each one's outcome (stored, duplicate, conflict)."""
        with self.lock:
            known = self.ledger.hashes([c.sop_uid for c in candidates])  # rows in any state
            new: dict[str, Candidate] = {}
            for c in candidates:
                earlier = new.get(c.sop_uid)
                sha = earlier.sha256 if earlier is not None else known.get(c.sop_uid)
                if sha is not None:
                    c.outcome = DUPLICATE if sha == c.sha256 else CONFLICT
                    c.temp.unlink(missing_ok=True)
                else:
                    new[c.sop_uid] = c
            if not new:
                return
            now = time.time()
            finals = {uid: self._instance_file(c.study_uid, c.series_uid, c.sop_uid) for uid, c in new.items()}
            # Not flushed: it guards against the process dying from here on (recover() settles a pending row);
            # the flushed commit below makes it durable with the rows' final state, before the answer. A
            # power loss in between can leave a complete file in place without its row (never served or
            # counted; the client, unanswered, sends it again and it is replaced).
            with self.ledger.transaction(flush=False) as db:
                db.executemany("INSERT INTO instances (sop_uid, study_uid, series_uid, sop_class_uid, modality, "
                               "transfer_syntax, sha256, size, site, received, state) VALUES "
                               "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                               [(c.sop_uid, c.study_uid, c.series_uid, c.sop_class_uid, c.modality,
                                 c.transfer_syntax, c.sha256, c.size, site, now) for c in new.values()])
            folders = {os.path.dirname(final) for final in finals.values()}
            try:
                for folder in folders:
                    if not os.path.isdir(folder):
                        self._make_dirs(Path(folder))
                for uid, c in new.items():
                    os.replace(c.temp, finals[uid])
                for folder in folders:
                    fsync_dir(folder)
            except OSError:
                for uid, c in new.items():
                    Path(finals[uid]).unlink(missing_ok=True)
                    c.temp.unlink(missing_ok=True)
                    self.ledger.delete(c.sop_uid)
                raise
            with self.ledger.transaction() as db:
                db.executemany("UPDATE instances SET state = 'stored' WHERE sop_uid = ?", [(u,) for u in new])
                if forward:
                    db.executemany("INSERT OR IGNORE INTO forward_queue (sop_uid, state, next_at, updated) "
                                   "VALUES (?, 'queued', ?, ?)", [(u, now, now) for u in new])
            for c in new.values():
                c.outcome = STORED

    def _make_dirs(self, folder: Path) -> None:
        if folder.is_dir():
            return
        missing = []
        p = folder
        while not p.is_dir():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            d.mkdir(exist_ok=True)
            fsync_dir(d.parent)  # the new folder's entry must survive a crash too

    def has_file(self, row: dict) -> bool:
        return self.instance_path(row["study_uid"], row["series_uid"], row["sop_uid"]).is_file()

    def open_instance(self, row: dict):
        return open(self.instance_path(row["study_uid"], row["series_uid"], row["sop_uid"]), "rb")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Flushes:
    """The fsyncs of a group of files (the parts of one check that passed), under way in the Syncer's threads:
    one waitable object for the group, not a Future each."""

    __slots__ = ("left", "error", "_lock", "_done")

    def __init__(self, count: int) -> None:
        self.left = count
        self.error: OSError | None = None
        self._lock = threading.Lock()
        self._done = threading.Lock()
        self._done.acquire()  # released when the last file is flushed

    def _finished(self, error: OSError | None) -> None:
        with self._lock:
            if error is not None and self.error is None:
                self.error = error
            self.left -= 1
            last = self.left == 0
        if last:
            self._done.release()

    def result(self) -> None:
        """Wait for every file of the group; raises the first OSError of their flushes."""
        with self._done:
            pass
        if self.error is not None:
            raise self.error


class Syncer:
    """fsync in a few long-lived threads. A part's flush starts as soon as it has passed its check, so it
    overlaps the checks of the parts after it and the rest of the body; flushes under way at once share the
    file system's journal commits. No thread is created per request, and a group of files costs one waitable
    object (Flushes), not a Future and an executor's work item each."""

    def __init__(self, threads: int = 8) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._threads = [threading.Thread(target=self._run, name=f"fsync_{i}", daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        get = self._queue.get
        while (item := get()) is not None:
            flushes, path = item
            try:
                fsync_file(path)
            except OSError as e:
                flushes._finished(e)  # noqa: SLF001
            else:
                flushes._finished(None)  # noqa: SLF001

    def start(self, path: Path) -> Flushes | None:
        return self.start_group([path])

    def start_group(self, paths: list) -> Flushes | None:
        """Start flushing `paths` (each by one of the threads, so their fsyncs overlap); None once closed (the
        caller then flushes them itself)."""
        if not paths:
            return None
        flushes = Flushes(len(paths))
        put = self._queue.put
        with self._lock:  # none after close(): its threads would never take them
            if self._closed:
                return None
            for path in paths:
                put((flushes, path))
        return flushes

    def wait(self, items: list[tuple[Path, Flushes | None]]) -> None:
        """Every file durable on return: each one's flush already started, or started now. Raises OSError."""
        groups: dict[int, Flushes] = {}
        unstarted = []
        for path, flushes in items:
            if flushes is None:
                unstarted.append(path)
            else:
                groups[id(flushes)] = flushes
        if unstarted:
            flushes = self.start_group(unstarted)
            if flushes is None:
                for path in unstarted:
                    fsync_file(path)
            else:
                groups[id(flushes)] = flushes
        for flushes in groups.values():
            flushes.result()

    def close(self) -> None:
        """Finish the flushes under way; later ones are the callers' own."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)  # after every file queued before: each thread leaves when it takes one
        for t in self._threads:
            t.join()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
