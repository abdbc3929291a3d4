"""The OCR-free text screen: it finds lines of glyphs in every usual colour and polarity, where they are, and
stays quiet on image content without text (real CT and MR sample files)."""

from __future__ import annotations

import pytest

from py_deid.hosts.services import GrayImage
from py_deid.pixels import geometry, text_presence


def _gray(im) -> GrayImage:
    return GrayImage(im.width, im.height, im.convert("L").tobytes())


@pytest.mark.parametrize("background, ink", [(0, 255), (0, 150), (110, 226), (110, 40), (235, 20), (70, 255)])
@pytest.mark.parametrize("size", [10, 16, 24])
def test_a_line_of_text_is_found_where_it_is(background, ink, size):
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("L", (320, 200), background)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(im)
    draw.text((40, 90), "DOE^JOHN 02/24/1953", fill=ink, font=font)
    box = draw.textbbox((40, 90), "DOE^JOHN 02/24/1953", font=font)
    text = (box[0], box[1], box[2] - box[0], box[3] - box[1])
    lines = text_presence.candidate_lines(_gray(im))
    assert lines and all(geometry.intersects(line, geometry.grow(text, 4)) for line in lines)
    regions = text_presence.regions_to_read(lines, im.width, im.height)
    assert any(geometry.contains(r, text) for r in regions)


def test_no_line_in_flat_frames_gradients_and_noise():
    import random

    rng = random.Random(7)
    flat = GrayImage(256, 256, bytes([40]) * 256 * 256)
    ramp = GrayImage(256, 256, bytes(x for _ in range(256) for x in range(256)))
    noise = GrayImage(256, 256, bytes(rng.randrange(256) for _ in range(256 * 256)))
    assert [text_presence.candidate_lines(g) for g in (flat, ramp, noise)] == [[], [], []]


def test_textless_real_ct_and_mr_frames_need_no_ocr(samples, px_codecs):
    import pydicom

    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    names = ["CT_small.dcm", "ctbrain1.dcm", "emri_small.dcm", "brain_001.dcm", "brain_006.dcm", "bad_sequence.dcm",
             "eCT_Supplemental.dcm", "693_J2KI.dcm"]
    found = {}
    for name in names:
        ds = pydicom.dcmread(samples.path(name))
        store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
        found[name] = text_presence.has_text(store.render(0))
    assert found == {n: False for n in names}


def test_a_real_frame_with_burned_in_text_is_found(samples, px_codecs):
    import pydicom

    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    ds = pydicom.dcmread(samples.path("CT-MONO2-16-ankle.dcm"))  # "Fri Apr 30 06:27:24 1993" burned in
    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
    assert any(line[1] < 40 for line in text_presence.candidate_lines(store.render(0)))


def test_ink_that_no_word_covers_is_found_tightly_and_gaps_give_nothing():
    from PIL import Image, ImageDraw, ImageFont

    from py_deid.hosts.services import Word
    from py_deid.pixels.text_policy import Decision, settled_boxes

    im = Image.new("L", (320, 120), 0)
    draw, font = ImageDraw.Draw(im), ImageFont.load_default(size=16)
    draw.text((20, 50), "GARCIA", fill=255, font=font)
    draw.text((150, 50), "1951", fill=255, font=font)
    first = draw.textbbox((20, 50), "GARCIA", font=font)
    second = draw.textbbox((150, 50), "1951", font=font)
    gray = _gray(im)
    pieces = text_presence.candidate_pieces(gray)
    assert pieces
    # OCR boxed the first word only: the second word's ink is returned, tight, and the gap is not
    read = [Word("GARCIA", first[0], first[1], first[2] - first[0], first[3] - first[1], 0.0)]
    boxes = settled_boxes([read], [[Decision(0, False, "technical")]])
    left = text_presence.ink_outside(gray, pieces, boxes)
    want = (second[0], second[1], second[2] - second[0], second[3] - second[1])
    assert left and all(geometry.contains(geometry.grow(want, 1), b) for b in left)
    # boxed whole: nothing left; boxed nowhere: both words
    both = read + [Word("1951", *want, 0.0)]
    assert text_presence.ink_outside(gray, pieces, settled_boxes([both], [[Decision(0, False, "technical"),
                                                                           Decision(1, True, "phi-term")]])) == []
    # a read taken for noise settles its ink far from masked text, not beside it on its line (the rest of a
    # name OCR half read: strict mode then masks it unless a closer reading says technical)
    far = settled_boxes([both], [[Decision(0, False, "noise"), Decision(1, True, "phi-term")]])
    assert text_presence.ink_outside(gray, pieces, far) == []
    beside = read + [Word("J", first[2] + 4, first[1], 8, first[3] - first[1], 90.0), both[1]]
    near = settled_boxes([beside], [[Decision(0, False, "noise"), Decision(1, True, "phi-term"),
                                     Decision(2, True, "phi-term")]])
    assert any(b[0] <= first[0] + 1 for b in text_presence.ink_outside(gray, pieces, near))
    everything = text_presence.ink_outside(gray, pieces, [])
    assert any(b[0] <= first[0] + 1 for b in everything) and any(b[0] + b[2] >= second[2] - 3 for b in everything)


@pytest.mark.parametrize("name", ["brain_002.dcm", "brain_004.dcm", "jpeg_lossless_sel1.dcm"])
def test_a_false_alarm_of_the_screen_costs_ocr_not_pixels(name, samples, px_codecs, ocr_engine, ocr_drive):
    """Real MR/CT frames without text where the screen finds line-like anatomy: the lines are read, OCR finds no
    text there, and no pixel changes (strict mode masks unread ink only where text is expected)."""
    import pydicom

    from py_deid import pixels
    from py_deid.options import Settings
    from py_deid.phi import PhiTerms
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    ds = pydicom.dcmread(samples.path(name))
    ts = str(ds.file_meta.TransferSyntaxUID)
    before = FrameStore.open(ds, PixelInfo.from_dataset(ds, ts), px_codecs).render(0).pixels
    out = ocr_drive(pixels.clean(ds, Settings(), PhiTerms.from_dataset(ds), transfer_syntax=ts, codecs=px_codecs),
                    ocr_engine)
    assert out.reason in ("screen", "no-text-found") and not out.frames
    after = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
    assert after.render(0).pixels == before
