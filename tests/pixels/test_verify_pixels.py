"""The independent re-read of `py-deid verify`: PHI still readable in pixels, reported without the text."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.dataset import Dataset

from py_deid import pixels
from py_deid.hosts.native_codecs import NativeCodecs
from py_deid.options import Settings
from py_deid.phi import PhiTerms
from py_deid.pixels.verify import VERIFY_PSM, residual_text

KEYS = {"frame", "box", "kind", "confidence", "characters"}


class Recording:
    """The OCR service, noting what each request asked for."""

    def __init__(self, ocr):
        self.ocr, self.requests = ocr, []

    def find_text(self, request):
        self.requests.append((request.psm, request.purpose, request.image.width, request.image.height))
        return self.ocr.find_text(request)


def _verify(ds, terms, ocr, ocr_drive, mode="phi"):
    return ocr_drive(residual_text(ds, terms, transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
                                   codecs=NativeCodecs(), mode=mode), ocr)


def _clean(ds, ocr, ocr_drive, text="strict"):
    out = ocr_drive(pixels.clean(ds, Settings(text=text), PhiTerms.from_dataset(ds),
                                 transfer_syntax=str(ds.file_meta.TransferSyntaxUID), codecs=NativeCodecs()), ocr)
    if out.transfer_syntax:
        ds.file_meta.TransferSyntaxUID = out.transfer_syntax
    return out


@pytest.mark.parametrize("name", ["GREYSCALE_IMAGE.dcm", "RGB_IMAGE.dcm", "OBXXXX1A_rle.dcm",
                                  "CT-MONO2-16-ankle.dcm"])
def test_flags_phi_on_originals_and_nothing_after_cleaning(name, samples, ocr_engine, ocr_drive):
    original = pydicom.dcmread(samples.path(name))
    terms = PhiTerms.from_dataset(original)
    before = _verify(original, terms, ocr_engine, ocr_drive)
    assert before and {f["kind"] for f in before} <= {"phi-term", "phi-pattern"}
    assert all(set(f) == KEYS for f in before)
    ds = pydicom.dcmread(samples.path(name))
    _clean(ds, ocr_engine, ocr_drive)
    assert _verify(ds, terms, ocr_engine, ocr_drive) == []


def test_without_terms_flags_phi_shaped_patterns(samples, ocr_engine, ocr_drive):
    ds = pydicom.dcmread(samples.path("GREYSCALE_IMAGE.dcm"))
    found = _verify(ds, None, ocr_engine, ocr_drive)
    assert found and {f["kind"] for f in found} == {"phi-pattern"}  # dates, the ID digit run, the time
    assert len(found) >= 4


def test_strict_mode_flags_any_non_technical_text(samples, ocr_engine, ocr_drive):
    ds = pydicom.dcmread(samples.path("RGB_IMAGE.dcm"))
    found = _verify(ds, None, ocr_engine, ocr_drive, mode="strict")
    assert "text" in {f["kind"] for f in found}  # the names are flagged even with no header to compare to
    _clean(ds, ocr_engine, ocr_drive)
    after = _verify(ds, None, ocr_engine, ocr_drive, mode="strict")
    assert len(after) < len(found) and not [f for f in after if f["kind"] != "text"]


def test_findings_carry_no_text(samples, ocr_engine, ocr_drive):
    ds = pydicom.dcmread(samples.path("RGB_IMAGE.dcm"))
    found = _verify(ds, PhiTerms.from_dataset(ds), ocr_engine, ocr_drive)
    dump = repr(found)
    for secret in ("ZZZDOWNTIME", "MARY", "120907058", "CLEVELAND", "4/14/2020"):
        assert secret not in dump


def test_reads_independently_of_cleaning(samples, ocr_engine, ocr_drive):
    """Another page segmentation and another enlargement than the cleaning pass used."""
    path = samples.path("US1_UNCR.dcm")
    cleaning, verifying = Recording(ocr_engine), Recording(ocr_engine)
    ds = pydicom.dcmread(path)
    _clean(ds, cleaning, ocr_drive)
    _verify(ds, PhiTerms.from_dataset(pydicom.dcmread(path)), verifying, ocr_drive)
    # Cleaning reads frames as sparse text (11) and looks closer at single doubtful words as one line (7).
    assert {p for p, *_ in cleaning.requests} <= {11, 7} and {p for p, *_ in verifying.requests} == {VERIFY_PSM}
    assert VERIFY_PSM not in {11, 7}
    assert {u for _, u, *_ in cleaning.requests} == {"detect"}
    full_clean = max(w * h for *_, w, h in cleaning.requests)
    full_verify = max(w * h for *_, w, h in verifying.requests)
    assert full_verify != full_clean  # 3x by pixel repetition against 2x smooth


def test_every_frame_is_checked(samples, ocr_engine, ocr_drive):
    original = pydicom.dcmread(samples.path("US-PAL-8-10x-echo.dcm"))
    found = _verify(original, PhiTerms.from_dataset(original), ocr_engine, ocr_drive)
    assert {f["frame"] for f in found} == set(range(10))  # the date and time are on every frame
    ds = pydicom.dcmread(samples.path("US-PAL-8-10x-echo.dcm"))
    _clean(ds, ocr_engine, ocr_drive)
    assert _verify(ds, PhiTerms.from_dataset(original), ocr_engine, ocr_drive) == []


def test_no_pixel_data_no_findings(ocr_drive):
    assert ocr_drive(residual_text(Dataset(), None, transfer_syntax="1.2.840.10008.1.2.1"), None) == []
