"""Native Pixel Data frame by frame (issue 15): the pixel step reads one frame at a time from a view of the input
and hands masked frames back as pieces made again when written (pixels.frames.HandOff, encoder.Pieces), so that
masking every frame of a cine holds no copy of its pixels, in or out.

Oracles: the output is the one written when the masked value is joined and written by pydicom (the path without a
hand-off, as before), byte for byte; its pixels are the input's with the plan's boxes filled, computed here with
numpy from the input; Python's own allocations (tracemalloc) while a cine with a box on every frame is cleaned
and written stay within a few frames, where joining the value needs several copies of it.

The reviewer's plan (Deidentifier.process(..., pixel_plan=...)) masks boxes without OCR: the same masking path.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from io import BytesIO

import numpy as np
import pydicom
import pytest

from py_deid import encoder, instance
from py_deid.instance import DONE, Deidentifier, run_sync
from py_deid.options import Settings

KEY = b"a-site-secret-for-the-pixel-memory-tests-01"
BOXES = [[10, 10, 200, 40], [300, 500, 61, 21]]


def _plan(frames: int, every: int = 1) -> dict:
    return {i: [list(b) for b in BOXES] + [[5 + i, 100, 17, 9]] for i in range(0, frames, every)}


def _run(data, plan, *, parts=False, release=None, settings=None):
    deid = Deidentifier(settings or Settings(pixels="auto"), KEY)
    result = run_sync(deid.process(data, pixel_plan=plan, parts=parts, release=release), None)
    assert result.status == DONE, result.problem
    return result


def _joined_by_pydicom(data, plan, monkeypatch, settings=None) -> bytes:
    """The output without a hand-off: Pixel Data joined into one value, written by pydicom's element writer."""
    with monkeypatch.context() as m:
        m.setattr(instance, "HandOff", lambda release: None)
        return _run(data, plan, settings=settings).output


def _expected_pixels(data: bytes, plan: dict) -> np.ndarray:
    ds = pydicom.dcmread(BytesIO(data))
    frames, rows, cols = int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns)
    samples = int(ds.SamplesPerPixel)
    dtype = np.uint8 if ds.BitsAllocated == 8 else np.dtype("<u2")
    pixels = np.frombuffer(ds.PixelData, dtype, frames * rows * cols * samples)
    planar = samples > 1 and int(ds.get("PlanarConfiguration", 0) or 0) == 1
    pixels = pixels.reshape(frames, samples, rows, cols) if planar else pixels.reshape(frames, rows, cols, samples)
    pixels = pixels.copy()
    for i, boxes in plan.items():
        for x, y, w, h in boxes:  # 0: the background of RGB and MONOCHROME2 here
            if planar:
                pixels[i, :, max(y, 0):y + h, max(x, 0):x + w] = 0
            else:
                pixels[i, max(y, 0):y + h, max(x, 0):x + w] = 0
    return pixels.reshape(-1)


@pytest.mark.parametrize("name,every", [("ultrasound-multiframe.dcm", 1), ("philips_mprage.dcm", 3)])
def test_masked_frames_are_written_as_pydicom_writes_the_joined_value(samples, monkeypatch, name, every):
    data = samples.bytes(name)
    frames = int(pydicom.dcmread(BytesIO(data), stop_before_pixels=True).NumberOfFrames)
    plan = _plan(frames, every)
    released = []
    result = _run(data, plan, parts=True, release=lambda: released.append(1))
    made = [p for p in result.parts if type(p) is encoder.Made]
    views = [p for p in result.parts if type(p) is memoryview and p.obj is data]
    assert len(made) == len(plan)
    assert sum(map(len, views)) >= (frames - len(plan)) * len(made[0])  # unchanged frames: views of the input
    assert len(released) >= frames  # the step moved from frame to frame, letting go of each
    output = encoder.joined(result.parts)
    assert output == _run(data, plan).output == _joined_by_pydicom(data, plan, monkeypatch)
    out = pydicom.dcmread(BytesIO(output))
    got = np.frombuffer(out.PixelData, np.uint8 if out.BitsAllocated == 8 else np.dtype("<u2"))
    assert np.array_equal(got, _expected_pixels(data, plan))


def test_a_cine_masked_on_every_frame_holds_no_copy_of_its_pixels(samples):
    data = samples.bytes("ultrasound-multiframe.dcm")  # 30 RGB frames of 1.44 MB
    ds = pydicom.dcmread(BytesIO(data), stop_before_pixels=True)
    frames, frame = int(ds.NumberOfFrames), int(ds.Rows) * int(ds.Columns) * 3
    plan = _plan(frames)
    tracemalloc.start()
    try:
        result = _run(data, plan, parts=True)
        digest = hashlib.sha256()
        for part in encoder.buffers(result.parts):  # as the CLI writes it: one piece after another
            digest.update(part)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == hashlib.sha256(_run(data, plan).output).hexdigest()
    print(f"\npeak of Python's allocations: {peak / 2**20:.1f} MB for {frames} masked frames of "
          f"{frame / 2**20:.2f} MB")
    assert peak < 6 * frame  # joined, the value alone is 30 frames, and it was copied four times


def test_masked_pieces_go_through_the_residual_sweep_and_pydicom(samples, monkeypatch):
    """A kept attribute holding the patient's name sends the instance through the last sweep (a walk of every
    element, Pixel Data in pieces included) and a second encoding; and a dataset pydicom writes itself (the
    encoder off) gets the value joined: the same bytes as the joined value written by pydicom."""
    from tests.header.test_real_files import CONFIGS

    ds = pydicom.dcmread(samples.path("ultrasound-multiframe.dcm"))
    ds.InstitutionName = f"{ds.PatientName.family_name or 'ZQXWV'} CLINIC"
    ds.PatientName = ds.PatientName.family_name or "ZQXWV"
    buf = BytesIO()
    ds.save_as(buf)
    data = buf.getvalue()
    settings = Settings(options=CONFIGS["retain-all"], pixels="auto")
    plan = _plan(int(ds.NumberOfFrames), 2)
    result = _run(data, plan, parts=True, settings=settings)
    assert "a patient term found in a kept attribute was removed" in result.warnings
    reference = _joined_by_pydicom(data, plan, monkeypatch, settings)
    assert encoder.joined(result.parts) == reference
    monkeypatch.setattr(instance, "FAST_ENCODER", False)
    assert _run(data, plan, settings=settings).output == reference


@pytest.mark.parametrize("extended", [False, True])
def test_encapsulated_pieces_are_pydicoms_encapsulation(extended):
    """join(..., in_pieces=True): the items written piece by piece are pydicom's encapsulate (or
    encapsulate_extended and its tables), frames of odd length padded as it pads them."""
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset
    from pydicom.encaps import encapsulate, encapsulate_extended
    from pydicom.tag import Tag

    from py_deid.pixels import encapsulation

    rng = np.random.default_rng(15)
    frames = [rng.integers(0, 256, int(n), np.uint8).tobytes() for n in rng.integers(1, 5000, 9)]
    frames[3] = memoryview(bytes(range(256)) * 4)  # a frame still a view of the input (even: not padded)
    ds = Dataset()
    ds._dict[Tag(encapsulation.PIXEL_DATA)] = RawDataElement(Tag(encapsulation.PIXEL_DATA), "OB", 0xFFFFFFFF,
                                                             b"", 0, False, True)
    if extended:
        ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = b"", b""
    encapsulation.join(ds, frames, in_pieces=True)
    value = ds._dict[encapsulation.PIXEL_DATA].value
    assert type(value) is encoder.Pieces and any(type(p) is memoryview for p in value.pieces)
    even = [bytes(f) + b"\0" if len(f) % 2 else bytes(f) for f in frames]
    if extended:
        data, offsets, lengths = encapsulate_extended(even)
        assert (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths) == (offsets, lengths)
    else:
        data = encapsulate(even, has_bot=True)
    assert value.tobytes() == data


def test_encapsulated_frames_are_views_and_masked_ones_written_as_pydicom_writes_them(samples, monkeypatch):
    """A JPEG cine (120 frames, one fragment each): its frames are views of the input, the masked ones (in the
    DCT domain) new bytes; the output is the one pydicom writes from the joined value."""
    data = samples.bytes("color3d_jpeg_baseline.dcm")
    frames = int(pydicom.dcmread(BytesIO(data), stop_before_pixels=True).NumberOfFrames)
    plan = _plan(frames, 4)
    released = []
    result = _run(data, plan, parts=True, release=lambda: released.append(1))
    views = [p for p in result.parts if type(p) is memoryview and p.obj is data]
    assert len(views) >= frames - len(plan)
    assert len(released) >= len(plan)
    output = encoder.joined(result.parts)
    assert output == _run(data, plan).output == _joined_by_pydicom(data, plan, monkeypatch)
