"""The worker's JS bridges on real images: tesseract.js OCR (against native Tesseract) and the wasm codecs
(against pydicom's native decoders); and OCR that cannot load fails fast instead of hanging."""

from __future__ import annotations

import base64
import shutil

import numpy as np
import pydicom
import pytest

from py_deid.hosts import native
from py_deid.hosts.services import GrayImage, OcrRequest

from .conftest import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CALL = """async ([action, payload]) => {
    const el = document.querySelector('deid-uploader');
    await el.whenReady();
    const toBuf = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
    for (const k of ['pgm', 'frame']) if (payload[k]) payload[k] = toBuf(payload[k]);
    try {
        const out = await el.call(action, payload);
        if (!(out instanceof ArrayBuffer)) return {ok: out};
        let bin = '';
        const u8 = new Uint8Array(out);
        for (let i = 0; i < u8.length; i += 0x8000) bin += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
        return {ok: btoa(bin)};
    } catch (e) { return {error: {name: e.name, message: e.message}}; }
}"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _gray(samples, name: str, rows: slice) -> GrayImage:
    arr = pydicom.dcmread(samples.path(name)).pixel_array[rows]
    return GrayImage(arr.shape[1], arr.shape[0], np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def _overlap(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    return max(0, w) * max(0, h) / float(min(aw * ah, bw * bh) or 1)


def test_ocr_bridge_reads_burned_in_banner_like_native(receiver, session_factory, samples):
    image = _gray(samples, "GREYSCALE_IMAGE.dcm", slice(0, 80))  # the banner with the planted-looking PHI
    s = session_factory(receiver.url + "/")
    reply = s.page.evaluate(CALL, ["ocr", {"pgm": b64(image.pgm()), "psm": 11}])
    assert "ok" in reply, reply
    words = reply["ok"]
    ocr = native.ocr_service()
    if ocr is None:
        pytest.skip("native OCR (tesserocr + model) not installed")
    ref = ocr.find_text(OcrRequest(image, psm=11))
    ref_boxes = [(w.left, w.top, w.width, w.height) for w in ref if len(w.text) >= 4]
    found = [(w["left"], w["top"], w["width"], w["height"]) for w in words if len(w["text"]) >= 4]
    assert ref_boxes and found
    # Every long word native Tesseract finds is also boxed by tesseract.js (the two engines differ in version).
    matched = sum(any(_overlap(r, f) > 0.5 for f in found) for r in ref_boxes)
    assert matched / len(ref_boxes) >= 0.8, (ref, words)
    texts = " ".join(w["text"] for w in words)
    assert "00079241539" in texts  # the patient ID burned into this real image


def test_ocr_that_cannot_load_fails_fast(dist, tmp_path, session_factory):
    broken = tmp_path / "site"
    shutil.copytree(dist, broken)
    (broken / "vendor" / "tessdata" / "eng.traineddata.gz").unlink()
    r = Receiver(broken, tmp_path / "store")
    r.start()
    try:
        s = session_factory(r.url + "/")
        image = GrayImage(8, 8, bytes(64))
        reply = s.page.evaluate(CALL, ["ocr", {"pgm": b64(image.pgm()), "psm": 11}])
        assert reply.get("error", {}).get("name") == "OcrError", reply
        chip = s.page.locator("deid-uploader >> [data-stage=ocr]")
        assert chip.get_attribute("data-state") == "failed"
    finally:
        r.stop()


@pytest.mark.parametrize("name", ["ctbrain1.dcm", "JPEG-LL.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_wasm_codecs_decode_like_pydicom(receiver, session_factory, samples, name):
    from pydicom.encaps import generate_fragmented_frames

    ds = pydicom.dcmread(samples.path(name))
    frame = b"".join(next(generate_fragmented_frames(ds.PixelData, number_of_frames=1)))
    info = {"rows": int(ds.Rows), "columns": int(ds.Columns), "bitsAllocated": int(ds.BitsAllocated),
            "samplesPerPixel": int(ds.SamplesPerPixel)}
    s = session_factory(receiver.url + "/")
    reply = s.page.evaluate(CALL, ["decode", {"frame": b64(frame), "transferSyntax": str(ds.file_meta.TransferSyntaxUID), "info": info}])
    assert "ok" in reply, reply
    got = base64.b64decode(reply["ok"])
    want = ds.pixel_array
    dtype = np.uint16 if ds.BitsAllocated == 16 else np.uint8
    decoded = np.frombuffer(got, dtype=dtype).reshape(want.shape)
    if str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.50":
        # Lossy JPEG: decoders may round differently (IDCT), never by more than a grey level or two.
        assert np.abs(decoded.astype(int) - want.astype(int)).max() <= 2
    else:
        assert np.array_equal(decoded.view(want.dtype) if want.dtype.itemsize == decoded.itemsize else decoded, want)
