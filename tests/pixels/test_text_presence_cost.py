"""What makes `--pixels auto` cheaper on images without text decides exactly as before (issue 12: the screen
decides only whether OCR runs, and must never clear a frame with text):

- the text-likeness gate skips its joined pass where it cannot pass (fewer pieces of ink than it needs lined
  up): the gate's decision equals the decision of both passes run in full, on real frames, the evaluation
  set's kind of text over real anatomy, and noise;
- the render's gray table has a shorter form: the same bytes as the formula, for every window and slope.

And the command line's `--pixels auto` starts no BLAS thread per core (numpy's OpenBLAS), which it never uses.

The screen's band rule (a shorter form too) is checked against an independent count of every row in
test_text_presence.py (test_the_screen_finds_exactly_what_counting_every_row_finds)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from py_deid.hosts.services import GrayImage
from py_deid.pixels import render, text_presence

# The sample files whose first frame is screened here: the real CT and MR frames of the other screen tests,
# the 20 derived MR frames of the benchmark, and frames with burned-in text (ultrasound, CT, secondary
# capture); colour ones render to luminance first.
REAL = (["CT_small.dcm", "ctbrain1.dcm", "emri_small.dcm", "CT-MONO2-16-ankle.dcm", "US1_UNCR.dcm", "SC_rgb.dcm",
         "eCT_Supplemental.dcm", "GREYSCALE_CINE.dcm"] + [f"brain_{k:03d}.dcm" for k in range(1, 21)])


def _broken_glyphs() -> GrayImage:
    """Three glyphs, each cut in two by a row of background (as anti-aliasing over a busy ground breaks glyphs):
    no half is tall enough to be a glyph, joined across the one-pixel gap each is. Only the joined pass sees
    text here, with six pieces of ink at every threshold."""
    a = np.zeros((40, 80), np.uint8)
    for x in (20, 28, 36):
        a[14:19, x:x + 4] = a[20:25, x:x + 4] = 255
    return GrayImage(80, 40, a.tobytes())


def test_a_line_only_the_joined_pass_sees_is_still_text():
    image = _broken_glyphs()
    pieces = text_presence.candidate_pieces(image, numpy=np)
    assert pieces  # the same band at every light threshold
    piece, key = pieces[0]
    assert not any(text_presence._glyph_line(image, piece, k) for k in text_presence._ORDER if k[0] == "light")
    assert _full_gate(image, piece, key) and text_presence.looks_like_text(image, piece, key)
    assert text_presence.screen(image, numpy=np) and text_presence.screen(image)


def _full_gate(image, piece, key) -> bool:
    """The gate as it was: every threshold of the piece's polarity, plain, then every one joined."""
    keys = [key] + [k for k in text_presence._ORDER if k != key and k[0] == key[0]]
    return (any(text_presence._glyph_line(image, piece, k) for k in keys)
            or any(text_presence._glyph_line(image, piece, k, bridged=True) for k in keys))


def _frames(samples, px_codecs) -> list[GrayImage]:
    import pydicom
    from PIL import Image, ImageDraw, ImageFont

    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    out = []
    for name in REAL:
        ds = pydicom.dcmread(samples.path(name))
        store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
        out.append(store.render(0))
    # words of the evaluation set's kinds (names, dates, IDs, settings) over the anatomy of real MR frames, at
    # 8-24 px, light and dark ink, some at the frame's edge
    rng = np.random.default_rng(20261206)
    mr = [np.frombuffer(out[REAL.index(f"brain_{k:03d}.dcm")].pixels, np.uint8).reshape(256, 256)
          for k in (1, 3, 5, 9, 12, 16)]
    words = ["DOE^JOHN", "24/02/1953", "ID 48213", "Smith", "MI 0.9", "DR 60", "1951-05-17 14:22:00", "Gn 55"]
    for k in range(60):
        im = Image.fromarray(mr[k % len(mr)].copy())
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 4))):
            draw.text((int(rng.integers(-20, 230)), int(rng.integers(-5, 245))), words[int(rng.integers(len(words)))],
                      fill=int(rng.choice([255, 230, 200, 150, 60, 20])),
                      font=ImageFont.load_default(size=int(rng.integers(8, 25))))
        out.append(GrayImage(256, 256, im.tobytes()))
    for k in range(20):  # speckle and blobs: anatomy-like ink that breaks into many pieces
        a = rng.integers(0, 256, (128, 192)) * (rng.random((128, 192)) < rng.random())
        out.append(GrayImage(192, 128, a.astype(np.uint8).tobytes()))
    return out


def test_the_gate_decides_as_both_passes_in_full_do(samples, px_codecs):
    pieces = skipped = text = 0
    for image in _frames(samples, px_codecs):
        for piece, key in text_presence.candidate_pieces(image, numpy=np):
            want = _full_gate(image, piece, key)
            assert text_presence.looks_like_text(image, piece, key) == want, (piece, key)
            pieces += 1
            text += want
            # the reason the joined pass may be skipped, checked at every threshold: joined, the pieces of
            # ink are never more, so fewer than three cannot give three glyphs lined up
            for k in text_presence._ORDER:
                seen: dict = {}
                text_presence._glyph_boxes(image, piece, k, seen=seen)
                if seen[k][1] < text_presence.GLYPHS_IN_A_ROW:
                    skipped += 1
                    assert not text_presence._glyph_line(image, piece, k, bridged=True)
                    assert len(text_presence._glyph_boxes(image, piece, k, bridged=True)) < 3
    assert pieces > 100 and 20 < text < pieces and skipped > 100  # both decisions, and the skip, are there


def _formula(np, decoded, info, window, exclude):
    """The gray table as the render had it (np.where over the formula)."""
    modality = decoded * info.rescale_slope + info.rescale_intercept
    if window == "header" and info.window is not None:
        window = info.window
    if isinstance(window, tuple):
        center, width = window
        lo, hi = center - width / 2, center + width / 2
    else:
        kept = modality if exclude is None else modality[decoded != exclude]
        if not len(kept):
            kept = modality
        lo, hi = kept.min().item(), kept.max().item()
        if hi <= lo:
            hi = lo + 1
    span = hi - lo
    m = modality.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(m <= lo, 0.0, np.where(m >= hi, 255.0, (m - lo) * 255 / span + 0.5)).astype(np.int64)
    if info.photometric == "MONOCHROME1":
        g = 255 - g
    return g.astype(np.uint8)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_the_gray_table_is_the_formula(photometric):
    rng = np.random.default_rng(12)
    cases = 0
    for k in range(400):
        lo = int(rng.integers(-40000, 40000))
        decoded = np.arange(lo, lo + int(rng.integers(1, 5000)), dtype=np.int64)
        if k % 3 == 0:
            decoded = rng.integers(-32768, 65536, int(rng.integers(1, 3000))).astype(np.int64)
        slope = [1, 1.0, 0.5, 2.5, -1.0, 0.000123, 1e6, 3][k % 8] if k % 5 else float(rng.normal())
        intercept = [0, -1024, 0.5, 1e-9][k % 4]
        window = ["auto", "header", (40.0, 400.0), (float(rng.normal(0, 500)), float(rng.normal(0, 300))),
                  (10.0, 0.0), (0.0, -50.0), (float(decoded[0] * slope), 1e-12)][k % 7]
        header = (float(rng.normal(0, 500)), float(abs(rng.normal(0, 500)))) if k % 2 else None
        info = SimpleNamespace(rescale_slope=slope, rescale_intercept=intercept, window=header,
                               photometric=photometric)
        exclude = int(decoded[int(rng.integers(len(decoded)))]) if k % 4 == 1 else None
        with np.errstate(divide="ignore", invalid="ignore"):
            got = render._gray_numpy(np, decoded, info, window, exclude)
        want = _formula(np, decoded, info, window, exclude)
        assert got.dtype == np.uint8 and np.array_equal(got, want), (k, slope, intercept, window)
        cases += 1
    assert cases == 400


def test_an_auto_run_starts_no_blas_thread_per_core(samples, tmp_path):
    """numpy's OpenBLAS starts a thread per core when numpy is imported (CPU at every start-up, no use to py_deid,
    which does no linear algebra to speak of): `deidentify --pixels auto` asks for one, unless the environment
    says otherwise. Counted as the process's threads just after the run has imported numpy."""
    import json
    import os
    import subprocess
    import sys

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: OpenBLAS starts no extra thread to tell apart")
    src = tmp_path / "in"
    src.mkdir()
    (src / "brain_001.dcm").write_bytes(samples.bytes("brain_001.dcm"))
    key = tmp_path / "site.key"
    key.write_text("a-site-secret-for-the-tests-0123456789\n")
    code = ("import json, os, sys\nfrom py_deid import cli\n"
            "real = cli._load_without_pixel_libraries\n"
            "def load(*a):\n    real(*a)\n    import numpy\n    threads.append(len(os.listdir('/proc/self/task')))\n"
            "threads = []\ncli._load_without_pixel_libraries = load\n"
            "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps([threads, os.environ.get('OPENBLAS_NUM_THREADS')]))")

    def run(env):
        p = subprocess.run([sys.executable, "-c", code, "deidentify", str(src), "-o", str(tmp_path / "out"),
                            "--pixels", "auto", "--key-file", str(key)], capture_output=True, text=True,
                           check=True, env=env)
        return json.loads(p.stdout.strip().splitlines()[-1])

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    assert run(env) == [[1], "1"]
    # the environment's own setting is kept (and then OpenBLAS starts its threads: the count is what tells)
    threads, setting = run(dict(env, OPENBLAS_NUM_THREADS="2"))
    assert setting == "2" and threads[0] >= 2
