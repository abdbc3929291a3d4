"""The numpy screen in fewer calls (branch autocost14) decides exactly as the form it replaced: the stroke counts
written straight into the padded array, the cut array made once, the six quiet rows summed by doubling and read
at both ends of a run in one gather. The form before is kept here, as it was, and both are run on the same
frames: random frames of glyph-like blobs (8, 12, 16 bits, signed, MONOCHROME1 and 2, widths that are and are
not a multiple of 64, a frame counted in several bands of rows), the evaluation generator's text frames (gray
and colour), and the sample files; the counts, the runs, the pieces and the screen's answer must be equal. This is the numpy
path (the browser's): the compiled count of native builds is switched off here (tests/pixels/test_lines_compiled.py
compares it with this path)."""

from __future__ import annotations

import numpy as np
import pytest

from py_deid.pixels import compiled, step, text_presence
from py_deid.pixels.frames import FrameStore
from py_deid.pixels.info import PixelInfo
from py_deid.pixels.text_presence import _ORDER, BUSY, COLUMN, DARK, LIGHT, MIN_LINE, _LINE_SPAN, _PAD_ROWS, _QUIET


@pytest.fixture(autouse=True)
def _numpy_path(monkeypatch):
    monkeypatch.setattr(compiled, "_lines", None)


# ---- the form before (text_presence as of the branch's start), unchanged ------------------------------------


def _before_band_stroke_counts(np, gray, columns, out, planes=None) -> None:
    h, w = gray.shape
    keys, n, words = len(_ORDER), len(columns), -(-w // COLUMN)
    ink = (np.empty if w == words * COLUMN else np.zeros)((keys, h, words * COLUMN), dtype=bool)
    if planes is None:
        np.greater_equal(gray, np.array(LIGHT, dtype=np.uint8)[:, None, None], out=ink[:len(LIGHT), :, :w])
        np.less(gray, np.array(DARK, dtype=np.uint8)[:, None, None], out=ink[len(LIGHT):, :, :w])
    else:
        planes(gray, ink[:, :, :w])
    bits = np.packbits(ink.reshape(-1), bitorder="little").view("<u8").reshape(keys, h, words)
    u = np.uint64
    before = bits << u(1)
    if words > n:
        follow = [j for j in range(1, words) if j * COLUMN not in {x0 for x0, _ in columns}]
        before[:, :, follow] |= bits[:, :, [j - 1 for j in follow]] >> u(COLUMN - 1)
    np.invert(before, out=before)
    strokes = text_presence._popcount(np, np.bitwise_and(before, bits, out=before))
    if words > n:
        firsts = [x0 // COLUMN for x0, _ in columns]
        strokes = np.add.reduceat(strokes, firsts, axis=2)
    out[...] = strokes.transpose(0, 2, 1)


def _before_cut_planes(np, cuts, dtype):
    runs: list[list] = []
    for k, (op, cut) in enumerate(cuts):
        if runs and runs[-1][1] == op:
            runs[-1][2].append(cut)
        else:
            runs.append([k, op, [cut]])
    runs = [(k, k + len(values), np.greater_equal if op == ">=" else np.less,
             np.array(values, dtype=dtype)[:, None, None]) for k, op, values in runs]

    def planes(samples, out) -> None:
        for start, stop, compare, values in runs:
            compare(samples, values, out=out[start:stop])
    return planes


def _before_bands_numpy(np, flat_counts, width: int):
    p = _PAD_ROWS
    flat = flat_counts >= BUSY
    flat[1:-1] |= flat[:-2] & flat[2:]
    change = np.flatnonzero(flat[1:] != flat[:-1])
    if not len(change):
        return None
    quiet = (flat_counts == 0).view(np.uint8)
    six = quiet[:-5] + quiet[1:-4]
    for k in range(2, 6):
        six += quiet[k:len(quiet) - 5 + k]
    before, after = change[0::2], change[1::2]
    keep = ((after - before - MIN_LINE).view(np.uint64) <= _LINE_SPAN) & (six[before - 5] >= _QUIET) & (
        six[after + 1] >= _QUIET)
    if not keep.any():
        return None
    k_at, y0 = np.divmod(before[keep] + 1, width)
    y0 -= p
    y1 = after[keep] + 1 - k_at * width - p
    return k_at, y0, y1


class _Recorder:
    """Runs both forms of each changed function on the same input, records whether they agreed, and goes on with
    the new form's result (so the new form's pieces are the ones compared at the end)."""

    def __init__(self, monkeypatch) -> None:
        self.calls = {"counts": 0, "bands": 0, "planes": 0}
        self.differ: list[str] = []
        new_counts, new_bands, new_planes = (text_presence._band_stroke_counts, text_presence._bands_numpy,
                                             text_presence._cut_planes)

        def counts(np_, gray, columns, out, planes=None):
            old = np.full(out.shape, 255, dtype=out.dtype)
            _before_band_stroke_counts(np_, gray, columns, old, planes)
            new_counts(np_, gray, columns, out, planes)
            self.calls["counts"] += 1
            if not np.array_equal(old, out):
                self.differ.append(f"counts {gray.shape}")

        def bands(np_, flat_counts, width):
            old = _before_bands_numpy(np_, flat_counts.copy(), width)
            new = new_bands(np_, flat_counts, width)
            self.calls["bands"] += 1
            if (old is None) != (new is None) or (old is not None and not all(
                    np.array_equal(a, b) for a, b in zip(old, new))):
                self.differ.append(f"bands {width}")
            return new

        def planes(np_, cuts, dtype):
            old, new = _before_cut_planes(np_, cuts, dtype), new_planes(np_, cuts, dtype)
            self.calls["planes"] += 1

            def both(samples, out):
                reference = np.empty_like(out)
                old(samples, reference)
                new(samples, out)
                if not np.array_equal(reference, out):
                    self.differ.append(f"planes {cuts}")
            return both

        monkeypatch.setattr(text_presence, "_band_stroke_counts", counts)
        monkeypatch.setattr(text_presence, "_bands_numpy", bands)
        monkeypatch.setattr(text_presence, "_cut_planes", planes)


def _before_pieces(image_or_stored, monkeypatch_context):
    """The pieces the form before finds (its three functions put back for the call)."""
    with monkeypatch_context() as mp:
        mp.setattr(text_presence, "_band_stroke_counts", _before_band_stroke_counts)
        mp.setattr(text_presence, "_bands_numpy", _before_bands_numpy)
        mp.setattr(text_presence, "_cut_planes", _before_cut_planes)
        if isinstance(image_or_stored, text_presence.StoredInk):
            return text_presence.candidate_pieces_stored(image_or_stored, numpy=np)
        return text_presence.candidate_pieces(image_or_stored, numpy=np)


def _store(ds, codecs):
    return FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), codecs)


def _compare_frame(store, i, recorder, monkeypatch) -> tuple[bool, bool]:
    """(pieces found, screen sent the frame on): both forms on the stored samples and the rendered frame."""
    stored = store.stored_ink(i, text_presence.THRESHOLDS)
    found = False
    if stored is not None:
        frame = text_presence.StoredInk(stored[0], tuple(stored[1]))
        old = _before_pieces(frame, monkeypatch.context)
        assert text_presence.candidate_pieces_stored(frame, numpy=np) == old
        found = bool(old)
    image = store.render(i)
    old = _before_pieces(image, monkeypatch.context)
    assert text_presence.candidate_pieces(image, numpy=np) == old
    with monkeypatch.context() as mp:
        mp.setattr(text_presence, "_band_stroke_counts", _before_band_stroke_counts)
        mp.setattr(text_presence, "_bands_numpy", _before_bands_numpy)
        mp.setattr(text_presence, "_cut_planes", _before_cut_planes)
        sent_before = step._screen_frame(store, i)
    sent = step._screen_frame(store, i)
    assert sent == sent_before
    assert not recorder.differ, recorder.differ[:5]
    return found or bool(old), bool(sent)


def test_random_frames_are_counted_and_screened_as_before(px_factory, px_codecs, monkeypatch):
    from tests.pixels.test_screen_stored import _random_frame

    recorder = _Recorder(monkeypatch)
    rng = np.random.default_rng(20261214)
    seen = {"pieces": 0, "sent": 0, "two words": 0, "bands of rows": 0}
    for k in range(600):
        if k < 4:  # frames counted in several bands of rows (more than 2**20 pixels), one a width of two words
            h, w = [(1100, 1024), (700, 1600), (1030, 1100), (520, 2050)][k]
        else:
            h, w = int(rng.integers(12, 140)), int(rng.integers(10, 300))
        ds = _random_frame(rng, k, h, w, px_factory)
        found, sent = _compare_frame(_store(px_factory.reread(ds), px_codecs), 0, recorder, monkeypatch)
        seen["pieces"] += found
        seen["sent"] += sent
        seen["two words"] += 0 < w % COLUMN < COLUMN // 2 and w > COLUMN
        seen["bands of rows"] += h * w > 1 << 20
    assert recorder.calls["counts"] > 1200 and recorder.calls["bands"] > 1200 and recorder.calls["planes"] > 500
    assert seen["pieces"] > 100 and seen["sent"] > 30 and seen["two words"] > 50 and seen["bands of rows"] >= 3, seen


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1", "RGB"])
def test_the_evaluation_generators_frames_are_screened_as_before(px_codecs, monkeypatch, photometric):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "evaluation"))
    import eval_scenes

    monkeypatch.setattr(eval_scenes, "SEED", 20261205)
    recorder = _Recorder(monkeypatch)
    names = [s.name for s in eval_scenes.CASES if s.photometric == photometric and not s.jpeg]
    compared = sent = 0
    for case in eval_scenes.cases(names):
        try:
            store = _store(case.dataset, px_codecs)
        except Exception:
            continue
        for i in range(min(store.count, 3)):
            sent += _compare_frame(store, i, recorder, monkeypatch)[1]
            compared += 1
    assert compared >= 2 and sent >= 2, (compared, sent)


def test_the_sample_files_are_screened_as_before(samples, px_codecs, monkeypatch):
    recorder = _Recorder(monkeypatch)
    from tests.pixels.test_screen_stored import rendered_sample_stores

    compared = found = 0
    for store in rendered_sample_stores(samples, px_codecs):
        found += _compare_frame(store, 0, recorder, monkeypatch)[0]
        compared += 1
    assert compared >= 60 and found >= 10, (compared, found)


def _counts_with_runs(rng, lanes: int, h: int) -> np.ndarray:
    """Padded rows of counts (as _pieces_numpy lays them out): a ground of quiet, single-stroke and busy rows
    in random shares, and runs of busy rows 1 to 60 tall (single rows of a gap in some) with 0 to 6 quiet
    rows around them: about as many with a band as without."""
    p = _PAD_ROWS
    arr = np.zeros((lanes, h + 2 * p), np.uint8)
    shares = rng.dirichlet([1, 1, 1, 0.3])
    arr[:, p:p + h] = rng.choice([0, 1, 2, 5], size=(lanes, h), p=shares)
    for _ in range(int(rng.integers(0, 4))):
        lane, y, tall = int(rng.integers(0, lanes)), int(rng.integers(0, h)), int(rng.integers(1, 61))
        arr[lane, p + y:p + min(h, y + tall)] = rng.choice([3, 4, 9])
        if rng.random() < 0.3 and tall > 4 and y + tall // 2 < h:
            arr[lane, p + y + tall // 2] = rng.choice([0, 1])
        arr[lane, p + max(0, y - int(rng.integers(0, 7))):p + y] = rng.choice([0, 0, 1])
        arr[lane, p + min(h, y + tall):p + min(h, y + tall + int(rng.integers(0, 7)))] = rng.choice([0, 0, 1])
    return arr.reshape(-1)


def test_the_band_rule_on_bits_finds_a_band_exactly_where_the_runs_do():
    """_any_band (the rows as bits of an integer) against the form before's runs and ends (numpy): 20,000 random
    rows of counts, about half with a band, and every height of run from 1 to 60 rows with 0 to 6 quiet rows
    above and below it (MIN_LINE and MAX_LINE, QUIET_ROWS within six rows: the edges of the rule)."""
    assert (BUSY, MIN_LINE, MIN_LINE + _LINE_SPAN, _QUIET, _PAD_ROWS) == (3, 4, 48, 2, 7)  # what _any_band spells out
    rng = np.random.default_rng(20261215)
    with_band = 0
    for k in range(20000):
        lanes, h = int(rng.integers(1, 40)), int(rng.integers(1, 130))
        counts = _counts_with_runs(rng, lanes, h)
        want = _before_bands_numpy(np, counts.copy(), h + 2 * _PAD_ROWS) is not None
        assert text_presence._any_band(np, counts) == want, k
        with_band += want
    assert 6000 < with_band < 14000, with_band
    p = _PAD_ROWS
    for tall in range(1, 61):
        for above in range(7):
            for below in range(7):
                h = 6 + tall + 6
                row = np.ones(h + 2 * p, np.uint8)  # a stroke, not quiet, not busy
                row[:p], row[p + h:] = 0, 0
                row[p + 6:p + 6 + tall] = 4
                row[p + 6 - above:p + 6] = 0
                row[p + 6 + tall:p + 6 + tall + below] = 0
                want = _before_bands_numpy(np, row.copy(), h + 2 * p) is not None
                assert want == (MIN_LINE <= tall <= MIN_LINE + _LINE_SPAN and above >= 2 and below >= 2)
                assert text_presence._any_band(np, row) == want, (tall, above, below)
