"""Masks drawn on glyphs, not on OCR's boxes: two engines that box a word differently get the same mask."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from py_deid.hosts.services import GrayImage
from py_deid.pixels import geometry
from py_deid.pixels.glyphs import Glyphs


def _scene(text: str, size: int = 16, at=(30, 40), fill=230, ground=20):
    im = Image.new("L", (300, 100), ground)
    draw, font = ImageDraw.Draw(im), ImageFont.load_default(size=size)
    draw.text(at, text, fill=fill, font=font)
    ink = [(x, y) for y in range(im.height) for x in range(im.width) if abs(im.getpixel((x, y)) - ground) > 8]
    xs, ys = [p[0] for p in ink], [p[1] for p in ink]
    truth = (min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1) if ink else None
    return GrayImage(im.width, im.height, im.tobytes()), truth


def test_boxes_of_two_engines_snap_to_the_same_glyphs():
    image, truth = _scene("GARCIA 60%")
    g = Glyphs(image)
    x, y, w, h = truth
    tight = g.snap((x, y, w, h))
    wide = g.snap((x - 2, y - 1, w + 3, h + 2))  # a box a pixel or two larger
    top_cut = g.snap((x, y + 3, w, h - 3))  # a box that cut the glyphs' top rows
    assert tight == wide == top_cut
    assert geometry.contains(geometry.grow(tight, 2), truth)


def test_a_sliver_of_a_line_snaps_to_whole_glyphs():
    image, truth = _scene("Gn 60")
    x, y, w, h = truth
    lower = Glyphs(image).snap((x, y + h // 2, w, h - h // 2))  # OCR read the lower half of the line as a word
    assert lower is not None and lower[1] <= y + 1 and geometry.bottom(lower) >= y + h - 1


def test_a_neighbouring_word_is_not_taken_in_but_punctuation_is():
    image, _ = _scene("HASSAN, LINDA")
    _, left = _scene("HASSAN,")
    word, _ = _scene("HASSAN")
    g = Glyphs(image)
    # OCR's box holds "HASSAN" only: the comma beside it joins, "LINDA" after the space does not
    hassan = Glyphs(word).snap((0, 0, 300, 100))
    snapped = g.snap(hassan)
    assert snapped == left


def test_a_box_without_ink_is_left_to_the_caller():
    image, _ = _scene("")
    assert Glyphs(image).snap((10, 10, 40, 12)) is None


def test_speckle_beside_a_word_does_not_carry_its_mask_across_the_image():
    """On speckle every grain is a component within a letter's gap of the next: a chain of them must not
    join the word (the mask of one word once took a 350x145 px block of an ultrasound frame)."""
    image, truth = _scene("KOWALSKI", at=(30, 10))
    px = bytearray(image.pixels)
    import random

    rng = random.Random(7)
    bottom = geometry.bottom(truth)
    for y in range(bottom + 1, 100, 2):  # single grains 2 px apart from the line's bottom down: each within a
        for x in range(20, 200, 2):  # letter's gap of the next, none touching another
            if rng.random() < 0.9:
                px[y * image.width + x] = 200
    g = Glyphs(GrayImage(image.width, image.height, bytes(px)))
    x, y, w, h = truth
    snapped = g.snap((x, y, w, h))
    assert snapped is not None and geometry.contains(geometry.grow(snapped, 2), truth)
    assert geometry.bottom(snapped) <= geometry.bottom(truth) + h // 2 + 1


def test_text_straddling_a_bar_edge_is_not_called_whole():
    """Light grey text across the bottom edge of a grey title bar joins the bar into one component that runs
    out of the window: the glyphs picked are not the word, so the snap must not say they are (the caller then
    masks OCR's box with its margin). Once, a read MRN there was masked over half its width."""
    im = Image.new("L", (300, 100), 5)
    draw, font = ImageDraw.Draw(im), ImageFont.load_default(size=14)
    draw.rectangle((0, 0, 299, 43), fill=70)
    draw.text((66, 31), "4814052949", fill=173, font=font)
    box = draw.textbbox((66, 31), "4814052949", font=font)
    g = Glyphs(GrayImage(im.width, im.height, im.tobytes()))
    snapped, whole = g.snap_clean((box[0], box[1], box[2] - box[0], box[3] - box[1]))
    # None (no glyph: the caller keeps OCR's box), not whole, or the whole word
    assert snapped is None or not whole or geometry.contains(geometry.grow(snapped, 2), (
        box[0], box[1], box[2] - box[0], box[3] - box[1]))


def _speckle(seed: int, size=(300, 100), mean=110, spread=90):
    """Ultrasound-like speckle: grains of random brightness, blurred a little so neighbours join."""
    import random

    from PIL import ImageFilter

    rng = random.Random(seed)
    im = Image.new("L", size)
    im.putdata([max(0, min(255, int(rng.gauss(mean, spread)))) for _ in range(size[0] * size[1])])
    return im.filter(ImageFilter.BoxBlur(1))


def test_a_snap_on_speckle_stays_about_a_line_tall():
    """A box over speckle joins grains into chains; a snap of a 20 px box once grew to 172 x 195 px of an
    ultrasound sector. Whatever it takes in, it is no more than 2.5 times the box's height."""
    im = _speckle(3, (400, 300))
    g = Glyphs(GrayImage(im.width, im.height, im.tobytes()))
    for box in [(150, 140, 30, 20), (60, 60, 64, 14), (250, 200, 40, 40)]:
        snapped = g.snap(box)
        assert snapped is None or snapped[3] <= 2.5 * box[3] + 1, (box, snapped)


def test_words_are_text_shaped_and_speckle_is_not():
    """Over image content strict mode masks unread ink only if it is shaped like text: a word in any of these
    fonts and sizes breaks into glyph-sized pieces, speckle at the same contrast into grains."""
    for text, size in [("KOWALSKI", 16), ("ID: 4471", 12), ("12/03/1961", 20), ("Tel (338)", 14)]:
        image, truth = _scene(text, size=size)
        assert Glyphs(image).text_shaped(truth), text
        on_grey, truth = _scene(text, size=size, fill=200, ground=90)
        assert Glyphs(on_grey).text_shaped(truth), text
    for seed in range(6):
        im = _speckle(seed)
        g = Glyphs(GrayImage(im.width, im.height, im.tobytes()))
        assert not g.text_shaped((100, 30, 60, 20)), seed


def test_text_across_a_bar_edge_snaps_whole_at_the_detectors_threshold():
    """White text straddling the bottom edge of a grey bar over a dark image: the median rule finds no one
    background, but at the threshold the detector found the line at, its glyphs stand apart; a box that stops
    at a column's edge and is looked past by a text height takes in the last letter beyond it."""
    im = Image.new("L", (300, 100), 2)
    draw, font = ImageDraw.Draw(im), ImageFont.load_default(size=17)
    draw.rectangle((0, 0, 299, 44), fill=72)
    draw.text((60, 36), "04.12.1967", fill=222, font=font)
    x0, y0, x1, y1 = draw.textbbox((60, 36), "04.12.1967", font=font)
    g = Glyphs(GrayImage(im.width, im.height, im.tobytes()))
    cut = (x0, y0 + 5, (x1 - x0) * 3 // 4, y1 - y0 - 5)  # the lower half of its first three quarters
    snapped, whole = g.snap_at((cut[0], cut[1], cut[2] + cut[3] * 4, cut[3]), ("light", 160))
    assert whole and geometry.contains(geometry.grow(snapped, 2), (x0, y0, x1 - x0, y1 - y0)), (snapped, (x0, y0, x1, y1))


def test_numpy_and_pure_python_snap_alike():
    """The native host labels pieces with numpy, the browser in pure Python: every snap, of boxes on text, on
    speckle (hundreds of runs a row, chains of grains), at the image's edges and at a fixed threshold, is the
    same in both, and so is whether its glyphs are whole and shaped like text."""
    import random

    import numpy as np

    rng = random.Random(7)
    images = [_scene("GARCIA 60%")[0], _scene("12/03/1961", size=20, fill=200, ground=90)[0]]
    for seed in range(3):
        im = _speckle(seed, (240, 160))
        draw = ImageDraw.Draw(im)
        draw.text((20, 60), "KOWALSKI 4471", fill=250, font=ImageFont.load_default(size=14))
        draw.line((0, 100, 239, 130), fill=255, width=2)
        images.append(GrayImage(im.width, im.height, im.tobytes()))
    for image in images:
        pure, fast = Glyphs(image), Glyphs(image, numpy=np)
        for _ in range(60):
            w, h = rng.randint(1, 80), rng.randint(1, 30)
            box = (rng.randint(-10, image.width - 5), rng.randint(-10, image.height - 5), w, h)
            assert pure.snap_clean(box) == fast.snap_clean(box), box
            assert pure.text_shaped(box) == fast.text_shaped(box), box
            key = (rng.choice(["light", "dark"]), rng.randint(1, 255))
            assert pure.snap_at(box, key) == fast.snap_at(box, key), (box, key)


def test_numpy_and_pure_python_grow_alike():
    """The glyphs' box grown by nearby pieces one at a time (first touching piece first) ends the same way
    looked at piece by piece or all at once, on scattered grains where the order matters."""
    import random

    import numpy as np

    from py_deid.pixels.glyphs import _grow_numpy, _grow_pure

    rng = random.Random(11)
    for _ in range(300):
        rest = []
        for _ in range(rng.randint(1, 120)):
            x, y = rng.randint(0, 200), rng.randint(0, 60)
            rest.append((x, y, x + rng.randint(1, 12), y + rng.randint(1, 20)))
        x, y = rng.randint(50, 150), rng.randint(20, 40)
        box = (x, y, x + rng.randint(1, 40), y + rng.randint(1, 15))
        gap, limit = rng.randint(1, 4), rng.choice([10.0, 25.0, 37.5])
        assert _grow_pure(rest, box, gap, limit) == _grow_numpy(np, rest, box, gap, limit)


def test_the_median_of_a_window_is_the_first_value_past_half():
    """glyphs._median (two translates and counts) against the plain rule (a count of every value, ascending) and
    the numpy twin, on windows of every kind: flat, two-valued, noisy, odd and even sizes, empty."""
    import random
    from collections import Counter

    import numpy as np

    from py_deid.pixels.glyphs import _median, _median_numpy

    def plain(rows):
        counts = Counter(b"".join(rows))
        half, seen = sum(counts.values()) // 2, 0
        for value in sorted(counts):
            seen += counts[value]
            if seen > half:
                return value
        return 0

    rng = random.Random(15)
    pickers = (lambda: rng.randint(0, 255), lambda: rng.choice((0, 255)), lambda: rng.choice((15, 16, 16, 240)),
               lambda: rng.randint(100, 104), lambda: 7)
    assert _median([]) == _median([b""]) == 0
    for trial in range(600):
        pick = pickers[trial % len(pickers)]
        w, h = rng.randint(1, 40), rng.randint(1, 30)
        rows = [bytes(pick() for _ in range(w)) for _ in range(h)]
        assert _median(rows) == plain(rows), rows
        window = np.frombuffer(b"".join(rows), np.uint8).reshape(h, w)
        assert _median(rows) == _median_numpy(np, window)
