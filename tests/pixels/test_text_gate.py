"""The text-likeness gate of the screen (text_presence.screen): a screened frame goes to OCR only when one of
the screen's pieces breaks into glyphs lined up as a line of text does. Line-like anatomy without text is
cleared (no OCR); small text of 10-24 px in several fonts and colours over real anatomy still goes to OCR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from py_deid.hosts.services import GrayImage
from py_deid.pixels import geometry, text_presence

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation2",
             "/usr/share/fonts/truetype/liberation")
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf",
         "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf", "LiberationMono-Regular.ttf")


def _font(name: str, size: int):
    from PIL import ImageFont

    for d in FONT_DIRS:
        p = Path(d) / name
        if p.is_file():
            return ImageFont.truetype(str(p), size)
    pytest.skip(f"font {name} not installed")


def _render(samples, px_codecs, name: str) -> GrayImage:
    import pydicom

    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    ds = pydicom.dcmread(samples.path(name))
    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
    return store.render(0)


def _staircase(offset: int) -> GrayImage:
    """Five blobs of tissue side by side, each `offset` rows lower than the one before (the curve of a row of
    teeth, vertebrae across a slice): the screen sees a band crossed by three strokes or more."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (256, 256), 30)
    draw = ImageDraw.Draw(im)
    for k in range(5):
        x, y = 8 + 12 * k, 96 + offset * k
        draw.ellipse((x, y, x + 8, y + 13), fill=190)
    return GrayImage(256, 256, im.tobytes())


def test_line_like_anatomy_without_text_is_cleared():
    frame = _staircase(2)
    pieces = text_presence.candidate_pieces(frame, numpy=np)
    assert pieces, "the screen must see a line here, or the gate is not tested"
    assert text_presence.screen(frame, numpy=np) == [] and text_presence.screen(frame) == []
    # the same blobs in a row (tops and bottoms lined up, like a line of "o"s) are taken for text
    row = _staircase(0)
    assert text_presence.candidate_pieces(row, numpy=np) and text_presence.screen(row, numpy=np)


@pytest.mark.parametrize("name", ["brain_002.dcm", "brain_004.dcm", "brain_007.dcm"])
def test_real_mr_frames_the_screen_takes_for_text_are_cleared(name, samples, px_codecs):
    """Real MR frames without text where the screen finds line-like anatomy (teeth, the nasal cavity): the gate
    clears them, so a textless series pays no OCR there."""
    frame = _render(samples, px_codecs, name)
    assert text_presence.candidate_pieces(frame, numpy=np)
    assert text_presence.screen(frame, numpy=np) == [] and text_presence.screen(frame) == []


WORDS = ("DOE^JOHN", "24/02/1953", "ID 48213", "Smith")
INKS = (255, 200, 235)  # white and light grey annotation, and a near-white one


@pytest.mark.parametrize("font", FONTS)
def test_small_text_on_anatomy_still_goes_to_ocr(font, samples, px_codecs):
    """Every word the screen finds, drawn over the anatomy of real MR frames in 10-24 px type, light ink (the
    annotation colours of grey-scale scanners), is still sent to OCR: the gate never clears it."""
    from PIL import Image, ImageDraw

    backgrounds = [np.frombuffer(_render(samples, px_codecs, f"brain_{k:03d}.dcm").pixels, np.uint8).reshape(256, 256)
                   for k in (1, 3, 5, 9, 12, 16)]
    found = cleared = 0
    missed = []
    for size in (10, 12, 14, 16, 18, 20, 24):
        typeface = _font(font, size)
        for k, word in enumerate(WORDS):
            for j, ink in enumerate(INKS):
                bg = backgrounds[(size + 3 * k + j) % len(backgrounds)]
                im = Image.fromarray(bg.copy())
                draw = ImageDraw.Draw(im)
                at = (40 + 10 * j, 60 + 40 * k)  # over the head, not beside it
                draw.text(at, word, fill=ink, font=typeface)
                b = draw.textbbox(at, word, font=typeface)
                box = (b[0], b[1], b[2] - b[0], b[3] - b[1])
                frame = GrayImage(256, 256, im.tobytes())
                pieces = text_presence.candidate_pieces(frame, numpy=np)
                if not any(geometry.intersects(p, box) for p, _ in pieces):
                    continue  # the screen did not see it: nothing for the gate to decide
                found += 1
                if not text_presence.screen(frame, numpy=np):
                    cleared += 1
                    missed.append((size, word, ink))
    assert found >= 20, "too few words seen by the screen for this test to mean anything"
    assert cleared == 0, f"text cleared by the gate: {missed}"


def test_dark_text_on_a_light_ground_still_goes_to_ocr():
    from PIL import Image, ImageDraw

    for font in ("DejaVuSans.ttf", "LiberationSerif-Regular.ttf", "LiberationMono-Regular.ttf"):
        for size in (10, 14, 18, 24):
            try:
                typeface = _font(font, size)
            except pytest.skip.Exception:
                continue
            im = Image.new("L", (256, 128), 225)
            draw = ImageDraw.Draw(im)
            draw.text((12, 40), "KOWALSKI 1961", fill=20, font=typeface)
            frame = GrayImage(256, 128, im.tobytes())
            assert text_presence.candidate_pieces(frame, numpy=np)
            assert text_presence.screen(frame, numpy=np) == text_presence.candidate_pieces(frame, numpy=np)
            assert text_presence.screen(frame) == text_presence.screen(frame, numpy=np)
