"""Rendering frames to 8-bit gray for OCR: every photometric interpretation, bit depth and layout, crops and
enlargement, and legibility of real burned-in text (read back with the native OCR)."""

from __future__ import annotations

import re

import numpy as np
import pydicom
import pytest

from py_deid.hosts.services import OcrRequest
from py_deid.pixels import render
from py_deid.pixels.frames import FrameStore
from py_deid.pixels.info import PixelInfo

LE, BE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"


def _store(ds, codecs=None):
    return FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), codecs)


def _gray(image):
    return np.frombuffer(image.pixels, np.uint8).reshape(image.height, image.width)


def _text_image(rows=40, cols=60, lo=0, hi=255, text=None, bg=None, seed=0):
    """Noise in the middle of the range, "text" (a block) at `text`, a background at `bg`."""
    rng = np.random.default_rng(seed)
    mid = (lo + hi) // 2
    arr = rng.integers(mid - (hi - lo) // 8, mid + (hi - lo) // 8, size=(rows, cols))
    arr[:6, :] = bg if bg is not None else lo
    arr[1:5, 3:30] = text if text is not None else hi
    return arr


@pytest.mark.parametrize("photometric,dtype,stored,signed,ts", [
    ("MONOCHROME2", "u1", 8, False, LE),
    ("MONOCHROME2", "u2", 12, False, BE),
    ("MONOCHROME2", "i2", 16, True, LE),
    ("MONOCHROME2", "i2", 12, True, LE),
    ("MONOCHROME1", "u2", 15, False, LE),
    ("MONOCHROME1", "i1", 8, True, LE),
])
def test_mono_text_at_extremes_is_white_on_black(px_factory, photometric, dtype, stored, signed, ts):
    lo, hi = (-(1 << (stored - 1)), (1 << (stored - 1)) - 1) if signed else (0, (1 << stored) - 1)
    # MONOCHROME1 shows its minimum as white: text there, background at the maximum
    text, bg = (lo, hi) if photometric == "MONOCHROME1" else (hi, lo)
    arr = _text_image(lo=lo, hi=hi, text=text, bg=bg).astype(dtype)
    ds = px_factory.reread(px_factory.dataset(arr, photometric, bits_stored=stored, signed=signed, ts=ts))
    g = _gray(_store(ds).render(0))
    assert (g[1:5, 3:30] == 255).all() and (g[0, :] == 0).all()
    assert 40 < g[10:, :].mean() < 215
    inverted = _gray(_store(ds).render(0, invert=True))
    assert np.array_equal(inverted, 255 - g)


def test_unused_high_bits_do_not_disturb_rendering(px_factory):
    arr = _text_image(hi=4095).astype(np.uint16)
    clean = px_factory.reread(px_factory.dataset(arr, "MONOCHROME2", bits_stored=12))
    noisy_arr = arr | (np.random.default_rng(1).integers(0, 16, size=arr.shape).astype(np.uint16) << 12)
    noisy = px_factory.reread(px_factory.dataset(noisy_arr, "MONOCHROME2", bits_stored=12))
    assert _store(noisy).render(0).pixels == _store(clean).render(0).pixels


def test_rescale_and_windows(px_factory):
    arr = _text_image(hi=3000).astype(np.uint16)
    ds = px_factory.dataset(arr, "MONOCHROME2", bits_stored=12)
    ds.RescaleSlope, ds.RescaleIntercept = -1, 1000  # inverted rescale: high stored values become low
    ds.WindowCenter, ds.WindowWidth = 500, 200
    ds = px_factory.reread(ds)
    store = _store(ds)
    g = _gray(store.render(0))
    assert (g[1:5, 3:30] == 0).all()  # the stored maximum is the lowest modality value
    header = _gray(store.render(0, window="header"))
    assert set(np.unique(header[1:5, 3:30])) == {0} and (header[0] == 255).all()
    explicit = _gray(store.render(0, window=(0.0, 4000.0)))  # -2000..2000: stored 0 -> 1000 -> 191
    assert explicit[0, 0] == 191 and (explicit[1:5, 3:30] == 0).all()


def _luma(rgb):
    return (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) / 1000


@pytest.mark.parametrize("photometric,planar,dtype", [("RGB", 0, "u1"), ("RGB", 1, "u1"), ("RGB", 0, "u2"),
                                                      ("YBR_FULL", 1, "u1"), ("YBR_FULL_422", 0, "u1")])
def test_colour_renders_as_luminance_or_its_farthest_channel(px_factory, photometric, planar, dtype):
    """YBR: Y. RGB: each pixel's channel farthest from the frame's ground (median luminance), above or below."""
    rng = np.random.default_rng(4)
    top = 65535 if dtype == "u2" else 255
    arr = rng.integers(0, top + 1, size=(2, 24, 30, 3)).astype(dtype)
    if photometric == "RGB":  # gray with a few colour pixels (annotation is sparse; see render.farthest)
        gray = rng.integers(0, top + 1, size=(2, 24, 30, 1)).astype(dtype)
        arr = np.where(rng.random((2, 24, 30, 1)) < 0.1, arr, np.repeat(gray, 3, axis=-1))
    if photometric == "YBR_FULL_422":
        arr[:, :, 1::2, 1:] = arr[:, :, 0::2, 1:]
    ds = px_factory.reread(px_factory.dataset(arr, photometric, planar=planar, frames=True))
    store = _store(ds)
    for i in range(2):
        g = _gray(store.render(i)).astype(int)
        if photometric.startswith("YBR"):
            assert np.array_equal(g, arr[i][..., 0])  # Y is the luminance
        else:
            _assert_farthest(g, (arr[i] >> 8 if dtype == "u2" else arr[i]).astype(int))


def _assert_farthest(g, rgb, sparse=0.2):
    """g is rgb (0..255) as render.farthest renders it: luminance, except that in a frame with sparse saturated
    pixels (annotation) those take their channel farthest from the ground (median luminance), above or below."""
    m = np.median(_luma(rgb).reshape(-1)[::7])
    up, down = rgb.max(axis=-1) - m, m - rgb.min(axis=-1)
    far = np.where(up >= down, m + np.maximum(up, 0), m - np.maximum(down, 0))
    saturated = rgb.max(axis=-1) - rgb.min(axis=-1) >= 96
    if saturated.mean() > sparse:  # colour content keeps its luminance (render.SPARSE, PALETTE_SPARSE)
        saturated[...] = False
    expected = np.where(saturated, far, _luma(rgb))
    close = saturated & (np.abs(up - down) <= 2)  # the rule compares the two to 2 levels
    assert np.abs(g - expected)[~close].max() <= 2


def test_palette_renders_as_rgb_does(samples):
    """A palette frame renders as its colours would in RGB (render.farthest), not as luminance alone: green
    annotation on mid gray is 150 against 113 in luminance (held-out draw 20281120 lost a date-time so)."""
    from pydicom.pixels import apply_color_lut

    ds = pydicom.dcmread(samples.path("OBXXXX1A.dcm"))
    rgb = apply_color_lut(ds.pixel_array, ds)
    g = _gray(_store(ds).render(0)).astype(int)
    _assert_farthest(g, (rgb // 257 if rgb.max() > 255 else rgb).astype(int), render.PALETTE_SPARSE)


def test_segmented_16bit_palette(samples):
    from pydicom.pixels import apply_color_lut

    ds = pydicom.dcmread(samples.path("gdcm-US-ALOKA-16.dcm"))
    rgb = apply_color_lut(ds.pixel_array, ds) // 257
    g = _gray(_store(ds).render(0)).astype(int)
    _assert_farthest(g, rgb.astype(int), render.PALETTE_SPARSE)
    darkest = _store(ds).info.background[0]
    lut = apply_color_lut(np.array([darkest]), ds)[0]
    assert lut.max() == apply_color_lut(np.arange(65536, dtype=np.uint16), ds).sum(axis=-1).min() or lut.max() == 0


def test_crop_and_scale(samples):
    ds = pydicom.dcmread(samples.path("US1_UNCR.dcm"))
    store = _store(ds)
    full = _gray(store.render(0))
    box = (100, 40, 57, 23)
    crop = store.render(0, box=box, scale=3)
    assert (crop.width, crop.height) == (57 * 3, 23 * 3)
    expected = full[40:63, 100:157].repeat(3, axis=0).repeat(3, axis=1)
    assert np.array_equal(_gray(crop), expected)
    smooth = _gray(store.render(0, box=box, scale=3, smooth=True)).astype(float)
    src = full[40:64, 100:158].astype(float)  # one more row and column: the interpolation's right neighbours
    for k in range(3):  # every third pixel is an original one; the two between blend their neighbours
        assert np.array_equal(smooth[::3, ::3], full[40:63, 100:157])
        between = smooth[::3, k::3][:, :-1]
        ideal = (src[:-1, :-2] * (3 - k) + src[:-1, 1:-1] * k) / 3
        assert np.abs(between - ideal).max() <= 2
    edge = store.render(0, box=(600, 470, 100, 100))  # clipped at the image edge
    assert (edge.width, edge.height) == (40, 10)
    with pytest.raises(ValueError):
        store.render(0, box=(700, 10, 5, 5))
    with pytest.raises(IndexError):
        store.render(1)


def test_render_follows_masks(samples):
    ds = pydicom.dcmread(samples.path("GREYSCALE_IMAGE.dcm"))
    store = _store(ds)
    before = _gray(store.render(0))
    store.mask(0, [(0, 0, 300, 40)])
    after = _gray(store.render(0))
    assert (after[:40, :300] == 0).all() and np.array_equal(after[40:], before[40:])


# ---- real burned-in text: rendered, saved for a look, and read back --------------------------------------
READABLE = [
    # file, frame, crop box (x, y, w, h) or None, scale, words that must be read
    ("CT-MONO2-16-ankle.dcm", 0, None, 2, ["IMAGING", "CENTER", "06:27:24"]),
    ("US-PAL-8-10x-echo.dcm", 4, None, 2, ["11:24:58"]),
    ("GREYSCALE_IMAGE.dcm", 0, None, 1, ["00079241539", "08/29/1951"]),
    ("RGB_IMAGE.dcm", 0, None, 1, ["ZZZDOWNTIME", "00047431395", "CLEVELAND"]),
    ("color3d_jpeg_baseline.dcm", 50, None, 1, ["Page", "1/3"]),
    ("data_store/data/OBXXXX1A_expb.dcm", 0, None, 1, ["PHILIPS", "Healthcare"]),
    ("OBXXXX1A_rle_2frame.dcm", 0, None, 1, ["PHILIPS"]),
]


@pytest.mark.parametrize("name,frame,box,scale,words", READABLE)
def test_real_text_is_legible(samples, px_codecs, px_artifacts, ocr_engine, name, frame, box, scale, words):
    from PIL import Image

    ds = pydicom.dcmread(samples.path(name))
    store = _store(ds, px_codecs)
    image = store.render(frame, box=box, scale=scale)
    Image.frombytes("L", (image.width, image.height), image.pixels).save(
        px_artifacts / f"render_{name.split('/')[-1]}_{frame}.png")
    found = " ".join(w.text for w in ocr_engine.find_text(OcrRequest(image)))
    for word in words:
        assert word.lower() in found.lower(), f"{word!r} not read from {name}"


def test_window_lifts_dim_palette_text(samples, px_artifacts):
    """Frame 2 of OBXXXX1A_rle_2frame carries its annotation in two nearly black palette entries (luminance
    2 and 6): a luminance window makes it white on black."""
    from PIL import Image

    ds = pydicom.dcmread(samples.path("OBXXXX1A_rle_2frame.dcm"))
    store = _store(ds)
    plain = _gray(store.render(1, box=(0, 0, 400, 120)))
    lifted_image = store.render(1, box=(0, 0, 400, 120), scale=2, window=(4.0, 4.0))
    Image.frombytes("L", (lifted_image.width, lifted_image.height), lifted_image.pixels).save(
        px_artifacts / "render_OBXXXX1A_rle_2frame_dim_text_windowed.png")
    lifted = _gray(store.render(1, box=(0, 0, 400, 120), window=(4.0, 4.0)))
    indices = ds.pixel_array[1][:120, :400]
    assert plain[indices == 24].max() <= 8 and (indices == 24).sum() > 500
    assert (lifted[indices == 24] == 255).all() and (lifted[indices == 11] == 0).all()


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "SC_ybr_full_422_uncompressed.dcm", "OBXXXX1A.dcm",
                                  "data_store/data/OBXXXX1A_expb.dcm", "ExplVR_BigEnd.dcm", "image_dfl.dcm"])
def test_real_files_render_like_pydicom(samples, px_factory, px_artifacts, name):
    """Polarity and content agree with pydicom's decoding (correlation of the two renderings)."""
    from PIL import Image
    from pydicom.pixels import apply_color_lut

    ds = pydicom.dcmread(samples.path(name))
    image = _store(ds).render(0)
    Image.frombytes("L", (image.width, image.height), image.pixels).save(
        px_artifacts / f"render_{name.split('/')[-1]}.png")
    arr = px_factory.rgb(ds)[0].astype(float)
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        arr = apply_color_lut(px_factory.raw(ds)[0], ds).astype(float)
    if arr.ndim == 3:
        arr = _luma(arr)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        arr = -arr
    corr = np.corrcoef(_gray(image).ravel().astype(float), arr.ravel())[0, 1]
    assert corr > 0.98


@pytest.mark.parametrize("case", range(12))
def test_16_bit_rendering_matches_the_window_formula(px_factory, px_codecs, case):
    """16-bit grayscale renders by high-byte groups (a translate per group), or with the host's numpy (a table
    look-up per pixel); both give the window formula computed per pixel with numpy: signed and unsigned, 10 to
    16 bits stored, either byte order, MONOCHROME1, rescale, "auto" (without the fill value), "header" and
    explicit windows, few and many (> 24: the per-pixel path) high bytes."""
    rng = np.random.default_rng(case)
    signed, stored = bool(case % 2), [10, 12, 14, 16, 16, 12][case % 6]
    lo_v, hi_v = (-(1 << (stored - 1)), (1 << (stored - 1)) - 1) if signed else (0, (1 << stored) - 1)
    spread = [300, 900, 5000, 60000][case % 4]
    a = int(rng.integers(lo_v, max(lo_v + 1, hi_v - min(spread, hi_v - lo_v))))
    b = min(hi_v, a + spread)
    arr = rng.integers(a, b + 1, size=(48, 70)).astype("i2" if signed else "u2")
    photometric = "MONOCHROME1" if case % 3 == 0 else "MONOCHROME2"
    ds = px_factory.dataset(arr, photometric, bits_stored=stored, signed=signed, ts=[LE, BE][case % 2])
    slope, intercept = [(1.0, 0.0), (1.0, -1024.0), (0.5, 3.0), (-1.0, 1000.0)][case % 4]
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.WindowCenter, ds.WindowWidth = 300, 800
    ds = px_factory.reread(ds)
    store, with_numpy = _store(ds), _store(ds, px_codecs)
    assert store.numpy is None and with_numpy.numpy is np
    m = arr.astype(np.float64) * slope + intercept
    fill = hi_v if photometric == "MONOCHROME1" else lo_v  # the mask's fill value is left out of "auto"
    shown = m[arr != fill] if (arr != fill).any() else m
    for window in ("auto", "header", (100.0, 1500.0)):
        lo, hi = ((shown.min(), shown.max()) if window == "auto" else (300 - 400, 300 + 400) if window == "header"
                  else (100.0 - 750, 100.0 + 750))
        hi = hi if hi > lo else lo + 1
        want = np.where(m <= lo, 0, np.where(m >= hi, 255, np.floor((m - lo) * 255 / (hi - lo) + 0.5)))
        if photometric == "MONOCHROME1":
            want = 255 - want
        assert np.array_equal(_gray(store.render(0, window=window)), want.astype(np.uint8)), window
        assert np.array_equal(_gray(with_numpy.render(0, window=window)), want.astype(np.uint8)), window


@pytest.mark.parametrize("case", range(16))
def test_grayscale_renders_the_same_with_and_without_numpy(px_factory, px_codecs, case):
    """The native host renders grayscale with numpy, the browser without: the same bytes for 8, 16 and 32 bits
    allocated, signed or not, samples with bits outside Bits Stored, a high bit below the top, rescale,
    MONOCHROME1, every window, inverted, with the fill value left out of "auto"."""
    from py_deid.pixels import render
    from py_deid.pixels.info import background_for

    rng = np.random.default_rng(100 + case)
    allocated = [8, 16, 32, 16][case % 4]
    signed = bool(case // 4 % 2)
    stored = {8: [8, 7], 16: [12, 16], 32: [32, 20]}[allocated][case // 8 % 2]
    high = stored - 1 if case % 3 else allocated - 1  # a high bit at the top: the stored bits shifted up
    kind = f"{'i' if signed else 'u'}{allocated // 8}"
    info = np.iinfo(kind)
    lo_v, hi_v = (-(1 << (stored - 1)), (1 << (stored - 1)) - 1) if signed else (0, (1 << stored) - 1)
    arr = rng.integers(lo_v, hi_v + 1, size=(30, 41)).astype(np.int64)
    arr[:3, :5] = lo_v  # the fill value
    if high != stored - 1:
        arr = arr << (high + 1 - stored)
    if case % 5 == 0:  # bits outside Bits Stored set in some samples (an overlay in the unused bits)
        arr[5:9, 7:20] = rng.integers(info.min, info.max, size=(4, 13))
    ds = px_factory.dataset(arr.astype(kind), "MONOCHROME1" if case % 2 else "MONOCHROME2", bits_stored=stored,
                            signed=signed, ts=[LE, BE][case // 2 % 2])
    ds.HighBit = high
    ds.RescaleSlope, ds.RescaleIntercept = [(1.0, 0.0), (2.0, -1024.0), (0.25, 3.5), (1.0, 7.0)][case % 4]
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds = px_factory.reread(ds)
    store = _store(ds)
    buf, offset, layout, work = store.view(0)
    exclude = background_for(work, work.photometric)[0]
    for window in ("auto", "header", (10.0, 300.5)):
        for invert in (False, True):
            want = render.gray_frame(buf, offset, layout, work, window=window, invert=invert, exclude=exclude)
            got = render.gray_frame(buf, offset, layout, work, window=window, invert=invert, exclude=exclude,
                                    numpy=np)
            assert got == want, (window, invert)


@pytest.mark.parametrize("case", range(8))
def test_colour_renders_the_same_with_and_without_numpy(px_factory, case):
    """RGB frames render with numpy from views of the frame (planes and luminance in bands, no copy of the
    frame: the peak of a folder's process was a 2048 x 1536 frame's copies) and without it (the browser): the
    same bytes, interleaved and planar, 8 and 16 bits, sparse colour (the farthest-channel rule), colour
    content and pure gray, a band boundary inside the frame, every window, inverted, both saturation limits."""
    from py_deid.pixels import render

    rng = np.random.default_rng(300 + case)
    dtype, planar = ["u1", "u1", "u2", "u1"][case % 4], (case // 4) % 2
    top = 65535 if dtype == "u2" else 255
    shape = (1100, 1000) if case in (0, 5) else (37, 53)  # above one band of 2^20 pixels: several bands
    gray = rng.integers(0, top + 1, size=(*shape, 1)).astype(dtype)
    arr = np.repeat(gray, 3, axis=-1)
    if case % 4 != 3:  # pure gray for the last kind
        colour = rng.integers(0, top + 1, size=(*shape, 3)).astype(dtype)
        share = 0.5 if case == 6 else 0.08  # colour content (luminance kept) or sparse annotation
        arr = np.where(rng.random((*shape, 1)) < share, colour, arr)
    ds = px_factory.reread(px_factory.dataset(arr, "RGB", planar=planar))
    buf, offset, layout, work = _store(ds).view(0)
    for window in ("auto", (100.0, 80.5)):
        for invert in (False, True):
            for saturated in (render.SATURATED, render.CODED_SATURATED):
                want = render.gray_frame(buf, offset, layout, work, window=window, invert=invert,
                                         saturated=saturated)
                got = render.gray_frame(buf, offset, layout, work, window=window, invert=invert,
                                        saturated=saturated, numpy=np)
                assert got == want, (window, invert, saturated)


def test_colour_pixels_render_as_their_channel_farthest_from_the_ground():
    """render.farthest: gray and weakly coloured pixels keep their luminance; a saturated one takes the value of
    its channel farthest from the frame's ground, above or below it; numpy and pure Python give the same bytes."""
    from py_deid.pixels import render

    rng = np.random.default_rng(20261206)
    for n in (1, 7, 4096):
        v = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert render.farthest(render.luma(v, v, v), v, v, v) == render.luma(v, v, v)
        r, g, b = (rng.integers(0, 256, n, dtype=np.uint8).tobytes() for _ in range(3))
        lum = render.luma(r, g, b)
        assert render.farthest(lum, r, g, b) == render.farthest(lum, r, g, b, numpy=np)

    def one(rgb, ground):
        k = 99  # pixels of ground, one of the colour
        planes = [bytes([ground] * k + [c]) for c in rgb]
        return render.farthest(render.luma(*planes), *planes)[-1]
    assert one((20, 230, 20), 112) == 230  # green on mid gray: up with the white text (luma 143)
    assert one((0, 0, 200), 160) == 0  # blue on light gray: down (luma 23)
    assert one((0, 0, 255), 255) == 0  # blue on white: down (max channel would be the ground)
    assert one((255, 140, 0), 8) == 255  # orange on dark
    assert one((150, 120, 100), 112) == round(150 * 0.299) + round(120 * 0.587) + round(100 * 0.114)  # tissue


def test_green_text_on_mid_grey_beside_white_settings_is_read(px_factory, ocr_engine):
    """The leak a fresh draw of the evaluation set found (an RGB Secondary Capture on a mid-gray ground): a name,
    an ID and a date in green beside settings in white. Rendered by luminance the green lines stood 32 levels
    above the ground against the white's 117, and Tesseract's one threshold for the image dropped them."""
    from PIL import Image, ImageDraw, ImageFont

    from py_deid.pixels.ocr_image import dark_on_light, enlarge, pad

    rng = np.random.default_rng(7)
    arr = np.clip(rng.normal(111, 4, (240, 480, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(arr)
    draw, font = ImageDraw.Draw(im), ImageFont.load_default(size=12)
    draw.text((8, 8), "NGUYEN^AIKO", fill=(20, 230, 20), font=font)
    draw.text((8, 26), "ID 2273946793 DOB 19541201", fill=(20, 230, 20), font=font)
    draw.text((340, 150), "PRF 4.0kHz", fill=(235, 235, 235), font=font)
    draw.text((340, 170), "DR 60", fill=(235, 235, 235), font=font)
    ds = px_factory.reread(px_factory.dataset(np.asarray(im), "RGB"))
    gray = _store(ds, None).render(0)
    sent = dark_on_light(pad(enlarge(gray, 2), 16))
    words = " ".join(w.text for w in ocr_engine.find_text(OcrRequest(sent, 11, "test")))
    for expected in ("NGUYEN", "19541201", "PRF"):
        assert expected in words, words
    assert re.search(r"\b22\d{8}\b", words), words  # the ID read as an ID (a digit may be off)


def test_farthest_in_bands_is_the_same(monkeypatch):
    """render.farthest with numpy works in bands of pixels (a whole frame's temporaries set a folder's peak):
    the same bytes as pure Python whatever the band, a frame's saturated share counted over all bands."""
    from py_deid.pixels import render

    rng = np.random.default_rng(20261206)
    n = 10_000
    gray_ground = rng.integers(100, 120, n, dtype=np.uint8)
    for share in (0.01, 0.15, 0.19, 0.21, 0.5):  # around SPARSE: colour content or annotated gray
        r, g, b = (gray_ground.copy() for _ in range(3))
        hot = rng.random(n) < share
        r[hot], g[hot], b[hot] = 20, 230, 20
        planes = [c.tobytes() for c in (r, g, b)]
        lum = render.luma(*planes)
        want = render.farthest(lum, *planes)
        for band in (1, 7, 4096, 1 << 20):
            monkeypatch.setattr(render, "_FARTHEST_BAND", band)
            assert render.farthest(lum, *planes, numpy=np) == want, (share, band)


def test_gray_table_of_an_ascending_range_takes_its_extremes_at_the_ends():
    """The numpy table over a clean frame's value range (vmin..vmax, ascending) takes the "auto" window's ends
    from the range's first and last values (the rescale is monotone) instead of two reductions: the same table
    as the reductions give, for any slope and intercept (negative, fractional, tiny, large, zero)."""
    from types import SimpleNamespace

    from py_deid.pixels.render import _gray_numpy

    rng = np.random.default_rng(20261206)
    slopes = [1.0, -1.0, 0.5, 0.0, 1e-9, 3.7e5, -0.3, 2.0 ** -20]
    for k in range(400):
        vmin = int(rng.integers(-40000, 40000))
        values = np.arange(vmin, vmin + int(rng.integers(1, 5000)), dtype=np.int64)
        info = SimpleNamespace(rescale_slope=slopes[k % len(slopes)] * (1 + rng.random() * (k % 3 == 1)),
                               rescale_intercept=float(rng.normal(0, 10 ** int(rng.integers(0, 6)))),
                               photometric=["MONOCHROME1", "MONOCHROME2"][k % 2], window=None)
        assert np.array_equal(_gray_numpy(np, values, info, "auto", None, ascending=True),
                              _gray_numpy(np, values, info, "auto", None)), k


@pytest.mark.parametrize("photometric,planar", [("YBR_FULL", 0), ("YBR_FULL", 1), ("YBR_FULL_422", 0)])
def test_coloured_annotation_on_a_ybr_frame_renders_as_on_rgb(px_factory, photometric, planar):
    """Held-out draw 20290915: green 10 px text on a mid-gray YBR_FULL endoscopy frame rendered as Y alone, 150
    against a ground of 112, under the screen's first light threshold; neither the screen nor OCR saw its three
    lines of PHI. Native YBR now takes a coloured pixel's channel farthest from the ground (render.farthest)
    where Y stands close to the ground (under render.LEGIBLE), and Y elsewhere and where nothing is coloured;
    the same bytes with and without numpy."""
    from py_deid.pixels import render

    def ybr(r, g, b):
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return [round(y), round(128 - 0.168736 * r - 0.331264 * g + 0.5 * b),
                round(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)]

    arr = np.zeros((24, 40, 3), np.uint8)
    arr[...] = ybr(112, 112, 112)
    text = np.zeros((24, 40), bool)
    text[8:16, 6:30:4] = True  # strokes two columns wide, each a pair that shares its chroma (422)
    text[8:16, 7:30:4] = True
    arr[text] = ybr(0, 255, 0)
    if photometric == "YBR_FULL_422":
        arr[:, 1::2, 1:] = arr[:, 0::2, 1:]
    ds = px_factory.reread(px_factory.dataset(arr, photometric, planar=planar))
    store = _store(ds)
    g = _gray(store.render(0)).astype(int)
    assert (g[~text] == arr[~text][:, 0]).all()  # the ground: Y
    assert g[text].min() >= 230, g[text].min()  # the text: its green channel (Y alone: 150)
    buf, offset, layout, work = store._backend.view(0)
    assert render.gray_frame(buf, offset, layout, work, numpy=None) == render.gray_frame(buf, offset, layout, work,
                                                                                         numpy=np)
    # cyan on a dark ground: Y (179 against 9) already sets it apart, and stays as it was
    arr[...] = ybr(9, 9, 9)
    arr[text] = ybr(0, 255, 255)
    if photometric == "YBR_FULL_422":
        arr[:, 1::2, 1:] = arr[:, 0::2, 1:]
    ds = px_factory.reread(px_factory.dataset(arr, photometric, planar=planar))
    assert (_gray(_store(ds).render(0)) == arr[..., 0]).all()
    plain = np.repeat(arr[..., :1], 3, axis=-1)  # no colour: Y, whatever the ground
    plain[..., 1:] = 128
    ds = px_factory.reread(px_factory.dataset(plain, photometric, planar=planar))
    assert (_gray(_store(ds).render(0)) == plain[..., 0]).all()
