"""The store: packs of small instances and a folder of large ones named only by validated UIDs, plus the ledger.

A request's small parts (those held in memory, up to 1 MiB each) that pass their check are appended to one
file of packs/ for the request (Pack), as each group's check answers. Its commit writes the pack's record
after its last instance (Pack.seal: the ledger rows about to be inserted, with their length and sha256) and
flushes the pack once, in the request's own thread; only then are its rows (pack name, offset; size and
sha256 as for any row) inserted, once, directly as 'stored', in one transaction that is not flushed (a
later flushed commit makes it durable; the WAL is written in order). So every row, durable or not, points at
flushed bytes, and an answered request's rows are in its flushed record whatever the ledger lost: recover()
inserts the rows of a pack that no row names from its whole record (each range checked against its hash),
and removes a pack without a whole record (its request was killed before its commit, failed, or held only
duplicates; removed at the end of its request when the process lives). While a packed instance is between
its check and its commit, a later request holding it waits for its outcome (Store._in_flight, in this one
process; after a crash nothing unanswered is left to wait for), so no two records name one instance. A
'pending' row of a pack (written by versions before the record) is still settled by recover() as a file's
is (its range whole and of its hash, else the row goes). Packs are created ahead (Store.new_pack:
PACKS_AHEAD empty files, one fsync of packs/ for them, before any is handed out), so a request's commit
flushes its pack and not packs/ (a pack made on the request's path, none being ready, flushes packs/ as
before). Rows of before packs (pack NULL) name their own file,
as large instances still do: both are read through has_file()/open_instance().

Large parts' writes are atomic: a part is in a temp file in the store's tmp/ folder, its fsync started as soon as its check
passed; then, under one lock, a 'pending' ledger row is committed (not flushed), the file is renamed into
place, its folder is fsynced while the files' own fsyncs finish, and once all are durable the row becomes
'stored' (with its forwarding entry) in one flushed transaction, before the answer. Concurrent requests'
commits are grouped: one pending transaction, one fsync per folder and one flushed transaction for all the
calls that waited for the lock, and the lock is held only up to the renames, so one group's flushes overlap
the next group's renames (Store.commit).

Why the rename may come before the file is durable: the answer and the flushed 'stored' row both wait for
the file's and the folder's fsync, so nothing acknowledged or 'stored' can name a file that is not durable.
What a crash can leave is settled by recover(), which removes every temp file and checks each 'pending' row
against its file (complete file with the right hash -> stored, else both go):
- the process killed after the rename: the file is whole in the page cache, its row is pending (committed
  before the rename), so recover() keeps it if complete; the client, unanswered, sends it again and it is a
  duplicate, never a second copy;
- a power loss: a pending row may be durable (a later flushed commit of any request makes the earlier
  unflushed ones durable too: the WAL is written in order) while its file is missing, partial or complete:
  the hash decides; a renamed file may be durable without its row (never served or counted; the client,
  unanswered, sends it again and it is replaced).
So the store never serves a partial instance nor holds a 'stored' row without its file. The folder's fsync
and the flushed transaction stay one after the other: a 'stored' row durable before its folder's entry
would name a file that a power loss can take away, and recover() looks only at pending rows.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import re
import shutil
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..structure import valid_uid
from .ledger import INSERT_PACKED, RECORD_FIELDS, Ledger

STORED, DUPLICATE, CONFLICT = "stored", "duplicate", "conflict"
PACK_NAME = re.compile(r"[0-9a-f]{24}\.pack")  # the only names a row's pack may hold (no path in it)
# A pack's record (Pack.seal): its rows as JSON, then this tail: the JSON's length, its sha256, RECORD_MAGIC.
RECORD_MAGIC = b"pdpack1\n"
_RECORD_TAIL = struct.Struct("<Q32s8s")


class StoreError(Exception):
    pass


@dataclass
class Candidate:
    """A verified part waiting in tmp/ to be committed."""

    temp: Path | None  # None for a packed part (its bytes are in `pack`, it never had a file)
    sop_uid: str
    study_uid: str
    series_uid: str
    sop_class_uid: str
    modality: str
    transfer_syntax: str
    sha256: str
    size: int
    outcome: str = ""
    pack: Pack | None = None  # its bytes are in this request's pack at `offset` (then `temp` was never written)
    offset: int = 0


class Pack:
    """One request's small instances that passed their check, one after the other in one file of packs/:
    one file created, written and flushed per request instead of one per instance (see docs/receiver.md,
    "Packs"). Created at the first append; appends come from the thread that receives the checks' answers.
    Its commit seals it: its record (the rows it holds) after its last instance, flushed with them. A pack
    that no ledger row points to is removed at the end of its request (finish), or by recover() unless its
    record is whole (then recover() inserts its rows)."""

    def __init__(self, folder: Path) -> None:
        self.name = f"{os.urandom(12).hex()}.pack"
        self.path = folder / self.name
        self.size = 0
        self._fd = -1
        self._lock = threading.Lock()
        self._finished = False
        # Its file exists and its entry in packs/ was flushed (a pack created ahead, Store.new_pack): the
        # commit then need not flush packs/ for it.
        self.entry_durable = False

    @classmethod
    def create(cls, folder: Path) -> Pack:
        """A pack whose (empty) file is created now; its entry is not flushed (the caller flushes packs/)."""
        pack = cls(folder)
        pack._fd = os.open(pack.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return pack

    def append(self, datas: list) -> list[int]:
        """Write these parts' bytes after the pack's end; their offsets. Raises OSError (nothing of them
        then counts as written: a later append writes over what this one may have left)."""
        with self._lock:
            if self._finished:
                raise OSError(errno.EBADF, "the request is over")
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            offsets, at = [], self.size
            for data in datas:
                offsets.append(at)
                at += len(data)
            _pwrite_all(self._fd, datas, self.size)
            self.size = at
            return offsets

    def seal(self, rows: list[tuple], flush: bool = True) -> None:
        """Write the pack's record after its last instance: the ledger rows (RECORD_FIELDS) its commit is
        about to insert, so that recover() can insert them again if the ledger's transaction, not flushed,
        is lost; then fsync the pack (unless `flush` is False: the caller flushes it), making its instances
        and its record durable at once. Raises OSError."""
        payload = json.dumps(rows, separators=(",", ":")).encode()
        record = payload + _RECORD_TAIL.pack(len(payload), hashlib.sha256(payload).digest(), RECORD_MAGIC)
        with self._lock:
            if self._finished or self._fd < 0:
                raise OSError(errno.EBADF, "the request is over")
            _pwrite_all(self._fd, [record], self.size)
            if flush:
                os.fsync(self._fd)

    def unseal(self) -> None:
        """Take the record back (cut, flushed): its rows were not inserted, and an instance it names may be
        stored by a later request once this one's outcome is known; no two records may name one instance
        for recover(). Raises OSError."""
        with self._lock:
            if self._fd >= 0 and not self._finished:
                os.ftruncate(self._fd, self.size)
                os.fsync(self._fd)

    def finish(self, keep: bool) -> None:
        """Close it; removed unless `keep` (a committed row points into it). Only the first call counts."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
                if not keep:
                    self.path.unlink(missing_ok=True)


def _pwrite_all(fd: int, datas: list, offset: int) -> None:
    views = [memoryview(d) for d in datas if len(d)]
    while views:
        n = os.pwritev(fd, views[:512], offset)  # (IOV_MAX is 1024 on Linux)
        offset += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]


class _Slice:
    """A read-only file object over `length` bytes of a pack from `offset` (what open_instance returns)."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # Fail closed on a pack shorter than its row says (never a partial instance served).
            if os.fstat(self._fd).st_size < offset + length:
                raise StoreError("pack shorter than its ledger row")
        except BaseException:
            os.close(self._fd)
            raise
        self._at, self._end = offset, offset + length

    def read(self, n: int = -1) -> bytes:
        left = self._end - self._at
        if n is None or n < 0 or n > left:
            n = left
        out = bytearray()
        while len(out) < n:
            chunk = os.pread(self._fd, n - len(out), self._at + len(out))
            if not chunk:
                raise StoreError("pack shorter than its ledger row")
            out += chunk
        self._at += n
        return bytes(out)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Queued:
    """One commit() call's candidates, waiting to be committed with those of the calls around it."""

    __slots__ = ("candidates", "site", "forward", "flushes", "taken", "done", "error")

    def __init__(self, candidates: list[Candidate], site: str, forward: bool, flushes: list[Flushes]) -> None:
        self.candidates, self.site, self.forward, self.flushes = candidates, site, forward, flushes
        self.taken = False  # in a group (under the lock)
        self.done = threading.Event()  # its group's outcome is known (one Event per call, set by the group)
        self.error: BaseException | None = None


def fsync_dir(path: Path) -> None:
    fsync_file(path)


class Store:
    # Packs created ahead (new_pack): up to this many empty files of packs/ wait for requests, created and
    # flushed with one fsync of packs/ for them all by the "packs" thread when half of them are taken.
    PACKS_AHEAD = 16

    def __init__(self, root: Path) -> None:
        self.root = root
        self.instances_dir = root / "instances"
        self.tmp_dir = root / "tmp"
        self.packs_dir = root / "packs"
        self.certificates_dir = root / "certificates"
        for d in (root, self.instances_dir, self.tmp_dir, self.packs_dir, self.certificates_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._instances_prefix = os.path.join(str(self.instances_dir), "")  # (str paths: the commit makes many)
        self.ledger = Ledger(root / "ledger.sqlite")
        self.lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queued: list[_Queued] = []  # commit() calls waiting for the lock (group commit)
        self._in_flight: dict[str, threading.Event] = {}  # sop_uid -> its group's done, from rename to outcome
        self.syncer = Syncer()
        self._spares: list[Pack] = []  # packs created ahead, their entries in packs/ flushed
        self._spares_cond = threading.Condition()
        self._spares_thread: threading.Thread | None = None  # started by the first new_pack()
        self._closing = False
        self._making = threading.Lock()  # held while the "packs" thread creates and flushes (recover() waits)

    def close(self) -> None:
        with self._spares_cond:
            self._closing = True
            self._spares_cond.notify_all()
            thread = self._spares_thread
        if thread is not None:
            thread.join()
        for pack in self._spares:
            pack.finish(keep=False)  # (empty: nothing of them was ever handed out)
        self._spares = []
        self.syncer.close()
        self.ledger.close()

    def instance_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return Path(self._instance_file(study_uid, series_uid, sop_uid))

    def _instance_file(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        # Paths come only from UIDs that match the UID grammar: digits and dots, no traversal possible.
        if not (valid_uid(study_uid) and valid_uid(series_uid) and valid_uid(sop_uid)):
            raise StoreError("invalid UID")
        return f"{self._instances_prefix}{study_uid}{os.sep}{series_uid}{os.sep}{sop_uid}.dcm"

    def new_pack(self) -> Pack:
        """A pack for one request's small instances: one created ahead when there is one (its file and its
        flushed entry in packs/ already there: no create on the request's path, no packs/ fsync in its
        commit), else a new one whose file its first append creates and whose commit flushes packs/."""
        with self._spares_cond:
            pack = self._spares.pop() if self._spares else None
            if not self._closing and len(self._spares) <= self.PACKS_AHEAD // 2:
                if self._spares_thread is None:
                    self._spares_thread = threading.Thread(target=self._make_spares, name="packs", daemon=True)
                    self._spares_thread.start()
                self._spares_cond.notify()
        return pack if pack is not None else Pack(self.packs_dir)

    def _make_spares(self) -> None:
        """The "packs" thread: tops the packs created ahead up to PACKS_AHEAD whenever half are taken. They
        are handed out only after packs/ was flushed with their entries: a row committed into one names a
        file whose entry is durable (its bytes are flushed by its request's commit, as for any pack). An
        empty one left by a crash is a pack no row names: recover() removes it."""
        while True:
            with self._spares_cond:
                while not self._closing and len(self._spares) > self.PACKS_AHEAD // 2:
                    self._spares_cond.wait()
                if self._closing:
                    return
                wanted = self.PACKS_AHEAD - len(self._spares)
            made: list[Pack] = []
            with self._making:
                try:
                    for _ in range(wanted):
                        made.append(Pack.create(self.packs_dir))
                    fsync_dir(self.packs_dir)
                except OSError:
                    for pack in made:
                        pack.finish(keep=False)
                    made = []
                else:
                    for pack in made:
                        pack.entry_durable = True
                with self._spares_cond:
                    if self._closing:
                        for pack in made:
                            pack.finish(keep=False)
                        return
                    self._spares.extend(made)
                    if not made:  # (requests make their own packs meanwhile; try again later)
                        self._spares_cond.wait(1.0)

    def pack_path(self, name: str) -> Path:
        if not PACK_NAME.fullmatch(name or ""):
            raise StoreError("invalid pack name")
        return self.packs_dir / name

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
        for row in self.ledger.pending():  # (a file's, or a pack's whose request died before its 'stored' rows)
            if row.get("pack"):
                complete = self.has_file(row) and _sha256_slice(self, row) == row["sha256"]
            else:
                path = self.instance_path(row["study_uid"], row["series_uid"], row["sop_uid"])
                complete = path.is_file() and sha256_file(path) == row["sha256"]
                if not complete:
                    path.unlink(missing_ok=True)
            if complete:
                self.ledger.mark_stored(row["sop_uid"], forward=forward)
                kept += 1
            else:
                self.ledger.delete(row["sop_uid"])
                dropped += 1
        # A pack no row points to. With a whole record (Pack.seal) its request's commit flushed it, and the
        # ledger's transaction after it was lost (a power loss: it was not flushed) or never ran (killed in
        # between): its rows are inserted from the record, each only if its range is whole with its hash.
        # Without one its request did not commit (killed while appending, all duplicates, a failed request),
        # or every row into it is gone: it goes. Its bytes were never served.
        packs = restored = 0
        with self._making:  # (never a pack the "packs" thread is creating: called before serving, but safe)
            named = self.ledger.pack_names()
            with self._spares_cond:
                named |= {pack.name for pack in self._spares}  # (created ahead by this process: not a crash's)
            for p in sorted(self.packs_dir.iterdir()):
                if p.name in named or not (p.is_file() or p.is_symlink()):
                    continue
                rows = self._recorded_rows(p) if PACK_NAME.fullmatch(p.name) and p.is_file() else []
                if rows:
                    self.ledger.insert_stored(rows, p.name, forward=forward)
                    restored += len(rows)
                else:
                    p.unlink()
                    packs += 1
        return {"temp_removed": removed, "pending_kept": kept, "pending_dropped": dropped, "packs_removed": packs,
                "pack_rows_restored": restored}

    def _recorded_rows(self, path: Path) -> list[tuple]:
        """The rows of a pack's record (Pack.seal) whose ranges are whole before it and hash to their sha256,
        and whose SOP Instance UIDs have no row yet; [] without a whole record."""
        try:
            with open(path, "rb") as f:
                end = f.seek(0, os.SEEK_END)
                if end < _RECORD_TAIL.size:
                    return []
                f.seek(end - _RECORD_TAIL.size)
                length, digest, magic = _RECORD_TAIL.unpack(f.read(_RECORD_TAIL.size))
                start = end - _RECORD_TAIL.size - length
                if magic != RECORD_MAGIC or start < 0:
                    return []
                f.seek(start)
                payload = f.read(length)
                if hashlib.sha256(payload).digest() != digest:
                    return []
                rows = []
                for row in json.loads(payload):
                    record = dict(zip(RECORD_FIELDS, row))
                    if not (len(row) == len(RECORD_FIELDS)
                            and all(valid_uid(record[k]) for k in ("sop_uid", "study_uid", "series_uid"))
                            and isinstance(record["size"], int) and isinstance(record["pack_offset"], int)
                            and 0 <= record["pack_offset"] <= start - record["size"] and record["size"] >= 0):
                        continue
                    f.seek(record["pack_offset"])
                    if hashlib.sha256(f.read(record["size"])).hexdigest() == record["sha256"]:
                        rows.append(tuple(row))
        except (OSError, ValueError):
            return []
        known = self.ledger.hashes([row[0] for row in rows])
        return [row for row in rows if row[0] not in known]

    def commit(self, candidates: list[Candidate], site: str, forward: bool, marks: list | None = None,
               flushes: list[Flushes] | None = None) -> None:
        """Store verified candidates; sets each one's outcome (stored, duplicate, conflict). Raises OSError
        (every candidate of the call then failed: its temp file and any row or final file are gone).

        Group commit: the calls that arrive while the lock is held wait for it, and the next one to take it
        commits everything queued since in one step (one pending transaction, one set of renames, one fsync
        per folder, one flushed transaction): concurrent requests share those flushes. The lock covers only
        the duplicate checks, the pending rows and the renames; the group's fsyncs and its flushed
        transaction run after it, so the next group renames while they run (its flushes then share the
        file system's journal commits). An instance whose group is between its rename and its outcome is
        waited for by a later group that holds it again (it may yet fail and be removed): never a
        'duplicate' answered for an instance that is not durable. Each call returns only when its own
        candidates are durable (or failed), so "acknowledged => durable" holds per request.

        `flushes`: the candidates' own flushes, started (Syncer.start_missing) and perhaps not finished: the
        files are renamed into place while they run, and the commit waits for them together with the folders'
        fsync (they share the file system's journal commit), before the flushed transaction. Without it the
        files must be durable already. Packed candidates: each pack gets its record and one fsync (for a
        group of one request, in its own thread), then their rows are inserted once, as 'stored', in the
        group's one transaction (_finish): a row always names flushed bytes, and nothing names a pack
        before that transaction."""
        entry = _Queued(candidates, site, forward, flushes or [])
        with self._queue_lock:
            self._queued.append(entry)
        group = None
        with self.lock:
            if not entry.taken:  # the first to get the lock commits what every waiting call queued
                with self._queue_lock:
                    group, self._queued = self._queued, []
                for q in group:
                    q.taken = True
                try:
                    staged = self._stage(group, marks)
                except BaseException as e:
                    self._settle(group, e)
                    raise
        if group is not None:  # the lock is free: the next group renames while this one's flushes run
            try:
                self._finish(group, *staged, marks)
            except BaseException as e:
                self._settle(group, e)
            else:
                self._settle(group, None)
        entry.done.wait()
        if marks is not None:
            marks.append(("committed", time.perf_counter()))
        if entry.error is not None:
            raise entry.error

    def _settle(self, group: list[_Queued], error: BaseException | None) -> None:
        with self._queue_lock:
            for q in group:
                for c in q.candidates:
                    if self._in_flight.get(c.sop_uid) is q.done:
                        del self._in_flight[c.sop_uid]
        for q in group:
            q.error = error
            q.done.set()

    def _stage(self, group: list[_Queued], marks: list | None):
        """Under the lock: the group's pending rows and renames (see commit()); returns what _finish needs."""
        candidates = [(c, q) for q in group for c in q.candidates]
        # An instance of a group still in its flushes: wait for its outcome (it may yet fail and be removed).
        with self._queue_lock:
            waits = {id(e): e for c, _ in candidates if (e := self._in_flight.get(c.sop_uid)) is not None}
        for e in waits.values():
            e.wait()
        known = self.ledger.hashes([c.sop_uid for c, _ in candidates])  # rows in any state
        new: dict[str, tuple[Candidate, _Queued]] = {}
        for c, q in candidates:
            earlier = new.get(c.sop_uid)
            sha = earlier[0].sha256 if earlier is not None else known.get(c.sop_uid)
            if sha is not None:
                c.outcome = DUPLICATE if sha == c.sha256 else CONFLICT
                if c.temp is not None:  # (a packed part never had a file)
                    c.temp.unlink(missing_ok=True)
            else:
                new[c.sop_uid] = (c, q)
        if not new:
            return new, {}, set(), 0.0
        now = time.time()
        packed = {uid: v for uid, v in new.items() if v[0].pack is not None}  # rows written in _finish
        files = {uid: v for uid, v in new.items() if v[0].pack is None}
        with self._queue_lock:
            for uid, (_, q) in packed.items():
                self._in_flight[uid] = q.done
        finals = {uid: self._instance_file(c.study_uid, c.series_uid, c.sop_uid) for uid, (c, _) in files.items()}
        folders: set[str] = set()  # (the large files' folders; packs/ for a new pack is flushed by _seal)
        if not files:
            return new, finals, folders, now
        # Not flushed: it guards against the process dying from here on (recover() settles a pending row);
        # the flushed commit below makes it durable with the rows' final state, before the answer. A
        # power loss in between can leave a complete file in place without its row (never served or
        # counted; the client, unanswered, sends it again and it is replaced).
        with self.ledger.transaction(flush=False) as db:
            db.executemany("INSERT INTO instances (sop_uid, study_uid, series_uid, sop_class_uid, modality, "
                           "transfer_syntax, sha256, size, site, received, state) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                           [(c.sop_uid, c.study_uid, c.series_uid, c.sop_class_uid, c.modality,
                             c.transfer_syntax, c.sha256, c.size, q.site, now) for c, q in files.values()])
        with self._queue_lock:
            for uid, (_, q) in files.items():
                self._in_flight[uid] = q.done
        if marks is not None:
            marks.append(("pending_rows", time.perf_counter()))
        file_folders = {os.path.dirname(final) for final in finals.values()}
        folders |= file_folders
        try:
            for folder in file_folders:
                if not os.path.isdir(folder):
                    self._make_dirs(Path(folder))
            for uid, (c, _) in files.items():
                os.replace(c.temp, finals[uid])
        except OSError:
            self._undo(files, finals)
            raise
        if marks is not None:
            marks.append(("renamed", time.perf_counter()))
        return new, finals, folders, now

    def _finish(self, group: list[_Queued], new: dict, finals: dict, folders: set, now: float,
                marks: list | None) -> None:
        """Outside the lock: make the group durable, then insert or mark its rows 'stored' in one transaction.

        Packed instances: each pack gets its record (Pack.seal: the rows about to be inserted, after its
        last instance) and one fsync for its instances and record together (packs/ too for a pack whose
        entry is not known durable). Large files: their folders are flushed and their own flushes waited
        for (their pending rows were written by _stage, before their renames). Then one transaction inserts
        the packed rows directly as 'stored', marks the files' rows 'stored' and queues the forwarding. It
        is flushed when the group has large files (their 'stored' rows must be durable before the answer);
        a group of packs alone does not flush it: every one of its rows is in a flushed record already, and
        recover() inserts the rows of a pack that no row names from its record (a power loss that took the
        transaction), or removes the pack (no record, or a torn one: the request was never answered)."""
        if not new:
            return
        packed: dict[int, tuple[Pack, list[tuple]]] = {}
        files = []
        for uid, (c, q) in new.items():
            if c.pack is None:
                files.append(uid)
            else:
                packed.setdefault(id(c.pack), (c.pack, []))[1].append(
                    (c.sop_uid, c.study_uid, c.series_uid, c.sop_class_uid, c.modality, c.transfer_syntax,
                     c.sha256, c.size, q.site, now, c.offset))
        try:
            for folder in folders:
                fsync_dir(folder)
            if folders and marks is not None:
                marks.append(("folder_fsync", time.perf_counter()))
            if packed:
                self._seal(list(packed.values()))
                if marks is not None:
                    marks.append(("flushed", time.perf_counter()))
            # The files' own flushes (every queued call's, also of duplicates: harmless) ran meanwhile.
            for q in group:
                self.syncer.wait_all(q.flushes)
        except OSError:
            self._undo(new, finals)
            raise
        try:
            with self.ledger.transaction(flush=bool(files)) as db:
                if packed:
                    db.executemany(INSERT_PACKED,
                                   [(*row, pack.name) for pack, rows in packed.values() for row in rows])
                if files:
                    db.executemany("UPDATE instances SET state = 'stored' WHERE sop_uid = ?", [(u,) for u in files])
                self._enqueue_forwarding(db, new, now)
        except Exception:  # (not a kill: then the records stand, and recover() inserts their rows)
            for pack, _ in packed.values():
                with contextlib.suppress(OSError):
                    pack.unseal()  # before the group's outcome is known (commit: _settle)
            raise
        if marks is not None:
            marks.append(("ledger_commit", time.perf_counter()))
        for c, _ in new.values():
            c.outcome = STORED

    def _seal(self, packs: list[tuple[Pack, list[tuple]]]) -> None:
        """Each pack's record written and the pack flushed: in this thread for one pack (a request's commit
        alone: no hand-off), side by side in the syncer's threads for several. Raises OSError."""
        if len(packs) == 1:
            pack, rows = packs[0]
            pack.seal(rows)
        else:
            for pack, rows in packs:
                pack.seal(rows, flush=False)
            self.syncer.wait([(pack.path, None) for pack, _ in packs])
        if not all(pack.entry_durable for pack, _ in packs):
            fsync_dir(self.packs_dir)  # (a pack made on a request's path: its new entry)

    @staticmethod
    def _enqueue_forwarding(db, new: dict, now: float) -> None:
        forwarded = [u for u, (_, q) in new.items() if q.forward]
        if forwarded:
            db.executemany("INSERT OR IGNORE INTO forward_queue (sop_uid, state, next_at, updated) "
                           "VALUES (?, 'queued', ?, ?)", [(u, now, now) for u in forwarded])

    def _undo(self, new: dict, finals: dict) -> None:
        for uid, (c, _) in new.items():
            if c.pack is not None:
                continue  # no row yet; its pack goes at the end of its request
            Path(finals[uid]).unlink(missing_ok=True)
            c.temp.unlink(missing_ok=True)
            self.ledger.delete(c.sop_uid)

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
        """The row's bytes are there: its own file (rows of before packs, large instances) or its whole
        range of its pack."""
        if row.get("pack"):
            try:
                return self.pack_path(row["pack"]).stat().st_size >= row["pack_offset"] + row["size"]
            except OSError:
                return False
        return self.instance_path(row["study_uid"], row["series_uid"], row["sop_uid"]).is_file()

    def open_instance(self, row: dict):
        """A binary file object of the instance's bytes (read, close, a context manager)."""
        if row.get("pack"):
            return _Slice(self.pack_path(row["pack"]), row["pack_offset"], row["size"])
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
            flushes, fd = item
            try:
                if isinstance(fd, OSError):
                    raise fd  # the file could not be opened when its flush was queued
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                flushes._finished(e)  # noqa: SLF001
            else:
                flushes._finished(None)  # noqa: SLF001

    def start(self, path: Path) -> Flushes | None:
        return self.start_group([path])

    def start_group(self, paths: list) -> Flushes | None:
        """Start flushing `paths` (each by one of the threads, so their fsyncs overlap); None once closed (the
        caller then flushes them itself). Each file is opened here and flushed through that descriptor, so it
        may be renamed (Store.commit) while its flush is under way."""
        if not paths:
            return None
        flushes = Flushes(len(paths))
        put = self._queue.put
        with self._lock:  # none after close(): its threads would never take them
            if self._closed:
                return None
            for path in paths:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except OSError as e:
                    fd = e  # reported by the group's result()
                put((flushes, fd))
        return flushes

    def start_missing(self, items: list[tuple[Path, Flushes | None]]) -> list[Flushes]:
        """The flushes of these files, those not yet started started now (by path: before any rename); wait
        for them with wait_all(). Raises OSError (a file that could not be flushed, once closed)."""
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
        return list(groups.values())

    @staticmethod
    def wait_all(groups: list[Flushes]) -> None:
        """Every file of these groups durable on return. Raises the first OSError."""
        for flushes in groups:
            flushes.result()

    def wait(self, items: list[tuple[Path, Flushes | None]]) -> None:
        """Every file durable on return: each one's flush already started, or started now. Raises OSError."""
        self.wait_all(self.start_missing(items))

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


def _sha256_slice(store: Store, row: dict) -> str:
    h = hashlib.sha256()
    with store.open_instance(row) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
