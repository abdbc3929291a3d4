"""The rest of a masked line over image content: strokes that go on beside a masked PHI word where no reading
boxed them and the text screen did not find them.

A date written across the edge of anatomy ("23-JAN-2019" with "-JAN-" over bright tissue) is read in part
("2019"); the rest is neither read (Tesseract's layout analysis takes it for part of the image) nor found by
the screen (the tissue under it takes away the flat ground the screen needs). Its glyphs are still there:
strokes as bright (or as dark) as the masked word's own, and as long as a good part of its letters' height,
where a grain of tissue is a pixel or two. So, beside a masked word and along its rows, the columns that
hold such strokes are the rest of its line, up to a gap wider than a wide space, a word read clearly as something
that stays, or a dozen letters. Only over image content: on a plain ground the screen and OCR see the rest
of a line, and a setting next to a name must not go with it.

Pure Python over the rendered 8-bit frame, like pixels.glyphs: the same masks in both hosts.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..hosts.services import GrayImage, Word
from . import geometry
from .geometry import Box

REACH = 12  # at most this many text heights beside the word (a date and a time)
GAP = 2.0  # a gap wider than this many text heights ends the line (a space is half a height to 1.6 cap heights)
SPACE = 0.5  # a gap this wide or wider between strokes is a space: the words either side are masked apart
STROKE = 0.35  # a stroke is at least this share of the text height long (across or down)
CLEAR = 60  # a reading at this confidence or more that stays (technical, kept) stops the line


def _ink_table(image: GrayImage, box: Box) -> bytes | None:
    """Ink as the word's own strokes are: within a sixth of the box's contrast of its lightest value, or of its
    darkest where the ground around the box (the rows just above and below it) is nearer the lightest; None
    when the box shows no contrast."""
    w, h = image.width, image.height
    x, y, bw, bh = box
    values = b"".join(image.pixels[r * w + x:r * w + x + bw] for r in range(y, y + bh))
    if not values:
        return None
    lo, hi = min(values), max(values)
    if hi - lo < 48:
        return None
    around = sorted(b"".join(image.pixels[r * w + x:r * w + x + bw] for r in (y - 2, y + bh + 1) if 0 <= r < h))
    ground = around[len(around) // 2] if around else (lo + hi) // 2
    if hi - ground >= ground - lo:
        return bytes(1 if v >= hi - (hi - lo) // 6 else 0 for v in range(256))
    return bytes(1 if v <= lo + (hi - lo) // 6 else 0 for v in range(256))


def _stroke_columns(image: GrayImage, table: bytes, x0: int, x1: int, y: int, h: int) -> list[bool]:
    """For each column of [x0, x1) over rows [y, y + h): whether it holds part of a stroke (a vertical run of
    ink, or a horizontal one through it, at least STROKE of the text height long).

    Each row of ink (bytes 0/1) is read as one integer, a byte a column, so a column's run of `need` rows is an
    AND of `need` rows, and a row's run of `need` columns an AND of the row shifted by a byte at a time, spread
    back over the columns it covers: integer operations in C instead of a step per pixel."""
    w = image.width
    need = max(3, round(STROKE * h))
    n = x1 - x0
    rows = [int.from_bytes(image.pixels[r * w + x0:r * w + x1].translate(table), "big") for r in range(y, y + h)]
    full = (1 << (8 * n)) - 1
    found = 0
    for k in range(len(rows) - need + 1):  # columns with ink in `need` rows running from row k
        run = rows[k]
        for row in rows[k + 1:k + need]:
            run &= row
            if not run:
                break
        found |= run
    for row in rows:  # columns in a run of `need` along a row: where such runs start, then what they cover
        starts = row
        for shift in range(8, 8 * need, 8):
            starts &= row << shift
            if not starts:
                break
        starts &= full
        if starts:
            covered = starts
            for shift in range(8, 8 * need, 8):
                covered |= starts >> shift
            found |= covered
    return [b != 0 for b in found.to_bytes(n, "big")] if n > 0 else []


def _extent(image: GrayImage, table: bytes, box: Box, step: int, stops: Sequence[Box]) -> list[Box]:
    """The stroke-bearing columns beside `box` on the side `step` (-1 left, +1 right), as boxes of its rows:
    one per word (the columns holding any ink between the first and last stroke, split where a space of none
    is; the spaces are not text to hide)."""
    x, y, bw, h = box
    reach = REACH * h
    if step < 0:
        a, b = max(0, x - reach), x
    else:
        a, b = x + bw, min(image.width, x + bw + reach)
    for s in stops:  # a word that stays ends the line before it
        if step < 0 and geometry.right(s) <= x:
            a = max(a, geometry.right(s))
        elif step > 0 and s[0] >= x + bw:
            b = min(b, s[0])
    if b - a < 1:
        return []
    strokes = _stroke_columns(image, table, a, b, y, h)
    order = range(len(strokes) - 1, -1, -1) if step < 0 else range(len(strokes))
    gap, taken = 0, []
    for c in order:
        if strokes[c]:
            gap = 0
            taken.append(c)
        else:
            gap += 1
            if gap > GAP * h:
                break
    if not taken:
        return []
    # Words: runs of columns holding any ink (a V's slant is ink but no stroke), split at a space of none.
    lo, hi = min(taken), max(taken)
    w = image.width
    ink = 0  # the rows' ink ORed together, a byte a column (as in _stroke_columns)
    for r in range(y, y + h):
        ink |= int.from_bytes(image.pixels[r * w + a + lo:r * w + a + hi + 1].translate(table), "big")
    inked = [b != 0 for b in ink.to_bytes(hi - lo + 1, "big")]
    words: list[list[int]] = []
    blank = 0
    for c, ink in enumerate(inked):
        if not ink:
            blank += 1
            continue
        if words and blank < SPACE * h:
            words[-1][1] = c
        else:
            words.append([c, c])
        blank = 0
    return [(a + lo + c0, y, c1 - c0 + 1, h) for c0, c1 in words]


def rest_of_lines(image: GrayImage, masked: Sequence[Box], stays: Sequence[Word],
                  content: Sequence[Box], height: int = 0) -> list[Box]:
    """Boxes to mask beside masked words' boxes (`masked`: PHI words, snapped to their glyphs) where their line
    goes on over image content (`content`) in strokes like theirs. `stays`: the words read that stay unmasked; one read
    clearly on the line ends it. `height`: the frame's usual text height; a masked box far taller (a reading
    that took in the speckle under a line) has no one line to follow."""
    out = []
    for box in masked:
        box = geometry.clip(box, image.width, image.height)
        if not box or box[3] < 6 or height and box[3] > 1.5 * height:
            continue
        table = _ink_table(image, box)
        if table is None:
            continue
        h = box[3]
        stops = [geometry.word_box(w) for w in stays if w.confidence >= CLEAR
                 and sum(c.isalnum() for c in w.text) >= 2
                 and min(geometry.bottom(box), w.top + w.height) - max(box[1], w.top) >= 0.5 * min(h, w.height)]
        for step in (-1, 1):
            words = _extent(image, table, box, step, stops)
            if words and geometry.mostly_within(geometry.union(words), content):
                out += words
    return out
