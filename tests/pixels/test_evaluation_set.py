"""The burned-in text evaluation set itself: generated the same way every time, ground truth inside the frames,
every photometric interpretation covered, and a scorer that tells a right mask from a wrong one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "evaluation"))

import eval_scenes  # noqa: E402
import eval_score  # noqa: E402


def test_the_set_covers_every_kind_of_pixel_data():
    specs = eval_scenes.CASES
    assert {s.photometric for s in specs} == {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422",
                                               "PALETTE COLOR"}
    assert {s.planar for s in specs if s.photometric == "RGB"} == {0, 1}
    assert {s.bits for s in specs} == {8, 16}
    assert any(s.jpeg for s in specs) and any(s.frames > 1 for s in specs)
    assert {s.background for s in specs} == {"dark", "mid", "anatomy", "band"}
    for font, _package in eval_scenes.FONTS:
        assert eval_scenes.font_path(font).is_file()


@pytest.mark.parametrize("name", ["us-ybr-full-422-band", "cr-mono1-16-mid"])
def test_a_case_is_the_same_on_every_build(name):
    a, b = eval_scenes.cases([name])[0], eval_scenes.cases([name])[0]
    assert a.dataset.PixelData == b.dataset.PixelData
    assert [(w.text, w.label, w.box) for w in a.truth[0]] == [(w.text, w.label, w.box) for w in b.truth[0]]
    rows, cols = a.dataset.Rows, a.dataset.Columns
    labels = {w.label for w in a.truth[0]}
    assert {"phi", "tech"} <= labels <= {"phi", "tech", "label"}
    for w in a.truth[0]:
        x, y, bw, bh = w.box
        assert 0 <= x and 0 <= y and x + bw <= cols and y + bh <= rows and w.ink.any()


def test_the_scorer_tells_a_right_mask_from_none_and_from_a_wide_one(px_codecs):
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    case = eval_scenes.cases(["us-rgb-planar1-mid"])[0]

    def masked(boxes):
        ds = eval_score.copy(case.dataset)
        ts = str(ds.file_meta.TransferSyntaxUID)
        store = FrameStore.open(ds, PixelInfo.from_dataset(ds, ts), px_codecs)
        if boxes:
            store.mask(0, boxes)
        store.finish(ds)
        return eval_score.copy(ds)

    untouched = eval_score.score(case, masked([]), 1.0)
    assert untouched.phi_hidden == 0 and untouched.tech_kept == untouched.tech and untouched.damaged == 0
    phi = [(w.box[0] - 2, w.box[1] - 2, w.box[2] + 4, w.box[3] + 4) for w in case.truth[0] if w.label == "phi"]
    right = eval_score.score(case, masked(phi), 1.0)
    assert right.phi_hidden == right.phi > 0 and right.tech_kept == right.tech and right.damaged == 0
    half = case.dataset.Rows // 2
    wide = eval_score.score(case, masked([(0, 0, case.dataset.Columns, half)]), 1.0)
    above = [w for w in case.truth[0] if w.box[1] + w.box[3] <= half]
    assert wide.phi_hidden == sum(w.label == "phi" for w in above) > 0
    assert wide.tech - wide.tech_kept == sum(w.label == "tech" for w in above) > 0 and wide.damaged > 0
    assert np.isclose(wide.row()["damage_pct"], 100.0 * wide.damaged / wide.outside, atol=1e-3)


def test_the_independent_reader_sees_colour_that_luminance_hides():
    """eval_score.colour_views: on colour images the brightest and darkest channel of every pixel besides the
    luminance; green text 32 levels above a gray ground by luminance stands 117 above it in the first."""
    grey = eval_scenes.cases(["mr-mono2-16-dark"])[0].dataset
    assert eval_score.colour_views(grey) == [[]]
    case = eval_scenes.cases(["ot-rgb-planar0-mid"])[0]
    views = eval_score.colour_views(case.dataset)
    rgb = case.dataset.pixel_array
    assert len(views) == 1 and len(views[0]) == 2
    assert np.array_equal(views[0][0], rgb.max(axis=-1)) and np.array_equal(views[0][1], rgb.min(axis=-1))
    palette = eval_scenes.cases(["us-palette-anatomy"])[0].dataset
    assert [v.shape for v in eval_score.colour_views(palette)[0]] == [(palette.Rows, palette.Columns)] * 2


def test_the_independent_reader_says_where_it_read_and_only_there_counts():
    """A PHI word counts as readable where it stands: held-out draw 20300515's area code "(508)", masked, was
    "read" after cleaning in speckle 200 px away. The reader's boxes are in the frame's pixels, strips included."""
    pytest.importorskip("tesserocr")
    from py_deid.hosts import tessdata

    reader = eval_score.IndependentReader(str(tessdata.ensure()))
    case = eval_scenes.cases(["mr-mono2-16-dark"])[0]
    frame = eval_score.gray(case.dataset, eval_score.window_of(case.dataset))[0]
    found = reader.located(frame)
    assert reader.words(frame) == [t for t, _ in found]
    phi = [w for w in case.truth[0] if w.label == "phi" and sum(c.isalnum() for c in w.text) >= 5]
    placed = [w for w in phi if eval_score.readable(w.text, [eval_score._fold(t) for t in
                                                             eval_score._at(w.box, found)])]
    assert len(placed) >= len(phi) // 2 > 0
    for w in placed:
        x, y, bw, bh = w.box
        far = (x + frame.shape[1], y, bw, bh)  # the same row, off the frame
        assert not eval_score.readable(w.text, [eval_score._fold(t) for t in eval_score._at(far, found)])
