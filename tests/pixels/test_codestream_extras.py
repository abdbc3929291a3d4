"""What a compressed frame carries beside its image (a JPEG COM segment, a JPEG 2000 comment) never reaches an
output, whatever --pixels says: with `off` the pixels are not checked for burned-in text, but text in a
codestream segment is text nothing reads (found leaking with `off` on 2 of 2 files)."""

from __future__ import annotations

import struct
from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames

from py_deid.instance import Deidentifier, run_sync
from py_deid.options import Settings

MARK = b"ZZCOMMENTNAME^PATIENT"


def _with_comment(samples, name: str) -> tuple[bytes, object]:
    ds = pydicom.dcmread(samples.path(name))
    original = ds.pixel_array.copy()
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    frame = frames[0]
    if frame[:2] == b"\xff\xd8":  # JPEG: a COM segment right after SOI
        frame = frame[:2] + b"\xff\xfe" + struct.pack(">H", len(MARK) + 2) + MARK + frame[2:]
    else:  # JPEG 2000 codestream: a COM marker segment after SIZ
        at = 4 + struct.unpack_from(">H", frame, 4)[0]
        frame = frame[:at] + b"\xff\x64" + struct.pack(">H", len(MARK) + 4) + b"\x00\x01" + MARK + frame[at:]
    frames[0] = frame + b"\0" * (len(frame) % 2)
    ds.PixelData = encapsulate(frames)
    out = BytesIO()
    ds.save_as(out)
    return out.getvalue(), original


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm"])
@pytest.mark.parametrize("pixels", ["off", "auto"])
def test_a_codestream_comment_never_reaches_the_output(samples, px_codecs, name, pixels):
    data, original = _with_comment(samples, name)
    assert MARK in data
    from py_deid.hosts import native

    ocr = native.ocr_service() if pixels != "off" else None
    result = run_sync(Deidentifier(Settings(pixels=pixels), b"k" * 32, codecs=px_codecs).process(data), ocr)
    assert result.status == "done", result.problem
    assert MARK not in result.output
    after = pydicom.dcmread(BytesIO(result.output))
    assert np.array_equal(after.pixel_array, original)  # the image itself untouched


def test_a_codestream_whose_end_is_not_found_is_refused_with_pixels_off(samples, px_codecs):
    ds = pydicom.dcmread(samples.path("SC_rgb_jpeg_dcmtk.dcm"))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    cut = frame[: len(frame) // 2]
    ds.PixelData = encapsulate([cut + b"\0" * (len(cut) % 2)])
    out = BytesIO()
    ds.save_as(out)
    result = run_sync(Deidentifier(Settings(pixels="off"), b"k" * 32, codecs=px_codecs).process(out.getvalue()),
                      None)
    assert result.status != "done" and result.output is None
    assert "end of its compressed image" in result.problem.message


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm"])
def test_the_receivers_check_refuses_a_codestream_comment(samples, px_codecs, name):
    """An instance de-identified elsewhere, with a comment left in a frame, is refused by the shared check
    (the receiver's); the same instance without it passes."""
    from py_deid import verify
    from py_deid.options import Options

    data, _ = _with_comment(samples, name)
    clean = run_sync(Deidentifier(Settings(pixels="off"), b"k" * 32, codecs=px_codecs).process(data), None).output
    assert not [f for f in verify.check_bytes(clean, Options()) if f.code == "codestream-extras"]
    ds = pydicom.dcmread(BytesIO(clean))
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    frame = frames[0]
    if frame[:2] == b"\xff\xd8":
        frame = frame[:2] + b"\xff\xfe" + struct.pack(">H", len(MARK) + 2) + MARK + frame[2:]
    else:
        frame = frame + MARK  # after the end of the codestream
    frames[0] = frame + b"\0" * (len(frame) % 2)
    ds.PixelData = encapsulate(frames)
    out = BytesIO()
    ds.save_as(out)
    found = [f for f in verify.check_bytes(out.getvalue(), Options()) if f.code == "codestream-extras"]
    assert found and found[0].where == "(7FE0,0010)"
    assert MARK.decode() not in found[0].message


def test_a_sanitized_frame_is_left_as_it_is(samples):
    """A JPEG 2000 frame in the JP2 file format (a real GDCM file) loses its wrapper's extra boxes once; what
    comes out is clean to the same walk (the receiver's check runs it on every output)."""
    from py_deid.pixels.encapsulation import sanitized, split

    ds = pydicom.dcmread(samples.path("GDCMJ2K_TextGBR.dcm"))
    ts = str(ds.file_meta.TransferSyntaxUID)
    frames = split(ds, 1)
    cut = sanitized(frames, ts)
    assert cut is not None and len(cut[0]) < len(frames[0])
    assert sanitized(cut, ts) is None


def test_a_re_encoded_frame_carries_no_encoder_comment(samples, px_codecs):
    """A masked JPEG 2000 frame is encoded again; the encoder's own comment ("Created by OpenJPEG") is dropped."""
    from py_deid.hosts import native
    from py_deid.pixels.encapsulation import sanitized, split

    data = samples.bytes("GDCMJ2K_TextGBR.dcm")
    result = run_sync(Deidentifier(Settings(pixels="all"), b"k" * 32, codecs=px_codecs).process(data),
                      native.ocr_service())
    assert result.status == "done" and result.pixels["cleaned"]
    ds = pydicom.dcmread(BytesIO(result.output))
    assert sanitized(split(ds, 1), str(ds.file_meta.TransferSyntaxUID)) is None
