"""Verification in worker processes: the core's check is pure-Python CPU work, so threads would queue on
the GIL; processes use every core, keep the server's own memory flat (a worker holds one instance at a
time, the server none) and contain a crash to the instance that caused it.

The pool heals itself: when a worker dies (kill -9, the kernel's OOM killer, a crash in a codec) the
executor breaks as a whole, so a watchdog replaces it at once, and every check the broken pool held is
submitted again, once. A check whose worker dies twice makes its request fail with WorkersDown (503 and
Retry-After, nothing of that request stored), never an endless run of 500s. Each worker runs under an
address-space limit, so an instance that needs too much memory fails with MemoryError inside its worker
instead of waking the OOM killer.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import signal
import threading
import time
import warnings
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from ..inflate import DEFAULT_LIMITS, InflateLimits
from ..options import Options
from . import reasons
from .reasons import Failure
from .verification import inspect_bytes, inspect_range

log = logging.getLogger("py_deid.receiver")
DEGRADED_FOR = 5.0  # seconds after a worker death during which status says degraded
WATCH_EVERY = 0.25


class WorkersDown(Exception):
    """The verification workers died twice under one check: answer 503 with Retry-After."""


_settings: tuple = ()  # (options, inflate limits) of this worker process, set once by _worker_init


def _worker_init(memory: int | None, options: Options | None = None,
                 inflate: InflateLimits = DEFAULT_LIMITS) -> None:
    global _settings
    _settings = (options, inflate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server handles Ctrl-C and shuts the pool down
    warnings.simplefilter("ignore")  # pydicom's warnings quote values from files
    logging.disable(logging.CRITICAL)
    if memory:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    # A server killed with SIGKILL cannot shut its pool down, and the workers would wait forever on a
    # queue whose writing end their siblings also hold: they leave when their parent is gone.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _warm() -> bool:
    return True


def _check_batch(items: list[tuple], expected_study: str | None) -> list[tuple]:
    """run_batch() under the worker's settings (the options travel once per worker, not with each part):
    a request's small parts cost one round trip, not one each."""
    options, inflate = _settings
    return run_batch(items, expected_study, options, inflate)


def run_batch(items: list[tuple], expected_study: str | None, options: Options,
              inflate: InflateLimits) -> list[tuple]:
    """Each part's (identity, failure, sha256, error), one after the other. An item is (path, start, end,
    "") for a part in a temp file, or (bytes, 0, len, target) for a part held in memory: when its check
    passes, it is written to `target` here (a part that fails is never written), and a part that cannot be
    written fails. `error` names an exception that a check raised (the server logs it; the
    part fails alone), else "". A MemoryError fails its part only."""
    out: list[tuple] = []
    for source, start, end, target in items:
        try:
            if isinstance(source, bytes):
                ident, failure, digest = inspect_bytes(source, options, expected_study, inflate)
                if failure is None:
                    failure = _write(target, source)
                out.append((ident, failure, digest, ""))
            else:
                out.append((*inspect_range(source, start, end, options, expected_study, inflate), ""))
        except MemoryError:
            out.append((None, Failure.of(reasons.MEMORY_LIMIT), "", ""))
        except Exception as e:  # noqa: BLE001 - one part's failure must not fail the others
            out.append((None, Failure.of(reasons.PROCESSING_FAILURE, "verification failed"), "", type(e).__name__))
    return out


def _write(target: str, data: bytes) -> Failure | None:
    """Write a part that passed to its temp name (the server flushes it: flushes from several threads
    share the file system's journal commits, and a worker does not wait on the disk). None, or the
    failure of a part that cannot be written (the server removes whatever is left under that name)."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # (O_TRUNC: a batch run again)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except OSError as e:
        return Failure.of(reasons.OUT_OF_RESOURCES if e.errno == errno.ENOSPC else reasons.PROCESSING_FAILURE)
    return None


@dataclass
class Job:
    """One submitted batch of checks: its arguments (to submit it again), the pool that holds it, and its
    outcome once known (shared by the batch's parts)."""

    args: tuple
    future: Future
    pool: ProcessPoolExecutor | None
    outcome: list | None = None

    def cancel(self) -> None:
        self.future.cancel()

    def answered(self, future: Future) -> None:
        """Its worker answered: the arguments (in-memory parts' bytes) are not needed again."""
        if not future.cancelled() and future.exception() is None:
            self.args = None


@dataclass
class Check:
    """One part's check: item `index` of a batch."""

    job: Job
    index: int = 0

    @property
    def future(self) -> Future:
        return self.job.future

    def cancel(self) -> None:
        self.job.cancel()


class VerifierPool:
    """inspect_range() in `workers` processes (0: in the calling thread)."""

    def __init__(self, options: Options, workers: int, inflate: InflateLimits = DEFAULT_LIMITS,
                 memory: int | None = None) -> None:
        self.options = options
        self.workers = workers
        self.inflate = inflate
        self.memory = memory
        self.restarts = 0
        self._last_death: float | None = None
        self._warming: list[Future] = []
        self._lock = threading.Lock()
        self._busy = 0  # jobs submitted and not answered yet
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._pool: ProcessPoolExecutor | None = None
        if workers:
            self._pool = self._new_pool()
            for f in self._warming:
                f.result()  # pay the workers' imports at start-up, not in the first upload
            threading.Thread(target=self._watch, name="verifier-watchdog", daemon=True).start()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: forking a server that runs threads could copy a held lock into the child
        pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(self.memory, self.options, self.inflate))
        self._warming = [pool.submit(_warm) for _ in range(self.workers)]
        return pool

    def _replace(self, broken: ProcessPoolExecutor | None) -> None:
        """A new pool in place of `broken` (unless another thread already replaced it)."""
        with self._lock:
            if self._stop.is_set() or self._pool is not broken:
                return
            log.error("a verification worker died; replacing the pool")
            self.restarts += 1
            self._last_death = time.monotonic()
            if broken is not None:
                broken.shutdown(wait=False)  # its pending checks fail with BrokenProcessPool and are resubmitted
            self._pool = self._new_pool()

    def _watch(self) -> None:
        # Replaces a broken pool without waiting for the next upload to find it.
        while not self._stop.wait(WATCH_EVERY):
            pool = self._pool
            if pool is not None and pool._broken:  # noqa: SLF001 - no public flag
                self._replace(pool)

    def submit(self, path: str, start: int, end: int, expected_study: str | None) -> Check:
        return self.submit_batch([(path, start, end, "")], expected_study)[0]

    def submit_batch(self, items: list[tuple], expected_study: str | None) -> list[Check]:
        """One check per item of run_batch(), run together by one worker (in the calling thread without
        workers)."""
        args = (list(items), expected_study)
        if self._pool is None:
            f: Future = Future()
            f.set_result(run_batch(*args, self.options, self.inflate))
            job = Job((), f, None)
        else:
            job = self._submit(args)
        return [Check(job, i) for i in range(len(items))]

    def _submit(self, args: tuple) -> Job:
        pool = self._pool
        try:
            future = pool.submit(_check_batch, *args)
        except (BrokenProcessPool, RuntimeError):  # broken, or shut down by a replacement in between
            self._replace(pool)
            pool = self._pool
            future = pool.submit(_check_batch, *args)
        job = Job(args, future, pool)
        with self._busy_lock:
            self._busy += 1
        future.add_done_callback(job.answered)
        future.add_done_callback(self._answered)
        return job

    def _answered(self, future: Future) -> None:
        with self._busy_lock:
            self._busy -= 1

    def idle(self) -> int:
        """Workers without a job at the moment (at least one: 0 workers run checks in the caller)."""
        return max(1, self.workers - self._busy)

    def result(self, check: Check):
        """The part's (identity, failure, sha256). Raises WorkersDown when its batch's worker died twice."""
        ident, failure, digest, error = self._outcome(check.job)[check.index]
        if error:
            log.error("verification failed (%s)", error)
        return ident, failure, digest

    def _outcome(self, job: Job) -> list[tuple]:
        if job.outcome is not None:
            return job.outcome
        for attempt in (1, 2):
            try:
                job.outcome = job.future.result()
                job.args = None
                return job.outcome
            except (BrokenProcessPool, CancelledError):
                self._replace(job.pool)
                if attempt == 2:
                    raise WorkersDown() from None
                try:
                    again = self._submit(job.args)  # the whole batch, once
                except (BrokenProcessPool, RuntimeError):
                    raise WorkersDown() from None
                job.future, job.pool = again.future, again.pool
            except MemoryError:  # the batch's answer itself did not fit
                job.outcome = [(None, Failure.of(reasons.MEMORY_LIMIT), "", "")] * len(job.args[0])
                return job.outcome
            except Exception as e:  # noqa: BLE001 - not the parts' fault: fail them, not the server
                job.outcome = [(None, Failure.of(reasons.PROCESSING_FAILURE, "verification failed"), "",
                                type(e).__name__)] * len(job.args[0])
                return job.outcome
        raise AssertionError("unreachable")

    def health(self) -> dict:
        """{"state": "ok" | "degraded", "workers", "alive", "restarts"} for /receiver/status."""
        pool = self._pool
        if pool is None:
            return {"state": "ok", "workers": 0, "alive": 0, "restarts": self.restarts}
        alive = sum(1 for p in list((pool._processes or {}).values()) if p.is_alive())  # noqa: SLF001
        recent = self._last_death is not None and time.monotonic() - self._last_death < DEGRADED_FOR
        warming = not all(f.done() for f in self._warming)
        degraded = pool._broken or recent or warming or alive < self.workers  # noqa: SLF001
        return {"state": "degraded" if degraded else "ok", "workers": self.workers, "alive": alive,
                "restarts": self.restarts}

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

