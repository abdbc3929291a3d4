"""The same batch on a Dask distributed cluster (`py-deid deidentify ... --dask ADDRESS`).

Workers must see the inputs and OUT at the same paths (a shared file system) and run the same py_deid.
Each task is one group of files (py_deid.batch): the worker de-identifies them, writes and flushes their
outputs in the run's staging folder and returns the report entries; this process names the outputs in input
order, exactly as with --jobs. A worker that dies takes its task with it; the scheduler runs it again
elsewhere and the lost attempt's temporary files are never named (they go with the staging folder). So the
outputs and the report are the same as with --jobs, whatever happens to the workers.

What travels to the scheduler and the workers: the settings, the pseudonym key and the file paths (never file
contents; the workers read them from the shared file system). On a network that others share, use a TLS
address (tls://) with Dask's security settings.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path

from . import __version__, batch
from . import report as _report
from .batch import GroupResult, Item, Job
from .options import Settings

RETRIES = 2  # a task that raised is tried again this often (a lost worker is the scheduler's allowed-failures)


class VersionMismatch(RuntimeError):
    """A worker runs another py_deid: its outputs would differ, so it does nothing."""


_LOCAL = threading.local()  # per worker thread: the de-identifier of the current job, built once


def _handle_on_worker(items: list[Item], staging: Path, job: Job, version: str) -> GroupResult:
    if version != __version__:
        raise VersionMismatch(f"worker runs py_deid {__version__}, the batch {version}")
    worker = getattr(_LOCAL, "worker", None)
    if worker is None or worker.job != job:
        worker = _LOCAL.worker = batch._Worker(job)
    try:
        return worker.handle(items, staging)
    except Exception as e:
        # Only the type travels back: a message could quote a path, and the scheduler logs what tasks raise.
        raise RuntimeError(f"de-identification task failed ({type(e).__name__})") from None


def _absolute(item: Item) -> Item:
    return Item(item.name, Path(os.path.abspath(item.path)), item.problem) if item.path is not None else item


def run(items: Iterable[Item], job: Job, writer: _report.ReportWriter, client, *, progress=None,
        group: int | None = None) -> dict:
    """Process every item on the cluster behind `client` (a distributed.Client); like batch.run."""
    job = Job(Path(os.path.abspath(job.out)), job.settings, job.key, 1)
    threads = sum(client.nthreads().values()) or 1
    run_id = secrets.token_hex(6)  # task names carry no path, only the run and the group's number
    counter = iter(range(1 << 62))

    def submit(items: list[Item], staging: Path):
        return client.submit(_handle_on_worker, [_absolute(i) for i in items], staging, job, __version__,
                             key=f"py-deid-{run_id}-{next(counter)}", pure=False, retries=RETRIES)

    return batch.run_groups(items, job.out, writer, submit, window=max(4, 3 * threads), progress=progress,
                            size=group)


def connect(address: str, *, timeout: float | None = None):
    """A client of the scheduler at `address` (tcp://host:8786, tls://..., or a scheduler file's path); the
    timeout defaults to Dask's configuration (distributed.comm.timeouts.connect)."""
    from distributed import Client
    given = {"timeout": timeout} if timeout is not None else {}
    if os.path.isfile(address):
        return Client(scheduler_file=address, **given)
    return Client(address, **given)


def deidentify(inputs: list[str], out: str | os.PathLike, *, scheduler, key: bytes,
               settings: Settings = Settings(), report: str | os.PathLike | None = None,
               key_source: str = "key given by the caller") -> dict:
    """De-identify files and folders into OUT on a Dask cluster; returns the report's summary.

    `scheduler` is an address (or scheduler file) or a distributed.Client. With `report`, the site's JSON report
    is written there, as `py-deid deidentify --report` writes it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    client = connect(scheduler) if isinstance(scheduler, (str, os.PathLike)) else scheduler
    job = Job(out, settings, key)
    head = _report.header(settings, key_source=key_source)
    try:
        with open(report if report is not None else os.devnull, "w", encoding="utf-8") as fh:
            return run(batch.iter_inputs([str(i) for i in inputs], exclude=out), job,
                       _report.ReportWriter(fh, head), client)
    finally:
        if client is not scheduler:
            client.close()
