"""The text screen on the stored samples (render.ink_cuts, text_presence.candidate_pieces_stored): a grayscale
frame whose gray value is a monotone function of its samples is screened by comparing the samples with each
threshold's cut, and rendered only when pieces are found. It must find exactly what the rendered frame gives:
the cuts are checked against the render's own table, the pieces and the step's decision against the rendered
frame's, on drawn text (the smallest the evaluation uses, light and dark, MONOCHROME1, signed, rescaled, either
byte order), colour (rendered as before) and the sample files."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pydicom
import pytest

from py_deid.pixels import render, step, text_presence
from py_deid.pixels.frames import FrameStore
from py_deid.pixels.info import PixelInfo

LE, BE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"


def _store(ds, codecs):
    return FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), codecs)


def test_the_cuts_are_where_the_gray_table_crosses_each_threshold():
    """_auto_cuts (the formula on single values) against the numpy table of the whole range: the samples at or
    above each threshold are the same, for ranges of 1 to 5,000 values, integer and fractional, negative, zero,
    tiny and large slopes and intercepts, MONOCHROME1 and 2."""
    rng = np.random.default_rng(20261206)
    slopes = [1.0, -1.0, 0.5, 0.0, 1e-9, 3.7e5, -0.3, 2.0 ** -20, 1, 2]
    for k in range(1500):
        vmin = int(rng.integers(-40000, 40000))
        n = int(rng.integers(1, 5000)) if k % 4 else int(rng.integers(1, 5))
        values = np.arange(vmin, vmin + n, dtype=np.int64)
        slope = slopes[k % len(slopes)]
        if isinstance(slope, float):
            slope *= 1 + rng.random() * (k % 3 == 1)
        info = SimpleNamespace(rescale_slope=slope, photometric=["MONOCHROME1", "MONOCHROME2"][k % 2], window=None,
                               rescale_intercept=float(rng.normal(0, 10 ** int(rng.integers(0, 6)))) if k % 7 else 0)
        table = render._gray_numpy(np, values, info, "auto", None, ascending=True)
        cuts = render._auto_cuts(vmin, vmin + n - 1, info, text_presence.THRESHOLDS)
        assert cuts is not None, k
        for t, (op, cut) in zip(text_presence.THRESHOLDS, cuts):
            assert np.array_equal(table >= t, values >= cut if op == ">=" else values < cut), (k, t)


def test_the_cuts_in_whole_numbers_are_the_searched_cuts(monkeypatch):
    """_auto_cuts with slope 1 and a whole intercept (its cuts in whole-number arithmetic, render._whole_cuts)
    gives the cuts, ops included, of the formula's search on single values (the same function with that path
    switched off), on 20,000 ranges: 1 to 70,000 values, the window's ends inside the range (a fill value left
    out), MONOCHROME1 and 2, the screen's thresholds and random ones. (The table test above checks the cuts
    against the gray table, this path included.)"""
    import random

    rng = random.Random(20261207)
    whole = render._whole_cuts
    taken = []

    def counted(*args):
        out = whole(*args)
        taken.append(out is not None)
        return out

    for k in range(20000):
        vmin = rng.randint(-40000, 40000)
        n = rng.choice([1, 2, 3, rng.randint(1, 50), rng.randint(1, 5000), rng.randint(1, 70000)])
        vmax = vmin + n - 1
        low = vmin if rng.random() < 0.7 else min(vmax, vmin + rng.randint(0, 3))
        high = vmax if rng.random() < 0.7 else max(low, vmax - rng.randint(0, 3))
        info = SimpleNamespace(rescale_slope=1.0 if k % 3 else 1, photometric=["MONOCHROME1", "MONOCHROME2"][k % 2],
                               rescale_intercept=float(rng.randint(-3000, 3000)) if k % 4 > 1 else 0, window=None)
        thresholds = text_presence.THRESHOLDS if k % 5 else tuple(rng.randint(1, 255) for _ in range(6))
        monkeypatch.setattr(render, "_whole_cuts", counted)
        fast = render._auto_cuts(vmin, vmax, info, thresholds, low, high)
        monkeypatch.setattr(render, "_whole_cuts", lambda *args: None)
        slow = render._auto_cuts(vmin, vmax, info, thresholds, low, high)
        assert fast == slow, (k, vmin, vmax, low, high)
    assert sum(taken) > 15000  # (a MONOCHROME1 range of one gray value goes the general way: 12% here)


def _scene(text, size, ink, background, at=(40, 70), shape=(160, 320)):
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("L", (shape[1], shape[0]), background)
    ImageDraw.Draw(im).text(at, text, fill=ink, font=ImageFont.load_default(size=size))
    return np.asarray(im).astype(np.int64)


SCENES = {  # the evaluation's smallest type (10 px) and larger, light on dark and dark on light
    "10px-white-on-black": _scene("DOE^JOHN 1953", 10, 255, 0),
    "10px-light-grey-on-mid-grey": _scene("LINDA HASSAN 02/04/1960", 10, 170, 128),
    "10px-dark-on-light": _scene("TANAKA AIKO 1971", 10, 0, 235),
    "14px-grey-on-dark-grey": _scene("RIVERSIDE CLINIC", 14, 176, 60),
    "10px-corner": _scene("KOFI", 10, 255, 0, at=(222, 243), shape=(256, 256)),
}
ENCODINGS = {  # gray value g (0..255) -> stored samples, and how the instance says so
    "12-in-16": lambda g: dict(arr=(g * 16 + 32).astype(np.uint16), photometric="MONOCHROME2", bits_stored=12),
    # the mask's fill value (0) present: left out of the "auto" window, which then starts at the next value
    "12-in-16-fill-value": lambda g: dict(arr=(g * 16).astype(np.uint16), photometric="MONOCHROME2",
                                          bits_stored=12),
    "monochrome1": lambda g: dict(arr=((255 - g) * 16).astype(np.uint16), photometric="MONOCHROME1", bits_stored=12),
    "monochrome1-fill-value": lambda g: dict(arr=((255 - g) * 16 + 15).astype(np.uint16), photometric="MONOCHROME1",
                                             bits_stored=12),
    "signed-16": lambda g: dict(arr=(g * 7 - 900).astype(np.int16), photometric="MONOCHROME2", signed=True),
    "8-bit": lambda g: dict(arr=(g // 2 + 60).astype(np.uint8), photometric="MONOCHROME2"),
    "big-endian": lambda g: dict(arr=(g * 3 + 5).astype(np.uint16), photometric="MONOCHROME2", ts=BE),
    "negative-slope": lambda g: dict(arr=((255 - g) * 4).astype(np.uint16), photometric="MONOCHROME2",
                                     rescale=(-1.0, 2000.0)),
    "monochrome1-signed-rescaled": lambda g: dict(arr=((255 - g) * 5 - 600).astype(np.int16),
                                                  photometric="MONOCHROME1", signed=True, rescale=(0.5, -3.0)),
}


def _instance(px_factory, encoding, gray):
    spec = ENCODINGS[encoding](gray)
    rescale = spec.pop("rescale", None)
    arr = spec.pop("arr")
    photometric = spec.pop("photometric")
    ds = px_factory.dataset(arr, photometric, **spec)
    if rescale:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    return px_factory.reread(ds)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("scene", sorted(SCENES))
def test_drawn_text_is_found_on_the_stored_samples_as_on_the_rendered_frame(px_factory, px_codecs, scene,
                                                                           encoding):
    """The smallest text of the evaluation, in every way a grayscale frame stores it: the screen on the stored
    samples finds the rendered frame's pieces, the step's screen sends the frame to OCR (never cleared), with
    the same pieces as screening the rendered frame."""
    store = _store(_instance(px_factory, encoding, SCENES[scene]), px_codecs)
    stored = store.stored_ink(0, text_presence.THRESHOLDS)
    assert stored is not None
    image = store.render(0)
    want = text_presence.candidate_pieces(image, numpy=np)
    assert want
    if stored is not None:
        assert text_presence.candidate_pieces_stored(text_presence.StoredInk(stored[0], tuple(stored[1])),
                                                     numpy=np) == want
    pieces = step._screen_frame(_store(_instance(px_factory, encoding, SCENES[scene]), px_codecs), 0)
    assert pieces and pieces == text_presence.screen(image, numpy=np)


def test_colour_text_is_screened_on_the_rendered_frame(px_factory, px_codecs):
    """Colour has no stored gray: the frame is rendered and screened as before, small coloured text found."""
    from PIL import Image, ImageDraw, ImageFont

    for ink in ((255, 255, 0), (0, 220, 220), (255, 0, 0)):
        im = Image.new("RGB", (320, 160), (8, 8, 8))
        ImageDraw.Draw(im).text((30, 60), "12/03/2021 10:41", fill=ink, font=ImageFont.load_default(size=10))
        store = _store(px_factory.reread(px_factory.dataset(np.asarray(im), "RGB")), px_codecs)
        assert store.stored_ink(0, text_presence.THRESHOLDS) is None
        pieces = step._screen_frame(store, 0)
        assert pieces and pieces == text_presence.screen(store.render(0), numpy=np)


def test_textless_frames_and_noise_give_what_the_rendered_frame_gives(px_factory, px_codecs):
    """Frames without text (flat, gradients, noise over the whole range, a single value) and the range's edges
    (the type's extremes present: rendered as before, no cut outside the type)."""
    rng = np.random.default_rng(7)
    frames = [np.zeros((64, 96)), np.tile(np.arange(96) * 40, (64, 1)), rng.integers(0, 4096, (64, 96)),
              np.full((64, 96), 1000), rng.integers(0, 65536, (64, 96))]
    frames[-1][0, 0], frames[-1][0, 1] = 0, 65535
    for k, arr in enumerate(frames):
        ds = px_factory.reread(px_factory.dataset(arr.astype(np.uint16), ["MONOCHROME2", "MONOCHROME1"][k % 2],
                                                  bits_stored=16 if k == 4 else 12))
        store = _store(ds, px_codecs)
        stored = store.stored_ink(0, text_presence.THRESHOLDS)
        if k == 4:
            assert stored is None or all(-1 < cut <= 65535 for _, cut in stored[1])
        if stored is not None:
            assert (text_presence.candidate_pieces_stored(text_presence.StoredInk(stored[0], tuple(stored[1])),
                                                          numpy=np)
                    == text_presence.candidate_pieces(store.render(0), numpy=np)), k
        assert step._screen_frame(store, 0) == text_presence.screen(store.render(0), numpy=np), k


def rendered_sample_stores(samples, codecs):
    """The frame store of every sample file with pixels whose first frame renders (the others are skipped)."""
    for path in samples.paths():
        try:
            ds = pydicom.dcmread(path)
            if "PixelData" not in ds:
                continue
            store = _store(ds, codecs)
            store.render(0)
        except Exception:
            continue
        yield store


def test_sample_files_are_screened_alike_on_their_samples(samples, px_codecs):
    """Every native grayscale sample file (first frame): the same pieces and the same decision."""
    compared = 0
    for path in samples.paths():
        try:
            ds = pydicom.dcmread(path)
            if "PixelData" not in ds or int(ds.get("SamplesPerPixel", 1)) != 1:
                continue
            store = _store(ds, px_codecs)
            image = store.render(0)
        except Exception:
            continue
        stored = store.stored_ink(0, text_presence.THRESHOLDS)
        if stored is None:
            continue
        assert (text_presence.candidate_pieces_stored(text_presence.StoredInk(stored[0], tuple(stored[1])), numpy=np)
                == text_presence.candidate_pieces(image, numpy=np)), path
        assert step._screen_frame(store, 0) == text_presence.screen(image, numpy=np), path
        compared += 1
    assert compared >= 30


@pytest.mark.parametrize("case", range(24))
def test_the_stored_ink_is_the_rendered_frames_ink_at_every_threshold(px_factory, px_codecs, case):
    """At every threshold, the samples against their cut are exactly the rendered frame's pixels at or above
    it: 8, 16 and 32 bits, signed or not, Bits Stored below the container, MONOCHROME1 and 2, rescale (also
    negative), the mask's fill value absent, inside the range, at its low or its high end, or all there is."""
    from py_deid.pixels.info import background_for

    rng = np.random.default_rng(300 + case)
    allocated = [8, 16, 32][case % 3]
    signed = bool(case // 3 % 2)
    stored = {8: 8, 16: [12, 16][case // 6 % 2], 32: [20, 32][case // 6 % 2]}[allocated]
    photometric = ["MONOCHROME2", "MONOCHROME1"][case // 12]
    lo_v, hi_v = (-(1 << (stored - 1)), (1 << (stored - 1)) - 1) if signed else (0, (1 << stored) - 1)
    width = min(hi_v - lo_v, [200, 3000, 70000][case % 3])
    start = int(rng.integers(lo_v, hi_v - width + 1))
    arr = rng.integers(start, start + width + 1, size=(40, 70)).astype(np.int64)
    fill = hi_v if photometric == "MONOCHROME1" else lo_v
    where = case % 4  # the fill value: 0 absent, 1 at the range's own end, 2 inside, 3 everything
    if where == 1:
        arr[:4, :9] = fill
    elif where == 2:
        arr[:2, :3], arr[5, 5], arr[6, 6] = fill, lo_v, hi_v
    elif where == 3:
        arr[:] = fill
    kind = f"{'i' if signed else 'u'}{allocated // 8}"
    ds = px_factory.dataset(arr.astype(kind), photometric, bits_stored=stored, signed=signed,
                            ts=[LE, BE][case % 2])
    ds.RescaleSlope, ds.RescaleIntercept = [(1.0, 0.0), (2.0, -1024.0), (0.25, 3.5), (-1.0, 7.0)][case % 4]
    store = _store(px_factory.reread(ds), px_codecs)
    buf, offset, layout, work = store.view(0)
    assert background_for(work, work.photometric)[0] == fill
    stored_ink = store.stored_ink(0, text_presence.THRESHOLDS)
    assert stored_ink is not None
    samples, cuts = stored_ink
    gray = np.frombuffer(store.render(0).pixels, np.uint8).reshape(samples.shape)
    for t, (op, cut) in zip(text_presence.THRESHOLDS, cuts):
        assert np.array_equal(gray >= t, samples >= cut if op == ">=" else samples < cut), (t, op, cut)


def _blobs(rng, h: int, w: int, lo: int, hi: int) -> np.ndarray:
    """A frame of stored values lo..hi: a gradient, noise, and lines of glyph-like blobs (6 to 24 px tall, a few
    px wide, a few px apart, light or dark, whole or broken) at random places, some touching the edges."""
    y, x = np.mgrid[0:h, 0:w]
    span = hi - lo
    angle = rng.random() * 2 * np.pi
    ramp = (np.cos(angle) * x / w + np.sin(angle) * y / h + 1) / 2 * span * rng.random()
    arr = lo + ramp + rng.normal(0, span * rng.random() * 0.2, (h, w)) + span * rng.random() * 0.3
    for _ in range(int(rng.integers(0, 5))):
        size = int(rng.integers(6, 25))
        top, left = int(rng.integers(-4, h - 2)), int(rng.integers(-8, w - 2))
        ink = lo + span * (rng.random() * 0.3 + (0.7 if rng.random() < 0.6 else 0.0))
        for _ in range(int(rng.integers(1, 9))):
            bw = int(rng.integers(1, max(2, size // 2)))
            shape = rng.random((size, bw)) < (1.0 if rng.random() < 0.7 else 0.8)
            r0, r1, c0, c1 = max(0, top), min(h, top + size), max(0, left), min(w, left + bw)
            if r1 > r0 and c1 > c0:
                arr[r0:r1, c0:c1] = np.where(shape[r0 - top:r1 - top, c0 - left:c1 - left], ink, arr[r0:r1, c0:c1])
            left += bw + int(rng.integers(1, 6))
    return np.clip(np.rint(arr), lo, hi)



def _random_frame(rng, k: int, h: int, w: int, px_factory):
    """Frame k of a random series: blobs over a random range, 8/12/16-bit, signed or not, MONOCHROME1 or 2, some
    with a rescale."""
    allocated, signed = [(16, True), (16, False), (8, False)][k % 3]
    bits = 8 if allocated == 8 else [12, 16][k // 3 % 2]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    a = int(rng.integers(lo, hi))
    b = int(rng.integers(a + 1, min(hi, a + int(rng.integers(2, 5000))) + 1))
    arr = _blobs(rng, h, w, a, b).astype(f"{'i' if signed else 'u'}{allocated // 8}")
    ds = px_factory.dataset(arr, ["MONOCHROME2", "MONOCHROME1"][k // 7 % 2], bits_stored=bits, signed=signed)
    if k % 5 == 0:
        ds.RescaleSlope, ds.RescaleIntercept = [(2.0, -1024.0), (0.25, 3.5), (-1.0, 7.0)][k // 5 % 3]
    return ds

def test_random_frames_with_glyph_like_blobs_screen_as_their_rendered_frame(px_factory, px_codecs):
    """The fast path never clears a frame the full test would send on, nor the other way round: on 2,000 random
    16- and 8-bit grayscale frames (gradients, noise, lines of glyph-like blobs 6 to 24 px tall, signed or not,
    MONOCHROME1 and 2, rescaled), the screen on the stored samples (its candidate search and its glyph test on
    the samples, the frame never rendered) gives the pieces the screen's definition counted out row by row on
    the rendered frame gives, and the same answer as the rendered frame's screen and glyph test."""
    from tests.pixels.test_text_presence import _oracle_pieces

    rng = np.random.default_rng(20261207)
    seen = {"stored": 0, "pieces": 0, "text": 0, "gated": 0}
    for k in range(2000):
        h, w = int(rng.integers(12, 90)), int(rng.integers(10, 150))
        ds = _random_frame(rng, k, h, w, px_factory)
        store = _store(px_factory.reread(ds), px_codecs)
        image = store.render(0)
        want = _oracle_pieces(image)
        stored = store.stored_ink(0, text_presence.THRESHOLDS)
        if stored is not None:
            seen["stored"] += 1
            assert text_presence.candidate_pieces_stored(text_presence.StoredInk(stored[0], tuple(stored[1])),
                                                         numpy=np) == want, k
        assert text_presence.candidate_pieces(image, numpy=np) == want, k
        found = step._screen_frame(_store(px_factory.reread(ds), px_codecs), 0)
        assert found == text_presence.screen(image), k  # (the byte path, on the rendered frame)
        seen["pieces"] += bool(want)
        seen["text"] += bool(found)
        seen["gated"] += bool(want) and not found
    # every path was taken: most frames on their samples, pieces found on many, the glyph test both ways
    assert seen["stored"] > 1500 and seen["pieces"] > 300 and seen["text"] > 100 and seen["gated"] > 100, seen


def test_the_evaluation_generators_frames_screen_as_their_rendered_frames(px_codecs, monkeypatch):
    """Every single-frame uncompressed grayscale image the evaluation generator draws (its tuning draw; text of
    the sizes it uses over dark, mid, anatomy and banded grounds, MONOCHROME1 and 2, 8 and 16 bits): the step's
    screen on the stored samples (cuts in whole numbers where slope 1 and a whole
    intercept allow) sends on exactly the frames the rendered frame's screen sends on, with the same pieces,
    so no shortcut of it clears a frame with text the full screen would read."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "evaluation"))
    import eval_scenes

    monkeypatch.setattr(eval_scenes, "SEED", 20261205)
    compared = sent_on = whole = 0
    whole_cuts = render._whole_cuts

    def counted(*args):
        nonlocal whole
        out = whole_cuts(*args)
        whole += out is not None
        return out

    monkeypatch.setattr(render, "_whole_cuts", counted)
    names = [s.name for s in eval_scenes.CASES if s.photometric in ("MONOCHROME1", "MONOCHROME2") and not s.jpeg
             and s.frames == 1]
    for case in eval_scenes.cases(names):
        ds = case.dataset
        if int(ds.get("SamplesPerPixel", 1)) != 1 or ds.PhotometricInterpretation == "PALETTE COLOR":
            continue
        try:
            store = _store(ds, px_codecs)
        except Exception:
            continue
        for i in range(min(store.count, 3)):
            if store.stored_ink(i, text_presence.THRESHOLDS) is None:
                continue
            pieces = step._screen_frame(store, i)
            assert pieces == text_presence.screen(store.render(i), numpy=np), (case.spec.name, i)
            compared += 1
            sent_on += bool(pieces)
    assert compared >= 6 and sent_on >= 6 and whole >= 6, (compared, sent_on, whole)  # 7, 7, 14 on this draw
