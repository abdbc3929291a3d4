"""Preparing a gray image for Tesseract, in pure Python: smooth 2x enlargement and a quiet border.

Tesseract's LSTM reads 8-10 px annotation fonts far better when they are enlarged smoothly (nearest-neighbour
blocks turn "0" into "@"), and it drops glyphs that touch the image edge. Both operations work on whole
buffers: averages of two byte strings come from one big-integer addition of the halved bytes (each half is at
most 127, so no carry crosses into the next byte), interleaving is a slice assignment.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter

from ..hosts.services import GrayImage

_HALF = bytes(v >> 1 for v in range(256))


def _average(a: bytes, b: bytes) -> bytes:
    n = len(a)
    total = int.from_bytes(a.translate(_HALF), "little") + int.from_bytes(b.translate(_HALF), "little")
    return total.to_bytes(n, "little")


def enlarge2(image: GrayImage, numpy=None) -> GrayImage:
    """2x enlargement with linear interpolation between neighbours (rows, then columns). `numpy`: the host's
    numpy module, if it has one: the same bytes by array operations."""
    w, h, px = image.width, image.height, image.pixels
    if w == 0 or h == 0:
        return image
    if numpy is not None:
        return _enlarge2_numpy(numpy, image)
    # Columns: each pixel followed by the mean of itself and its right neighbour (the last column repeats).
    right = bytearray(px[1:] + px[-1:])
    right[w - 1::w] = px[w - 1::w]
    wide = bytearray(2 * len(px))
    wide[0::2] = px
    wide[1::2] = _average(px, bytes(right))
    w2 = 2 * w
    wide = bytes(wide)
    # Rows: each row followed by the mean of itself and the next row (the last row repeats).
    below = wide[w2:] + wide[-w2:]
    mid = _average(wide, below)
    out = bytearray(2 * len(wide))
    for r in range(h):
        out[2 * r * w2:(2 * r + 1) * w2] = wide[r * w2:(r + 1) * w2]
        out[(2 * r + 1) * w2:(2 * r + 2) * w2] = mid[r * w2:(r + 1) * w2]
    return GrayImage(w2, 2 * h, bytes(out))


def _enlarge2_numpy(np, image: GrayImage) -> GrayImage:
    w, h = image.width, image.height
    px = np.frombuffer(image.pixels, np.uint8).reshape(h, w)
    right = np.empty_like(px)
    right[:, :-1], right[:, -1] = px[:, 1:], px[:, -1]
    wide = np.empty((h, 2 * w), np.uint8)
    wide[:, 0::2] = px
    wide[:, 1::2] = (px >> 1) + (right >> 1)
    below = np.empty_like(wide)
    below[:-1], below[-1] = wide[1:], wide[-1]
    out = np.empty((2 * h, 2 * w), np.uint8)
    out[0::2] = wide
    out[1::2] = (wide >> 1) + (below >> 1)
    return GrayImage(2 * w, 2 * h, out.tobytes())


def enlarge(image: GrayImage, factor: int, numpy=None) -> GrayImage:
    """Smooth enlargement by 1, 2 or 4."""
    if factor not in (1, 2, 4):
        raise ValueError("smooth enlargement is by 1, 2 or 4")
    while factor > 1:
        image = enlarge2(image, numpy)
        factor //= 2
    return image


def edge_value(image: GrayImage) -> int:
    """The commonest value on the image's border: the background a quiet border should repeat."""
    w, h, px = image.width, image.height, image.pixels
    edge = px[:w] + px[(h - 1) * w:] + px[0::w] + px[w - 1::w]
    return Counter(edge).most_common(1)[0][0] if edge else 0


_INVERTED = bytes(range(255, -1, -1))


def dark_on_light(image: GrayImage) -> GrayImage:
    """The image with a dark ground turned light. Tesseract's recogniser is trained on dark text on a light
    ground and reads a line of the other polarity twice (a second try, inverted, when the first is unsure:
    `tessedit_do_invert`). Text burned into medical images is mostly light on a dark ground, so it is sent
    inverted and read once (a third less OCR time on the evaluation set); the retry stays for lines of the
    other polarity (dark text on a light bar)."""
    if image.pixels and edge_value(image) < 128:
        return GrayImage(image.width, image.height, image.pixels.translate(_INVERTED))
    return image


def pad(image: GrayImage, border: int, value: int | None = None) -> GrayImage:
    """The image inside a border of `border` pixels of its background."""
    if border <= 0:
        return image
    value = edge_value(image) if value is None else value
    w, h = image.width, image.height
    w2 = w + 2 * border
    fill = bytes([value])
    side = fill * border
    blank = fill * (w2 * border)
    rows = [image.pixels[r * w:(r + 1) * w] for r in range(h)]
    body = b"".join(side + row + side for row in rows)
    return GrayImage(w2, h + 2 * border, blank + body + blank)


def textured_tiles(image: GrayImage, tile: int = 32, share: float = 0.3) -> list[tuple]:
    """Tiles that look like image content (speckle, anatomy) rather than text on a flat background. Text is
    two values (background and ink, the tile's median and one extreme) and the anti-aliased edges between
    them; tissue spreads over its whole range: more than `share` of a sample of the tile's pixels lie further
    than an eighth of that range (8 to 16 levels) from its median, its darkest and its lightest value."""
    w, h, px = image.width, image.height, image.pixels
    out = []
    for y in range(0, h, tile):
        rows = range(y, min(h, y + tile), 4)
        for x in range(0, w, tile):
            x1 = min(w, x + tile)
            sample = b"".join(px[r * w + x:r * w + x1:2] for r in rows)
            if len(sample) < 8:
                continue
            ordered = sorted(sample)
            lo, m, hi = ordered[0], ordered[len(ordered) // 2], ordered[-1]
            spread = max(8, min(16, (hi - lo) // 8))
            # far from all three: (lo + spread, m - spread) or (m + spread, hi - spread), counted in the sorted
            # sample by bisection (a test per pixel was a fifth of the reader's own time)
            far = (max(0, bisect_left(ordered, m - spread) - bisect_right(ordered, lo + spread))
                   + max(0, bisect_left(ordered, hi - spread) - bisect_right(ordered, m + spread)))
            if far > share * len(sample):
                out.append((x, y, x1 - x, min(h, y + tile) - y))
    return out


def blank(image: GrayImage, boxes, value: int) -> GrayImage:
    """A copy of the image with the boxes filled with `value`."""
    w = image.width
    out = bytearray(image.pixels)
    for x, y, bw, bh in boxes:
        fill = bytes([value]) * bw
        for r in range(y, y + bh):
            out[r * w + x:r * w + x + bw] = fill
    return GrayImage(w, image.height, bytes(out))


_INK_FROM = 40  # levels from a row's background that count as ink where two backgrounds meet


def _row_median(px: bytes, w: int, rows: range) -> int:
    sample = sorted(b"".join(px[r * w:(r + 1) * w:4] for r in rows))
    return sample[len(sample) // 2] if sample else 0


def _ink_table(background: int) -> bytes:
    return bytes(1 if abs(v - background) > _INK_FROM else 0 for v in range(256))


def _ink_columns(row: bytes, table: bytes) -> int:
    """The columns of a row holding ink, as the bits of an integer."""
    return int.from_bytes(row.translate(table), "little")


def straddling(image: GrayImage, band: tuple, limit: int = 32) -> list[tuple[tuple, int, int, int, bool]]:
    """Text lines that cross an edge of a band (a grey bar's last rows and the dark frame under it): each as
    (the rows it spans, full width; the band's background; the other side's; the edge row; whether the band
    is above it). Read as they are, such a line is two half lines, neither legible whatever the threshold;
    `flattened` makes it one."""
    w, h, px = image.width, image.height, image.pixels
    _, y, _, bh = band
    out = []
    for edge, inside, outside in ((y + bh, range(y, y + bh), range(y + bh, min(h, y + bh + limit))),
                                  (y, range(y, y + bh), range(max(0, y - limit), y))):
        if not outside or not 0 < edge < h:
            continue
        bg_in, bg_out = _row_median(px, w, inside), _row_median(px, w, outside)
        t_in, t_out = _ink_table(bg_in), _ink_table(bg_out)
        below = edge == y + bh
        row_in, row_out = (edge - 1, edge) if below else (edge, edge - 1)
        a = _ink_columns(px[row_in * w:(row_in + 1) * w], t_in)
        b = _ink_columns(px[row_out * w:(row_out + 1) * w], t_out)
        if bin(a & (b | b << 8 | b >> 8)).count("1") < 2:  # glyphs that go on across the edge
            continue
        def inked(r: int) -> bool:
            table = t_in if (r < edge) == below else t_out
            return bin(_ink_columns(px[r * w:(r + 1) * w], table)).count("1") >= 2
        top, bottom = edge - 1, edge
        while top > max(0, edge - limit) and inked(top - 1):
            top -= 1
        while bottom < min(h, edge + limit) - 1 and inked(bottom + 1):
            bottom += 1
        top, bottom = max(0, top - 3), min(h - 1, bottom + 3)
        out.append(((0, top, w, bottom - top + 1), bg_in, bg_out, edge, below))
    return out


def flattened(image: GrayImage, rect: tuple, edge: int, bg_band: int, bg_other: int, band_above: bool) -> GrayImage:
    """The rectangle with each side of the edge measured from its own background: dark ink on white on both
    sides, so that one threshold serves a line half on a grey bar and half on black."""
    w, px = image.width, image.pixels
    x, y, rw, rh = rect
    tables = {bg: bytes(255 - min(255, 3 * abs(v - bg)) for v in range(256)) for bg in {bg_band, bg_other}}
    rows = []
    for r in range(y, y + rh):
        in_band = (r < edge) == band_above
        rows.append(px[r * w + x:r * w + x + rw].translate(tables[bg_band if in_band else bg_other]))
    return GrayImage(rw, rh, b"".join(rows))
