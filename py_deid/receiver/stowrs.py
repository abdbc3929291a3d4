"""STOW-RS (PS3.18 10.5) on a body already split: check each part, store what passes, answer.

Each part is verified by a worker process: a small part travels to it as bytes, and when its check passes
the server appends the same bytes to the request's pack (storage.Pack: one file per request, written as each
group's answer arrives; a part that fails is never written); a large one the worker reads from the temp file
the server wrote as it arrived (memory follows the largest instance, not the body), and it is stored as a
file of its own. Parts go to the workers in groups (Batcher), one round trip per group, and each is still
judged alone; the parts that passed are committed in one step (the pack and the large files flushed, ledger
rows); the answer lists them in request order with the others' failure reasons.
"""

from __future__ import annotations

import errno
import json
import threading
import time
from dataclasses import dataclass, field

from .. import stow
from ..structure import valid_uid
from . import dicomjson, reasons
from .body import SpooledBody, SpooledPart
from .config import ReceiverConfig
from .reasons import Failure
from .storage import CONFLICT, STORED, Candidate, Store, Syncer
from .workers import VerifierPool


@dataclass
class StowResult:
    status: int
    body: bytes  # the response document as sent (encoded in the request's thread, not on the event loop)
    stored: int = 0
    failed: int = 0
    failure_codes: list[int] = field(default_factory=list)

    @property
    def document(self) -> dict:
        return json.loads(self.body)


def _part_is_dicom(headers: dict[str, str]) -> bool:
    value = headers.get("content-type")
    if value is None:
        return True  # the request's type parameter applies (RFC 2387)
    if value == stow.DICOM:
        return True  # as every client sends it: no parsing needed
    try:
        media, _ = stow.parse_content_type(value)
    except ValueError:
        return False
    return media == stow.DICOM


def process(store: Store, cfg: ReceiverConfig, verifier: VerifierPool, parts: list[SpooledPart], *,
            site: str, expected_study: str | None, base_url: str, marks: list | None = None) -> StowResult:
    """Verify and store the parts; every part's temp file is gone or committed when this returns. `marks`
    (a list): the times of its steps are appended (app.TIMELINE)."""
    if marks is not None:
        marks.append(("thread", time.perf_counter()))
    order: list[tuple[int, str, dict]] = []  # (part index, kind, item): answered in request order
    codes: list[int] = []
    candidates: list[tuple[int, Candidate]] = []

    def fail(index: int, failure: Failure, ident=None) -> None:
        codes.append(failure.reason)
        if ident is not None and valid_uid(ident.sop_class_uid) and valid_uid(ident.sop_uid):
            order.append((index, "failed", dicomjson.failed_item(ident.sop_class_uid, ident.sop_uid, failure)))
        else:
            order.append((index, "other", dicomjson.other_failure_item(failure)))

    # Every part is verified in parallel by the worker processes, which read it from its temp file
    # (most were submitted by a Batcher while the body was arriving; the others are submitted here).
    Batcher(verifier, expected_study, store.syncer).finish_with([part for part in parts if part.check is None])
    checks = [(part, part.check) for part in parts]
    by_index = {part.index: part for part in parts}
    low_on_space = None
    try:
        for part, job in checks:
            if job is None:
                fail(part.index, Failure.of(reasons.CANNOT_UNDERSTAND, "part is not application/dicom"))
                continue
            ident, failure, digest = verifier.result(job)  # WorkersDown: nothing of the request is stored
            if failure is None and part.packed is not None:
                part.packed.wait()  # its group's append to the pack (run when the check's answer arrived)
                if part.pack_offset is None:
                    failure = Failure.of(_os_reason(part.pack_error or OSError()))
            if failure is None and low_on_space is None:  # once per request (the parts are on disk by now)
                low_on_space = store.free_bytes() < cfg.limits.min_free_bytes
            if failure is not None:
                fail(part.index, failure, ident)
            elif low_on_space:
                fail(part.index, Failure.of(reasons.OUT_OF_RESOURCES), ident)
            else:
                candidates.append((part.index, _candidate(part, ident, digest)))
        if marks is not None:
            marks.append(("checks", time.perf_counter()))
        try:
            # Most large files' flushes started when their check passed; the rest start here. The commit
            # renames the files while they run and waits for them before its flushed transaction; it flushes
            # the request's pack itself, in this thread (Store.commit).
            flushes = store.syncer.start_missing(
                [(c.temp, by_index[index].synced) for index, c in candidates if c.pack is None])
            store.commit([c for _, c in candidates], site, forward=cfg.forwarding is not None, marks=marks,
                         flushes=flushes)
        except OSError as e:
            for index, c in candidates:
                if c.temp is not None:
                    c.temp.unlink(missing_ok=True)
                c.outcome = "failed"
                fail(index, Failure.of(_os_reason(e)), c)
    finally:
        for part, job in checks:
            if job is not None:
                job.cancel()
        committed = {c.temp for _, c in candidates if c.outcome == STORED and c.pack is None}
        kept = {id(c.pack) for _, c in candidates if c.outcome == STORED and c.pack is not None}
        for pack in {id(p.pack): p.pack for p in parts if p.pack is not None}.values():
            pack.finish(keep=id(pack) in kept)  # a pack no row points to goes now
        for part in parts:
            if part.path not in committed:
                part.remove()
            part.settled = True  # the caller's discard() need not touch it again

    studies = set()
    for index, c in candidates:
        if c.outcome == "failed":
            continue
        if c.outcome == CONFLICT:
            fail(index, Failure.of(reasons.DUPLICATE_CONFLICT), c)
        else:
            studies.add(c.study_uid)
            url = f"{base_url}/studies/{c.study_uid}/series/{c.series_uid}/instances/{c.sop_uid}"
            order.append((index, "referenced", (c.sop_class_uid, c.sop_uid, url)))
    items: dict[str, list] = {"referenced": [], "failed": [], "other": []}
    for _, kind, item in sorted(order, key=lambda t: t[0]):
        items[kind].append(item)
    study_url = f"{base_url}/studies/{next(iter(studies))}" if len(studies) == 1 else ""
    body = dicomjson.store_response_json(study_url, items["referenced"], items["failed"], items["other"])
    n_failed = len(items["failed"]) + len(items["other"])
    status = 200 if not n_failed else 202 if items["referenced"] else 409
    return StowResult(status, body, stored=len(items["referenced"]), failed=n_failed, failure_codes=codes)


def start(verifier: VerifierPool, part: SpooledPart, expected_study: str | None, syncer: Syncer | None = None):
    """Submit a complete part's check (None for a part that is not application/dicom); with a syncer, the
    part's fsync starts as soon as the check has passed (a part that fails is never flushed)."""
    checks = start_batch(verifier, [part], expected_study, syncer)
    return checks[0] if checks else None


def start_batch(verifier: VerifierPool, parts: list[SpooledPart], expected_study: str | None,
                syncer: Syncer | None = None, body: SpooledBody | None = None) -> list:
    """start() for several parts, checked together in one submission (one worker, one round trip); returns
    the checks of those that are application/dicom (the others keep check None). An in-memory part goes
    as bytes (the worker writes it to its temp name if it passes), and `body` no longer holds it once its
    check has answered."""
    dicom = [part for part in parts if _part_is_dicom(part.headers)]
    if not dicom:
        return []
    items = []
    held = []
    packing: list[tuple[SpooledPart, bytes]] = []  # in-memory parts whose bytes go to their pack if they pass
    for part in dicom:
        if part.in_memory:
            if part.pack is not None:
                items.append((part.data, 0, part.size, ""))  # (no target: the worker writes nothing)
                packing.append((part, part.data))
            else:
                items.append((part.data, 0, part.size, str(part.path)))
            part.data = None  # the job holds it until its worker has answered
            held.append(part)
        else:
            items.append((str(part.path), 0, part.size, ""))
    written = threading.Event() if packing else None
    for part, _ in packing:
        part.packed = written
    checks = verifier.submit_batch(items, expected_study)
    for part, check in zip(dicom, checks):
        part.check = check
    if syncer is not None or (body is not None and held) or packing:
        def answered(future) -> None:
            try:
                ok = not future.cancelled() and future.exception() is None
                if packing and ok:  # a dead worker's check is run again before its future is done
                    _append(packing, future.result(), dicom)
                packing.clear()  # (the bytes are no longer needed here)
            finally:
                if written is not None:
                    written.set()
            if body is not None and held:
                body.release(held)  # (the job's arguments are dropped too: Job.answered)
            if syncer is None or not ok:
                return  # a dead worker's check, run again by VerifierPool.result(): flushed in process()
            passed = [part for part, outcome in zip(dicom, future.result())
                      if outcome[1] is None and part.packed is None]
            if passed:
                flushes = syncer.start_group([part.path for part in passed])  # one waitable for the group
                for part in passed:
                    part.synced = flushes

        checks[0].future.add_done_callback(answered)
    return checks


def _append(packing: list[tuple[SpooledPart, bytes]], outcomes: list, dicom: list[SpooledPart]) -> None:
    """Append the parts of a group that passed to their request's pack (one write for the group); a part
    that could not be appended fails in process()."""
    verdicts = {id(part): outcome for part, outcome in zip(dicom, outcomes)}
    passed = [(part, data) for part, data in packing if verdicts[id(part)][1] is None]
    if not passed:
        return
    pack = passed[0][0].pack
    try:
        offsets = pack.append([data for _, data in passed])
    except OSError as e:
        for part, _ in passed:
            part.pack_error = e
        return
    for (part, _), offset in zip(passed, offsets):
        part.pack_offset = offset


class Batcher:
    """Groups a request's parts into submissions while the body arrives: waiting parts are submitted once
    they hold BATCH_BYTES or BATCH_PARTS (a large part at once, so its check overlaps the rest of the body),
    or EARLY_PARTS while a worker has nothing to do (its check then overlaps the rest of the body instead of
    all of them starting at its end), the rest when the body is complete, spread over the workers. Small
    instances then pay one round trip to a worker per group instead of one each (pickling, queues and
    wake-ups in the server)."""

    BATCH_BYTES = 4 * 1024 * 1024
    BATCH_PARTS = 32
    EARLY_PARTS = 4

    def __init__(self, verifier: VerifierPool, expected_study: str | None, syncer: Syncer | None,
                 body: SpooledBody | None = None) -> None:
        self.verifier, self.expected_study, self.syncer, self.body = verifier, expected_study, syncer, body
        self.waiting: list[SpooledPart] = []
        self.size = 0

    def add(self, part: SpooledPart) -> None:
        self.waiting.append(part)
        self.size += part.size
        n = len(self.waiting)
        if (self.size >= self.BATCH_BYTES or n >= self.BATCH_PARTS
                or (n >= self.EARLY_PARTS and self.verifier.free())):
            self._submit(self.waiting)
            self.waiting, self.size = [], 0

    def finish(self) -> None:
        """The body is complete: submit what waits, in as many groups as there are idle workers (when all
        are busy, as one group: each group costs a round trip, and a busy pool gains nothing from more)."""
        waiting, self.waiting, self.size = self.waiting, [], 0
        self.finish_with(waiting)

    def finish_with(self, waiting: list[SpooledPart]) -> None:
        if not waiting:
            return
        groups = max(1, min(self.verifier.idle(), len(waiting)))
        step = -(-len(waiting) // groups)
        for i in range(0, len(waiting), step):
            self._submit(waiting[i:i + step])

    def _submit(self, parts: list[SpooledPart]) -> None:
        if parts:
            start_batch(self.verifier, parts, self.expected_study, self.syncer, self.body)


def _os_reason(e: OSError) -> int:
    return reasons.OUT_OF_RESOURCES if e.errno == errno.ENOSPC else reasons.PROCESSING_FAILURE


def _candidate(part: SpooledPart, ident, digest: str) -> Candidate:
    packed = part.packed is not None
    return Candidate(temp=part.path, sop_uid=ident.sop_uid, study_uid=ident.study_uid, series_uid=ident.series_uid,
                     sop_class_uid=ident.sop_class_uid, modality=ident.modality,
                     transfer_syntax=ident.transfer_syntax, sha256=digest, size=part.size,
                     pack=part.pack if packed else None, offset=part.pack_offset if packed else 0)
