"""Masking uncompressed pixel data, generated for every photometric interpretation, bit depth, signedness,
planar configuration, byte order and frame count: the boxes become the background, every other stored value
stays bit for bit, the transfer syntax stays. Decoded independently with pydicom/numpy."""

from __future__ import annotations

import numpy as np
import pytest

from py_deid.pixels.layout import Layout

LE, BE, IMPLICIT, DEFLATED = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99"
BOXES = [(3, 2, 7, 5), (-4, 9, 8, 30), (18, -3, 50, 4)]  # one inside, two clipped by the image edges
ROWS, COLS = 13, 22


def _clip(box, rows=ROWS, cols=COLS, pairs=False):
    x, y, w, h = box
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, cols), min(y + h, rows)
    if pairs:
        x0, x1 = x0 & ~1, min((x1 + 1) & ~1, cols)
    return (x0, y0, x1 - x0, y1 - y0)


def _values(shape, bits, signed, seed):
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return rng.integers(lo, hi + 1, size=shape)


CASES = [
    # photometric, bits allocated, bits stored, signed, planar, transfer syntax, frames
    ("MONOCHROME2", 8, 8, False, 0, LE, 1),
    ("MONOCHROME2", 8, 8, False, 0, DEFLATED, 1),
    ("MONOCHROME2", 16, 12, False, 0, LE, 3),
    ("MONOCHROME2", 16, 12, True, 0, BE, 2),
    ("MONOCHROME2", 16, 16, True, 0, IMPLICIT, 1),
    ("MONOCHROME2", 16, 16, False, 0, BE, 1),
    ("MONOCHROME2", 32, 32, False, 0, LE, 1),
    ("MONOCHROME1", 8, 8, False, 0, LE, 2),
    ("MONOCHROME1", 16, 12, False, 0, BE, 1),
    ("MONOCHROME1", 16, 16, True, 0, LE, 1),
    ("RGB", 8, 8, False, 0, LE, 1),
    ("RGB", 8, 8, False, 1, LE, 3),
    ("RGB", 8, 8, False, 1, BE, 1),
    ("RGB", 16, 16, False, 0, BE, 2),
    ("RGB", 16, 16, False, 1, DEFLATED, 1),
    ("YBR_FULL", 8, 8, False, 0, LE, 1),
    ("YBR_FULL", 8, 8, False, 1, IMPLICIT, 2),
    ("YBR_FULL_422", 8, 8, False, 0, LE, 2),
    ("YBR_FULL_422", 8, 8, False, 0, BE, 1),
]


def _background(photometric, bits, signed):
    if photometric == "MONOCHROME1":
        return (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if photometric == "MONOCHROME2":
        return -(1 << (bits - 1)) if signed else 0
    if photometric == "RGB":
        return (0, 0, 0)
    return (0, 1 << (bits - 1), 1 << (bits - 1))


@pytest.mark.parametrize("photometric,allocated,stored,signed,planar,ts,frames", CASES)
def test_native_mask_every_layout(px_factory, px_process, photometric, allocated, stored, signed, planar, ts,
                                  frames):
    samples = 3 if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") else 1
    shape = (frames, ROWS, COLS) + ((3,) if samples == 3 else ())
    values = _values(shape, stored, signed, seed=len(photometric) + allocated + frames)
    if photometric == "YBR_FULL_422":  # chroma shared by pixel pairs, as the encoding has it
        values[:, :, 1::2, 1:] = values[:, :, 0::2, 1:]
    dtype = {8: "i1" if signed else "u1", 16: "i2" if signed else "u2", 32: "i4" if signed else "u4"}[allocated]
    arr = values.astype(dtype)
    ds = px_factory.reread(px_factory.dataset(arr, photometric, bits_stored=stored, signed=signed, planar=planar,
                                               ts=ts, frames=frames > 1))
    before = px_factory.raw(ds)
    before_rgb = px_factory.rgb(ds) if samples == 3 else None
    after_ds, out_ts, done, _ = px_process(ds, BOXES)

    assert out_ts == ts
    assert str(after_ds.file_meta.TransferSyntaxUID) == ts
    pairs = photometric == "YBR_FULL_422"
    expected_boxes = [_clip(b, pairs=pairs) for b in BOXES]
    assert all(done[i] == expected_boxes for i in range(frames))
    after = px_factory.raw(after_ds)
    mask = np.zeros((ROWS, COLS), bool)
    for x, y, w, h in expected_boxes:
        mask[y:y + h, x:x + w] = True
    assert np.array_equal(after[:, ~mask], before[:, ~mask]), "pixels outside the masks changed"
    bg = np.array(_background(photometric, stored, signed))
    assert (after[:, mask] == bg).all(), "masked pixels are not the background"
    if samples == 3:
        # What a viewer shows: outside unchanged after colour conversion, inside black.
        rgb = px_factory.rgb(after_ds)
        assert np.array_equal(rgb[:, ~mask], before_rgb[:, ~mask])
        assert (rgb[:, mask] <= 1).all()


def test_layout_pairs_and_planes():
    layout = Layout(4, 6, 3, 1, 0, True, True)
    assert layout.clip((1, 0, 2, 1)) == (0, 0, 4, 1)  # grown to whole pixel pairs
    assert layout.clip((5, 0, 3, 3)) == (4, 0, 2, 3)
    assert layout.clip((6, 0, 2, 2)) is None
    buf = bytearray(range(layout.frame_length))
    layout.fill(buf, (2, 1, 2, 2), (0, 128, 128))
    # row 1 starts at byte 12 (6 pixels x 2 bytes), the pair at x=2 at byte 16: Y Y Cb Cr
    assert buf[16:20] == bytes([0, 0, 128, 128]) and buf[28:32] == bytes([0, 0, 128, 128])
    untouched = [i for i in range(len(buf)) if not (16 <= i < 20 or 28 <= i < 32)]
    assert all(buf[i] == i for i in untouched)

    planar = Layout(3, 4, 3, 2, 1, False, False)  # 16-bit big endian, one plane per sample
    buf = bytearray(planar.frame_length)
    planar.fill(buf, (1, 1, 2, 1), (0x0102, 0x0304, 0x0506))
    plane = planar.plane_length
    for s, value in enumerate((b"\x01\x02", b"\x03\x04", b"\x05\x06")):
        start = s * plane + (1 * 4 + 1) * 2
        assert buf[start:start + 4] == value * 2
    assert sum(1 for b in buf if b) == 12


def test_region_digest_tracks_pixels(px_factory, px_process):
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    arr = np.zeros((3, 20, 30), np.uint8)
    arr[:, 2:8, 3:20] = 200  # the same "text" on every frame
    arr[2, 4, 5] = 90  # one pixel differs on frame 2
    ds = px_factory.reread(px_factory.dataset(arr, "MONOCHROME2", frames=True))
    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, LE), None)
    box = (0, 0, 25, 10)
    d0, d1, d2 = (store.region_digest(i, box) for i in range(3))
    assert d0 == d1 != d2
    assert store.region_digest(0, (0, 10, 25, 10)) != d0
    store.mask(1, [(0, 0, 4, 4)])
    assert store.region_digest(1, box) != d0
    assert store.region_digest(0, box) == d0


def test_palette_background_is_darkest_index(px_factory, px_process):
    lut = np.arange(256)
    red, green, blue = (lut * 256)[::-1].copy(), (lut * 256)[::-1].copy(), np.full(256, 40 * 256)
    red[77], green[77], blue[77] = 0, 0, 0  # black sits at index 77 (+ first mapped 10 = value 87)
    arr = np.random.default_rng(3).integers(0, 256, size=(2, ROWS, COLS)).astype(np.uint8)
    ds = px_factory.reread(px_factory.dataset(arr, "PALETTE COLOR", palette=(10, red, green, blue), frames=True))
    after_ds, out_ts, done, store = px_process(ds, BOXES)
    assert store.info.background == (87,)
    after = px_factory.raw(after_ds)
    mask = np.zeros((ROWS, COLS), bool)
    for x, y, w, h in done[0]:
        mask[y:y + h, x:x + w] = True
    assert (after[:, mask] == 87).all() and np.array_equal(after[:, ~mask], arr[:, ~mask])
    from pydicom.pixels import apply_color_lut

    assert (apply_color_lut(after_ds.pixel_array, after_ds)[:, mask] == 0).all()  # displays black


def test_nothing_masked_changes_nothing(px_factory, px_process, samples):
    import pydicom

    ds = pydicom.dcmread(samples.path("US1_UNCR.dcm"))
    before = ds.PixelData
    after_ds, out_ts, done, store = px_process(ds, [(-50, -50, 10, 10)])
    assert done == {0: []} and not store.changed
    assert after_ds.PixelData == before
