"""The browser host's driver (py_deid.hosts.browser.run_async), run here with asyncio and a stand-in for the
worker's OCR bridge: an OcrStart's readings begin before the core goes on, each image is read once, the batch's
answers come in its order, a failure fails closed, and the time is split between Python and OCR."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from py_deid.hosts.browser import Spent, run_async
from py_deid.hosts.services import GrayImage, OcrBatch, OcrRequest, OcrStart, ServiceUnavailable, Word


def _request(n: int) -> OcrRequest:
    return OcrRequest(GrayImage(1, 1, bytes([n])))


def _core(log: list, first: OcrRequest, rest: list[OcrRequest]):
    """A pipeline that makes `first` known early, then prepares the rest, then asks for them all."""
    yield OcrStart((first,))
    log.append("core: rest prepared")
    answers = yield OcrBatch((first, *rest))
    return answers


class _Ocr:
    def __init__(self, log: list, fail: int | None = None) -> None:
        self.log = log
        self.fail = fail

    async def __call__(self, request: OcrRequest) -> list[Word]:
        n = request.image.pixels[0]
        self.log.append(f"read {n}")
        await asyncio.sleep(0.01)
        if n == self.fail:
            raise ServiceUnavailable("OCR failed in the browser: Error")
        return [Word(f"w{n}", 0, 0, 1, 1, 90.0)]


def _run(coro):
    # In a thread of its own: a test run earlier in this process (Playwright's sync API) may have left an event
    # loop running in the main thread, where asyncio.run refuses to start.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_started_reading_begins_before_the_core_goes_on_and_is_read_once():
    log: list = []
    spent = Spent()
    answers = _run(run_async(_core(log, _request(1), [_request(2), _request(3)]), _Ocr(log), spent=spent))
    assert [a[0].text for a in answers] == ["w1", "w2", "w3"]
    assert log == ["read 1", "core: rest prepared", "read 2", "read 3"]
    assert spent.requests == 3 and spent.batches == 1 and spent.ocr > 0


def test_a_started_reading_that_fails_fails_the_batch():
    log: list = []

    def core():
        try:
            yield from _core(log, _request(1), [_request(2)])
        except ServiceUnavailable:
            return "failed closed"

    assert _run(run_async(core(), _Ocr(log, fail=1))) == "failed closed"


def test_without_ocr_a_start_is_passed_over_and_the_batch_fails_closed():
    def core():
        yield OcrStart((_request(1),))
        try:
            yield OcrBatch((_request(1),))
        except ServiceUnavailable:
            return "failed closed"

    assert _run(run_async(core(), None)) == "failed closed"


def test_the_warm_up_instance_is_made_up_and_leaves_the_session_as_it_was():
    """Session.warm_up (run by the worker before its first file): a made-up instance de-identified with its own
    settings and key, nothing of it kept by the session, and it never raises."""
    import pydicom
    from io import BytesIO

    from py_deid.hosts.browser import Session, _made_up_instance
    from py_deid.instance import Deidentifier, run_sync
    from py_deid.options import Settings

    data = _made_up_instance()
    ds = pydicom.dcmread(BytesIO(data))
    assert str(ds.PatientName) == "Warm^Up" and ds.PatientID == "WARMUP"
    assert run_sync(Deidentifier(Settings(pixels="off"), bytes(32)).process(data), None).status == "done"
    session = Session()
    before = (session._deid, session._key, session.spent.as_dict())
    assert session.warm_up() >= 0
    assert (session._deid, session._key, session.spent.as_dict()) == before


class _Bytes:
    """What the worker hands the session: a Uint8Array proxy with to_bytes()."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


def test_the_review_policy_records_only_what_it_can_hold():
    """may_hold: "always" holds anything, "pixels" only a run whose pixel step runs (pixels on, or a reviewer's
    plan), "never" nothing."""
    from py_deid.hosts.browser import may_hold
    from py_deid.options import Settings

    off, auto = Settings(pixels="off"), Settings(pixels="auto")
    assert may_hold("always", off) and may_hold("always", auto)
    assert may_hold("pixels", auto) and may_hold("pixels", Settings(pixels="all"))
    assert may_hold("pixels", off, plan=object())
    assert not may_hold("pixels", off)
    assert not may_hold("never", auto) and not may_hold("", auto)


def test_a_tags_only_run_under_the_pixels_policy_is_not_recorded(samples):
    """The served page's policy ("pixels") with pixels="off" (tags-only): the session runs the instance without
    recording its header's changes (3x the header's time), and with pixels on it records them."""
    from py_deid.hosts.browser import Session
    from py_deid.instance import Deidentifier, run_sync
    from py_deid.options import Settings

    data = samples.bytes("CT_small.dcm")
    for pixels, recorded in (("off", False), ("auto", True)):
        session = Session()
        session._deid = Deidentifier(Settings(pixels=pixels), bytes(32), ocr_batch=True, ocr_start=True)
        session._key = bytes(32)
        steps, review = session._start(_Bytes(data), "pixels", None)
        result = run_sync(steps, None)
        assert result.status == "done" and review == "pixels"
        assert (session._recording is not None) is recorded
        assert ("changes" in result.local) is recorded


def test_pixels_off_never_holds_under_the_pixels_policy(samples):
    """What may_hold relies on: with pixels="off" and no plan no image is held under "pixels", whatever its
    pixels (uncompressed, JPEG, JPEG 2000, RLE, an ultrasound frame with burned-in text, several frames)."""
    from py_deid import review
    from py_deid.instance import Deidentifier, run_sync
    from py_deid.options import Settings

    deid = Deidentifier(Settings(pixels="off"), bytes(32))
    names = ("CT_small.dcm", "GREYSCALE_IMAGE.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm", "emri_small.dcm",
             "SC_rgb_jpeg_dcmtk.dcm")
    for name in names:
        result = run_sync(deid.process(samples.bytes(name)), None)
        assert result.status == "done", (name, result.status)
        assert not review.held("pixels", result), name


def test_a_held_result_without_its_record_fails_closed(samples, monkeypatch):
    """The guard behind may_hold: a result the policy holds that was run without recording is not handed on
    (neither uploaded nor shown for review without the header's changes)."""
    from py_deid.hosts import browser
    from py_deid.instance import Deidentifier, run_sync
    from py_deid.options import Settings

    monkeypatch.setattr(browser, "_js", lambda value: value)
    result = run_sync(Deidentifier(Settings(pixels="off"), bytes(32)).process(samples.bytes("CT_small.dcm")), None)
    session = browser.Session()
    session._deid = Deidentifier(Settings(pixels="off"), bytes(32))
    reply = session._finish(result, "always")
    assert reply["error"]["name"] == "InternalError"
    assert "output" not in reply and "local" not in reply


def test_the_record_leaves_the_sha256_to_a_host_that_digests_the_output():
    """Session(host_digests=True), as the worker makes it where it has SubtleCrypto: the record's sha256 is null
    and the page digests the output (web/src/pool.js sha256Hex); everything else in the record is the same."""
    import hashlib

    from py_deid.hosts.browser import Session, _made_up_instance, result_record
    from py_deid.instance import Deidentifier, run_sync
    from py_deid.options import Settings

    result = run_sync(Deidentifier(Settings(pixels="off"), bytes(32)).process(_made_up_instance()), None)
    own, left = result_record(result), result_record(result, digest=False)
    assert own["sha256"] == hashlib.sha256(result.output).hexdigest() and left["sha256"] is None
    assert {**own, "sha256": None} == left
    assert Session()._host_digests is False and Session(None, None, True)._host_digests is True
