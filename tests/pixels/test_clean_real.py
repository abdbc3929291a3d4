"""Burned-in text on real files written by others: after cleaning, no PHI string is readable and nothing outside
the masks changed.

The expected strings are what can be read on each image (looked at as rendered PNGs): names, IDs, dates and
times, institutions. Short ones carry the region where they are printed, so that the same two letters
elsewhere on the image do not count. Every expectation is first shown to be readable on the ORIGINAL by the
independent reader (pydicom + Pillow rendering, Lanczos enlargement, whole frame and 64-row strips), so a
check that nothing is readable afterwards cannot pass by the reader being blind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pydicom
import pytest

from py_deid import pixels
from py_deid.hosts.native_codecs import NativeCodecs
from py_deid.options import Settings
from py_deid.phi import PhiTerms


@dataclass(frozen=True)
class Case:
    phi: tuple  # strings, or (string, (x, y, w, h)) for short ones
    technical: tuple = ()  # measurement / setting words that --text strict must leave readable
    frames: tuple = (0,)  # frames read by the independent reader (all frames are checked at the pixel level)
    source: str = ""  # which copy, where the name is ambiguous
    phi_mode: tuple = field(default=())  # subset masked by --text phi (terms of the header + patterns)


CASES = {
    "GREYSCALE_IMAGE.dcm": Case(
        ("ZZZ", "TEST", "PATIENTFI", "00079241539", "08/29/1951", "CCHS", "CLEVELAN", "03/02/2017", "05:24:57PM"),
        ("4.0cm", "36Hz", "L12-5", "TIS0.0", "Breast", "TAC1"),
        phi_mode=("TEST", "PATIENTFI", "00079241539", "08/29/1951", "CCHS", "CLEVELAN", "03/02/2017")),
    "RGB_IMAGE.dcm": Case(
        ("ZZZDOWNTIME", "MARY", ("AC", (390, 0, 60, 30)), "8:48:26", "4/14/2020", "120907058", "00047431395",
         "CCHS", "CLEVELAND", "CLINIC"),
        ("16cm", "MHz", "H4.00", "General", "THI", "20dB/DR60"),
        phi_mode=("ZZZDOWNTIME", "MARY", "4/14/2020", "120907058", "00047431395", "CLEVELAND")),
    "US1_UNCR.dcm": Case(("BAPTIST", ("MED", (90, 18, 45, 24)), ("CTR", (130, 18, 45, 24))),
                         ("LYMPH", "NODE", "MSCSKEL", "CINE"), phi_mode=("BAPTIST",)),
    "US1_J2KI.dcm": Case(("BAPTIST", ("MED", (90, 18, 45, 24)), ("CTR", (130, 18, 45, 24))),
                         ("LYMPH", "NODE", "MSCSKEL", "CINE"), phi_mode=("BAPTIST",)),
    "gdcm-US-ALOKA-16.dcm": Case(("MEDICAL", "ULTRASOUND", "24-MAY-02", "11:24:20"), ("20Hz", "5.0", "R15"),
                                 phi_mode=("24-MAY-02",)),
    "OBXXXX1A.dcm": Case(("11-05-25-142825", "5/25/2011", "2:56:22", "Healthcare"),
                         ("1.06", "28Hz", "11cm", "HGen"), phi_mode=("11-05-25-142825", "5/25/2011", "Healthcare")),
    "OBXXXX1A_rle_2frame.dcm": Case(("11-05-25-142825", "5/25/2011", "2:56:22", "Healthcare"), ("28Hz",),
                                    frames=(0, 1)),
    "OBXXXX1A_expb_2frame.dcm": Case(("11-05-25-142825", "5/25/2011", "2:56:22", "Healthcare"), ("28Hz",),
                                     frames=(1,), source="pydicom-data"),
    "US-PAL-8-10x-echo.dcm": Case((("30", (0, 25, 22, 18)), ("JAN", (20, 25, 45, 18)), ("94", (60, 25, 35, 18)),
                                   "11:24:58"), ("GAIN", "COMP", "14HZ"),
                                  phi_mode=(("JAN", (20, 25, 45, 18)), "11:24:58")),
    "CT-MONO2-16-ankle.dcm": Case(("Apr", "06:27:24", "1993", ("JFK", (350, 5, 40, 20)), "IMAGING", "CENTER",
                                   "2411", "151832"), ("120", "200", "DFOV"),
                                  phi_mode=("06:27:24", "1993", "IMAGING", "CENTER", "151832")),
    "GREYSCALE_CINE.dcm": Case(("TEST", "00079241539", "08/29/1951", "CCHS", "03/02/2017", "05:24:54PM"),
                               ("Breast", "L12-5"), frames=(0, 13, 26)),
    # 51 frames, 100 MB, no Burned In Annotation attribute at all: the modality decides.
    "RGB_CINE.dcm": Case(("TEST", "ADL", "0001128201", "01/30/1986", "AGMC", "Sports", "Medicine", "7-OCT-2016",
                          "01:07:45"), ("Depth", "Hz", "Transverse"), frames=(0, 25, 50)),
}
SLOW = ("GREYSCALE_CINE.dcm", "RGB_CINE.dcm")


def _path(samples, name: str, source: str):
    if not source:
        return samples.path(name)
    hits = samples.paths(lambda s: s.name == name and source in s.source)
    assert len(hits) == 1
    return hits[0]


_cache: dict = {}


def cleaned(samples, ocr_engine, ocr_drive, name: str, text: str = "strict"):
    """(original, cleaned, outcome) for one file and text mode, computed once per session."""
    key = (name, text)
    if key not in _cache:
        case = CASES[name]
        path = _path(samples, name, case.source)
        original = pydicom.dcmread(path)
        ds = pydicom.dcmread(path)
        ts = str(ds.file_meta.TransferSyntaxUID)
        outcome = ocr_drive(pixels.clean(ds, Settings(text=text), PhiTerms.from_dataset(original),
                                         transfer_syntax=ts, codecs=NativeCodecs()), ocr_engine)
        if outcome.transfer_syntax:
            ds.file_meta.TransferSyntaxUID = outcome.transfer_syntax
        _cache[key] = (original, ds, outcome)
    return _cache[key]


def _expectation(item):
    return item if isinstance(item, tuple) else (item, None)


def _in(word, region) -> bool:
    if region is None:
        return True
    x, y, w, h = region
    cx, cy = word[1] + word[3] / 2, word[2] + word[4] / 2
    return x <= cx <= x + w and y <= cy <= y + h


def _where(item, words, ocr_readable):
    text, region = _expectation(item)
    return [w for w in words if _in(w, region) and ocr_readable(text, [w])]


def _views(original, ds, ocr_gray_frames):
    """Gray renderings of the original and the cleaned copy, grayscale in the original's window."""
    window = None
    if int(original.get("SamplesPerPixel", 1)) == 1 and original.PhotometricInterpretation != "PALETTE COLOR":
        a = original.pixel_array
        window = (float(a.min()), float(a.max()))
    return ocr_gray_frames(original, window), ocr_gray_frames(ds, window)


def _strokes_masked(gray, masks, word) -> float:
    """Share of the text's stroke pixels (lighter than the box's background on a dark one, darker on a light
    one) that lie under a mask."""
    x, y, w, h = word[1:5]
    x, y = max(x, 0), max(y, 0)
    box = gray[y:y + h, x:x + w].astype(int)
    median = int(np.median(box))
    strokes = box > median + 40 if median < 128 else box < median - 40
    if not strokes.any():
        return 1.0
    return float(masks[y:y + h, x:x + w][strokes].mean())


def _mask_image(shape, boxes):
    m = np.zeros(shape[:2], dtype=bool)
    for x, y, w, h in boxes:
        m[y:y + h, x:x + w] = True
    return m


FAST = [n for n in CASES if n not in SLOW]
SLOW_PARAMS = [pytest.param(n, marks=pytest.mark.slow) for n in SLOW]


@pytest.mark.parametrize("name", FAST + SLOW_PARAMS)
def test_no_phi_readable_after_cleaning(name, samples, ocr_engine, ocr_drive, ocr_gray_frames,
                                        ocr_independent_words, ocr_readable):
    case = CASES[name]
    original, ds, outcome = cleaned(samples, ocr_engine, ocr_drive, name)
    assert outcome.required and outcome.cleaned
    assert ds.BurnedInAnnotation == "NO"
    before, after = _views(original, ds, ocr_gray_frames)
    for f in case.frames:
        words_before = ocr_independent_words(before[f])
        words_after = ocr_independent_words(after[f])
        masks = _mask_image(before[f].shape, outcome.frames.get(f, []))
        for item in case.phi:
            where = _where(item, words_before, ocr_readable)
            assert where, f"frame {f}: expected PHI {item!r} not readable on the original (test is blind)"
            for w in where:  # the strokes of the text where it was read are all under masks
                assert _strokes_masked(before[f], masks, w) >= 0.98, f"frame {f}: {item!r} not under a mask"
            assert not _where(item, words_after, ocr_readable), f"frame {f}: {item!r} still readable"


@pytest.mark.parametrize("name", FAST)
def test_measurements_survive_strict(name, samples, ocr_engine, ocr_drive, ocr_gray_frames,
                                     ocr_independent_words, ocr_readable):
    case = CASES[name]
    original, ds, _ = cleaned(samples, ocr_engine, ocr_drive, name)
    views = _views(original, ds, ocr_gray_frames)
    before, after = ocr_independent_words(views[0][0]), ocr_independent_words(views[1][0])
    kept = [t for t in case.technical if ocr_readable(t, before)]
    assert len(kept) >= len(case.technical) - 1, "the independent reader cannot see the measurements"
    lost = [t for t in kept if not ocr_readable(t, after)]
    assert not lost, f"technical text masked: {lost}"


@pytest.mark.parametrize("name", FAST + SLOW_PARAMS)
def test_pixels_outside_the_masks_are_unchanged(name, samples, ocr_engine, ocr_drive):
    original, ds, outcome = cleaned(samples, ocr_engine, ocr_drive, name)
    a, b = original.pixel_array, ds.pixel_array
    assert a.shape == b.shape and a.dtype == b.dtype
    frames = int(original.get("NumberOfFrames", 1) or 1)
    if frames == 1:
        a, b = a[None], b[None]
    assert sorted(outcome.frames) == list(range(frames)), "every frame carries the banner and must be masked"
    for f in range(frames):
        m = _mask_image(a[f].shape, outcome.frames[f])
        assert np.array_equal(a[f][~m], b[f][~m]), f"frame {f}: pixels outside the masks changed"
        assert not np.array_equal(a[f][m], b[f][m]), f"frame {f}: masks did not change the pixels"


@pytest.mark.parametrize("name", ["GREYSCALE_IMAGE.dcm", "RGB_IMAGE.dcm", "OBXXXX1A.dcm", "CT-MONO2-16-ankle.dcm",
                                  "US-PAL-8-10x-echo.dcm", "US1_UNCR.dcm", "gdcm-US-ALOKA-16.dcm"])
def test_phi_mode_masks_header_terms_and_patterns_only(name, samples, ocr_engine, ocr_drive, ocr_gray_frames,
                                                       ocr_independent_words, ocr_readable):
    case = CASES[name]
    original, ds, outcome = cleaned(samples, ocr_engine, ocr_drive, name, "phi")
    _, _, strict = cleaned(samples, ocr_engine, ocr_drive, name, "strict")
    views = _views(original, ds, ocr_gray_frames)
    after = ocr_independent_words(views[1][0])
    for item in case.phi_mode:
        assert not _where(item, after, ocr_readable), f"{item!r} still readable in phi mode"
    for t in case.technical:  # phi mode never touches measurements
        if ocr_readable(t, ocr_independent_words(views[0][0])):
            assert ocr_readable(t, after), f"{t!r} masked in phi mode"
    assert outcome.counts["masked_words"] <= strict.counts["masked_words"]
    assert outcome.counts.get("text", 0) == 0


def test_summary_is_phi_free_and_local_words_are_local(samples, ocr_engine, ocr_drive):
    original, _, outcome = cleaned(samples, ocr_engine, ocr_drive, "RGB_IMAGE.dcm")
    summary = repr(outcome.summary())
    for secret in ("ZZZDOWNTIME", "MARY", "120907058", "4/14/2020", "CLEVELAND"):
        assert secret not in summary
    texts = " ".join(w["text"] for w in outcome.local_words())
    assert "CLEVELAND" in texts and all(w["masked"] for w in outcome.local_words() if w["text"] == "CLEVELAND")


MULTI = ["OBXXXX1A_rle_2frame.dcm", "US-PAL-8-10x-echo.dcm", *SLOW_PARAMS]


@pytest.mark.parametrize("name", MULTI)
def test_every_frame_is_masked_where_the_phi_is(name, samples, ocr_engine, ocr_drive, ocr_gray_frames,
                                                ocr_independent_words, ocr_readable):
    """The PHI found on frame 0 is printed on every frame: its strokes are under a mask on every frame (read
    again only where the pixels changed, but never left unmasked)."""
    case = CASES[name]
    original, ds, outcome = cleaned(samples, ocr_engine, ocr_drive, name)
    before, _ = _views(original, ds, ocr_gray_frames)
    words = ocr_independent_words(before[0])
    places = [w for item in case.phi for w in _where(item, words, ocr_readable)]
    assert places
    for f in range(len(before)):
        masks = _mask_image(before[f].shape, outcome.frames.get(f, []))
        for w in places:
            assert _strokes_masked(before[f], masks, w) >= 0.98, f"frame {f}: PHI left unmasked"


def test_overlay_text_is_read_under_clean_graphics(samples, ocr_engine, ocr_drive):
    """examples_overlay.dcm: the overlay plane carries "Tra" and "F" (and graphics). With Clean Graphics the
    overlay stays, so it is read: --text all masks its words, --text strict keeps these technical labels."""
    from py_deid.options import Options
    from py_deid.pixels import overlays

    path = samples.path("examples_overlay.dcm")
    for text, expect_boxes in (("all", True), ("strict", False)):
        ds = pydicom.dcmread(path)
        before = ds.overlay_array(0x6000).copy()
        settings = Settings(text=text, options=Options(clean_graphics=True))
        out = ocr_drive(pixels.clean(ds, settings, PhiTerms.from_dataset(ds),
                                     transfer_syntax=str(ds.file_meta.TransferSyntaxUID), codecs=NativeCodecs()),
                        ocr_engine)
        assert out.overlays_cleaned == {0x6000} and out.summary()["overlays_cleaned"] == ["6000"]
        after = ds.overlay_array(0x6000)
        boxes = [b for bs in out.overlay_boxes.values() for b in bs]
        assert bool(boxes) == expect_boxes
        m = _mask_image(before.shape, boxes)
        assert np.array_equal(before[~m], after[~m])
        if expect_boxes:
            assert before[m].any() and not after[m].any()
        assert overlays.groups(ds) == [0x6000]
    ds = pydicom.dcmread(path)  # without Clean Graphics the overlay is the header step's to remove
    out = ocr_drive(pixels.clean(ds, Settings(text="all"), PhiTerms.from_dataset(ds),
                                 transfer_syntax=str(ds.file_meta.TransferSyntaxUID), codecs=NativeCodecs()),
                    ocr_engine)
    assert not out.overlays_cleaned
    assert np.array_equal(ds.overlay_array(0x6000), pydicom.dcmread(path).overlay_array(0x6000))
