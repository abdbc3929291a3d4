"""The rest of a masked line over image content (pixels.line_rest)."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw, ImageFont

from py_deid.hosts.services import GrayImage, Word
from py_deid.pixels.geometry import union
from py_deid.pixels.line_rest import rest_of_lines

FONT = ImageFont.load_default(size=16)


def _tissue(seed=5, size=(420, 120), top=40):
    """Black frame with speckled tissue (grains of 1-2 px, values 60-235) from row `top` down."""
    rng = random.Random(seed)
    im = Image.new("L", size, 0)
    px = im.load()
    for y in range(top, size[1]):
        for x in range(size[0]):
            px[x, y] = rng.randint(60, 235) if rng.random() < 0.8 else rng.randint(0, 60)
    return im


def _frame(im):
    return GrayImage(im.width, im.height, im.tobytes())


def _ink_box(im, x0, x1, threshold=250):
    cols = [x for x in range(x0, x1) for y in range(im.height) if im.getpixel((x, y)) >= threshold]
    rows = [y for x in range(x0, x1) for y in range(im.height) if im.getpixel((x, y)) >= threshold]
    return min(cols), min(rows), max(cols) - min(cols) + 1, max(rows) - min(rows) + 1


def test_a_date_across_tissue_is_masked_on_from_its_read_part():
    im = _tissue()
    draw = ImageDraw.Draw(im)
    draw.text((40, 30), "23-JAN-2019", fill=255, font=FONT)  # the lower half of "23-JAN-" over the tissue
    whole = _ink_box(im, 0, 420)
    year = draw.textbbox((40, 30), "23-JAN-", font=FONT)[2]
    read = (year, whole[1], whole[0] + whole[2] - year, whole[3])  # OCR read "2019" only
    content = [(0, 32, 420, 88)]
    rests = rest_of_lines(_frame(im), [read], [], content)
    rest = union(rests)
    assert rest[0] <= whole[0] + 1 and read[0] - 8 <= rest[0] + rest[2] <= read[0]  # "23-JAN-" whole
    assert (rest[1], rest[3]) == (read[1], read[3])
    assert rest_of_lines(_frame(im), [read], [], []) == []  # not on a plain ground: OCR and the screen see it


def test_tissue_alone_beside_a_masked_word_is_not_taken():
    im = _tissue(seed=9)
    draw = ImageDraw.Draw(im)
    draw.text((200, 30), "2019", fill=255, font=FONT)
    read = _ink_box(im, 195, 260)
    rests = rest_of_lines(_frame(im), [read], [], [(0, 32, 420, 88)])
    assert sum(r[2] for r in rests) <= read[3]  # grains are not strokes: at most a letter's width of them


def test_a_clear_reading_that_stays_ends_the_line():
    im = _tissue()
    draw = ImageDraw.Draw(im)
    draw.text((40, 30), "GAIN 2019", fill=255, font=FONT)
    gain = draw.textbbox((40, 30), "GAIN", font=FONT)
    start = draw.textbbox((40, 30), "GAIN ", font=FONT)[2]
    whole = _ink_box(im, 0, 420)
    read = (start, whole[1], whole[0] + whole[2] - start, whole[3])
    stays = [Word("GAIN", gain[0], gain[1], gain[2] - gain[0], gain[3] - gain[1], 91)]
    rests = rest_of_lines(_frame(im), [read], stays, [(0, 32, 420, 88)])
    assert all(r[0] >= gain[2] for r in rests)


def test_dark_text_on_a_light_ground_is_followed_too():
    """The strokes' side (light or dark) comes from the ground around the read word, not from its box alone."""
    im = _tissue().point(lambda v: 255 - v)  # white frame, dark tissue grains
    draw = ImageDraw.Draw(im)
    draw.text((40, 30), "23-JAN-2019", fill=0, font=FONT)
    dark = [x for x in range(420) for y in range(28, 50) if im.getpixel((x, y)) <= 5]
    rows = [y for x in range(420) for y in range(28, 50) if im.getpixel((x, y)) <= 5]
    start = draw.textbbox((40, 30), "23-JAN-", font=FONT)[2]
    read = (start, min(rows), max(dark) - start + 1, max(rows) - min(rows) + 1)
    rest = union(rest_of_lines(_frame(im), [read], [], [(0, 32, 420, 88)]))
    assert rest[0] <= min(dark) + 1 and read[0] - 8 <= rest[0] + rest[2] <= read[0]


def test_words_of_the_rest_are_masked_apart():
    """The spaces between the words of the rest are not text to hide: one box per word (where the ground
    between them is clean; over speckle the grains fill the spaces and the rest is one box)."""
    im = _tissue(top=120)  # a plain ground, counted as image content below
    draw = ImageDraw.Draw(im)
    draw.text((20, 30), "LEE HILL MEDICAL", fill=255, font=FONT)
    start = draw.textbbox((20, 30), "LEE HILL ", font=FONT)[2]
    whole = _ink_box(im, 0, 420)
    read = (start, whole[1], whole[0] + whole[2] - start, whole[3])
    rests = rest_of_lines(_frame(im), [read], [], [(0, 32, 420, 88)])
    assert len(rests) == 2 and rests[0][0] <= whole[0] + 1
    assert sum(r[2] for r in rests) < read[0] - whole[0] - 8  # less than the span: the spaces stay


def test_stroke_columns_match_their_definition():
    """The columns found by integer operations are those of the definition counted pixel by pixel: a vertical
    run of ink of STROKE of the height, or a horizontal one through the column."""
    import random

    from py_deid.hosts.services import GrayImage
    from py_deid.pixels.line_rest import STROKE, _stroke_columns

    rng = random.Random(5)
    table = bytes(1 if v >= 128 else 0 for v in range(256))
    for _ in range(400):
        w, h = rng.randint(5, 60), rng.randint(5, 30)
        density = rng.random()
        px = bytes(255 if rng.random() < density else 0 for _ in range(w * h))
        x0 = rng.randint(0, w - 1)
        x1, y = rng.randint(x0 + 1, w), rng.randint(0, h - 1)
        rows_n = rng.randint(1, h - y)
        need = max(3, round(STROKE * rows_n))
        ink = [[px[r * w + c] >= 128 for c in range(x0, x1)] for r in range(y, y + rows_n)]
        want = [False] * (x1 - x0)
        for c in range(x1 - x0):
            for r in range(rows_n - need + 1):
                if all(ink[r + k][c] for k in range(need)):
                    want[c] = True
        for row in ink:
            for c in range(x1 - x0 - need + 1):
                if all(row[c:c + need]):
                    for k in range(c, c + need):
                        want[k] = True
        assert _stroke_columns(GrayImage(w, h, px), table, x0, x1, y, rows_n) == want


def test_a_date_whose_glyphs_run_into_the_tissue_is_followed_from_its_own_rows():
    """Fresh draw 20280115, "05-MAY-2023 3:10:24 PM" on an NM frame, its lower rows on tissue: "023" read (90) in
    a 22 px box, its glyph snap 41 px tall (the tissue under it), far taller than the frame's 19 px text, so no
    line was followed from it and "5-MAY-2" stayed (45% hidden). A snap far taller than the word's box gives
    way to the box; a snap of the word's own glyphs is kept."""
    from py_deid.pixels.step import _on_its_rows

    class Snap:
        def __init__(self, box):
            self.box = box

        def snap_or_keep(self, _):
            return self.box

    word = (303, 87, 42, 22)
    assert _on_its_rows(Snap((287, 80, 52, 41)), word) == word
    assert _on_its_rows(Snap((304, 89, 40, 18)), word) == (304, 89, 40, 18)
    # and from its own rows the rest of the date over the tissue is found (the test above, from a read part)
    im = _tissue()
    draw = ImageDraw.Draw(im)
    draw.text((40, 30), "23-JAN-2019", fill=255, font=FONT)
    year = draw.textbbox((40, 30), "23-JAN-2019", font=FONT)
    box = (year[2] - 36, year[1], 36, year[3] - year[1])
    rest = rest_of_lines(_frame(im), [box], [], [(0, 40, 420, 80)])
    assert rest and union(rest)[0] <= year[0] + 2


def test_unread_ink_snapped_to_whole_glyphs_keeps_the_rest_of_its_ink():
    """Fresh draw 20280115, "20-JAN-2021" over anatomy on the 16-bit mammogram: the unread ink from the "0" on was
    snapped to the whole glyphs found in it, from the "-" on; the "0", run into the tissue under it, was no whole
    glyph and was left out of the mask. The snap may add to the ink's box, never take from it."""
    from py_deid.pixels.step import _snap_unread

    class Found:
        def snap_clean(self, box):
            return (271, 77, 48, 15), True

    assert _snap_unread(Found(), (260, 77, 59, 15), []) == (260, 77, 59, 15)

    class Larger:
        def snap_clean(self, box):
            return (258, 76, 64, 17), True

    assert _snap_unread(Larger(), (260, 77, 59, 15), []) == (258, 76, 64, 17)


def test_unread_ink_snapped_into_the_tissue_stays_about_a_line_tall():
    """Held-out draw 20290715, "18.05.2019" over NM anatomy: unread ink 18 rows tall (the frame's text height)
    was snapped 43 rows tall into the tissue beside its line, 3% of the frame damaged with the rest. A snap
    more than one and a half lines tall is cut to the line's rows; a band of a line (a bar's edge cut its
    glyphs) still gets its line's whole height, and without a known text height nothing is cut."""
    from py_deid.pixels.step import _snap_unread

    class Tissue:
        def snap_clean(self, box):
            return (256, 77, 64, 43), True

    assert _snap_unread(Tissue(), (256, 90, 64, 18), [], 18) == (256, 90, 64, 18)
    assert _snap_unread(Tissue(), (256, 90, 64, 8), [], 18) == (256, 80, 64, 28)  # 10 rows each side at most
    assert _snap_unread(Tissue(), (256, 90, 64, 18), []) == (256, 77, 64, 43)
    assert _snap_unread(Tissue(), (256, 90, 64, 18), [], 30) == (256, 77, 64, 43)  # within 1.5 lines
