"""JPEG Baseline/Extended masked in the DCT domain: the transfer syntax stays, frames without masks keep
their bytes, every pixel of every MCU that does not touch a box decodes exactly as before (colour: the
luminance exactly; chroma exactly beyond the one-pixel ring that decoders' chroma up-sampling blends), and
the masked MCUs decode to the background. Decoded with pydicom (pylibjpeg-libjpeg) and Pillow (libjpeg-turbo)."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames

from py_deid.pixels import jpeg_dct
from py_deid.pixels.info import EXPLICIT_LE, JPEG_BASELINE, PixelCodecError
from py_deid.pixels.jpeg_markers import JpegUnsupported

Image = pytest.importorskip("PIL.Image")


def _dilate(mask, r):
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            shifted = np.zeros_like(mask)
            ys = slice(max(dy, 0), mask.shape[0] + min(dy, 0))
            yd = slice(max(-dy, 0), mask.shape[0] + min(-dy, 0))
            xs = slice(max(dx, 0), mask.shape[1] + min(dx, 0))
            xd = slice(max(-dx, 0), mask.shape[1] + min(-dx, 0))
            shifted[ys, xs] = mask[yd, xd]
            out |= shifted
    return out


def _mask_of(boxes, shape):
    m = np.zeros(shape, bool)
    for x, y, w, h in boxes:
        m[y:y + h, x:x + w] = True
    return m


def _components(frame: bytes):
    """The decoded components without colour conversion (pylibjpeg-libjpeg: Y, Cb, Cr or R, G, B as coded)."""
    from libjpeg import decode

    return decode(frame)


def _image(rows, cols, seed, colour):
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, size=(rows // 8 + 1, cols // 8 + 1) + ((3,) if colour else ()), dtype=np.uint8)
    im = Image.fromarray(base, "RGB" if colour else "L").resize((cols, rows), Image.BILINEAR)
    arr = np.asarray(im).copy()
    arr[5:14, 7:60] = 255  # a bright banner
    return arr


def _jpeg_dataset(px_factory, frames, photometric, colour, **save):
    encoded = []
    for arr in frames:
        buf = io.BytesIO()
        Image.fromarray(arr, "RGB" if colour else "L").save(buf, "JPEG", quality=80, **save)
        encoded.append(buf.getvalue())
    ds = px_factory.dataset(np.stack(frames), photometric, frames=len(frames) > 1, ts=JPEG_BASELINE,
                            pixel_bytes=encapsulate(encoded))
    ds["PixelData"].is_undefined_length = True
    return px_factory.reread(ds), encoded


def check(px_factory, before_ds, after_ds, done, ring):
    """Compare decoded before/after frame by frame; `ring`: pixels of chroma blending allowed next to masks."""
    n = int(before_ds.get("NumberOfFrames", 1) or 1)
    before = list(generate_frames(before_ds.PixelData, number_of_frames=n))
    after = list(generate_frames(after_ds.PixelData, number_of_frames=n))
    rgb_before, rgb_after = px_factory.rgb(before_ds), px_factory.rgb(after_ds)
    shape = rgb_before.shape[1:3]
    for i in range(n):
        boxes = done.get(i, [])
        if not boxes:
            assert after[i] == before[i], f"frame {i} has no mask and must keep its bytes"
            continue
        mask = _mask_of(boxes, shape)
        outside = ~_dilate(mask, ring)
        inside = mask & ~_dilate(~mask, ring)
        assert np.array_equal(rgb_after[i][outside], rgb_before[i][outside]), f"frame {i}: pixels outside changed"
        c0, c1 = _components(before[i]), _components(after[i])
        if c0.ndim == 3:
            c0, c1 = c0[..., 0], c1[..., 0]  # luminance (or R): never up-sampled, so exact up to the MCU edge
        assert np.array_equal(c1[~mask], c0[~mask]), f"frame {i}: samples outside the blanked MCUs changed"
        yield i, rgb_after[i][inside], rgb_after[i][mask]


GENERATED = [
    ("L", "MONOCHROME2", {}),
    ("L", "MONOCHROME2", {"optimize": True}),
    ("L", "MONOCHROME2", {"restart_marker_rows": 1}),
    ("RGB", "YBR_FULL", {"subsampling": 0}),
    ("RGB", "YBR_FULL_422", {"subsampling": 1}),
    ("RGB", "YBR_FULL_422", {"subsampling": 2}),
    ("RGB", "YBR_FULL_422", {"subsampling": 2, "optimize": True}),
    ("RGB", "YBR_FULL_422", {"subsampling": 1, "restart_marker_blocks": 5}),
]


@pytest.mark.parametrize("mode,photometric,save", GENERATED)
def test_generated_jpeg_blanked_in_dct_domain(px_factory, px_process, mode, photometric, save):
    colour = mode == "RGB"
    frames = [_image(61, 90, seed, colour) for seed in range(3)]
    ds, encoded = _jpeg_dataset(px_factory, frames, photometric, colour, **save)
    box = (9, 4, 40, 12)
    after_ds, out_ts, done, _ = px_process(ds, [box], frames=[0, 2])
    assert out_ts == JPEG_BASELINE
    cw, ch = (16, 16) if save.get("subsampling") == 2 else (16, 8) if save.get("subsampling") == 1 else (8, 8)
    x0, y0 = box[0] // cw * cw, box[1] // ch * ch
    assert done[0] == [(x0, y0, -(-(box[0] + box[2]) // cw) * cw - x0, -(-(box[1] + box[3]) // ch) * ch - y0)]
    ring = 1 if save.get("subsampling") in (1, 2) else 0
    checked = list(check(px_factory, ds, after_ds, {0: done[0], 2: done[2]}, ring))
    assert [i for i, _, _ in checked] == [0, 2]
    for _, inner, _ in checked:
        assert inner.max() <= 2, "blanked MCUs must decode to black"


def test_monochrome1_blanks_to_white_value(px_factory, px_process):
    frames = [_image(40, 40, 1, False)]
    ds, _ = _jpeg_dataset(px_factory, frames, "MONOCHROME1", False)
    after_ds, _, done, _ = px_process(ds, [(0, 0, 16, 16)])
    assert done[0] == [(0, 0, 16, 16)]
    assert (px_factory.rgb(after_ds)[0][:16, :16] >= 254).all()


def test_missing_huffman_codes_get_new_optimal_tables(px_factory, px_process):
    flat = np.full((64, 64), 180, np.uint8)
    flat[::7, ::5] = 170  # mild texture; DC differences stay tiny
    ds, encoded = _jpeg_dataset(px_factory, [flat], "MONOCHROME2", False, optimize=True)
    after_ds, out_ts, done, _ = px_process(ds, [(20, 20, 10, 10)])
    new = list(generate_frames(after_ds.PixelData, number_of_frames=1))[0]
    assert new.count(b"\xff\xc4") > encoded[0].count(b"\xff\xc4"), "expected a table rewrite for this image"
    (_, inner, _), = check(px_factory, ds, after_ds, done, 0)
    assert inner.max() == 0


def test_progressive_jpeg_falls_back_to_decoded_pixels(px_factory, px_process, px_codecs):
    frames = [_image(32, 48, 2, True)]
    ds, _ = _jpeg_dataset(px_factory, frames, "YBR_FULL_422", True, progressive=True)
    with pytest.raises(JpegUnsupported):
        jpeg_dct.blank(list(generate_frames(ds.PixelData, number_of_frames=1))[0], [(0, 0, 8, 8)],
                       photometric="YBR_FULL_422")
    before = px_factory.rgb(ds)
    after_ds, out_ts, done, _ = px_process(ds, [(3, 3, 10, 10)], codecs=px_codecs)
    assert out_ts == EXPLICIT_LE and after_ds.PhotometricInterpretation == "RGB"
    assert after_ds.LossyImageCompression == "01" and after_ds.LossyImageCompressionMethod == "ISO_10918_1"
    after = px_factory.rgb(after_ds)
    mask = _mask_of(done[0], before.shape[1:3])
    assert np.array_equal(after[0][~mask], before[0][~mask]) and (after[0][mask] == 0).all()


REAL = ["SC_rgb_jpeg_dcmtk.dcm", "examples_ybr_color.dcm", "SC_jpeg_no_color_transform.dcm",
        "SC_rgb_dcmtk_+eb+cr.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_dcmtk_+eb+cy+n2.dcm",
        "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_dcmtk_+eb+cy+s2.dcm", "SC_rgb_dcmtk_+eb+cy+s4.dcm",
        "SC_rgb_jpeg_lossy_gdcm.dcm", "SC_rgb_small_odd_jpeg.dcm", "JPGExtended.dcm", "image1.dcm", "ctbrain1.dcm"]


def _sampling_ring(ds):
    frame = next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    from py_deid.pixels.jpeg_markers import parse

    img = parse(frame)
    return 1 if len({(c.h, c.v) for c in img.components}) > 1 else 0


@pytest.mark.parametrize("name", REAL)
def test_real_jpeg_files(samples, px_factory, px_process, name):
    ds = pydicom.dcmread(samples.path(name))
    ts = str(ds.file_meta.TransferSyntaxUID)
    rows, cols = ds.Rows, ds.Columns
    box = (cols // 5, rows // 6, max(cols // 3, 1), max(rows // 5, 1))
    ring = _sampling_ring(ds)
    after_ds, out_ts, done, store = px_process(ds, [box])
    assert out_ts == ts
    before_ds = pydicom.dcmread(samples.path(name))
    for i, inner, _ in check(px_factory, before_ds, after_ds, done, ring):
        target = 0 if store.info.photometric != "MONOCHROME1" else (1 << ds.BitsStored) - 1
        assert np.abs(inner.astype(int) - target).max() <= 2


@pytest.mark.parametrize("name", ["color3d_jpeg_baseline.dcm", "jpeg_baseline_8bit.dcm"])
@pytest.mark.slow
def test_real_multiframe_every_frame(samples, px_factory, px_codecs, px_artifacts, name):
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    ds = pydicom.dcmread(samples.path(name))
    before_ds = pydicom.dcmread(samples.path(name))
    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, JPEG_BASELINE), px_codecs)
    done = {}
    for i in range(store.count):  # a banner on every frame, and a clock that moves on some
        boxes = [(20, 10, 150, 20)] + ([(300 + (i % 10) * 8, 400, 40, 12)] if i % 9 == 0 else [])
        done[i] = store.mask(i, boxes)
    ds.file_meta.TransferSyntaxUID = store.finish(ds)
    after_ds = px_factory.reread(ds)
    assert str(after_ds.file_meta.TransferSyntaxUID) == JPEG_BASELINE
    results = list(check(px_factory, before_ds, after_ds, done, _sampling_ring(before_ds)))
    assert len(results) == store.count and all(inner.max() <= 2 for _, inner, _ in results)
    Image.fromarray(px_factory.rgb(after_ds)[9]).save(px_artifacts / f"masked_{name}.png")


def test_broken_jpeg_fails_closed(samples, px_codecs):
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    ds = pydicom.dcmread(samples.path("JPGExtended.dcm"))
    frame = list(generate_frames(ds.PixelData, number_of_frames=1))[0]
    ds.PixelData = encapsulate([frame[:40] + b"\xff\xd9"])  # cut inside its headers: no decoder reads it
    # refused when the store opens (no end of image is found: encapsulation.sanitized), before any mask
    with pytest.raises(PixelCodecError) as e:
        store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
        store.mask(0, [(0, 0, 20, 20)])
    assert "frame 1" in str(e.value)


def test_dct_masking_needs_no_decoder(samples):
    """Fixed regions (device templates) can be blanked without any decoder on the host; and with no codec
    service at all, the core's own decoder (jpeg_decode) still renders JPEG frames."""
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    ds = pydicom.dcmread(samples.path("color3d_jpeg_baseline.dcm"))
    info = PixelInfo.from_dataset(ds, JPEG_BASELINE)
    store = FrameStore.open(ds, info, None, require_decoder=False)
    assert store.mask(3, [(0, 0, 100, 30)]) == [(0, 0, 112, 32)]
    assert store.finish(ds) == JPEG_BASELINE
    assert store.render(0).width == info.columns


def test_jpeg_lossy_masks_in_the_dct_domain(samples, px_factory):
    """pydicom's JPEG-lossy.dcm writes zeros in its sequential scan's Ss/Se bytes (libjpeg 6b and GDCM read
    it, pylibjpeg-libjpeg does not): block surgery still runs and the syntax stays. No independent decoder
    reads the file here, so before and after are decoded by our own (verified against GDCM and pydicom's
    published values in test_jpeg_decode): every pixel outside the blanked MCUs is unchanged, inside is 0."""
    from py_deid.pixels import jpeg_decode
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    ds = pydicom.dcmread(samples.path("JPEG-lossy.dcm"))
    before = list(generate_frames(ds.PixelData, number_of_frames=1))[0]
    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), None)
    assert store.mask(0, [(150, 180, 20, 20)]) == [(144, 176, 32, 24)]
    assert store.finish(ds) == "1.2.840.10008.1.2.4.51"
    after = list(generate_frames(ds.PixelData, number_of_frames=1))[0]
    a = np.frombuffer(bytes(jpeg_decode.decode(before, numpy=np).samples.astype("<u2")), "<u2").reshape(1024, 256)
    b = np.frombuffer(bytes(jpeg_decode.decode(after, numpy=np).samples.astype("<u2")), "<u2").reshape(1024, 256)
    inside = np.zeros(a.shape, bool)
    inside[176:200, 144:176] = True
    assert (b[inside] == 0).all() and np.array_equal(a[~inside], b[~inside])


def _non_interleaved(jpeg: bytes, restart: int) -> bytes:
    """The same image re-written as one sequential scan per component (non-interleaved, PS3.5-legal but
    rare), with a restart interval: built from the coefficients our decoder reads, same Huffman tables."""
    from py_deid.pixels import jpeg_dct as dct
    from py_deid.pixels.jpeg_huffman import BitWriter, stuff, table
    from py_deid.pixels.jpeg_markers import intervals, parse

    img = parse(jpeg)
    scan = img.scans[0]
    blocks_plan = [slot for slot, (index, _, _) in enumerate(scan.components)
                   for _ in range(img.components[index].h * img.components[index].v)]
    ctx = dct._Context(blocks_plan, [table(scan.dc_tables[td]) for _, td, _ in scan.components],
                       [table(scan.ac_tables[ta]) for _, _, ta in scan.components], [0, 0, 0])
    mcux, mcuy = -(-img.width // (8 * img.hmax)), -(-img.height // (8 * img.vmax))
    (start, stop, _), = intervals(img.data, scan.header_end, scan.data_end)
    mcus = dct._decode_interval(ctx, img.data, (start, stop), mcux * mcuy)
    out = [jpeg[:scan.sos], b"\xff\xdd\x00\x04" + restart.to_bytes(2, "big")]
    for slot, (index, td, ta) in enumerate(scan.components):
        comp = img.components[index]
        width = -(-(-(-img.width * comp.h // img.hmax)) // 8)
        height = -(-(-(-img.height * comp.v // img.vmax)) // 8)
        grid = {}
        for m, blocks in enumerate(mcus):
            mine = [b for b in blocks if b[0] == slot]
            for k, (_, dc, acs) in enumerate(mine):
                bx = (m % mcux) * comp.h + k % comp.h
                by = (m // mcux) * comp.v + k // comp.h
                grid[(bx, by)] = (dc, acs)
        one = dct._Context([0], [ctx.dc[slot]], [ctx.ac[slot]], [0])
        data, pred, w, count = [], 0, BitWriter(), 0
        for by in range(height):
            for bx in range(width):
                if count and count % restart == 0:
                    data.append(stuff(w.finish()) + bytes([0xFF, 0xD0 + (count // restart - 1) % 8]))
                    w, pred = BitWriter(), 0
                dc, acs = grid[(bx, by)]
                dct._put_block(w, one, 0, dc - pred, acs)
                pred = dc
                count += 1
        data.append(stuff(w.finish()))
        out.append(b"\xff\xda\x00\x08\x01" + bytes([comp.ident, td << 4 | ta]) + b"\x00\x3f\x00" + b"".join(data))
    out.append(b"\xff\xd9")
    return b"".join(out)


@pytest.mark.parametrize("subsampling", [0, 2])
def test_non_interleaved_scans_with_restarts(px_factory, px_process, subsampling):
    from libjpeg import decode

    arr = _image(45, 75, 7, True)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=85, subsampling=subsampling)
    multi = _non_interleaved(buf.getvalue(), restart=5)
    assert np.array_equal(decode(multi), decode(buf.getvalue())), "the test's re-writing must not change pixels"
    photometric = "YBR_FULL" if subsampling == 0 else "YBR_FULL_422"
    ds = px_factory.dataset(arr, photometric, ts=JPEG_BASELINE, pixel_bytes=encapsulate([multi]))
    ds["PixelData"].is_undefined_length = True
    ds = px_factory.reread(ds)
    after_ds, out_ts, done, _ = px_process(ds, [(20, 17, 30, 9)])
    assert out_ts == JPEG_BASELINE
    new = list(generate_frames(after_ds.PixelData, number_of_frames=1))[0]
    assert new.count(b"\xff\xda") == 3
    (_, inner, _), = check(px_factory, ds, after_ds, done, 1 if subsampling else 0)
    assert inner.max() <= 2
