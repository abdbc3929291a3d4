"""Folders in, folders out (the CLI's `deidentify`): the file system side of the native host.

Inputs are only ever opened for reading. Each output is written to a temporary file next to its final
name, flushed to disk (a group of files at a time) and only then renamed, so an output either is complete
or does not exist. Files are streamed: with
--jobs N at most a small window of files is in flight, whatever the size of the folder.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import itertools
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import report as _report
from .instance import DONE, FAILED, SKIPPED, Deidentifier, InstanceResult, Problem, run_sync
from .options import Settings


_sync = getattr(os, "fdatasync", os.fsync)  # fdatasync where the platform has it


@dataclass(frozen=True)
class Job:
    out: Path
    settings: Settings
    key: bytes
    jobs: int = 1


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


def output_path(out: Path, result: InstanceResult) -> Path:
    # The UIDs come from the de-identifier (keyed 2.25 UIDs or, with retain_uids, validated originals).
    for uid in (result.study_uid, result.series_uid, result.sop_uid):
        if not uid or len(uid) > 64 or not all(c.isdigit() or c == "." for c in uid):
            raise ValueError("invalid UID for an output path")
    return out / result.study_uid / result.series_uid / f"{result.sop_uid}.dcm"


class _Commit:
    """Outputs written in groups: each is written to a hidden temporary file; the group's files are flushed to
    disk together (concurrent fdatasync calls share the file system's journal commits, where one after another
    each waits for its own), and only then does each get its final name. An output therefore either is complete
    on disk or does not exist, at a fraction of the cost of one flush at a time."""

    FILES = 32
    BYTES = 64 << 20

    def __init__(self, out: Path) -> None:
        self.out = out
        self.staged: list[tuple[Item, InstanceResult, Path, Path, str]] = []
        self.size = 0
        self.entries: list[dict] = []

    def add(self, item: Item, result: InstanceResult) -> None:
        try:
            target = output_path(self.out, result)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{len(self.staged)}.part")
            try:
                with open(tmp, "wb") as fh:
                    fh.write(result.output)
            except BaseException:
                _unlink(tmp)
                raise
        except ValueError as e:
            self.entries.append(_report.entry(item.name, _failed(result, "output", str(e)), None))
            return
        except OSError as e:
            self.entries.append(_not_written(item, result, e))
            return
        digest = hashlib.sha256(result.output).hexdigest()
        self.size += len(result.output)
        result.output = None  # on disk now: a group holds names, not bytes
        self.staged.append((item, result, tmp, target, digest))
        if len(self.staged) >= self.FILES or self.size >= self.BYTES:
            self._commit()

    def flush(self) -> list[dict]:
        """Commit what is staged; returns every entry since the last flush."""
        self._commit()
        entries, self.entries = self.entries, []
        return entries

    def _commit(self) -> None:
        staged, self.staged, self.size = self.staged, [], 0
        try:
            errors = _sync_all([tmp for _, _, tmp, _, _ in staged])
            for (item, result, tmp, target, digest), error in zip(staged, errors):
                if error is not None:
                    self.entries.append(_not_written(item, result, error))
                    continue
                self.entries.append(self._name(item, result, tmp, target, digest))
        finally:
            for _, _, tmp, _, _ in staged:  # renamed ones are gone; any other goes: nothing half-written stays
                _unlink(tmp)

    def abandon(self) -> None:
        for _, _, tmp, _, _ in self.staged:
            _unlink(tmp)
        self.staged = []

    def _name(self, item: Item, result: InstanceResult, tmp: Path, target: Path, digest: str) -> dict:
        try:
            if target.exists():
                if hashlib.sha256(target.read_bytes()).hexdigest() != digest:
                    return _report.entry(item.name, _failed(
                        result, "conflict", "another input produced a different instance with the same UID"), None)
                result.warnings.append("the same instance was already written by another input")
            else:
                os.replace(tmp, target)
        except OSError as e:
            return _not_written(item, result, e)
        return _report.entry(item.name, result, str(target.relative_to(self.out)), digest)


def _sync_all(paths: list[Path]) -> list[OSError | None]:
    """fdatasync each file, concurrently; the error of each (None when it is on disk)."""
    def sync(path: Path) -> OSError | None:
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

    if len(paths) <= 1:
        return [sync(p) for p in paths]
    with cf.ThreadPoolExecutor(min(16, len(paths)), thread_name_prefix="py-deid-sync") as pool:
        return list(pool.map(sync, paths))


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _not_written(item: Item, result: InstanceResult, e: OSError) -> dict:
    return _report.entry(item.name, _failed(result, "output-not-written",
                                            f"output cannot be written ({e.strerror or type(e).__name__})"), None)


class _Worker:
    """What one process needs to de-identify files: built once per process."""

    def __init__(self, job: Job) -> None:
        from .hosts import native
        self.job = job
        self.ocr = native.ocr_service()
        self.deid = Deidentifier(job.settings, job.key, codecs=native.codec_service())

    def handle(self, items: list[Item]) -> list[dict]:
        """De-identify a group of files and commit their outputs together (see _Commit)."""
        commit = _Commit(self.job.out)
        try:
            for item in items:
                entry = self._one(item, commit)
                if entry is not None:
                    commit.entries.append(entry)
        except BaseException:
            commit.abandon()  # interrupted: what was not committed leaves nothing behind
            raise
        return commit.flush()

    def _one(self, item: Item, commit: _Commit) -> dict | None:
        if item.problem is not None:
            return _report.entry(item.name, InstanceResult(status=FAILED if item.problem.code != "link-loop"
                                                           else SKIPPED, problem=item.problem), None)
        try:
            with open(item.path, "rb") as fh:
                data = fh.read()
        except OSError as e:
            return _report.entry(item.name, InstanceResult(status=FAILED, problem=Problem(
                "unreadable", f"input cannot be read ({e.strerror})")), None)
        result = run_sync(self.deid.process(data), self.ocr)
        if result.status != DONE:
            return _report.entry(item.name, result, None)
        commit.add(item, result)
        return None


def _failed(result: InstanceResult, code: str, message: str) -> InstanceResult:
    return InstanceResult(status=FAILED, problem=Problem(code, message), sop_class_uid=result.sop_class_uid,
                          modality=result.modality)


_PROCESS_WORKER: _Worker | None = None


def _init_process(job: Job) -> None:
    global _PROCESS_WORKER  # one worker per process, built in the process (OCR engines do not fork well)
    _PROCESS_WORKER = _Worker(job)


def _handle_in_process(items: list[Item]) -> list[dict]:
    assert _PROCESS_WORKER is not None
    return _PROCESS_WORKER.handle(items)


def _groups(items: Iterator[Item]) -> Iterator[list[Item]]:
    while group := list(itertools.islice(items, _Commit.FILES)):
        yield group


def run(items: Iterator[Item], job: Job, writer: _report.ReportWriter, *, progress=None) -> dict:
    """Process every item; entries go to the report writer as their group is committed. Returns the summary."""
    tick = _Progress(progress)

    def report(entries: list[dict]) -> None:
        for e in entries:
            writer.add(e)
            tick(e)

    if job.jobs <= 1:
        worker = _Worker(job)
        for group in _groups(iter(items)):
            report(worker.handle(group))
    else:
        window = job.jobs * 2  # groups in flight: memory is bounded by the group size, not the folder's
        with cf.ProcessPoolExecutor(job.jobs, initializer=_init_process, initargs=(job,)) as pool:
            pending: set[cf.Future] = set()
            for group in _groups(iter(items)):
                pending.add(pool.submit(_handle_in_process, group))
                if len(pending) >= window:
                    done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for f in done:
                        report(f.result())
            for f in cf.as_completed(pending):
                report(f.result())
    tick.final()
    return writer.close()


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
