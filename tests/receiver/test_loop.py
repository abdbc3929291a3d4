"""What the event loop does per STOW request, kept small (branch recvloop): a part's head parsed once per
distinct block, no temp name for a part that goes to its pack, the parts' bytes sent to the workers out of
band (not copied into a pickle on the loop), the request's thread waited for when its caller is cancelled,
the answer encoded in that thread."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from py_deid import stow
from py_deid.options import Options
from py_deid.receiver import body as body_module
from py_deid.receiver.app import _in_thread
from py_deid.receiver.storage import Store
from py_deid.receiver.workers import PIPE_BYTES, VerifierPool

from . import receiver_support as rs
from .test_body import _split
from .test_pack import _process


def test_a_part_head_is_parsed_once_per_distinct_block_and_never_shared(tmp_path, monkeypatch):
    calls = []
    parse = body_module._parse_headers

    def counting(block):
        calls.append(block)
        return parse(block)

    monkeypatch.setattr(body_module, "_parse_headers", counting)
    parts = [b"a" * 50, b"b" * 60, b"c" * 70]
    ctype, body = stow.encode(parts, boundary="bb")
    # the third part with a head of its own
    body = body.replace(b"\r\n\r\n" + b"c" * 70, b"\r\nContent-Location: x\r\n\r\n" + b"c" * 70)
    store = Store(tmp_path / "store")
    out = _split(store, body, 1 << 20)
    try:
        heads = [p.headers for p in out.parts]
        assert heads[0] == heads[1] == {"content-type": "application/dicom"}
        assert heads[2] == {"content-type": "application/dicom", "content-location": "x"}
        assert len(calls) == 2  # the second part's identical head was not parsed again
        heads[0]["content-type"] = "changed"
        assert out.parts[1].headers["content-type"] == "application/dicom"  # each part has its own dict
    finally:
        out.discard()
        store.close()


def test_a_malformed_head_after_a_good_one_is_still_refused(tmp_path):
    ctype, body = stow.encode([b"a" * 50, b"b" * 60], boundary="bb")
    body = body.replace(b"\r\n\r\n" + b"b" * 60, b"\r\nno colon here\r\n\r\n" + b"b" * 60)
    store = Store(tmp_path / "store")
    with pytest.raises(body_module.MultipartError):
        _split(store, body, 1 << 20)
    store.close()


def test_a_packed_part_has_no_temp_name_and_a_spilled_one_has(tmp_path, monkeypatch):
    monkeypatch.setattr(body_module, "SMALL_PART_BYTES", 4096)
    parts = [b"s" * 100, b"t" * 5000, b"u" * 200]
    store = Store(tmp_path / "store")
    out = _split(store, stow.encode(parts, boundary="bb")[1], 1000)
    try:
        assert [p.in_memory for p in out.parts] == [True, False, True]
        assert out.parts[0].path is None and out.parts[2].path is None
        assert out.parts[1].path.parent == store.tmp_dir and out.parts[1].path.read_bytes() == parts[1]
    finally:
        out.discard()
        assert not list(store.tmp_dir.iterdir())
        store.close()


def test_parts_go_to_a_worker_out_of_band_and_arrive_whole():
    # Each part's bytes object is itself a segment of the job's message (no copy into a pickle on the event
    # loop); batches bigger than the job pipe are written on by the pool's thread and still arrive whole.
    pool = VerifierPool(Options(), 1)
    try:
        written = []
        write = pool._write

        def recording(worker, segments):
            written.append(segments)
            write(worker, segments)

        pool._write = recording
        batches = [[os.urandom(700 * 1024) for _ in range(3)] for _ in range(3)]  # each ~2 MiB > the pipe
        assert sum(map(len, batches[0])) > PIPE_BYTES
        checks = [pool.submit_batch([(d, 0, len(d), "") for d in batch], None) for batch in batches]
        for data in batches[0]:
            assert any(isinstance(s, memoryview) and s.obj is data for s in written[0])
        for batch, batch_checks in zip(batches, checks):
            digests = [pool.result(c)[2] for c in batch_checks]
            assert digests == [hashlib.sha256(d).hexdigest() for d in batch]
    finally:
        pool.close()


def test_the_request_s_thread_is_waited_for_when_its_caller_is_cancelled():
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def work():
        started.set()
        release.wait(10)
        finished.set()
        return 1

    async def main():
        with ThreadPoolExecutor(1) as pool:
            task = asyncio.ensure_future(_in_thread(pool, work))
            while not started.is_set():
                await asyncio.sleep(0.005)
            task.cancel()
            await asyncio.sleep(0.05)
            assert not task.done()  # still waiting for the thread (its body and files are in use)
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert finished.is_set()

    with ThreadPoolExecutor(1) as runner:  # (a test in this process may hold a running loop: Playwright's)
        runner.submit(asyncio.run, main()).result()


def test_the_answer_is_encoded_in_the_request_s_thread(tmp_path, instances):
    store = Store(tmp_path / "store")
    try:
        parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 700 + i) for i in range(2)]
        _, outcome = _process(store, [*parts, instances.raw("CT_small.dcm")])
        assert outcome.stored == 2 and outcome.failed == 1
        assert outcome.body == json.dumps(outcome.document, separators=(",", ":")).encode()
    finally:
        store.close()


def test_the_answer_from_its_template_is_what_json_writes(tmp_path, instances):
    # store_response_json writes the referenced items from a template: byte for byte what json_bytes makes of
    # the dicts, empty values (dropped), quotes, backslashes and non-ASCII in the base URL (escaped) included.
    from py_deid.receiver import dicomjson, reasons
    from py_deid.receiver.reasons import Failure
    from py_deid.receiver.responses import json_bytes

    refs = [("1.2.840.10008.5.1.4.1.1.2", "2.25.1", "https://h:8443/dicomweb/studies/1/series/2/instances/2.25.1"),
            ("", "2.25.2", 'https://h/"q"\\/é\u2028/instances/2.25.2'), ("1.2", "", "x")]
    failed = [dicomjson.failed_item("1.2.3", "2.25.9", Failure.of(reasons.DUPLICATE_CONFLICT))]
    other = [dicomjson.other_failure_item(Failure.of(reasons.CANNOT_UNDERSTAND, "part is not application/dicom"))]
    for url in ("", "https://h/dicomweb/studies/1.2.3", 'https://é/"\\'):
        for r, f, o in ((refs, [], []), (refs[:1], failed, []), ([], failed, other), (refs, failed, other),
                        ([], [], [])):
            expected = json_bytes(dicomjson.store_response(url, [dicomjson.referenced_item(*x) for x in r], f, o))
            assert dicomjson.store_response_json(url, r, f, o) == expected
    store = Store(tmp_path / "store")
    try:
        parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 710 + i) for i in range(2)]
        _, outcome = _process(store, [*parts, instances.raw("CT_small.dcm")])
        assert [rs.value(item, "00081155") for item in rs.seq(outcome.document, "00081199")] == [
            rs.uids(p)[2] for p in parts]
        assert len(rs.seq(outcome.document, "00081198")) == 1
    finally:
        store.close()


def test_a_worker_answers_identities_as_plain_tuples(instances, monkeypatch):
    # The worker's answer carries each identity as a tuple (cheap to pickle and unpickle), and the pool's
    # result() gives the request an Identity again, equal to the one the check made.
    import pickle

    from py_deid.receiver import workers
    from py_deid.receiver.verification import Identity, inspect_bytes

    part = rs.with_new_uids(instances.deid("CT_small.dcm"), 720)
    from py_deid.inflate import DEFAULT_LIMITS

    monkeypatch.setattr(workers, "_settings", (Options(), DEFAULT_LIMITS))  # (what _worker_init sets in a worker)
    answer = workers._check_batch([(part, 0, len(part), "")], None)
    assert type(answer[0][0]) is tuple and b"Identity" not in pickle.dumps(answer, protocol=5)
    pool = VerifierPool(Options(), workers=1)
    try:
        ident, failure, digest = pool.result(pool.submit_batch([(part, 0, len(part), "")], None)[0])
    finally:
        pool.close()
    expected = inspect_bytes(part, Options(), None)
    assert failure is None and type(ident) is Identity and (ident, failure, digest) == expected
