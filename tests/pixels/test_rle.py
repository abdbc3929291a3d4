"""RLE Lossless without numpy: decodes what pylibjpeg-rle (a second implementation, in Rust) decodes, encodes what
pylibjpeg-rle and pydicom decode, rejects broken frames, and masking keeps RLE."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import RLELossless

from py_deid.pixels import rle
from py_deid.pixels.info import PixelCodecError

REAL = ["MR_small_RLE.dcm", "OBXXXX1A_rle_2frame.dcm", "US-PAL-8-10x-echo.dcm", "SC_rgb_rle_16bit.dcm",
        "SC_rgb_rle_2frame.dcm", "SC_rgb_rle_32bit_2frame.dcm", "emri_small_RLE.dcm", "rtdose_rle.dcm"]


def _layout(ds):
    return rle.layout_for(ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.BitsAllocated // 8)


def _as_planes(arr, ds):
    """numpy (frames, rows, cols[, s]) -> the bytes of our decoded layout (LE samples, one plane per sample)."""
    dtype = arr.dtype.newbyteorder("<")
    if ds.SamplesPerPixel == 3:
        arr = np.moveaxis(arr, -1, 1)
    return [f.astype(dtype).tobytes() for f in arr]


@pytest.mark.parametrize("name", REAL)
def test_decode_matches_pylibjpeg_rle(samples, name):
    # The decoder is pydicom's: the oracle is the other one, pylibjpeg-rle.
    from pydicom.pixels import pixel_array

    ds = pydicom.dcmread(samples.path(name))
    n = int(ds.get("NumberOfFrames", 1) or 1)
    frames = list(generate_frames(ds.PixelData, number_of_frames=n))
    arr = pixel_array(ds, raw=True, decoding_plugin="pylibjpeg")
    arr = arr.reshape((n,) + arr.shape[-3:] if ds.SamplesPerPixel == 3 else (n,) + arr.shape[-2:])
    expected = _as_planes(arr, ds)
    layout = _layout(ds)
    for frame, want in zip(frames, expected):
        assert rle.decode(frame, layout) == want


@pytest.mark.parametrize("name", REAL)
def test_encode_decodes_with_pylibjpeg_rle_and_pydicom(samples, px_factory, name):
    ds = pydicom.dcmread(samples.path(name))
    n = int(ds.get("NumberOfFrames", 1) or 1)
    layout = _layout(ds)
    ours = [rle.encode(rle.decode(f, layout), layout) for f in generate_frames(ds.PixelData, number_of_frames=n)]
    assert all(len(f) % 2 == 0 for f in ours)
    before = px_factory.raw(ds)
    from pydicom.encaps import encapsulate

    for plugin in ("pylibjpeg", "pydicom"):
        copy = pydicom.dcmread(samples.path(name))
        copy.PixelData = encapsulate(ours)
        from pydicom.pixels import pixel_array

        arr = pixel_array(copy, raw=True, decoding_plugin=plugin)
        assert np.array_equal(arr.reshape(before.shape), before), plugin


def test_runs_and_literals_round_trip():
    layout = rle.layout_for(3, 300, 1, 1)
    row0 = bytes([7]) * 129 + bytes(range(130)) + bytes([1, 1, 2, 2, 2, 3]) + bytes(35)
    row1 = bytes([9, 9]) + bytes(range(200)) + bytes([5]) * 98
    row2 = bytes(range(256))[::-1] + bytes([0]) * 44
    data = row0 + row1 + row2
    encoded = rle.encode(data, layout)
    assert bytes(rle.decode(encoded, layout)) == data
    # rows are encoded separately (PS3.5 G.3.1): a run across a row boundary is split
    flat = rle.layout_for(2, 4, 1, 1)
    assert bytes(rle.decode(rle.encode(bytes([4]) * 8, flat), flat)) == bytes([4]) * 8


def test_broken_frames_fail_closed():
    layout = rle.layout_for(4, 4, 1, 1)
    good = rle.encode(bytes(range(16)), layout)
    with pytest.raises(PixelCodecError):
        rle.decode(good[:70], layout)  # segment ends early
    with pytest.raises(PixelCodecError):
        rle.decode(good[:40], layout)  # header cut
    with pytest.raises(PixelCodecError):
        rle.decode(good, rle.layout_for(4, 4, 3, 1))  # segment count does not fit the image
    pointing_into_header = good[:4] + (8).to_bytes(4, "little") + good[8:]
    with pytest.raises(PixelCodecError):
        rle.decode(pointing_into_header, layout)  # a segment offset inside the header


@pytest.mark.parametrize("photometric,dtype,planar", [("MONOCHROME2", "u1", 0), ("MONOCHROME2", "i2", 0),
                                                      ("RGB", "u1", 0), ("RGB", "u2", 1), ("YBR_FULL", "u1", 0)])
def test_mask_keeps_rle_and_untouched_frames(px_factory, px_process, photometric, dtype, planar):
    rng = np.random.default_rng(5)
    shape = (3, 40, 50) + ((3,) if photometric != "MONOCHROME2" else ())
    arr = rng.integers(0, 40, size=shape).astype(dtype)
    arr[:, 10:20, 5:45] = 3  # long runs, as annotations have
    ds = px_factory.dataset(arr, photometric, planar=planar, frames=True, signed=dtype == "i2")
    ds.compress(RLELossless, arr, encoding_plugin="pydicom")
    ds = px_factory.reread(ds)
    original = list(generate_frames(ds.PixelData, number_of_frames=3))
    before = px_factory.raw(ds)
    after_ds, out_ts, done, _ = px_process(ds, [(4, 8, 30, 6)], frames=[1])
    assert out_ts == RLELossless
    frames = list(generate_frames(after_ds.PixelData, number_of_frames=3))
    assert frames[0] == original[0] and frames[2] == original[2], "frames without masks must keep their bytes"
    after = px_factory.raw(after_ds)
    mask = np.zeros((40, 50), bool)
    mask[8:14, 4:34] = True
    assert np.array_equal(after[[0, 2]], before[[0, 2]])
    assert np.array_equal(after[1][~mask], before[1][~mask])
    bg = {"MONOCHROME2": -32768 if dtype == "i2" else 0, "RGB": 0, "YBR_FULL": [0, 128, 128]}[photometric]
    assert (after[1][mask] == bg).all()


@pytest.mark.parametrize("name", ["OBXXXX1A_rle_2frame.dcm", "US-PAL-8-10x-echo.dcm", "SC_rgb_rle_16bit.dcm"])
def test_real_rle_masked_on_every_frame(samples, px_factory, px_process, name):
    ds = pydicom.dcmread(samples.path(name))
    before = px_factory.raw(ds)
    box = (10, 12, 120, 30)
    after_ds, out_ts, done, store = px_process(ds, [box])
    assert out_ts == RLELossless
    after = px_factory.raw(after_ds)
    x, y, w, h = done[0][0]
    mask = np.zeros(before.shape[1:3], bool)
    mask[y:y + h, x:x + w] = True
    assert np.array_equal(after[:, ~mask], before[:, ~mask])
    assert (after[:, mask] == np.array(store.info.background)).all()
