"""Native OCR (tesserocr + the pinned eng.traineddata of npm @tesseract.js-data/eng@1.0.0)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading

import pytest

from py_deid.hosts import tessdata
from py_deid.hosts.native_ocr import NativeOcr
from py_deid.hosts.services import GrayImage, OcrRequest, OcrService, ServiceUnavailable


def test_model_is_the_pinned_file(ocr_engine):
    folder = tessdata.present()
    assert folder is not None
    data = (folder / "eng.traineddata").read_bytes()
    assert hashlib.sha256(data).hexdigest() == tessdata.TRAINEDDATA_SHA256


def _tarball(member_bytes: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(tessdata.MEMBER)
        info.size = len(member_bytes)
        tar.addfile(info, io.BytesIO(member_bytes))
    return buf.getvalue()


def test_a_tarball_that_is_not_the_pinned_one_is_refused():
    with pytest.raises(tessdata.TessdataError, match="sha512"):
        tessdata.extract_model(_tarball(gzip.compress(b"not a model")))


def test_missing_model_is_reported_not_fetched(tmp_path):
    ocr = NativeOcr(tmp_path)  # empty folder, no download
    assert not ocr.available()
    assert "eng.traineddata" in ocr.missing()
    with pytest.raises(ServiceUnavailable):
        ocr.find_text(OcrRequest(GrayImage(4, 4, bytes(16))))


def test_reads_words_with_boxes_and_confidence(ocr_engine, ocr_draw):
    im, boxes = ocr_draw((420, 60), [(10, 20, "GAIN 82  DOE JOHN 1.06 cm", 255)], font_size=18)
    words = ocr_engine.find_text(OcrRequest(GrayImage(im.width, im.height, im.tobytes()), psm=11))
    texts = [w.text for w in words]
    assert texts == ["GAIN", "82", "DOE", "JOHN", "1.06", "cm"]
    x0, y0, x1, y1 = boxes[0]
    for w in words:
        assert x0 - 2 <= w.left and w.right <= x1 + 2 and y0 - 2 <= w.top and w.bottom <= y1 + 2
        assert 0 <= w.confidence <= 100
    assert min(w.confidence for w in words) > 60
    assert isinstance(ocr_engine, OcrService)


def test_page_segmentation_from_the_request(ocr_engine, ocr_draw):
    im, _ = ocr_draw((300, 40), [(5, 10, "LYMPH NODE", 255)], font_size=18)
    image = GrayImage(im.width, im.height, im.tobytes())
    assert [w.text for w in ocr_engine.find_text(OcrRequest(image, psm=7))] == ["LYMPH", "NODE"]
    assert [w.text for w in ocr_engine.find_text(OcrRequest(image, psm=11))] == ["LYMPH", "NODE"]


def test_one_api_per_thread_reused(ocr_engine, ocr_draw):
    im, _ = ocr_draw((200, 40), [(5, 10, "MI 0.8", 255)], font_size=18)
    image = GrayImage(im.width, im.height, im.tobytes())
    expected = [w.text for w in ocr_engine.find_text(OcrRequest(image))]
    assert "".join(expected) == "MI0.8"
    api = ocr_engine._local.api
    ocr_engine.find_text(OcrRequest(image))
    assert ocr_engine._local.api is api
    results, apis = [], []

    def work():
        results.append([w.text for w in ocr_engine.find_text(OcrRequest(image))])
        apis.append(ocr_engine._local.api)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 3
    assert len({id(a) for a in apis} | {id(api)}) == 4


def test_blank_and_tiny_images_give_no_words(ocr_engine):
    assert ocr_engine.find_text(OcrRequest(GrayImage(64, 64, bytes(64 * 64)))) == []
    assert ocr_engine.find_text(OcrRequest(GrayImage(2, 2, bytes(4)))) == []
