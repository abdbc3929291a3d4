"""Overlay planes: separate (60xx,3000) and embedded in unused Pixel Data bits (retired)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from py_deid.pixels import overlays
from py_deid.pixels.frames import FrameStore
from py_deid.pixels.info import PixelInfo

LE, BE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"


def _gray(image):
    return np.frombuffer(image.pixels, np.uint8).reshape(image.height, image.width)


@pytest.mark.parametrize("name", ["slicethickness_empty_string.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm",
                                  "examples_overlay.dcm"])
def test_real_overlay_renders_like_pydicom(samples, px_artifacts, name):
    from PIL import Image

    ds = pydicom.dcmread(samples.path(name))
    ts = str(ds.file_meta.TransferSyntaxUID)
    assert overlays.groups(ds) == [0x6000]
    ov = overlays.read(ds, 0x6000)
    assert not ov.embedded and (ov.rows, ov.columns) == (ds[0x6000, 0x0010].value, ds[0x6000, 0x0011].value)
    image = overlays.render(ds, ov, ts)
    Image.frombytes("L", (image.width, image.height), image.pixels).save(px_artifacts / f"overlay_{name}.png")
    expected = ds.overlay_array(0x6000)
    assert np.array_equal(_gray(image) == 255, expected.astype(bool))
    assert expected.sum() > 0


def test_overlay_mask_and_remove(samples, px_factory):
    ds = pydicom.dcmread(samples.path("slicethickness_empty_string.dcm"))
    ts = str(ds.file_meta.TransferSyntaxUID)
    ov = overlays.read(ds, 0x6000)
    before = ds.overlay_array(0x6000).copy()
    ys, xs = np.nonzero(before)
    box = (int(xs.min()), int(ys.min()), 40, 25)
    assert overlays.mask(ds, ov, ts, [box, (-5, -5, 2, 2)]) == [box]
    ds = px_factory.reread(ds)
    after = ds.overlay_array(0x6000)
    inside = np.zeros(before.shape, bool)
    inside[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] = True
    assert not after[inside].any() and before[inside].any()
    assert np.array_equal(after[~inside], before[~inside])
    assert ov.image_box((1, 2, 3, 4)) == (1 + ov.origin[1] - 1, 2 + ov.origin[0] - 1, 3, 4)
    assert overlays.remove(ds) == [0x6000]
    assert not [t for t in ds.keys() if t.group == 0x6000]


def test_multiframe_big_endian_overlay(px_factory):
    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2, size=(3, 10, 12)).astype(np.uint8)
    packed = np.packbits(bits.ravel(), bitorder="little")
    packed = np.pad(packed, (0, len(packed) % 2))
    big_endian_words = packed.reshape(-1, 2)[:, ::-1].ravel().tobytes()  # OW in big endian swaps byte pairs
    ds = px_factory.dataset(np.zeros((10, 12), np.uint16), "MONOCHROME2", ts=BE)
    for element, vr, value in [(0x0010, "US", 10), (0x0011, "US", 12), (0x0015, "IS", 3), (0x0040, "CS", "G"),
                               (0x0050, "SS", [1, 1]), (0x0100, "US", 1), (0x0102, "US", 0),
                               (0x3000, "OW", big_endian_words)]:
        ds.add_new((0x6002, element), vr, value)
    ds = px_factory.reread(ds)
    ov = overlays.read(ds, 0x6002)
    for f in range(3):
        assert np.array_equal(_gray(overlays.render(ds, ov, BE, frame=f)) == 255, bits[f].astype(bool))
    overlays.mask(ds, ov, BE, [(0, 0, 5, 5)], frame=1)
    ds = px_factory.reread(ds)
    ov = overlays.read(ds, 0x6002)
    expected = bits.copy()
    expected[1, :5, :5] = 0
    for f in range(3):
        assert np.array_equal(_gray(overlays.render(ds, ov, BE, frame=f)) == 255, expected[f].astype(bool))


@pytest.mark.parametrize("signed,ts", [(False, LE), (True, BE)])
def test_embedded_overlay_in_high_bits(px_factory, signed, ts):
    rng = np.random.default_rng(9)
    values = rng.integers(-2048 if signed else 0, 2048 if signed else 4096, size=(2, 30, 40))
    words = (values & 0xFFF).astype(np.uint16)
    if signed:  # sign extension in the unused bits, as writers do
        words |= np.where(values < 0, 0xF000, 0).astype(np.uint16)
    plane = np.zeros((2, 30, 40), bool)
    plane[1, 5:9, 3:30] = True  # "text" drawn into bit 14 of frame 2 only
    stored = words ^ (plane.astype(np.uint16) << 14) if signed else words | (plane.astype(np.uint16) << 14)
    ds = px_factory.dataset(stored.astype(np.uint16), "MONOCHROME2", bits_stored=12, signed=signed, ts=ts,
                            frames=True)
    ds.add_new(0x60000100, "US", 16)  # the retired description: an overlay living in bit 14 of Pixel Data
    ds.add_new(0x60000102, "US", 14)
    ds.add_new(0x60000010, "US", 30)
    ds.add_new(0x60000011, "US", 40)
    ds = px_factory.reread(ds)
    assert overlays.read(ds, 0x6000).embedded
    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, ts), None)
    assert overlays.unused_bits(store, 0) == 0
    assert overlays.unused_bits(store, 1) == 1 << 14
    assert np.array_equal(_gray(overlays.render_bits(store, 1, 1 << 14)) == 255, plane[1])
    before = px_factory.raw(ds)
    assert overlays.clear_unused_bits(store)
    assert overlays.unused_bits(store, 1) == 0
    ds.file_meta.TransferSyntaxUID = store.finish(ds)
    after_ds = px_factory.reread(ds)
    assert np.array_equal(px_factory.raw(after_ds), before)  # the stored values are untouched
    raw_words = np.frombuffer(after_ds.PixelData, ">u2" if ts == BE else "<u2").reshape(2, 30, 40)
    assert np.array_equal(raw_words, words)
