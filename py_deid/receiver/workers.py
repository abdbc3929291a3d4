"""Verification in worker processes: the core's check is pure-Python CPU work, so threads would queue on
the GIL; processes use every core, keep the server's own memory flat (a worker holds one instance at a
time, the server none) and contain a crash to the instance that caused it."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..options import Options
from . import reasons
from .reasons import Failure
from .verification import inspect_range

log = logging.getLogger("py_deid.receiver")


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server handles Ctrl-C and shuts the pool down
    warnings.simplefilter("ignore")  # pydicom's warnings quote values from files
    logging.disable(logging.CRITICAL)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    # A server killed with SIGKILL cannot shut its pool down, and the workers would wait forever on a
    # queue whose writing end their siblings also hold: they leave when their parent is gone.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _warm() -> bool:
    return True


class VerifierPool:
    """inspect_range() in `workers` processes (0: in the calling thread)."""

    def __init__(self, options: Options, workers: int) -> None:
        self.options = options
        self.workers = workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        if workers:
            self._pool = self._new_pool()
            for f in [self._pool.submit(_warm) for _ in range(workers)]:
                f.result()  # pay the workers' imports at start-up, not in the first upload

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: forking a server that runs threads could copy a held lock into the child
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init)

    def submit(self, path: str, start: int, end: int, expected_study: str | None) -> Future:
        if self._pool is None:
            f: Future = Future()
            f.set_result(inspect_range(path, start, end, self.options, expected_study))
            return f
        with self._lock:
            return self._pool.submit(inspect_range, path, start, end, self.options, expected_study)

    def result(self, future: Future):
        try:
            return future.result()
        except BrokenProcessPool:
            log.error("a verification worker died; restarting the pool")
            with self._lock:
                if self._pool is not None and self._pool._broken:  # noqa: SLF001 - no public flag
                    self._pool = self._new_pool()
            return None, Failure.of(reasons.PROCESSING_FAILURE, "verification worker failed"), ""
        except Exception as e:  # noqa: BLE001 - one part's failure must not fail the others
            log.error("verification failed (%s)", type(e).__name__)
            return None, Failure.of(reasons.PROCESSING_FAILURE, "verification failed"), ""

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
