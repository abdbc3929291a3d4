"""Where the glyphs of a word are, from the pixels: the geometry of every mask, the same in both hosts.

OCR says what a word is; it does not say exactly where its ink is. Tesseract 5.5 (native) and 5.1 (tesseract.js
in the browser) box the same word a pixel or two apart, and either may cut the top rows of a glyph or take in a
speck of the next word. A mask drawn on OCR's box therefore depends on the engine, and can leave the edge of a
glyph readable. So every box OCR gives (a word to mask, a word whose ink is accounted for, ink no reading boxed)
is snapped to the glyphs it holds: the connected components of ink (8-connected, in a window around the box)
that lie mostly inside it, taken whole. Two engines that box a word differently still name the same glyphs, so
the masks are equal; and a mask never cuts a letter in half.

Ink is told from background by contrast with the window's median (ink is the lesser part of it), at a quarter of the strongest contrast inside the box: the anti-aliased rim is left to the mask's margin.
A component that reaches the window's edge is not a glyph (a ruler, a line of the image, speckle); of it only
what lies inside the box counts.

Pure Python over the rendered 8-bit frame (bytes.translate and bytes.find per row) in the browser; where the
host hands over numpy (the native host), the same pieces are labelled by array operations (`Glyphs(numpy=)`):
the same masks in both, tested piece for piece.
"""

from __future__ import annotations

from functools import lru_cache, partial

from ..hosts.services import GrayImage
from . import geometry
from .geometry import Box

MIN_CONTRAST = 24  # below this, nothing in the box stands out from the background: no glyph to snap to
INSIDE = 0.3  # share of a component's ink inside the box that makes it one of the box's glyphs
TALLEST = 2.5  # a glyph is at most this many times as tall as the box (a box may hold half a line, no less)


def label_runs(rows: list[bytes]) -> tuple[list[tuple[int, int, int]], list[int]]:
    """The runs of ink (bytes 1) in `rows`, as (row, start, end), and for each run the index of the first run
    of its 8-connected piece. Runs per row come from C-level find; each joins the runs of the row above that
    touch it, diagonals included (a union-find over runs, walking both rows' runs in order: speckle has
    hundreds of runs a row, and comparing each with every run above was most of a frame's time)."""
    parent: list[int] = []
    runs: list[tuple[int, int, int]] = []
    # The row above's runs as three lists (starts, ends, indices), each run joined as soon as it is found, the
    # root found inline (path halving): the same unions in the same order as a pass per row, with no call or
    # tuple look-up per comparison (a third of the time on the text screen's windows).
    a_s: list[int] = []
    a_e: list[int] = []
    a_i: list[int] = []
    for yy, row in enumerate(rows):
        c_s: list[int] = []
        c_e: list[int] = []
        c_i: list[int] = []
        j, na, n = 0, len(a_s), len(row)
        s = row.find(1)
        while s >= 0:
            e = row.find(0, s)
            if e < 0:
                e = n
            k = len(runs)
            parent.append(k)
            runs.append((yy, s, e))
            c_s.append(s)
            c_e.append(e)
            c_i.append(k)
            while j < na and a_e[j] < s:  # runs above that end before this one's left neighbour
                j += 1
            i, mine = j, k
            while i < na and a_s[i] <= e:  # touching, diagonals included
                a = a_i[i]
                while parent[a] != a:
                    parent[a] = parent[parent[a]]
                    a = parent[a]
                if a != mine:  # the later root points to the earlier: every parent comes before its child
                    if a < mine:
                        parent[mine] = mine = a
                    else:
                        parent[a] = mine
                i += 1
            s = row.find(1, e)
        a_s, a_e, a_i = c_s, c_e, c_i
    roots = parent[:]
    for k, p in enumerate(roots):
        roots[k] = roots[p]  # p <= k: its root is final already
    return runs, roots


def ink_pieces(rows: list[bytes]) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) of the 8-connected pieces of ink (bytes 1) in `rows`, in the order of their first
    run (top to bottom, left to right)."""
    runs, roots = label_runs(rows)
    boxes: dict[int, list[int]] = {}
    for (yy, s, e), r in zip(runs, roots):
        b = boxes.get(r)
        if b is None:
            boxes[r] = [s, e, yy, yy + 1]
        else:
            b[0], b[1], b[3] = min(b[0], s), max(b[1], e), yy + 1
    return [(x0, y0, x1 - x0, y1 - y0) for x0, x1, y0, y1 in boxes.values()]


_ASCII_BITS = bytes.maketrans(b"\x00\x01", b"01")


def ink_bits(rows: list[bytes]) -> tuple[int, int]:
    """Rows of 0/1 bytes (of one width) as (the big integer ink_boxes reads, its stride)."""
    stride = len(rows[0]) + 1 if rows else 1
    return (int(b"\x00".join(rows).translate(_ASCII_BITS)[::-1], 2) if rows and rows[0] else 0), stride


def ink_boxes(ink: int, stride: int) -> list[tuple[int, int, int, int]]:
    """ink_pieces of a window given as one big integer: pixel (x, y) is bit y * stride + x, and bit
    y * stride + stride - 1 is 0 (between rows: nothing joins across a row's end). Found by flood fill, a
    piece at a time from its first pixel in row order (the order of ink_pieces, its first run's): the piece
    grown eight ways and kept to the ink until it stops growing. A few C-level big-integer operations per
    step of growth instead of Python-level work per run: less than half the time on the text screen's glyph
    windows, where speckle makes hundreds of runs (tests/pixels/test_auto_cost.py checks it against
    ink_pieces). Pure Python: the browser decides alike."""
    row = (1 << stride) - 1
    out = []
    while ink:
        piece = ink & -ink
        while True:
            grown = piece | (piece << 1) | (piece >> 1)
            grown = (grown | (grown << stride) | (grown >> stride)) & ink
            if grown == piece:
                break
            piece = grown
        ink ^= piece
        top = ((piece & -piece).bit_length() - 1) // stride
        bottom = (piece.bit_length() - 1) // stride
        rest, across = piece >> (top * stride), 0
        for _ in range(bottom - top + 1):  # the piece's rows ORed into one: its columns
            across |= rest & row
            rest >>= stride
        left = (across & -across).bit_length() - 1
        out.append((left, top, across.bit_length() - left, bottom - top + 1))
    return out


_HIGH = bytes(v >> 4 for v in range(256))
_LOW = tuple(bytes(v & 15 if v >> 4 == high else 16 for v in range(256)) for high in range(16))


def _median(rows: list[bytes]) -> int:
    """The median value of the rows' pixels: the ground of a window (its ink is the lesser part). Not its most
    common value: flat ink on a noisy ground is more common than any one value of the noise.
    The first value whose count, with those of all lower values, passes half: its high four bits from the counts
    of the high halves, then its low four bits among the values with those high bits (two translates and at most
    32 C-level counts: a Counter of every pixel was a fifth of the Python time after a frame's OCR in the browser)."""
    joined = b"".join(rows)
    half, seen = len(joined) // 2, 0
    if not joined:
        return 0
    highs = joined.translate(_HIGH)
    for high in range(16):
        count = highs.count(high)
        if seen + count > half:
            break
        seen += count
    lows = joined.translate(_LOW[high])  # 16: another high half
    for low in range(16):
        seen += lows.count(low)
        if seen > half:
            return high << 4 | low
    return 0  # not reached: the counts add up to more than half


def _threshold(background: int, contrast: int) -> bytes | None:
    """The ink table of a window: 1 for values at least a quarter of the box's strongest contrast from the
    ground; None when nothing in the box stands out."""
    if contrast < MIN_CONTRAST:
        return None
    return _table(background, max(MIN_CONTRAST // 2, contrast // 4))


@lru_cache(maxsize=1024)
def _table(background: int, t: int) -> bytes:
    return bytes(1 if abs(v - background) >= t else 0 for v in range(256))


def _pieces_pure(img: GrayImage, window: Box, inside_box: tuple[int, int, int, int],
                 table: bytes | None) -> list[list[int]]:
    """The 8-connected pieces of ink in `window` of `img`, each [ink, ink inside, x0, y0, x1, y1] in window
    coordinates (ink inside: within `inside_box`, window coordinates (x0, y0, x1, y1)), in the order of their
    first run. `table`: the ink table, or None for the median rule (see the module's doc)."""
    wx, wy, ww, wh = window
    ix0, iy0, ix1, iy1 = inside_box
    width, px = img.width, img.pixels
    rows = [px[(wy + r) * width + wx:(wy + r) * width + wx + ww] for r in range(wh)]
    if table is None:
        background = _median(rows)
        contrast = 0
        for r in range(iy0, iy1):
            seg = rows[r][ix0:ix1]
            contrast = max(contrast, max(seg) - background, background - min(seg))
        table = _threshold(background, contrast)
        if table is None:
            return []
    runs, roots = label_runs([row.translate(table) for row in rows])
    comps: dict[int, list] = {}
    for (r, s, e), root in zip(runs, roots):
        inside = 0
        if iy0 <= r < iy1 and s < ix1 and e > ix0:
            inside = (e if e < ix1 else ix1) - (s if s > ix0 else ix0)
        c = comps.get(root)
        if c is None:  # runs come row by row: a piece's first run holds its top row
            comps[root] = [e - s, inside, s, r, e, r + 1]  # ink, ink inside, x0, y0, x1, y1
            continue
        c[0] += e - s
        c[1] += inside
        if s < c[2]:
            c[2] = s
        if e > c[4]:
            c[4] = e
        c[5] = r + 1
    return list(comps.values())


def _runs_numpy(np, ink):
    """The runs of ink (a 0/1 uint8 array) as arrays (row, start, end), row by row, left to right."""
    h, w = ink.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = ink
    # every row begins and ends at 0: its changes alternate, a run's start, then its end
    changes = np.flatnonzero(padded[:, 1:] != padded[:, :-1])
    rows, starts = np.divmod(changes[0::2], w + 1)
    return rows, starts, changes[1::2] - rows * (w + 1)


def _roots_numpy(np, rows, starts, ends, width: int):
    """label_runs' roots by array operations: for each run, the index of the first run of its 8-connected
    piece. The runs each run touches in the row above are found by binary search (runs are ordered by row, then
    column), then pieces are joined by hooking the larger label onto the smaller and halving paths until no
    two touching runs differ: labels only fall and stay within a piece, so each ends at its piece's first run."""
    n = len(rows)
    stride = width + 1  # past any column a run starts or ends at
    key_start, key_end = rows * stride + starts, rows * stride + ends
    lo = np.searchsorted(key_end, (rows - 1) * stride + starts, "left")  # first above ending at or past s - 1
    hi = np.searchsorted(key_start, (rows - 1) * stride + ends, "right")  # past the last above starting by e
    count = np.maximum(hi - lo, 0)
    total = int(count.sum())
    labels = np.arange(n)
    if not total:
        return labels
    first = np.cumsum(count) - count
    below = np.repeat(labels, count)
    above = np.arange(total) - np.repeat(first - lo, count)
    while True:
        a, b = labels[below], labels[above]
        differ = a != b
        if not differ.any():
            return labels
        below, above, a, b = below[differ], above[differ], a[differ], b[differ]
        np.minimum.at(labels, np.maximum(a, b), np.minimum(a, b))
        while True:
            jumped = labels[labels]
            if (jumped == labels).all():
                break
            labels = jumped


def _pieces_of(np, labels):
    """(the roots, ascending: the order of each piece's first run; each run's piece as an index into them)."""
    is_root = labels == np.arange(len(labels))
    return np.flatnonzero(is_root), (np.cumsum(is_root) - 1)[labels]


def _median_numpy(np, window) -> int:
    """_median of an array: the first value whose count, with those of all lower values, passes half."""
    cumulative = np.cumsum(np.bincount(window.ravel(), minlength=256))
    return int(np.searchsorted(cumulative, window.size // 2, "right"))


def _heights_numpy(np, ink) -> list[int]:
    """The height of each 8-connected piece of ink (a 0/1 array), as ink_pieces gives them."""
    rows, starts, ends = _runs_numpy(np, ink)
    if not len(rows):
        return []
    labels = _roots_numpy(np, rows, starts, ends, ink.shape[1])
    roots, piece = _pieces_of(np, labels)
    bottom = np.zeros(len(roots), np.int64)
    np.maximum.at(bottom, piece, rows + 1)
    return (bottom - rows[roots]).tolist()


def _pieces_numpy(np, window, inside_box: tuple[int, int, int, int], table: bytes | None) -> list[list[int]]:
    """_pieces_pure of the window's array (a view of the frame), by array operations: the same pieces, in
    the same order, with the same numbers."""
    ix0, iy0, ix1, iy1 = inside_box
    if table is None:
        background = _median_numpy(np, window)
        box = window[iy0:iy1, ix0:ix1]
        table = _threshold(background, max(0, int(box.max()) - background, background - int(box.min())))
        if table is None:
            return []
    ink = np.frombuffer(table, np.uint8)[window]
    rows, starts, ends = _runs_numpy(np, ink)
    if not len(rows):
        return []
    labels = _roots_numpy(np, rows, starts, ends, window.shape[1])
    roots, piece = _pieces_of(np, labels)
    k = len(roots)
    within = (rows >= iy0) & (rows < iy1) & (starts < ix1) & (ends > ix0)
    inside = np.where(within, np.minimum(ends, ix1) - np.maximum(starts, ix0), 0)
    ink_sum = np.bincount(piece, weights=ends - starts, minlength=k).astype(np.int64)
    inside_sum = np.bincount(piece, weights=inside, minlength=k).astype(np.int64)
    x0 = np.full(k, window.shape[1], np.int64)
    np.minimum.at(x0, piece, starts)
    x1 = np.zeros(k, np.int64)
    np.maximum.at(x1, piece, ends)
    y1 = np.zeros(k, np.int64)
    np.maximum.at(y1, piece, rows + 1)
    return [list(c) for c in zip(ink_sum.tolist(), inside_sum.tolist(), x0.tolist(), rows[roots].tolist(),
                                 x1.tolist(), y1.tolist())]


def _grow_pure(rest: list[tuple[int, int, int, int]], box: tuple[int, int, int, int], gap: int,
               limit: float) -> tuple[int, int, int, int]:
    """The glyphs' box (x0, y0, x1, y1) grown by the pieces of `rest` within `gap` of it, one at a time: the
    first in order that touches it joins, and the look starts over. A piece that would make it taller than
    `limit` never joins (a chain of grains down the speckle, not a glyph of this line)."""
    x0, y0, x1, y1 = box
    rest = list(rest)
    while True:
        for k, (a0, b0, a1, b1) in enumerate(rest):
            if (y1 if y1 > b1 else b1) - (y0 if y0 < b0 else b0) > limit:
                continue
            if b0 < y1 and y0 < b1 and a0 < x1 + gap and x0 - gap < a1 or (
                    a0 < x1 and x0 < a1 and b0 < y1 + gap and y0 - gap < b1):
                x0, y0, x1, y1 = min(x0, a0), min(y0, b0), max(x1, a1), max(y1, b1)
                rest.pop(k)
                break
        else:
            return x0, y0, x1, y1


def _grow_numpy(np, rest: list[tuple[int, int, int, int]], box: tuple[int, int, int, int], gap: int,
                limit: float) -> tuple[int, int, int, int]:
    """_grow_pure with every piece looked at at once: the box only grows, so a piece too tall to join stays
    so, and of those left the first that touches joins."""
    x0, y0, x1, y1 = box
    a0, b0, a1, b1 = np.array(rest, np.int64).T
    left = np.ones(len(rest), bool)
    rest = [tuple(r) for r in rest]
    while True:
        left &= np.maximum(b1, y1) - np.minimum(b0, y0) <= limit
        touch = left & ((b0 < y1) & (y0 < b1) & (a0 < x1 + gap) & (x0 - gap < a1)
                        | (a0 < x1) & (x0 < a1) & (b0 < y1 + gap) & (y0 - gap < b1))
        joining = np.flatnonzero(touch).tolist()
        if not joining:
            return x0, y0, x1, y1
        # While a joining piece leaves the box as it was, which pieces touch it is unchanged: the next of them
        # joins without another look.
        for k in joining:
            left[k] = False
            c0, d0, c1, d1 = rest[k]
            if c0 < x0 or d0 < y0 or c1 > x1 or d1 > y1:
                x0, y0, x1, y1 = min(x0, c0), min(y0, d0), max(x1, c1), max(y1, d1)
                break


class Glyphs:
    """Snaps boxes of one rendered frame to the glyphs they hold (see the module's doc)."""

    def __init__(self, image: GrayImage, numpy=None) -> None:
        """`numpy`: the host's numpy module, if it has one: the same pieces, labelled by array operations."""
        self.image = image
        self._np = numpy
        self._array = None if numpy is None else numpy.frombuffer(image.pixels, numpy.uint8).reshape(
            image.height, image.width)
        self._cache: dict[Box, tuple[Box | None, bool]] = {}
        self._clean = True

    def snap(self, box: Box) -> Box | None:
        """The box of the glyphs `box` holds; None when it holds no ink (then the caller keeps its own box)."""
        return self.snap_clean(box)[0]

    def snap_clean(self, box: Box) -> tuple[Box | None, bool]:
        """(snap(box), whether every ink component it holds is a whole glyph). False when one reached past the
        window (text over anatomy or speckle, a noisy ground): then the glyphs' edges are not known and a
        caller that must hide the word adds OCR's box with a margin."""
        box = tuple(int(v) for v in box)
        if box not in self._cache:
            self._clean = True
            self._cache[box] = (self._snap(box), self._clean)
        return self._cache[box]

    def snap_or_keep(self, box: Box) -> Box:
        return self.snap(box) or box

    def snap_at(self, box: Box, key: tuple[str, int]) -> tuple[Box | None, bool]:
        """snap_clean with ink told from ground at a fixed threshold, as the text detector found the line
        (`key`: ("light", t) for ink >= t, ("dark", t) for ink < t): white text straddling the edge of a grey
        bar over a dark image has no one background for the median rule, but at the detector's threshold its
        glyphs stand apart from both."""
        kind, t = key
        table = bytes((1 if v >= t else 0) if kind == "light" else (1 if v < t else 0) for v in range(256))
        box = tuple(int(v) for v in box)
        self._clean = True
        return self._snap(box, table), self._clean

    def _snap(self, box: Box, table: bytes | None = None) -> Box | None:
        img = self.image
        width, height = img.width, img.height
        inner = geometry.clip(box, width, height)
        if not inner:
            return None
        h = inner[3]
        # Room for whole glyphs around a box that holds a sliver of them (a reading of half a line: OCR of a
        # region whose edge cut the line boxes its lower half as a word of its own).
        window = geometry.clip(geometry.grow(inner, max(6, 2 * h), max(6, 2 * h)), width, height)
        wx, wy, ww, wh = window
        ix0, iy0 = inner[0] - wx, inner[1] - wy
        inside_box = (ix0, iy0, ix0 + inner[2], iy0 + inner[3])
        if self._np is None:
            comps = _pieces_pure(img, window, inside_box, table)
        else:
            comps = _pieces_numpy(self._np, self._array[wy:wy + wh, wx:wx + ww], inside_box, table)
        if not comps:
            return None
        ix1, iy1 = inside_box[2], inside_box[3]
        picked, rest = [], []
        through = False
        for ink, inside, x0, y0, x1, y1 in comps:
            edge = x0 == 0 or y0 == 0 or x1 == ww or y1 == wh
            if not inside or inside < INSIDE * ink:
                if not edge:
                    rest.append((x0, y0, x1, y1))
                elif inside:
                    through = True  # image content or a bar's edge runs through the box (see below)
                continue
            if edge or y1 - y0 > TALLEST * h:
                # reaches the window's edge, or is far taller than a line the box could be part of (a grain of
                # speckle joined to its neighbours): not a glyph; only its part inside the box counts
                self._clean = False
                x0, y0, x1, y1 = max(x0, ix0), max(y0, iy0), min(x1, ix1), min(y1, iy1)
                if x1 <= x0 or y1 <= y0:
                    continue
            picked.append((x0, y0, x1, y1))
        if not picked:
            return None
        # Glyphs closer to the word than the space between letters are part of it: punctuation OCR left out of
        # its box ("HASSAN" of "HASSAN,"), an accent, the dot of an i.
        # Small marks only near the word, and letters only on its line: on speckle every grain is a component
        # within a letter's gap of the next, and a chain of them would carry the mask across the image.
        x0, y0 = min(p[0] for p in picked), min(p[1] for p in picked)
        x1, y1 = max(p[2] for p in picked), max(p[3] for p in picked)
        tall = y1 - y0
        gap = max(1, round(0.15 * tall))
        reach = max(2, tall // 2)

        def joins(r) -> bool:
            if x0 - reach <= r[0] and y0 - reach <= r[1] and r[2] <= x1 + reach and r[3] <= y1 + reach:
                return True
            h = r[3] - r[1]  # a letter of the same line (the rest of a word its box cut)
            return 0.5 * tall <= h <= 1.5 * tall and min(r[3], y1) - max(r[1], y0) >= 0.5 * h
        rest = [r for r in rest if joins(r)]
        grow = _grow_pure if self._np is None or len(rest) < 16 else partial(_grow_numpy, self._np)
        x0, y0, x1, y1 = grow(rest, (x0, y0, x1, y1), gap, TALLEST * h)
        if through and x1 - x0 < 0.6 * inner[2]:
            # The word's glyphs may be part of what ran through the box (light grey text straddling the bottom
            # of a grey title bar joins the bar): the glyphs picked cover little of it, so they are not known
            # to be the whole word.
            self._clean = False
        return (wx + x0, wy + y0, x1 - x0, y1 - y0)

    def text_shaped(self, box: Box) -> bool:
        """Whether the ink in `box` breaks into glyph-sized pieces, as a word does, rather than into grains, as
        speckle and tissue do: at least half of its connected components (within the box, at the snap's
        threshold) are 0.3 of the box's height or taller. A letter is one piece or two (the dot of an i, a
        colon's dots); speckle at the same contrast is dozens of small grains."""
        inner = geometry.clip(box, self.image.width, self.image.height)
        if not inner:
            return False
        x, y, w, h = inner
        width, px = self.image.width, self.image.pixels
        window = geometry.clip(geometry.grow(inner, h, h), width, self.image.height)
        wx, wy, ww, wh = window
        if self._np is not None:
            np, frame = self._np, self._array
            background = _median_numpy(np, frame[wy:wy + wh, wx:wx + ww])
            ink = frame[y:y + h, x:x + w]
            contrast = max(int(ink.max()) - background, background - int(ink.min()))
            if contrast < MIN_CONTRAST:
                return False
            tall = _heights_numpy(np, np.frombuffer(_threshold(background, contrast), np.uint8)[ink])
        else:
            background = _median([px[(wy + r) * width + wx:(wy + r) * width + wx + ww] for r in range(wh)])
            rows = [px[(y + r) * width + x:(y + r) * width + x + w] for r in range(h)]
            contrast = max(max(max(r) - background, background - min(r)) for r in rows)
            if contrast < MIN_CONTRAST:
                return False
            table = _threshold(background, contrast)
            tall = [piece[3] for piece in ink_pieces([row.translate(table) for row in rows])]
        big = sum(1 for t in tall if t >= 0.3 * h)
        return big >= 1 and 2 * big >= len(tall)

