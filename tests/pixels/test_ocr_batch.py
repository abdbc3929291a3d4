"""Batched OCR (Deidentifier(ocr_batch=True), pixels.clean(batch=True)): the readings of a step that do not
depend on each other go out as one OcrBatch, which a host with several OCR engines reads at the same time. The
outcome must be the same, byte for byte, as one request at a time: the same masks, the same counts (OCR requests
included), the same pixels. Checked on evaluation-set scenes (a cine with a clock, banner bands, colour) and a
real ultrasound file written by others, in both text modes, with the batches read on two threads."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from py_deid import pixels as px
from py_deid.hosts import native
from py_deid.hosts.services import OcrBatch, OcrRequest, OcrStart
from py_deid.instance import Deidentifier, run_sync
from py_deid.options import Settings
from py_deid.phi import PhiTerms

sys.path.insert(0, str(Path(__file__).resolve().parent / "evaluation"))
import eval_scenes  # noqa: E402

pytestmark = pytest.mark.slow
CASES = ("us-rgb-cine-clock", "nm-mono2-16-band", "us-ybr-full-anatomy")


def _drive(steps, ocr, pool=None, seen=None, starts=None):
    """Answer OcrRequests and OcrBatches (on `pool`'s threads); `seen` collects each batch's size, `starts` each
    OcrStart's requests (each must come again, the same object, in the batch that follows)."""
    pending: list = []
    try:
        request = next(steps)
        while True:
            if isinstance(request, OcrStart):
                assert starts is not None, "OcrStart without start=True"
                starts.append(request.requests)
                pending.extend(request.requests)
                request = steps.send(None)
                continue
            assert isinstance(request, OcrBatch) or not pending, "started requests never asked for"
            if isinstance(request, OcrBatch):
                assert all(any(p is r for r in request.requests) for p in pending), "a started request is missing"
                pending = []
                if seen is not None:
                    seen.append(len(request.requests))
                assert all(isinstance(r, OcrRequest) for r in request.requests)
                request = steps.send(list(pool.map(ocr.find_text, request.requests)))
            else:
                request = steps.send(ocr.find_text(request))
    except StopIteration as stop:
        return stop.value


def _clean(ds, mode: str, ocr, batch: bool, pool=None, seen=None, starts=None):
    ds = pydicom.dcmread(BytesIO(_bytes(ds)))
    outcome = _drive(px.clean(ds, Settings(pixels="all", text=mode), PhiTerms.from_dataset(ds),
                              transfer_syntax=str(ds.file_meta.TransferSyntaxUID), codecs=native.codec_service(),
                              batch=batch, start=starts is not None), ocr, pool, seen, starts)
    return ds.PixelData, outcome


def _bytes(ds) -> bytes:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(2) as ex:
        yield ex


@pytest.mark.parametrize("mode", ["strict", "phi"])
@pytest.mark.parametrize("name", CASES)
def test_batched_readings_give_the_same_outcome(ocr_engine, pool, name, mode):
    case = eval_scenes.cases([name])[0]
    seen: list[int] = []
    one_by_one = _clean(case.dataset, mode, ocr_engine, batch=False)
    batched = _clean(case.dataset, mode, ocr_engine, batch=True, pool=pool, seen=seen)
    assert seen and max(seen) >= 2, "no batch of two or more readings was asked for"
    assert batched[0] == one_by_one[0]
    assert batched[1].frames == one_by_one[1].frames
    assert batched[1].counts == one_by_one[1].counts  # the same OCR requests and repeats, too
    assert batched[1].words == one_by_one[1].words


@pytest.mark.parametrize("mode", ["strict", "phi"])
def test_real_ultrasound_through_the_instance_pipeline(samples, ocr_engine, pool, mode):
    """A real burned-in ultrasound file (deid-data's RGB_IMAGE.dcm), the whole instance: output bytes equal."""
    data = samples.bytes("RGB_IMAGE.dcm")
    settings = Settings(pixels="all", text=mode)
    key = bytes(range(32))
    plain = run_sync(Deidentifier(settings, key, codecs=native.codec_service()).process(data), ocr_engine)
    batched = run_sync(Deidentifier(settings, key, codecs=native.codec_service(), ocr_batch=True).process(data),
                       ocr_engine, pool)
    assert plain.status == batched.status == "done"
    assert batched.output == plain.output
    assert batched.pixels == plain.pixels


def test_a_batch_fails_closed_without_ocr():
    """A host without OCR answers a batch as it answers a request: the instance fails, nothing half-cleaned."""
    case = eval_scenes.cases(["nm-mono2-16-band"])[0]
    data = _bytes(case.dataset)
    steps = Deidentifier(Settings(pixels="all"), bytes(range(32)), codecs=native.codec_service(),
                         ocr_batch=True).process(data)
    result = run_sync(steps, None)
    assert result.status == "failed" and result.output is None


@pytest.mark.parametrize("name", ["us-rgb-cine-clock", "nm-mono2-16-band"])
def test_readings_started_early_give_the_same_outcome(ocr_engine, pool, name):
    """OcrStart (the browser's engines start on a batch's first image while the core makes the rest): the
    same requests, the same outcome as one at a time; without batches there is no OcrStart."""
    case = eval_scenes.cases([name])[0]
    starts: list = []
    one_by_one = _clean(case.dataset, "strict", ocr_engine, batch=False)
    early = _clean(case.dataset, "strict", ocr_engine, batch=True, pool=pool, starts=starts)
    assert starts and all(len(s) == 1 for s in starts)
    assert early[0] == one_by_one[0]
    assert early[1].counts == one_by_one[1].counts
    assert early[1].words == one_by_one[1].words
    assert _clean(case.dataset, "strict", ocr_engine, batch=False, starts=[])[1].counts == one_by_one[1].counts


def test_real_ultrasound_started_early_through_run_sync(samples, ocr_engine, pool):
    """The instance pipeline with ocr_start=True, driven by run_sync (which reads started requests with their
    batch): the same output bytes as one request at a time."""
    data = samples.bytes("GREYSCALE_IMAGE.dcm")
    settings = Settings(pixels="all")
    key = bytes(range(32))
    plain = run_sync(Deidentifier(settings, key, codecs=native.codec_service()).process(data), ocr_engine)
    early = run_sync(Deidentifier(settings, key, codecs=native.codec_service(), ocr_batch=True,
                                  ocr_start=True).process(data), ocr_engine, pool)
    assert plain.status == early.status == "done"
    assert early.output == plain.output
