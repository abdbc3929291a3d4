"""Verification in worker processes: the core's check is pure-Python CPU work, so threads would queue on
the GIL; processes use every core, keep the server's own memory flat (a worker holds one instance at a
time, the server none) and contain a crash to the instance that caused it.

The server talks to each worker through two pipes of its own (jobs in, answers out), with no executor:
a job goes to the worker holding the fewest (at most two: the next one waits in its pipe, so a worker does
not idle until the server's thread runs) straight from the thread that submits it (a non-blocking write
into a 1 MiB pipe; what does not fit is written by the pool's one thread), and that thread reads every
answer. A ProcessPoolExecutor needed two threads of its own per pool (a manager woken at every submit, a
queue feeder) and a GIL hand-over at each step, on the event loop's path.

The pool heals itself: a worker that dies (kill -9, the kernel's OOM killer, a crash in a codec) closes its
answer pipe, and the pool's thread replaces it at once and runs the jobs it held again, once, on another
worker. A job whose worker dies twice makes its request fail with WorkersDown (503 and Retry-After,
nothing of that request stored), never an endless run of 500s. Each worker runs under an address-space
limit, so an instance that needs too much memory fails with MemoryError inside its worker instead of
waking the OOM killer.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import logging
import multiprocessing
import os
import pickle
import select
import signal
import struct
import threading
import time
import warnings
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass

from ..inflate import DEFAULT_LIMITS, InflateLimits
from ..options import Options
from . import reasons
from .reasons import Failure
from .verification import Identity, inspect_bytes, inspect_range

log = logging.getLogger("py_deid.receiver")
DEGRADED_FOR = 5.0  # seconds after a worker death during which status says degraded
PIPE_BYTES = 1 << 20  # a job pipe's size (Linux's default ceiling for users): a group of small parts fits
DEPTH = 2  # jobs a worker holds: the next one waits in its pipe, so it never idles until the pool's thread runs
_FRAME = struct.Struct("<Q")  # every answer: its length, then its bytes
# A job: (length of its pickle, number of buffers), the pickle, then each buffer as a frame. The parts' bytes
# travel out of band (pickle protocol 5): written to the pipe from the server's own bytes objects, not
# copied into a pickle and then into a framed message on the event loop; the worker gets them back as bytes.
_JOB = struct.Struct("<QQ")
_READY, _NO_MEMORY = b"ready", b"memory"
_STOP = (_JOB.pack(0, 0),)  # a job of no pickle: leave
IOV_MAX = 1024


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


def _check_batch(items: list[tuple], expected_study: str | None) -> list[tuple]:
    """run_batch() under the worker's settings (the options travel once per worker, not with each part):
    a request's small parts cost one round trip, not one each."""
    options, inflate = _settings
    return [(_plain_identity(ident), *rest) for ident, *rest in run_batch(items, expected_study, options, inflate)]


def _plain_identity(ident: Identity | None) -> tuple | None:
    """An identity as the plain tuple of its fields for the answer's pickle (a dataclass pickles through
    its __reduce_ex__ and state dict: ~3 us each way per part, against ~0.5 for a tuple); VerifierPool.result
    makes it an Identity again."""
    if ident is None:
        return None
    return (ident.sop_class_uid, ident.sop_uid, ident.study_uid, ident.series_uid, ident.modality,
            ident.transfer_syntax)


def run_batch(items: list[tuple], expected_study: str | None, options: Options,
              inflate: InflateLimits) -> list[tuple]:
    """Each part's (identity, failure, sha256, error), one after the other. An item is (path, start, end,
    "") for a part in a temp file, or (bytes, 0, len, target) for a part held in memory: when its check
    passes, it is written to `target` here (a part that fails is never written), and a part that cannot be
    written fails; with target "" nothing is written (the server appends the bytes it sent to its pack). `error` names an exception that a check raised (the server logs it; the
    part fails alone), else "". A MemoryError fails its part only."""
    out: list[tuple] = []
    for source, start, end, target in items:
        try:
            if isinstance(source, bytes):
                ident, failure, digest = inspect_bytes(source, options, expected_study, inflate)
                if failure is None and target:  # (without a target the server appends it to its pack)
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


def _read_exact(fd: int, n: int) -> bytearray | None:
    """n bytes from a blocking pipe, or None at its end (the writer is gone)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            return None
        got += k
    return buf


def _read_frame(fd: int) -> bytearray | None:
    header = _read_exact(fd, _FRAME.size)
    return None if header is None else _read_exact(fd, _FRAME.unpack(header)[0])


def _frame(payload: bytes) -> bytes:
    return _FRAME.pack(len(payload)) + payload


def _read_bytes(fd: int, n: int) -> bytes | None:
    """n bytes from a blocking pipe as one bytes object, or None at its end."""
    first = os.read(fd, n) if n else b""
    if len(first) == n:
        return first
    if not first:
        return None
    rest = _read_exact(fd, n - len(first))
    return None if rest is None else first + bytes(rest)


def _job_message(args) -> tuple:
    """The segments of a job's message (see _JOB); bytes objects in `args` wrapped in PickleBuffer go out of
    band, as themselves."""
    buffers: list[pickle.PickleBuffer] = []
    meta = pickle.dumps(args, protocol=5, buffer_callback=buffers.append)
    segments = [_JOB.pack(len(meta), len(buffers)), meta]
    for buffer in buffers:
        view = buffer.raw()
        segments += (_FRAME.pack(view.nbytes), view)
    return tuple(segments)


def _read_job(fd: int):
    """A job's (items, expected_study), _STOP's None, or False at the pipe's end (the server is gone)."""
    header = _read_exact(fd, _JOB.size)
    if header is None:
        return False
    size, count = _JOB.unpack(header)
    if size == 0:
        return None
    meta = _read_exact(fd, size)
    if meta is None:
        return False
    buffers = []
    for _ in range(count):
        length = _read_exact(fd, _FRAME.size)
        data = None if length is None else _read_bytes(fd, _FRAME.unpack(length)[0])
        if data is None:
            return False
        buffers.append(data)
    return pickle.loads(meta, buffers=buffers)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _serve(jobs, answers, memory: int | None, options: Options, inflate: InflateLimits) -> None:
    """A worker's life: read a job, answer it, until the stop message (or the server's end)."""
    _worker_init(memory, options, inflate)
    rfd, wfd = jobs.fileno(), answers.fileno()
    no_memory = _frame(pickle.dumps(("memory",)))
    _write_all(wfd, _frame(_READY))
    while True:
        try:
            job = _read_job(rfd)
        except MemoryError:  # the rest of the job is still in the pipe: answer, then leave to be replaced
            _write_all(wfd, no_memory)
            os._exit(0)
        if job is False:
            os._exit(0)  # the server is gone
        if job is None:
            return
        try:
            items, study = job
            del job
            answer = _frame(pickle.dumps(("ok", _check_batch(items, study)), protocol=pickle.HIGHEST_PROTOCOL))
        except MemoryError:
            answer = no_memory
        except Exception as e:  # noqa: BLE001 - not the parts' fault: they fail, the worker goes on
            answer = _frame(pickle.dumps(("error", type(e).__name__)))
        _write_all(wfd, answer)


@dataclass(eq=False)
class Job:
    """One submitted batch of checks: the message that runs it (kept to run it again on another worker
    when its worker dies), and its outcome once known (shared by the batch's parts)."""

    payload: tuple | None  # the segments of its message (_job_message)
    parts: int
    future: Future
    tries: int = 0  # workers it was given to
    outcome: list | None = None

    def cancel(self) -> None:
        self.future.cancel()  # only a job no worker has taken yet


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


@dataclass(eq=False)
class _Worker:
    proc: multiprocessing.process.BaseProcess
    jobs: object  # the job pipe's writing end (non-blocking), a multiprocessing Connection
    answers: object  # the answer pipe's reading end
    ready: bool = False  # its imports are done: it has said so
    held: collections.deque = None  # the jobs given to it, in order: the first is running
    out: list | None = None  # what of its jobs' messages is not in the pipe yet (memoryviews, in order)

    def __post_init__(self) -> None:
        self.held = collections.deque()


def _failed(parts: int, failure: Failure, error: str = "") -> list[tuple]:
    return [(None, failure, "", error)] * parts


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
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._busy = 0  # jobs submitted and not answered yet
        self._busy_lock = threading.Lock()
        self._closing = False
        self._workers: list[_Worker] = []
        self._queue: collections.deque[Job] = collections.deque()
        self._context = multiprocessing.get_context("spawn")  # forking a server that runs threads could
        #                                                       copy a held lock into the child
        if workers:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self._workers = [self._spawn() for _ in range(workers)]
            self._thread = threading.Thread(target=self._run, name="verifier-pool", daemon=True)
            self._thread.start()
            with self._changed:  # pay the workers' imports at start-up, not in the first upload
                self._changed.wait_for(lambda: all(w.ready for w in self._workers), timeout=300)

    # the workers
    def _spawn(self) -> _Worker:
        jobs_r, jobs_w = self._context.Pipe(duplex=False)
        answers_r, answers_w = self._context.Pipe(duplex=False)
        proc = self._context.Process(target=_serve, args=(jobs_r, answers_w, self.memory, self.options,
                                                          self.inflate), name="py-deid-verifier", daemon=True)
        proc.start()
        jobs_r.close()  # the worker holds the other ends alone: its death ends the answer pipe
        answers_w.close()
        with_room = getattr(fcntl, "F_SETPIPE_SZ", 1031)
        try:
            fcntl.fcntl(jobs_w.fileno(), with_room, PIPE_BYTES)
        except OSError:
            pass  # a smaller pipe only means more of a large job is written by the pool's thread
        os.set_blocking(jobs_w.fileno(), False)
        return _Worker(proc, jobs_w, answers_r)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # already awake

    def _write(self, worker: _Worker, segments) -> None:
        """As much of a message (its segments) as the worker's pipe takes now (one writev); the pool's thread
        writes the rest (lock held)."""
        views = [memoryview(s).cast("B") for s in segments]
        if worker.out is not None:  # behind what is still being written
            worker.out += views
            return
        self._flush(worker, views)

    def _flush(self, worker: _Worker, views: list) -> None:
        """Write what the pipe takes of `views`, keep the rest for the pool's thread (lock held)."""
        fd = worker.jobs.fileno()
        views = [v for v in views if v.nbytes]
        while views:
            try:
                n = os.writev(fd, views[:IOV_MAX])
            except BlockingIOError:
                break
            except OSError:
                worker.out = None  # the worker is gone: its answer pipe's end tells the pool's thread
                return
            done = 0
            while done < len(views) and n >= views[done].nbytes:
                n -= views[done].nbytes
                done += 1
            del views[:done]
            if n:
                views[0] = views[0][n:]
                break  # the pipe is full
        if views:
            worker.out = views
            self._wake()
        else:
            worker.out = None

    def _dispatch(self) -> None:
        """Give waiting jobs to idle workers (lock held)."""
        while self._queue:
            ready = [w for w in self._workers if w.ready and len(w.held) < DEPTH]
            if not ready:
                return
            worker = min(ready, key=lambda w: len(w.held))  # an idle one first
            job = self._queue.popleft()
            if job.tries == 0 and not job.future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            job.tries += 1
            worker.held.append(job)
            self._write(worker, job.payload)

    # the pool's thread: answers, the rest of large jobs, dead workers
    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closing and not self._workers:
                    return
                poller = select.poll()
                poller.register(self._wake_r, select.POLLIN)
                by_fd = {}
                for w in self._workers:
                    by_fd[w.answers.fileno()] = (w, False)
                    poller.register(w.answers.fileno(), select.POLLIN)
                    if w.out is not None:
                        by_fd[w.jobs.fileno()] = (w, True)
                        poller.register(w.jobs.fileno(), select.POLLOUT)
            for fd, _ in poller.poll():
                if fd == self._wake_r:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                worker, writing = by_fd[fd]
                try:
                    if writing:
                        with self._lock:
                            if worker.out is not None and worker in self._workers:
                                self._flush(worker, worker.out)
                    else:
                        self._receive(worker)
                except Exception:  # noqa: BLE001 - this thread must outlive any one job
                    log.exception("verification pool")

    def _receive(self, worker: _Worker) -> None:
        try:
            message = _read_frame(worker.answers.fileno())
        except OSError:
            message = None
        if message is None:
            self._died(worker)
            return
        with self._lock:
            job = worker.held.popleft() if worker.ready else None
            if not worker.ready:  # its first message: imports done
                worker.ready = True
                self._changed.notify_all()
            if self._closing:
                if not worker.held:
                    self._write(worker, _STOP)
            else:
                self._dispatch()  # its next job first: the answer's callbacks below take a moment
        if job is not None:
            self._deliver(job, message)

    def _deliver(self, job: Job, message: bytearray) -> None:
        try:
            answer = pickle.loads(message)
        except Exception:  # noqa: BLE001 - (MemoryError too) not the parts' fault: they fail
            answer = ("error", "unreadable answer")
        if answer[0] == "ok":
            outcome = answer[1]
        elif answer[0] == "memory":
            outcome = _failed(job.parts, Failure.of(reasons.MEMORY_LIMIT))
        else:
            outcome = _failed(job.parts, Failure.of(reasons.PROCESSING_FAILURE, "verification failed"), answer[1])
        job.payload = None
        job.future.set_result(outcome)

    def _died(self, worker: _Worker) -> None:
        """A worker's answer pipe ended: replace it, and run its jobs again once (or fail them)."""
        worker.proc.join(timeout=1)
        with self._lock:
            if worker not in self._workers:
                return
            self._workers.remove(worker)
            jobs, worker.held = list(worker.held), collections.deque()
            closing = self._closing
            if not closing:
                log.error("a verification worker died; replacing it")
                self.restarts += 1
                self._last_death = time.monotonic()
        for end in (worker.jobs, worker.answers):
            end.close()
        retry = [job for job in jobs if job.tries < 2 and not closing]
        for job in jobs:
            if job not in retry:
                job.payload = None
                job.future.set_exception(WorkersDown())
        if closing:
            return
        if not worker.ready:
            time.sleep(0.25)  # it died starting: no tight loop of spawns if every new one does
        fresh = self._spawn()  # (outside the lock: submitters wait for none of its start)
        with self._lock:
            if self._closing:
                fresh.jobs.close()  # its end of the pipe makes it leave
                fresh.answers.close()
                return
            self._workers.append(fresh)
            self._queue.extendleft(reversed(retry))
            self._dispatch()

    # the server's side
    def pids(self) -> list[int]:
        """The worker processes' ids."""
        with self._lock:
            return [w.proc.pid for w in self._workers]

    def submit(self, path: str, start: int, end: int, expected_study: str | None) -> Check:
        return self.submit_batch([(path, start, end, "")], expected_study)[0]

    def submit_batch(self, items: list[tuple], expected_study: str | None) -> list[Check]:
        """One check per item of run_batch(), run together by one worker (in the calling thread without
        workers)."""
        args = (list(items), expected_study)
        if not self.workers:
            f: Future = Future()
            f.set_result(run_batch(*args, self.options, self.inflate))
            job = Job(None, len(items), f)
        else:
            sent = ([(pickle.PickleBuffer(s) if isinstance(s, bytes) else s, *rest) for s, *rest in items],
                    expected_study)
            job = Job(_job_message(sent), len(items), Future())
            with self._busy_lock:
                self._busy += 1
            job.future.add_done_callback(self._answered)
            with self._lock:
                if self._closing:
                    job.future.cancel()
                else:
                    self._queue.append(job)
                    self._dispatch()
        return [Check(job, i) for i in range(len(items))]

    def _answered(self, future: Future) -> None:
        with self._busy_lock:
            self._busy -= 1

    def idle(self) -> int:
        """Workers without a job at the moment (at least one: 0 workers run checks in the caller)."""
        return max(1, self.workers - self._busy)

    def free(self) -> int:
        """Workers without a job at the moment (0 when every one has one, or without workers)."""
        return max(0, self.workers - self._busy)

    def result(self, check: Check):
        """The part's (identity, failure, sha256). Raises WorkersDown when its batch's worker died twice."""
        job = check.job
        if job.outcome is None:
            try:
                job.outcome = job.future.result()
            except (WorkersDown, CancelledError):
                raise WorkersDown() from None
        ident, failure, digest, error = job.outcome[check.index]
        if error:
            log.error("verification failed (%s)", error)
        if type(ident) is tuple:  # (a worker's answer: _plain_identity)
            ident = Identity(*ident)
        return ident, failure, digest

    def health(self) -> dict:
        """{"state": "ok" | "degraded", "workers", "alive", "restarts"} for /receiver/status."""
        if not self.workers:
            return {"state": "ok", "workers": 0, "alive": 0, "restarts": self.restarts}
        with self._lock:
            workers = [w for w in self._workers if w.ready]
        alive = sum(1 for w in workers if w.proc.is_alive())
        recent = self._last_death is not None and time.monotonic() - self._last_death < DEGRADED_FOR
        degraded = recent or alive < self.workers  # (a worker still starting is not alive yet)
        return {"state": "degraded" if degraded else "ok", "workers": self.workers, "alive": alive,
                "restarts": self.restarts}

    def close(self) -> None:
        """Jobs not started are cancelled, the running ones finish; then the workers leave."""
        if not self.workers:
            return
        with self._lock:
            if self._closing:
                return
            self._closing = True
            waiting, self._queue = list(self._queue), collections.deque()
            for w in self._workers:
                if w.ready and not w.held:
                    self._write(w, _STOP)
        for job in waiting:
            if not job.future.cancel():  # taken once by a worker that died: running
                job.future.set_exception(WorkersDown())
        self._wake()
        self._thread.join(timeout=60)
        with self._lock:
            left = list(self._workers)
        for w in left:
            w.proc.kill()
