"""Folders in, folders out (the CLI's `deidentify`): the file system side of the native host.

Inputs are only ever opened for reading. Files go in groups to a worker (this process, a process of
--jobs N, or a Dask worker: py_deid.distributed), which writes each output to a temporary file in the run's
staging folder inside OUT and flushes the group to disk together. Only the process that runs the batch then
gives each output its final name, group after group in input order: an output either is complete or does not
exist, a group that a lost worker had half done is simply done again (its temporary files are never named),
and the report and the outputs are the same whatever ran the groups. Files are streamed: at most a small
window of groups is in flight, whatever the size of the folder.

Pixel work always runs in worker processes (--jobs 1 in one), each replaced by a fresh one when its resident
size after a file passes Job.worker_limit_mb (_Lanes): what a process holds grows from file to file (the C heap,
the OCR engine's buffers), and a large frame's working set comes on top of it. A worker that passes the limit
stops after that file; the rest of its group goes to its replacement, and the group is named as one.

One file is bounded too: a large input is memory-mapped rather than read (Job.map_from), pydicom leaves its
large values unread, and the de-identifier hands back the output in parts (InstanceResult.parts), Pixel Data
as a view of the mapped input. _Commit writes and hashes the parts in chunks and lets go of the input's pages
after each chunk, so that one instance costs a few chunks of memory beyond its header, whatever its size.
"""

from __future__ import annotations

import concurrent.futures as cf
import errno
import hashlib
import itertools
import mmap
import os
import queue
import re
import secrets
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import report as _report
from .instance import DONE, FAILED, SKIPPED, Deidentifier, InstanceResult, Problem, run_sync
from .encoder import Made
from .options import Settings


_sync = getattr(os, "fdatasync", os.fsync)  # fdatasync where the platform has it
MAP_FROM = 8 << 20  # inputs of this size and more are memory-mapped, not read (see the module doc)
CHUNK = 4 << 20  # an output is written and hashed in pieces of at most this size
WORKER_LIMIT_MB = 85  # see Job.worker_limit_mb
_UID = re.compile(r"[0-9.]{1,64}", re.ASCII)


@dataclass(frozen=True)
class Job:
    out: Path
    settings: Settings
    key: bytes
    jobs: int = 1
    ocr_threads: int = 1  # OCR engines per process, reading one image's independent readings at once
    # The command line's pixel work: from the first input of LARGE_INPUT bytes on, the process keeps large
    # blocks mapped so that freed frames go back (py_deid.hosts.native.return_large_blocks). Not before: on
    # small images every frame would be mapped and unmapped, a tenth more time for `auto` on textless images.
    large_blocks_back: bool = False
    map_from: int = MAP_FROM  # inputs of this many bytes and more are memory-mapped (0: all but empty ones)
    # Pixel work runs in worker processes (--jobs 1 too), and one whose resident size after a file is above this
    # many MB is replaced by a fresh one (0: never). What a process holds grows from file to file (the C heap,
    # the OCR engine's buffers), and its next large frame's working set (~60 MB) comes on top: a fresh
    # worker holds ~60 MB, so it stays below 150 MB (the issue 15 bound) with a margin. See docs/performance.md.
    worker_limit_mb: int = WORKER_LIMIT_MB


LARGE_INPUT = 256 << 10  # bytes: see Job.large_blocks_back


@dataclass(frozen=True)
class Item:
    name: str  # as the user named it (local report only)
    path: Path | None
    problem: Problem | None = None


def iter_inputs(paths: list[str], exclude: Path | None = None) -> Iterator[Item]:
    """Every file under the inputs, folders recursively; loops and unreadable folders become items too."""
    excluded = os.path.realpath(exclude) if exclude else None
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        p = Path(raw)
        if not os.path.lexists(p):
            yield Item(raw, None, Problem("missing", "no such file or folder"))
        elif p.is_dir():
            yield from _walk(p, excluded, seen_dirs)
        elif p.is_file():
            yield Item(raw, p)
        elif p.is_symlink():
            yield Item(raw, None, Problem("broken-link", "symbolic link to nothing"))
        else:
            yield Item(raw, None, Problem("not-a-file", "not a regular file"))


def _walk(root: Path, excluded: str | None, seen: set[tuple[int, int]]) -> Iterator[Item]:
    try:
        st = root.stat()
    except OSError as e:
        yield Item(str(root), None, Problem("unreadable", f"folder cannot be read ({e.strerror})"))
        return
    ident = (st.st_dev, st.st_ino)
    if ident in seen:
        yield Item(str(root), None, Problem("link-loop", "folder reached twice through links; skipped"))
        return
    seen.add(ident)
    if excluded and os.path.realpath(root) == excluded:
        return
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as e:
        yield Item(str(root), None, Problem("unreadable", f"folder cannot be read ({e.strerror})"))
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=True):
                yield from _walk(path, excluded, seen)
            elif entry.is_file(follow_symlinks=True):
                yield Item(entry.path, path)
            elif entry.is_symlink():
                yield Item(entry.path, None, Problem("broken-link", "symbolic link to nothing"))
            else:
                yield Item(entry.path, None, Problem("not-a-file", "not a regular file"))
        except OSError as e:
            yield Item(entry.path, None, Problem("unreadable", f"cannot be read ({e.strerror})"))


def output_name(result: InstanceResult) -> str:
    """OUT-relative name of an output. The UIDs come from the de-identifier (keyed 2.25 UIDs or, with
    retain_uids, validated originals); anything else never becomes a path."""
    for uid in (result.study_uid, result.series_uid, result.sop_uid):
        if not _UID.fullmatch(uid or ""):
            raise ValueError("invalid UID for an output path")
    return f"{result.study_uid}/{result.series_uid}/{result.sop_uid}.dcm"


@dataclass(frozen=True)
class Staged:
    """An output on disk under a temporary name in the staging folder, waiting for its final name."""
    tmp: str     # file name inside the staging folder
    target: str  # OUT-relative final name


# What a worker returns for a group: per input its report entry and, for an output, where it is staged.
GroupResult = list[tuple[dict, Staged | None]]


class _Commit:
    """The worker's half of a group: each output is written to a temporary file in the staging folder, and
    flush() puts the group's files on disk together (concurrent fdatasync calls share the file system's journal
    commits, where one after another each waits for its own): in a thread beside the next group (--jobs 1), in
    the batch process (--jobs N) or in the Dask worker. Naming is left to _Outputs."""

    FILES = 32  # files in a group

    def __init__(self, staging: Path, ahead: _Ahead | None = None) -> None:
        self.staging = staging
        self.ahead = ahead  # temporary files created ahead in a thread (in-process header path), or None
        self.attempt = secrets.token_hex(8)  # a retried group never meets the files of an earlier attempt
        self.results: GroupResult = []
        self.written: list[tuple[int, str, str]] = []  # (index in results, temporary file, final name)
        self.timing: dict | None = None  # when the batch is timed (TIMELINE): when and where the group was made
        # Set by a worker whose resident size passed Job.worker_limit_mb: it stopped after the files in results
        # (the rest of the group goes to its replacement) and is to be replaced.
        self.retire = False

    def done(self, entry: dict) -> None:
        self.results.append((entry, None))

    def add(self, item: Item, result: InstanceResult, release: Callable[[], None] | None = None) -> None:
        """Write a result's output (InstanceResult.output, or its parts) to a temporary file, hashing it as it
        goes; `release` is called after each chunk taken from a view of the input (the input's pages go)."""
        try:
            target = output_name(result)
        except ValueError as e:
            return self.done(_report.entry(item.name, _failed(result, "output", str(e)), None))
        made = self.ahead.take() if self.ahead is not None else None
        # A string, not a Path: it goes back to the batch process with the group (pickled), for its flush.
        tmp, fd = made if made is not None else (
            os.path.join(self.staging, f"{self.attempt}-{len(self.results)}.part"), None)
        parts = result.parts if result.parts is not None else [result.output]
        result.output = result.parts = None  # on disk next: a group holds names, not bytes
        try:
            digest = _write(tmp, parts, release, fd)
        except OSError as e:
            _unlink(tmp)
            return self.done(_not_written(item, result, e))
        finally:
            del parts
        self.written.append((len(self.results), tmp, target))
        self.done(_report.entry(item.name, result, None, digest))

    def flush(self, pool: cf.ThreadPoolExecutor | None = None) -> GroupResult:
        """Flush the group's outputs to disk (in `pool`'s threads, or a pool of its own); an output whose flush
        failed is reported and removed."""
        results = self.results
        for (i, tmp, target), error in zip(self.written, _sync_all([tmp for _, tmp, _ in self.written], pool)):
            if error is None:
                results[i] = (results[i][0], Staged(os.path.basename(tmp), target))
            else:
                _unlink(tmp)
                results[i] = (_not_written_entry(results[i][0], error), None)
        self.results, self.written = [], []
        return results

    def abandon(self) -> None:
        for _, tmp, _ in self.written:
            _unlink(tmp)
        self.results, self.written = [], []


class _Ahead:
    """Temporary files of the staging folder created empty ahead of need, in one of the run's sync threads (the
    in-process header path, --jobs 1): creating a file costs the file system an inode and a directory entry
    (25-40 us of CPU here) and can wait for its journal on a busy disk (0.5-2.7 ms a file, measured under load);
    that then happens beside the de-identification, not in it. The files are only ever written by _Commit.add and
    named like its own (FILE.part, never a final name); those left over are closed here and removed with the
    staging folder. A file is taken only when one is ready: never a wait, _Commit creates its own otherwise."""

    def __init__(self, staging: Path, pool: cf.ThreadPoolExecutor, count: int) -> None:
        self.staging, self.pool, self.count = str(staging), pool, count
        self.prefix = secrets.token_hex(8) + "-ahead-"
        self.serial = itertools.count()
        self.ready: deque[tuple[str, int]] = deque()  # append and popleft are atomic: no lock
        self.filling: cf.Future | None = None
        self.closed = False

    def take(self) -> tuple[str, int] | None:
        """A file created ahead and open for writing (its path and descriptor), or None."""
        if (self.filling is None or self.filling.done()) and len(self.ready) < self.count // 2 and not self.closed:
            self.filling = self.pool.submit(self._fill, self.count - len(self.ready))
        try:
            return self.ready.popleft()
        except IndexError:
            return None

    def _fill(self, n: int) -> None:
        for _ in range(n):
            if self.closed:
                return
            path = os.path.join(self.staging, f"{self.prefix}{next(self.serial)}.part")
            try:
                fd = os.open(path, _CREATE, 0o666)
            except OSError:
                return  # _Commit creates its own, and reports what goes wrong then
            self.ready.append((path, fd))

    def settle(self) -> None:
        """Wait for a creation in flight (none runs after this until the next take())."""
        if self.filling is not None:
            cf.wait([self.filling])

    def close(self) -> None:
        self.closed = True
        self.settle()
        while self.ready:
            path, fd = self.ready.popleft()
            os.close(fd)
            _unlink(path)


# The flags open(path, "wb") gives a new file (binary on Windows, not inherited), exclusive: never another's file.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class _Outputs:
    """The batch's half: the staging folder, and the final names given group after group in input order.
    Only this object names outputs, so each is named at most once whatever happened to the workers."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.staging = out / f".py-deid-staging-{secrets.token_hex(8)}"
        self.staging.mkdir(parents=True)
        # Names as strings: a Path made and parsed for each of two names of every output was a third of this
        # process's CPU in naming.
        self._out, self._staging = str(out) + os.sep, str(self.staging) + os.sep

    def name(self, group: GroupResult) -> list[dict]:
        return [self._name(entry, staged) if staged is not None else entry for entry, staged in group]

    def _name(self, entry: dict, staged: Staged) -> dict:
        tmp, target = self._staging + staged.tmp, self._out + staged.target
        try:
            if _exists(target):
                _unlink(tmp)
                if _sha256_file(target) != entry["sha256"]:
                    return _failed_entry(entry, "conflict", "another input produced a different instance with the "
                                                            "same UID")
                entry["warnings"].append("the same instance was already written by another input")
            else:
                try:
                    os.replace(tmp, target)
                except FileNotFoundError:
                    if not _exists(tmp):
                        raise
                    os.makedirs(os.path.dirname(target), exist_ok=True)  # only for the first file of a series
                    os.replace(tmp, target)
        except OSError as e:
            _unlink(tmp)
            return _not_written_entry(entry, e)
        entry["output"] = staged.target
        return entry

    def close(self) -> None:
        # Whatever is left (groups of a lost worker, an interrupted run) was never named: it goes.
        shutil.rmtree(self.staging, ignore_errors=True)


def _write(path: str, parts: list, release: Callable[[], None] | None, fd: int | None = None) -> str:
    """Write the parts one after another to a new file (or to `fd`, that file created empty ahead and open: it
    is closed here); the sha256 of what was written. Parts are never joined; a large one is written and hashed
    in chunks, a made one (a masked frame) made as it is reached."""
    digest = hashlib.sha256()
    with open(path if fd is None else fd, "wb") as fh:
        for part in parts:
            if type(part) is Made:
                part = part()
                if release is not None:
                    release()  # the input's frame it was made from
            if len(part) <= CHUNK:
                fh.write(part)
                digest.update(part)
                continue
            view = memoryview(part)
            for start in range(0, len(view), CHUNK):
                chunk = view[start:start + CHUNK]
                fh.write(chunk)
                digest.update(chunk)
                if release is not None and type(part) is memoryview:
                    release()
            view.release()
    return digest.hexdigest()


class _Input:
    """An input file's bytes: read whole, or (from Job.map_from bytes on) a read-only memory map, whose pages
    release() lets go of (they are read again from the page cache if they are looked at again)."""

    def __init__(self, path: Path, map_from: int) -> None:
        self.map: mmap.mmap | None = None
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size and size >= map_from:
                try:
                    self.map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                except (OSError, ValueError):  # a file system without mmap: read it
                    self.map = None
            self.data = self.map if self.map is not None else fh.read()

    def release(self) -> None:
        if self.map is not None and _DONTNEED is not None:
            self.map.madvise(_DONTNEED)

    def close(self) -> None:
        self.data = None
        if self.map is not None:
            try:
                self.map.close()
            except BufferError:  # a view is still held somewhere: the map goes when it does
                pass
            self.map = None


_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _sync_all(paths: list[str], pool: cf.ThreadPoolExecutor | None = None) -> list[OSError | None]:
    """fdatasync each file, concurrently (in `pool`, the batch's threads kept for the run, or threads started
    for these files); the error of each (None when it is on disk)."""
    def sync(path: str) -> OSError | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            return e
        try:
            _sync(fd)
            return None
        except OSError as e:
            return e
        finally:
            os.close(fd)

    def sync_each(part: list[str]) -> list[OSError | None]:
        return [sync(p) for p in part]

    if len(paths) <= 1:
        return sync_each(paths)
    # A few files a thread, one after another: as many calls at once as threads, and a task a thread rather
    # than one a file (a group of 32 in 8 tasks: 0.06 ms of CPU a file, 0.1 in 32 tasks, and no longer).
    size = -(-len(paths) // SYNC_THREADS)
    parts = [paths[i:i + size] for i in range(0, len(paths), size)]
    if pool is not None:
        return [e for part in pool.map(sync_each, parts) for e in part]
    with cf.ThreadPoolExecutor(len(parts), thread_name_prefix="py-deid-sync") as own:
        return [e for part in own.map(sync_each, parts) for e in part]


SYNC_THREADS = 8  # concurrent fdatasync calls at most


def _sync_pool() -> cf.ThreadPoolExecutor:
    """The sync threads of one run: started as they are first needed and kept for every group after (starting
    threads for each group of 32 files cost the batch process more CPU than naming the files)."""
    return cf.ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="py-deid-sync")


def _unlink(path: Path | str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _exists(path: str) -> bool:
    """Path.exists() of a string: False where nothing is there, any other error raised."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        if e.errno in (errno.EBADF, errno.ELOOP):
            return False
        raise
    except ValueError:
        return False
    return True


def _not_written(item: Item, result: InstanceResult, e: OSError) -> dict:
    return _report.entry(item.name, _failed(result, "output-not-written", _why_not_written(e)), None)


def _not_written_entry(entry: dict, e: OSError) -> dict:
    return _failed_entry(entry, "output-not-written", _why_not_written(e))


def _why_not_written(e: OSError) -> str:
    return f"output cannot be written ({e.strerror or type(e).__name__})"


def _failed(result: InstanceResult, code: str, message: str) -> InstanceResult:
    return InstanceResult(status=FAILED, problem=Problem(code, message), sop_class_uid=result.sop_class_uid,
                          modality=result.modality)


def _failed_entry(entry: dict, code: str, message: str) -> dict:
    """The entry of a de-identified instance whose output could not be kept."""
    return _report.entry(entry["input"], InstanceResult(
        status=FAILED, problem=Problem(code, message), sop_class_uid=entry.get("sop_class_uid") or "",
        modality=entry.get("modality") or ""), None)


def lost_group(items: list[Item], e: BaseException) -> list[dict]:
    """Entries for a group that no worker could finish (fail closed: nothing of it was named)."""
    why = f"the worker running this file failed ({type(e).__name__})"  # the type only: messages may quote paths
    return [_report.entry(item.name, InstanceResult(status=FAILED, problem=Problem("worker-lost", why)), None)
            for item in items]


class _Worker:
    """What one process needs to de-identify files: built once per process (or Dask worker thread)."""

    def __init__(self, job: Job) -> None:
        from .hosts import native
        self.job = job
        pixels = job.settings.pixels != "off"  # the header path needs neither OCR nor codecs: not even loaded
        self.ocr = native.ocr_service() if pixels else None
        self.blocks_pending = job.large_blocks_back and pixels
        # Threads of OCR within one image: an engine each (the service keeps one per thread), for a host with
        # more cores than files at hand (one large cine); --jobs spreads files instead.
        self.pool = cf.ThreadPoolExecutor(job.ocr_threads, thread_name_prefix="ocr") if (
            self.ocr is not None and job.ocr_threads > 1) else None
        self.deid = Deidentifier(job.settings, job.key, codecs=native.codec_service() if pixels else None,
                                 ocr_batch=self.pool is not None)

    def handle(self, items: list[Item], staging: Path) -> GroupResult:
        """De-identify a group of files; their outputs are staged and flushed together (see _Commit)."""
        return _flush(self.stage(items, staging))

    def stage(self, items: list[Item], staging: Path, limit_mb: int = 0, ahead: _Ahead | None = None) -> _Commit:
        """De-identify a group of files and write their outputs, not yet flushed (to files created `ahead`, when
        there are). With `limit_mb`, stop after the file that leaves this process above that resident size
        (commit.retire; its results are those of the files before and that one)."""
        commit = _Commit(staging, ahead)
        start, cpu = (time.time(), time.process_time()) if TIMELINE else (0.0, 0.0)
        if limit_mb:
            from .hosts.native import resident_mb
        try:
            for item in items:
                entry = self._one(item, commit)
                if entry is not None:
                    commit.done(entry)
                if limit_mb and (resident_mb() or 0) > limit_mb:
                    commit.retire = True
                    break
            if TIMELINE:
                commit.timing = {"pid": os.getpid(), "files": len(items), "start": start, "end": time.time(),
                                 "cpu": time.process_time() - cpu, **_WORKER_START}
                _WORKER_START.clear()  # reported once, with the process's first group
            return commit
        except BaseException:
            commit.abandon()  # interrupted: what was not flushed leaves nothing behind
            raise

    def _one(self, item: Item, commit: _Commit) -> dict | None:
        if item.problem is not None:
            return _report.entry(item.name, InstanceResult(status=FAILED if item.problem.code != "link-loop"
                                                           else SKIPPED, problem=item.problem), None)
        try:
            source = _Input(item.path, self.job.map_from)
            if self.blocks_pending and len(source.data) >= LARGE_INPUT:
                from .hosts import native

                native.return_large_blocks()
                self.blocks_pending = False
        except OSError as e:
            return _report.entry(item.name, InstanceResult(status=FAILED, problem=Problem(
                "unreadable", f"input cannot be read ({e.strerror})")), None)
        try:
            result = run_sync(self.deid.process(source.data, parts=True, release=source.release), self.ocr, self.pool)
            source.release()  # what reading touched
            if result.status != DONE:
                return _report.entry(item.name, result, None)
            commit.add(item, result, source.release)
            return None
        finally:
            source.close()


_PROCESS_WORKER: _Worker | None = None
_PREBUILT: _Worker | None = None  # built in the batch process before the fork (header path): inherited


def _init_process(job: Job) -> None:
    global _PROCESS_WORKER  # one worker per process, built in the process (OCR engines do not fork well)
    start = time.time()
    inherited = _PREBUILT is not None and _PREBUILT.job == job
    # Forked after the batch process built it: nothing left to import or build here.
    _PROCESS_WORKER = _PREBUILT if inherited else _Worker(job)
    if TIMELINE:
        _WORKER_START.update(init_start=start, init_end=time.time(), inherited=inherited)


def _stage_in_process(items: list[Item], staging: Path, limit_mb: int = 0) -> _Commit:
    # Not flushed here: the batch process flushes (the same page cache: any process's fdatasync of the file
    # puts it on disk) while this process goes on with its next group.
    assert _PROCESS_WORKER is not None
    ahead = _worker_ahead(staging) if _PROCESS_WORKER.job.settings.pixels == "off" else None
    try:
        commit = _PROCESS_WORKER.stage(items, staging, limit_mb, ahead=ahead)
    finally:
        if ahead is not None:
            ahead.settle()  # nothing is created in the staging folder once the group is handed back
    commit.ahead = None  # this process's: not sent with the group
    return commit


_WORKER_AHEAD: dict[str, _Ahead] = {}  # in a worker process of the header path (--jobs N): its files ahead


def _worker_ahead(staging: Path) -> _Ahead:
    """A worker process's own files created ahead (its header path, --jobs N), in a thread of it: creating an
    output waits for the file system's journal while the batch process's fdatasync calls commit it (a seventh
    of a worker's time in a profile of --jobs 2, where --jobs 1 creates them ahead). Every group waits for a
    creation in flight before it is handed back, so none runs while the batch process names outputs or
    removes the staging folder; the files created and not taken are left in the staging folder, which the batch
    process removes at its end whatever is in it (they are empty `.part` files, never a final name)."""
    ahead = _WORKER_AHEAD.get(str(staging))
    if ahead is None:
        for old in _WORKER_AHEAD.values():  # another batch's staging folder (a process that outlived it)
            old.close()
        _WORKER_AHEAD.clear()
        pool = cf.ThreadPoolExecutor(1, thread_name_prefix="py-deid-ahead")
        ahead = _WORKER_AHEAD[str(staging)] = _Ahead(staging, pool, 2 * _Commit.FILES)
    return ahead


SMALLEST = 4  # the smallest group the tail of a batch is cut into


def groups(items: Iterable[Item], size: int | None = None, workers: int = 0) -> Iterator[list[Item]]:
    """The items in groups of `size` (_Commit.FILES). With `workers`, the batch's end is seen ahead (a few
    groups per worker are listed in advance) and the last items go in smaller and smaller groups (each about
    what is left over twice the workers, down to SMALLEST), so that the workers finish together and the last
    group's flush is short: the same items in the same order, only cut differently."""
    size = size or _Commit.FILES
    items = iter(items)
    if workers <= 0:
        while group := list(itertools.islice(items, size)):
            yield group
        return
    ahead = 2 * workers * size
    buffer: deque = deque()
    more = True
    while True:
        if more:
            want = ahead - len(buffer)
            got = list(itertools.islice(items, want))
            buffer.extend(got)
            more = len(got) == want
        if not buffer:
            return
        n = size if more else max(min(size, SMALLEST), min(size, -(-len(buffer) // (2 * workers))))
        yield [buffer.popleft() for _ in range(min(n, len(buffer)))]


def in_order(submitted: Iterator[tuple[list[Item], object]], window: int,
             eager: bool = False) -> Iterator[tuple[list[Item], object]]:
    """(group, future) pairs back in submission order, at most `window` in flight: the report and the
    naming of outputs follow the input order whatever finishes first. `eager`: the oldest pairs are handed
    back as soon as they are done, not only when the window is full (where the consumer makes groups itself
    between namings, it then names what is ready rather than wait for what is not)."""
    flight: deque = deque()
    for pair in submitted:
        flight.append(pair)
        while flight and (len(flight) >= window or (eager and flight[0][1].done())):
            yield flight.popleft()
    while flight:
        yield flight.popleft()


def run(items: Iterator[Item], job: Job, writer: _report.ReportWriter, *, progress=None) -> dict:
    """Process every item; entries go to the report writer group after group, in input order. Returns the
    summary."""
    if job.settings.pixels != "off":
        return _run_in_lanes(items, job, writer, progress)
    if job.jobs <= 1:
        # (The sync threads outlive the flush thread that hands them files: shut down last.)
        with _sync_pool() as syncs, cf.ThreadPoolExecutor(1, thread_name_prefix="py-deid-flush") as flusher:
            here = _Here(_Worker(job), syncs, flusher)
            return run_groups(items, job.out, writer, here.submit, window=2, progress=progress, workers=1,
                              on_end=here.end)
    return _run_with_workers(items, job, writer, progress)


class _Here:
    """Groups made in this process: a group's flush (fdatasync, which releases the GIL) runs in a thread while
    the next group is made, and the sync threads create the temporary files ahead (_Ahead, from the first
    group's staging folder on)."""

    def __init__(self, worker: _Worker, syncs: cf.ThreadPoolExecutor, flusher: cf.ThreadPoolExecutor) -> None:
        self.worker, self.syncs, self.flusher = worker, syncs, flusher
        self.ahead: _Ahead | None = None

    def submit(self, group: list[Item], staging: Path) -> cf.Future:
        if self.ahead is None:
            self.ahead = _Ahead(staging, self.syncs, 2 * _Commit.FILES)
        return self.flusher.submit(_flush, self.worker.stage(group, staging, ahead=self.ahead), self.syncs)

    def end(self) -> None:
        if self.ahead is not None:
            self.ahead.close()


def _run_with_workers(items: Iterator[Item], job: Job, writer: _report.ReportWriter, progress) -> dict:
    """The header path with --jobs N: this process is one of the N lanes and forks N - 1 worker processes.
    Each forked worker is kept at LANE_QUEUE groups (one it makes, one waiting, so it never waits for work);
    every other group this process makes itself, as --jobs 1 does (files created ahead, flushed in a thread),
    between naming the groups done in input order. So the work goes to whichever lane is free (no lane waits
    at the end for another's queue of work), no third process shares two cores with two workers, and half the
    groups never cross a pipe. A worker process that dies fails its groups in flight (worker-lost, as before:
    none of their files is named) and the rest of the batch is made here."""
    global _PREBUILT
    window = job.jobs * 2 + 2  # memory bounded by the window, not the folder
    # No OCR engine or codec: built here once, and processes forked from this one (where the platform forks
    # them) start with it and with every import done; others build their own.
    worker = _PREBUILT = _Worker(job)
    queued: list[cf.Future] = []  # the forked workers' groups not yet made
    broken = [False]
    try:
        with _sync_pool() as syncs, \
                cf.ProcessPoolExecutor(job.jobs - 1, initializer=_init_process, initargs=(job,)) as pool, \
                cf.ThreadPoolExecutor(window, thread_name_prefix="py-deid-flush") as flusher:
            # (its files created ahead after the fork: the worker processes never hold them)
            here = _Here(worker, syncs, flusher)

            def submit(group: list[Item], staging: Path) -> cf.Future:
                queued[:] = [f for f in queued if not f.done()]
                if not broken[0] and len(queued) < LANE_QUEUE * (job.jobs - 1):
                    try:
                        made = pool.submit(_stage_in_process, group, staging)
                    except cf.process.BrokenProcessPool:
                        broken[0] = True  # a worker died: its groups in flight fail, the rest is made here
                    else:
                        queued.append(made)
                        # Flushed in a thread of this process as soon as the worker hands it back.
                        return flusher.submit(_wait_and_flush, made, syncs)
                return here.submit(group, staging)

            return run_groups(items, job.out, writer, submit, window=window, progress=progress,
                              workers=job.jobs, on_end=here.end, eager=True)
    finally:
        _PREBUILT = None


LANE_QUEUE = 2  # groups given to each forked worker of the header path at a time (see _run_with_workers)


def _run_in_lanes(items: Iterator[Item], job: Job, writer: _report.ReportWriter, progress) -> dict:
    """Pixel work, --jobs 1 included: each group in a worker process that is replaced when its resident size
    after a file passes Job.worker_limit_mb (_Lanes). This process builds no worker: it stays small, and
    the workers forked from it start fresh."""
    from .pixels import step  # noqa: F401 - imported once here, not in every worker forked (and forked again)
    window = job.jobs * 2 + 2
    with _sync_pool() as syncs, _Lanes(job) as lanes, \
            cf.ThreadPoolExecutor(window, thread_name_prefix="py-deid-flush") as flusher:
        return run_groups(items, job.out, writer, lambda group, staging: flusher.submit(
            _group_in_lanes, lanes, group, staging, syncs), window=window, progress=progress, workers=job.jobs)


def _group_in_lanes(lanes: _Lanes, group: list[Item], staging: Path, syncs: cf.ThreadPoolExecutor) -> GroupResult:
    """A group made by lanes, flushed here; the files a retired worker left go to its replacement. The parts
    are named together with the group (run_groups), so a part done by a worker lost later is never named."""
    results: GroupResult = []
    while group:
        commit = lanes.stage(group, staging)
        done = len(commit.results)  # at least one: a worker stops after a file, never before the first
        results += _flush(commit, syncs)
        group = group[done:]
    return results


class _Lanes:
    """--jobs N worker processes for pixel work, each a pool of one process given one group at a time, so that
    one can be replaced alone: after a group whose worker passed the limit (the process exits, a fresh one is
    forked from this small process), or whose worker died. A group waits for a free lane in about the order
    the groups were submitted."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.free: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.live: set[cf.ProcessPoolExecutor] = set()
        self.closed = False
        for _ in range(job.jobs):
            self.free.put(self._new())

    def _new(self) -> cf.ProcessPoolExecutor:
        lane = cf.ProcessPoolExecutor(1, initializer=_init_process, initargs=(self.job,))
        with self.lock:
            self.live.add(lane)
        return lane

    def _replace(self, lane: cf.ProcessPoolExecutor) -> cf.ProcessPoolExecutor:
        with self.lock:
            self.live.discard(lane)
        try:
            lane.shutdown(wait=True)  # its process gone before the next starts: never more than --jobs at once
        except Exception:  # noqa: BLE001 - a broken pool's shutdown: its process is gone either way
            pass
        return self._new()

    def stage(self, items: list[Item], staging: Path) -> _Commit:
        lane = self.free.get()
        if self.closed:  # the batch is ending (interrupted): no new process
            self.free.put(lane)
            raise cf.CancelledError()
        try:
            try:
                future = lane.submit(_stage_in_process, items, staging, self.job.worker_limit_mb)
            except cf.process.BrokenProcessPool:  # died while idle: the group never started, a fresh one runs it
                lane = self._replace(lane)
                future = lane.submit(_stage_in_process, items, staging, self.job.worker_limit_mb)
            commit = future.result()
        except cf.process.BrokenProcessPool:
            self.free.put(self._replace(lane))
            raise
        except BaseException:
            self.free.put(lane)
            raise
        self.free.put(self._replace(lane) if commit.retire else lane)
        return commit

    def __enter__(self) -> _Lanes:
        return self

    def __exit__(self, *exc) -> None:
        self.closed = True
        with self.lock:
            lanes, self.live = list(self.live), set()
        for lane in lanes:
            lane.shutdown(wait=True, cancel_futures=True)


def _wait_and_flush(future: cf.Future, pool: cf.ThreadPoolExecutor | None = None) -> GroupResult:
    return _flush(future.result(), pool)


def _flush(commit: _Commit, pool: cf.ThreadPoolExecutor | None = None) -> GroupResult:
    start = time.time() if TIMELINE else 0.0
    try:
        result = commit.flush(pool)
    except BaseException:
        commit.abandon()
        raise
    if TIMELINE:
        _TIMES.append({**(commit.timing or {}), "flush_start": start, "flush_end": time.time()})
    return result


class _Done:
    """A result at hand, with a future's interface."""

    def __init__(self, value: GroupResult) -> None:
        self.value = value

    def result(self) -> GroupResult:
        return self.value


def run_groups(items: Iterable[Item], out: Path, writer: _report.ReportWriter,
               submit: Callable[[list[Item], Path], object], *, window: int, progress=None,
               size: int | None = None, workers: int = 0, on_end: Callable[[], None] | None = None,
               eager: bool = False) -> dict:
    """The loop every way of running shares: groups to `submit` (which returns a future of a GroupResult, or of
    a _Commit still to flush), results named and reported in input order, the staging folder removed at the
    end whatever happened (after `on_end`, which lets go of what the submitter holds in it)."""
    tick = _Progress(progress)
    outputs = _Outputs(out)
    timeline = _Timeline() if TIMELINE else None
    try:
        submitted = ((group, submit(group, outputs.staging)) for group in groups(items, size, workers))
        for group, future in in_order(submitted, window, eager):
            try:
                if timeline is not None:
                    result = timeline.wait(future)
                else:
                    result = future.result()
                entries = outputs.name(_flush(result) if isinstance(result, _Commit) else result)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # noqa: BLE001 - a lost worker fails its files, the batch goes on
                entries = lost_group(group, e)
            for e in entries:
                writer.add(e)
                tick(e)
    finally:
        try:
            if on_end is not None:
                on_end()
        finally:
            outputs.close()
    tick.final()
    summary = writer.close()
    if timeline is not None:
        timeline.write(TIMELINE)
    return summary


# Diagnostics: with PY_DEID_TIMELINE=FILE in the environment, the batch writes to FILE when and where each group
# was made and flushed, and how long this process waited for them (times and counts only: never a name).
TIMELINE = os.environ.get("PY_DEID_TIMELINE") or None
_WORKER_START: dict = {}  # in a worker process: when its worker was built (sent with its first group)
_TIMES: list[dict] = []  # in the batch process: each group's times, as its flush ends


class _Timeline:
    def __init__(self) -> None:
        _TIMES.clear()
        self.start, self.cpu, self.waited = time.time(), time.process_time(), 0.0

    def wait(self, future):
        t = time.time()
        try:
            return future.result()
        finally:
            self.waited += time.time() - t

    def write(self, path: str) -> None:
        import json
        record = {"pid": os.getpid(), "process_start": _process_start(), "run_start": self.start, "run_end": time.time(),
                  "start_cpu": self.cpu, "parent_cpu": time.process_time() - self.cpu, "parent_waited": self.waited,
                  "groups": sorted(_TIMES, key=lambda g: g.get("start", 0.0))}
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(record, fh)


def _process_start() -> float | None:
    """When this process started (Linux, to a clock tick), as a time.time() value."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


class _Progress:
    """Counts on stderr, never names: input paths can themselves be PHI."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.counts = {DONE: 0, SKIPPED: 0, FAILED: 0}
        self.last = 0.0

    def __call__(self, e: dict) -> None:
        self.counts[e["status"]] += 1
        now = time.monotonic()
        if self.stream is not None and now - self.last > 1.0:
            self.last = now
            self._print("\r")

    def _print(self, prefix: str) -> None:
        c = self.counts
        self.stream.write(f"{prefix}done {c[DONE]}, skipped {c[SKIPPED]}, failed {c[FAILED]}")
        self.stream.flush()

    def final(self) -> None:
        if self.stream is not None:
            self._print("\r")
            self.stream.write("\n")


def default_progress():
    return sys.stderr if sys.stderr.isatty() else None
