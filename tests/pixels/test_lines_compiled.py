"""The compiled count of the text screen (py_deid/pixels/_lines.c) finds exactly the pieces of the numpy path it
stands in for on native builds, in the same order: on random frames of every sample type it takes (8, 16 and 32
bits, signed or not, cuts inside and at the type's ends, either comparison, widths that are and are not
a multiple of 64, a last column joined to its neighbour), on the random DICOM frames and the evaluation
generator's frames the other screen tests use, and on the sample files; the first piece alone when only one is
asked for; and it refuses what it cannot take with an error instead of guessing. The numpy path is what the
browser runs (its wheel is pure Python); on a native build the compiled module must be there, or `--pixels auto`
would quietly cost more (the README's install builds it)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from py_deid.pixels import compiled, step, text_presence
from py_deid.pixels.frames import FrameStore
from py_deid.pixels.info import PixelInfo

def test_a_native_build_has_the_compiled_count():
    assert compiled.available(), (
        "py_deid.pixels._lines is missing: reinstall with a C compiler (pip install -e .) so that the text screen "
        "is compiled")


def _both(samples, columns, first_only=False, cuts=None, monkeypatch=None):
    h, w = samples.shape
    fast = text_presence._pieces_numpy(np, samples if cuts is not None else samples.tobytes(), w, h, columns,
                                       first_only, cuts)
    with monkeypatch.context() as mp:
        mp.setattr(compiled, "_lines", None)
        reference = text_presence._pieces_numpy(np, samples if cuts is not None else samples.tobytes(), w, h,
                                                columns, first_only, cuts)
    return fast, reference


def _glyph_rows(rng, h, w, lo, hi, dtype):
    """A ground of noise, flat or a gradient, with rows of glyph-like bars and blobs at random values."""
    kind = rng.integers(0, 3)
    if kind == 0:
        arr = rng.integers(lo, hi + 1, size=(h, w))
    elif kind == 1:
        arr = np.full((h, w), int(rng.integers(lo, hi + 1)))
    else:
        arr = np.linspace(lo, hi, h * w).reshape(h, w).astype(np.int64)
    for _ in range(int(rng.integers(0, 6))):  # lines of glyphs
        y, tall = int(rng.integers(0, h)), int(rng.integers(3, 30))
        value = int(rng.integers(lo, hi + 1))
        x = int(rng.integers(0, max(1, w // 4)))
        while x < w:
            gw = int(rng.integers(1, 5))
            arr[y:y + tall, x:x + gw] = value
            x += gw + int(rng.integers(1, 6))
            if rng.random() < 0.05:
                break
    for _ in range(int(rng.integers(0, 20))):  # blobs
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        arr[y:y + int(rng.integers(1, 12)), x:x + int(rng.integers(1, 5))] = int(rng.integers(lo, hi + 1))
    return arr.astype(dtype)


TYPES = ["u1", "i1", "u2", "i2", "u4", "i4"]


@pytest.mark.parametrize("dtype", TYPES)
def test_random_frames_give_the_same_pieces(dtype, monkeypatch):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(20261208 + TYPES.index(dtype))
    seen = {"pieces": 0, "first only": 0, "joined column": 0, "at the type's ends": 0}
    for k in range(400):
        h, w = int(rng.integers(6, 130)), int(rng.integers(8, 300))
        span = int(rng.integers(2, 6000))
        lo = int(rng.integers(max(info.min, -40000), max(info.min, -40000) + 1 + min(span, info.max - info.min)))
        lo = min(lo, info.max - 1)
        hi = min(info.max, lo + span)
        samples = _glyph_rows(rng, h, w, lo, hi, dtype)
        cuts = []
        for _ in text_presence._ORDER:
            cut = min(max(int(rng.integers(lo - 3, hi + 4)), int(info.min)), int(info.max))
            if rng.random() < 0.1:  # a cut at the type's ends
                cut = [int(info.min), int(info.max)][int(rng.integers(0, 2))]
                seen["at the type's ends"] += 1
            cuts.append((">=" if rng.random() < 0.6 else "<", cut))
        columns = text_presence._columns(w)
        seen["joined column"] += columns[-1][1] - columns[-1][0] > text_presence.COLUMN
        first_only = k % 5 == 0
        fast, reference = _both(samples, columns, first_only, cuts, monkeypatch)
        assert fast == reference, (k, h, w)
        seen["pieces"] += len(reference)
        seen["first only"] += first_only and bool(reference)
    assert seen["pieces"] > 300 and seen["first only"] > 10 and seen["joined column"] > 50, seen


def test_rendered_8_bit_frames_give_the_same_pieces(monkeypatch):
    """The rendered frame's path (no cuts: light ink at or above each threshold, dark ink below it)."""
    rng = np.random.default_rng(20261209)
    found = 0
    for k in range(600):
        h, w = int(rng.integers(6, 130)), int(rng.integers(8, 300))
        gray = _glyph_rows(rng, h, w, 0, 255, "u1")
        fast, reference = _both(gray, text_presence._columns(w), k % 7 == 0, None, monkeypatch)
        assert fast == reference, k
        found += len(reference)
    assert found > 300, found


def _store(ds, codecs):
    return FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), codecs)


def _same_screen(store, i, monkeypatch) -> int:
    """Pieces and the screen's answer of frame i, compiled and numpy, on its samples and its rendered frame."""
    stored = store.stored_ink(i, text_presence.THRESHOLDS)
    found = 0
    if stored is not None:
        frame = text_presence.StoredInk(stored[0], tuple(stored[1]))
        fast = text_presence.candidate_pieces_stored(frame, numpy=np)
        with monkeypatch.context() as mp:
            mp.setattr(compiled, "_lines", None)
            assert fast == text_presence.candidate_pieces_stored(frame, numpy=np)
        found += len(fast)
    image = store.render(i)
    fast = text_presence.candidate_pieces(image, numpy=np)
    assert fast == text_presence.candidate_pieces(image)  # (the byte path, without numpy)
    sent = step._screen_frame(store, i)
    with monkeypatch.context() as mp:
        mp.setattr(compiled, "_lines", None)
        assert step._screen_frame(store, i) == sent
    return found + len(fast)


def test_random_dicom_frames_screen_the_same(px_factory, px_codecs, monkeypatch):
    from tests.pixels.test_screen_stored import _random_frame

    rng = np.random.default_rng(20261210)
    found = 0
    for k in range(300):
        h, w = int(rng.integers(12, 140)), int(rng.integers(10, 300))
        found += _same_screen(_store(px_factory.reread(_random_frame(rng, k, h, w, px_factory)), px_codecs), 0,
                              monkeypatch)
    assert found > 100, found


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1", "RGB"])
def test_the_evaluation_generators_frames_screen_the_same(px_codecs, monkeypatch, photometric):
    sys.path.insert(0, str(Path(__file__).resolve().parent / "evaluation"))
    import eval_scenes

    monkeypatch.setattr(eval_scenes, "SEED", 20261208)
    found = compared = 0
    for case in eval_scenes.cases([s.name for s in eval_scenes.CASES if s.photometric == photometric and not s.jpeg]):
        try:
            store = _store(case.dataset, px_codecs)
        except Exception:
            continue
        for i in range(min(store.count, 3)):
            found += _same_screen(store, i, monkeypatch)
            compared += 1
    assert compared >= 2 and found >= 2, (compared, found)


def test_the_sample_files_screen_the_same(samples, px_codecs, monkeypatch):
    from tests.pixels.test_screen_stored import rendered_sample_stores

    compared = found = 0
    for store in rendered_sample_stores(samples, px_codecs):
        found += bool(_same_screen(store, 0, monkeypatch))
        compared += 1
    assert compared >= 60 and found >= 10, (compared, found)


def test_samples_it_does_not_take_go_the_numpy_way(monkeypatch):
    """Big-endian or not contiguous samples, and types it has no loop for, are counted by numpy (the same pieces)."""
    rng = np.random.default_rng(20261211)
    samples = _glyph_rows(rng, 60, 130, 0, 4000, "u2")
    cuts = [(">=", 500 + 300 * k) for k in range(len(text_presence._ORDER))]
    columns = text_presence._columns(130)
    want = _both(samples, columns, cuts=cuts, monkeypatch=monkeypatch)[1]
    assert text_presence._compiled_pieces(samples.astype(">u2"), columns, False, cuts) is None
    assert text_presence._compiled_pieces(samples[:, ::-1], columns, False, cuts) is None
    assert text_presence._compiled_pieces(samples.astype("u8"), columns, False, cuts) is None
    assert compiled.extremes(samples.astype(">u2")) is None and compiled.extremes(samples[:0]) is None
    assert text_presence._pieces_numpy(np, samples.astype(">u2"), 130, 60, columns, False, cuts) == want


@pytest.mark.parametrize("dtype", TYPES)
def test_a_cut_beyond_the_types_ends_is_ink_everywhere_or_nowhere(dtype):
    """(ink_cuts never gives one, numpy could not compare with one: the same pieces as the cut that means it.)"""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(20261212 + TYPES.index(dtype))
    lines, args = compiled._lines, (text_presence.MIN_LINE, text_presence.MAX_LINE, text_presence.QUIET_ROWS,
                                         text_presence.BUSY, False)
    kind = compiled._kind(np.zeros(1, dtype))
    for k in range(100):
        h, w = int(rng.integers(6, 80)), int(rng.integers(8, 200))
        samples = _glyph_rows(rng, h, w, int(info.min), int(info.max), dtype)
        edges = [x for column in text_presence._columns(w) for x in column]
        cuts = [(bool(rng.random() < 0.5), int(rng.integers(info.min, info.max))) for _ in range(9)]
        same = list(cuts)
        for j in rng.choice(9, size=3, replace=False):
            above, below = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
            cuts[j] = (above, int(info.min) - 7 if below else int(info.max) + 7)
            # >= below the type: everywhere (>= its least value); >= above it: nowhere (< its least value)
            same[j] = (above == below, int(info.min))
        assert lines.pieces(samples, h, w, kind, cuts, edges, *args) == lines.pieces(samples, h, w, kind, same,
                                                                                    edges, *args), k


@pytest.mark.parametrize("dtype", TYPES)
def test_the_extremes_are_numpys(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(20261213 + TYPES.index(dtype))
    for k in range(200):
        n = int(rng.integers(1, 5000))
        samples = rng.integers(info.min, int(info.max) + 1, size=n, dtype=dtype)
        if k % 3 == 0:
            samples = samples.reshape(1, n)
        assert compiled.extremes(samples) == (int(samples.min()), int(samples.max())), k


def test_what_it_cannot_take_is_refused():
    lines = compiled._lines
    samples = np.zeros((10, 20), dtype="u2")
    cuts = [(True, 5)] * 9
    args = (4, 48, 2, 3, False)
    with pytest.raises(ValueError, match="unknown type"):
        lines.pieces(samples, 10, 20, "Q", cuts, [0, 20], *args)
    with pytest.raises(ValueError, match="shorter"):
        lines.pieces(samples, 11, 20, "H", cuts, [0, 20], *args)
    with pytest.raises(ValueError, match="outside the frame"):
        lines.pieces(samples, 10, 20, "H", cuts, [0, 21], *args)
    with pytest.raises(ValueError, match="pairs"):
        lines.pieces(samples, 10, 20, "H", cuts, [0], *args)
    with pytest.raises(ValueError, match="1 to 16"):
        lines.pieces(samples, 10, 20, "H", [(True, 5)] * 17, [0, 20], *args)
    with pytest.raises(ValueError, match="three strokes"):
        lines.pieces(samples, 10, 20, "H", cuts, [0, 20], 4, 48, 2, 4, False)
    assert lines.pieces(samples, 10, 20, "H", cuts, [0, 20], *args) == []
    with pytest.raises(ValueError, match="unknown type"):
        lines.extremes(samples, "q")
    with pytest.raises(ValueError, match="no samples"):
        lines.extremes(b"", "H")
