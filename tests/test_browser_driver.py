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
