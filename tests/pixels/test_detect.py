"""Detection: which regions are read, how (enlargement, banners, second look) and what is reused across frames."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from py_deid.hosts.services import GrayImage, OcrRequest
from py_deid.pixels import templates
from py_deid.pixels.detect import FrameReader, banner_bands, line_blocks
from py_deid.pixels.ocr_image import enlarge, flattened, pad, straddling
from py_deid.pixels.us_regions import clinical_regions


def _texts(readings):
    return {w.text for r in readings for w in r}


def test_smooth_enlargement_and_border():
    img = GrayImage(3, 2, bytes([0, 100, 200, 50, 50, 50]))
    big = enlarge(img, 2)
    assert (big.width, big.height) == (6, 4)
    assert big.pixels[:6] == bytes([0, 50, 100, 150, 200, 200])  # columns: originals and their means
    assert big.pixels[6:12] == bytes([25, 50, 75, 100, 125, 125])  # a row of means between rows
    assert enlarge(img, 4).width == 12 and enlarge(img, 1) is img
    padded = pad(img, 2, 7)
    assert (padded.width, padded.height) == (7, 6)
    assert padded.pixels[:7] == bytes([7] * 7) and padded.pixels[16:19] == bytes([0, 100, 200])
    with pytest.raises(ValueError):
        enlarge(img, 3)


def test_enlargement_with_numpy_is_the_same():
    """The native host enlarges with numpy, the browser in pure Python: the same bytes, odd sizes and single
    rows and columns included."""
    import random

    import numpy as np

    rng = random.Random(9)
    for w, h in [(1, 1), (1, 7), (9, 1), (3, 2)] + [(rng.randint(1, 90), rng.randint(1, 60)) for _ in range(30)]:
        img = GrayImage(w, h, bytes(rng.randint(0, 255) for _ in range(w * h)))
        for factor in (1, 2, 4):
            assert enlarge(img, factor, np) == enlarge(img, factor)


def test_grey_title_bar_is_found_and_read_on_its_own(ocr_engine, ocr_drive, ocr_draw, ocr_image_frames):
    from PIL import ImageDraw

    im, _ = ocr_draw((640, 400), [(20, 200, "GAIN 82", 255)], font_size=16)
    ImageDraw.Draw(im).rectangle((0, 0, 639, 29), fill=110)  # grey bar, light text: lost to a global threshold
    ImageDraw.Draw(im).text((10, 6), "DOE JOHN 0012345", fill=235, font=_font(16))
    bands = banner_bands(GrayImage(im.width, im.height, im.tobytes()))
    assert bands == [(0, 0, 640, 30)]
    reader = FrameReader(ocr_image_frames([im]), 640, 400)
    assert {"DOE", "JOHN", "0012345", "GAIN"} <= _texts(ocr_drive(reader.read(0), ocr_engine))


def _straddling_line(fill=235, size=14):
    """A grey title bar over a black frame with a line of text drawn across the bar's bottom edge."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (640, 200), 0)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 639, 38), fill=70)
    draw.text((10, 39 - size // 2 - 2), "PID 5275190696 DOB 19530425 64Y", fill=fill, font=_font(size))
    return im


def test_a_line_across_a_bars_edge_is_found_and_flattened():
    im = _straddling_line()
    frame = GrayImage(im.width, im.height, im.tobytes())
    (band,) = banner_bands(frame)
    ((rect, bg_band, bg_other, edge, band_above),) = straddling(frame, band)
    assert (bg_band, bg_other, edge, band_above) == (70, 0, 39, True)
    ink = [y for y in range(im.height) if max(im.crop((0, y, 640, y + 1)).getdata()) > 150]
    assert rect[1] <= ink[0] - 2 and rect[1] + rect[3] >= ink[-1] + 2  # the whole line, a few rows of room
    assert rect[3] <= ink[-1] - ink[0] + 8  # and not the bar's other rows
    flat = flattened(frame, rect, edge, bg_band, bg_other, band_above)
    assert flat.pixels[:10] == bytes([255] * 10) and flat.pixels[-10:] == bytes([255] * 10)  # both grounds white
    assert min(flat.pixels) == 0  # the ink, dark on both sides of the edge
    im2 = _straddling_line()
    from PIL import ImageDraw
    ImageDraw.Draw(im2).rectangle((0, 25, 639, 60), fill=0)  # no text across the edge: nothing to read again
    ImageDraw.Draw(im2).rectangle((0, 0, 639, 38), fill=70)
    frame2 = GrayImage(im2.width, im2.height, im2.tobytes())
    assert straddling(frame2, banner_bands(frame2)[0]) == []


def test_a_line_across_a_bars_edge_is_read_whole(ocr_engine, ocr_drive, ocr_image_frames, monkeypatch):
    """Half on the grey bar and half on black, neither the bar's reading nor the frame's sees whole glyphs
    (an identifier read "K27510AARGA" at confidence 28 and kept); read flattened, the line is read right."""
    from py_deid.pixels import detect

    im = _straddling_line()
    line = {"PID", "5275190696", "DOB", "19530425", "64Y"}
    found = _texts(ocr_drive(FrameReader(ocr_image_frames([im]), 640, 200).read(0), ocr_engine))
    assert line <= found
    monkeypatch.setattr(detect, "straddling", lambda *a: [])
    without = _texts(ocr_drive(FrameReader(ocr_image_frames([im]), 640, 200).read(0), ocr_engine))
    assert "5275190696" not in without and "19530425" not in without


def test_a_band_over_half_a_line_does_not_replace_its_whole_reading(ocr_drive, ocr_image_frames):
    """A banner band found over the top rows of a line at the frame's edge (Presidio's public CR sample:
    "DAVIDSON DOUGLAS [M] 01.09.2012" flush with the top, rows 0-16 taken for a bar) reads half letters as
    garble. Merged as the band's reading, that garble replaced the line's whole words read before, the date
    was read by no reading and left unmasked in both modes. The whole words stay; a fresh word that covers
    most of an old word's rows still replaces it."""
    from PIL import Image, ImageDraw

    from py_deid.hosts.services import Word
    from py_deid.pixels import detect

    im = Image.new("L", (640, 200), 0)
    ImageDraw.Draw(im).rectangle((0, 0, 639, 15), fill=90)
    assert banner_bands(GrayImage(im.width, im.height, im.tobytes())) == [(0, 0, 640, 16)]
    reader = FrameReader(ocr_image_frames([im]), 640, 200)
    f, b = reader.factor, detect.BORDER

    class Engine:  # a deterministic reader: the band's image gets half glyphs, every other image the line
        def find_text(self, request):
            if request.image.height == 16 * f + 2 * b:
                return [Word("RVASVANIR", b, b + 4 * f, 300 * f, 12 * f, 0)]
            return [Word("DOE", b, b, 100 * f, 30 * f, 96), Word("01.09.2012", b + 120 * f, b, 200 * f, 30 * f, 97)]

    first = ocr_drive(reader.read(0), Engine())[0]
    assert {"DOE", "01.09.2012", "RVASVANIR"} <= {w.text for w in first}
    old = [Word("DOE", 0, 0, 100, 30, 96)]
    assert [w.text for w in detect._merge(old, [Word("DOB", 0, 2, 100, 26, 90)], (0, 0, 640, 16), cuts_lines=True)] == ["DOB"]
    assert [w.text for w in detect._merge(old, [Word("D", 0, 4, 100, 12, 9)], (0, 0, 640, 16), cuts_lines=True)] == ["DOE", "D"]
    assert [w.text for w in detect._merge(old, [Word("D", 0, 4, 100, 12, 9)], (0, 0, 640, 16))] == ["D"]


def _font(size):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def test_small_text_is_read(ocr_engine, ocr_drive, ocr_draw, ocr_image_frames):
    """8-10 px high annotation text, as small scanners print it."""
    im, _ = ocr_draw((400, 120), [(5, 10, "SMITH ALICE", 255), (5, 40, "ID 4455667", 255),
                                  (5, 70, "12/03/1961", 255)], font_size=10)
    plain = ocr_engine.find_text(OcrRequest(GrayImage(im.width, im.height, im.tobytes())))
    reader = FrameReader(ocr_image_frames([im]), 400, 120)
    found = _texts(ocr_drive(reader.read(0), ocr_engine))
    assert {"SMITH", "ALICE", "4455667", "12/03/1961"} <= found
    assert len({"SMITH", "ALICE", "4455667", "12/03/1961"} & {w.text for w in plain}) < 4  # enlargement mattered


def test_every_frame_is_read_but_unchanged_pixels_are_not_read_again(ocr_engine, ocr_drive, ocr_draw,
                                                                     ocr_image_frames):
    """A clock that ticks and a name that appears on frame 3 only: every frame gets its own words; tiles whose
    pixels did not change are not sent to OCR again."""
    frames = []
    for k in range(5):
        items = [(10, 10, "DOE JOHN", 255), (300, 10, f"10:2{k}:00", 255), (10, 200, "GAIN 82", 255)]
        if k == 3:
            items.append((200, 120, "ROE JANE", 255))
        frames.append(ocr_draw((512, 256), items, font_size=14)[0])
    reader = FrameReader(ocr_image_frames(frames), 512, 256)
    texts = [_texts(ocr_drive(reader.read(k), ocr_engine)) for k in range(5)]
    for k in range(5):
        assert {"DOE", "JOHN", "GAIN"} <= texts[k] and f"10:2{k}:00" in texts[k]
        assert ({"ROE", "JANE"} <= texts[k]) == (k == 3)
    stats = reader.stats
    assert stats.frames == 5 and stats.pixels_reused > 0
    assert stats.pixels_read < 0.5 * 5 * 512 * 256 + 512 * 256


def test_identical_frames_cost_no_ocr(ocr_engine, ocr_drive, ocr_draw, ocr_image_frames):
    im, _ = ocr_draw((300, 100), [(10, 10, "DOE JOHN", 255)], font_size=14)
    reader = FrameReader(ocr_image_frames([im, im.copy(), im.copy()]), 300, 100)
    first = ocr_drive(reader.read(0), ocr_engine)
    requests = reader.stats.requests
    assert ocr_drive(reader.read(1), ocr_engine) == first == ocr_drive(reader.read(2), ocr_engine)
    assert reader.stats.requests == requests and reader.stats.frames_reused == 2


def test_second_look_reads_lines_again_unless_settled():
    from py_deid.hosts.services import Word

    words = [Word("DOE", 10, 10, 30, 12, 90), Word("GAIN", 10, 50, 40, 12, 95), Word("a", 200, 200, 8, 8, 10)]
    blocks = line_blocks(words, 300, 300)
    assert len(blocks) == 2  # two lines; the weak single letter seeds nothing
    settled = line_blocks(words, 300, 300, settled=lambda w: w.text == "GAIN")
    assert len(settled) == 1 and settled[0][1] < 10 < settled[0][1] + settled[0][3]


def test_ultrasound_regions_from_the_header():
    ds = Dataset()
    r1, r2 = Dataset(), Dataset()
    for r, (x0, y0, x1, y1, fmt) in ((r1, (32, 24, 335, 415, 1)), (r2, (32, 40, 63, 103, 0))):
        r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1, r.RegionLocationMaxY1 = x0, y0, x1, y1
        r.RegionSpatialFormat = fmt
    ds.SequenceOfUltrasoundRegions = [r1, r2]
    assert clinical_regions(ds, 640, 480) == [(32, 24, 304, 392)]  # the colour bar (format 0) is not an image
    assert clinical_regions(Dataset(), 640, 480) == []


def test_device_templates_match_by_manufacturer_model_and_size():
    ds = Dataset()
    ds.Manufacturer, ds.ManufacturerModelName, ds.Rows, ds.Columns = "Philips Medical Systems", "CX50", 600, 800
    boxes, names = templates.boxes_for(ds)
    assert boxes == [(88, 0, 482, 60), (650, 0, 150, 60)] and len(names) == 1
    ds.Rows = 768
    assert templates.boxes_for(ds) == ([], [])
    custom = templates.parse('[[template]]\nmodel = "x1"\nboxes = [[1, 2, 3, 4]]\n')
    ds.ManufacturerModelName = "ACME X1 Pro"
    assert templates.boxes_for(ds, custom)[0] == [(1, 2, 3, 4)]
    with pytest.raises(templates.TemplateError):
        templates.parse('[[template]]\nboxes = [[1, 2, 3, 4]]\n')  # matches every device: refused
    with pytest.raises(templates.TemplateError):
        templates.parse('[[template]]\nmodel = "x"\nboxes = [[1, 2, 3]]\n')


def test_light_text_on_dark_is_sent_dark_on_light():
    from py_deid.pixels.ocr_image import dark_on_light

    dark = GrayImage(4, 3, bytes([0, 0, 0, 0, 0, 250, 240, 0, 0, 0, 0, 0]))
    turned = dark_on_light(dark)
    assert turned.pixels == bytes(255 - v for v in dark.pixels)
    light = GrayImage(4, 3, bytes(255 - v for v in dark.pixels))
    assert dark_on_light(light) is light  # a light ground is left as it is (dark text on a light bar)


def test_light_text_on_dark_reads_as_its_inversion(ocr_engine, ocr_drive, ocr_draw, ocr_image_frames):
    """Sending the frame inverted loses nothing: the words of white text on black are those of the same text
    drawn black on white."""
    items = [(20, 40, "GAIN 82 DR 60", 255), (20, 90, "SMITH JOHN 19530425", 255)]
    white, _ = ocr_draw((480, 160), items, background=0, font_size=16)
    black, _ = ocr_draw((480, 160), [(x, y, t, 0) for x, y, t, _ in items], background=255, font_size=16)
    read = [_texts(ocr_drive(FrameReader(ocr_image_frames([im]), 480, 160).read(0), ocr_engine))
            for im in (white, black)]
    assert {"GAIN", "82", "SMITH", "JOHN", "19530425"} <= read[0]
    assert read[0] == read[1]


def test_an_image_sent_again_is_not_read_again(ocr_image_frames):
    """A request whose image was sent for this frame or the one before gets the same words without OCR; a
    changed pixel sends it again."""
    from PIL import Image, ImageDraw

    frames = []
    for k in range(3):
        im = Image.new("L", (200, 100), 0)
        ImageDraw.Draw(im).text((10, 10), "GAIN 82", fill=255)
        if k == 2:
            im.putpixel((150, 60), 255)
        frames.append(im)
    reader = FrameReader(ocr_image_frames(frames), 200, 100, reuse=False, second_look=False)
    sent = []

    def drive(steps):
        try:
            request = next(steps)
            while True:
                sent.append(request.image.pixels)
                request = steps.send([])
        except StopIteration as stop:
            return stop.value

    for i in range(3):
        drive(reader.read_regions(i, [(0, 0, 200, 100)]))
    assert len(sent) == 2 and reader.stats.requests == 2 and reader.stats.requests_repeated == 1
    assert sent[0] != sent[1]


def test_textured_tiles_count_far_pixels_as_defined():
    """Far pixels are counted by bisection in the sorted sample: the tiles are those of the definition (more
    than `share` of the sample further than the spread from its median, darkest and lightest value)."""
    import random

    from py_deid.hosts.services import GrayImage
    from py_deid.pixels.ocr_image import textured_tiles

    rng = random.Random(4)
    for _ in range(60):
        w, h = rng.randint(1, 100), rng.randint(1, 100)
        centre, spread_of = rng.randint(0, 255), rng.randint(1, 70)
        px = bytes(max(0, min(255, int(rng.gauss(centre, spread_of)))) if rng.random() < 0.7
                   else rng.choice([20, 200]) for _ in range(w * h))
        want = []
        for y in range(0, h, 32):
            for x in range(0, w, 32):
                x1 = min(w, x + 32)
                sample = b"".join(px[r * w + x:r * w + x1:2] for r in range(y, min(h, y + 32), 4))
                if len(sample) < 8:
                    continue
                ordered = sorted(sample)
                lo, m, hi = ordered[0], ordered[len(ordered) // 2], ordered[-1]
                spread = max(8, min(16, (hi - lo) // 8))
                far = sum(1 for v in sample if abs(v - m) > spread and v - lo > spread and hi - v > spread)
                if far > 0.3 * len(sample):
                    want.append((x, y, x1 - x, min(h, y + 32) - y))
        assert textured_tiles(GrayImage(w, h, px)) == want


def test_banner_bands_with_numpy_are_the_same():
    """Every row's median and flatness at once with numpy, row by row in pure Python: the same bands."""
    import random

    import numpy as np
    from PIL import Image, ImageDraw

    rng = random.Random(13)
    for _ in range(40):
        w, h = rng.randint(1, 200), rng.randint(1, 160)
        im = Image.new("L", (w, h), rng.choice([0, 30, 200]))
        draw = ImageDraw.Draw(im)
        for _ in range(rng.randint(0, 3)):
            top = rng.randint(0, h)
            draw.rectangle((0, top, w, top + rng.randint(4, 40)), fill=rng.randint(0, 255))
        px = bytearray(im.tobytes())
        for _ in range(rng.randint(0, w * h // 3)):
            px[rng.randrange(w * h)] = rng.randint(0, 255)
        image = GrayImage(w, h, bytes(px))
        assert banner_bands(image, numpy=np) == banner_bands(image)
