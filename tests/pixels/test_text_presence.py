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


def test_strict_masks_found_lines_that_ocr_did_not_settle():
    from py_deid.hosts.services import Word
    from py_deid.pixels.text_policy import Decision, unsettled_lines

    line = (100, 50, 60, 10)
    technical = [Word("TIS0.4", 100, 49, 60, 12, 91.0)]
    weak = [Word("TIS0.4", 100, 49, 60, 12, 31.0)]
    noise = [Word("~", 100, 49, 60, 12, 80.0)]
    keep, drop = Decision(0, False, "technical"), Decision(0, False, "noise")
    assert unsettled_lines([line], [technical], [[keep]], 640, 480) == []
    masked = (98, 47, 64, 16)  # the piece, 2 px wider each side, a third of its height above and below
    assert unsettled_lines([line], [weak], [[keep]], 640, 480) == [masked]
    assert unsettled_lines([line], [noise], [[drop]], 640, 480) == [masked]
    assert unsettled_lines([line], [[]], [[]], 640, 480) == [masked]
    assert unsettled_lines([line], [technical], [[Decision(0, True, "phi-term")]], 640, 480) == []
