"""A cheap test for text in a frame, without OCR: does any part of it look like a line of glyphs?

A line of text, cut at a threshold between its ink and its background, is a band of rows (about a glyph's
height) in which every row crosses several strokes, with quiet rows (no stroke) just above and below it.
Image content does not look like that at any threshold: tissue and speckle make bands far taller than a line,
or rows with a single edge. The test runs at several thresholds, for light ink and for dark ink, on columns
of the frame 64 px wide (a line of text rarely spans a whole frame; a column of it is enough), and only with
C-level byte operations per row and column (bytes.translate, bytes.count): it runs in the browser as it does
natively.

It answers which columns and rows hold candidate lines, so a caller can both skip OCR on frames without text
and know where to look. Cleaning does not depend on it being right about text it finds: a false alarm costs
an OCR pass, nothing else. A miss is what matters, so it errs towards finding text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hosts.services import GrayImage
from . import compiled, geometry
from .geometry import Box
from .glyphs import ink_boxes

COLUMN = 64  # px: columns of the frame tested on their own
MIN_LINE, MAX_LINE = 4, 48  # rows of a band that can be a line of glyphs (about 6 to 60 px type)
QUIET_ROWS = 2  # quiet rows needed on each side of a band, within 6 rows of it
BUSY = 3  # strokes in a row of a column that make it part of a line (a column holds two glyphs or more)
LIGHT = (64, 112, 160, 208, 240)  # thresholds for light ink on a darker ground (the usual annotation)
DARK = (48, 96, 144, 192)  # and for dark ink on a lighter ground (screen captures, reports)


def _tables() -> dict[tuple[str, int], bytes]:
    out = {}
    for t in LIGHT:
        out[("light", t)] = bytes(1 if v >= t else 0 for v in range(256))
    for t in DARK:
        out[("dark", t)] = bytes(1 if v < t else 0 for v in range(256))
    return out


_BINARY = _tables()
_START = b"\x00\x01"  # the left edge of a stroke


def candidate_lines(image: GrayImage, *, first_only: bool = False, numpy=None) -> list[Box]:
    """Boxes (x, y, w, h) of pieces of lines (a band of glyph-like rows in one column, narrowed to its ink), at
    any threshold (one line can give a piece at several), not merged; [] if none.
    `first_only`: stop at the first one found (enough to decide that OCR must run). `numpy`: the host's numpy
    module, if it has one (the same pieces, found faster)."""
    return [box for box, _ in candidate_pieces(image, first_only=first_only, numpy=numpy)]


def candidate_pieces(image: GrayImage, *, first_only: bool = False,
                     numpy=None) -> list[tuple[Box, tuple[str, int]]]:
    """candidate_lines with the threshold each piece was found at (what ink_outside needs)."""
    w, h, px = image.width, image.height, image.pixels
    if w < 8 or h < MIN_LINE + 2:
        return []
    columns = _columns(w)
    if numpy is not None:
        return _pieces_numpy(numpy, px, w, h, columns, first_only)
    found: list[tuple[Box, tuple[str, int]]] = []
    for key, possible in _possible(px, w, h, columns).items():
        binary = px.translate(_BINARY[key])
        for (x0, x1), counts, rows in possible:
            # strokes per row of this column; a stroke touching the column's left edge counts too (rows the
            # screen below rules out keep 0 if quiet, else 1: not busy)
            for y in rows:
                counts[y] = binary.count(_START, y * w + x0, y * w + x1) + (binary[y * w + x0] == 1)
            for y0, y1 in _bands(counts, rows):
                found.append((_ink_extent(binary, w, x0, x1, y0, y1), key))
                if first_only:
                    return found
    return found


def _columns(w: int) -> list[tuple[int, int]]:
    columns = [(x, min(w, x + COLUMN)) for x in range(0, w, COLUMN)]
    if len(columns) > 1 and columns[-1][1] - columns[-1][0] < COLUMN // 2:
        columns[-2] = (columns[-2][0], w)  # a thin last column joins its neighbour
        columns.pop()
    return columns


# ---- the screen before the count ------------------------------------------------------------------------
# Counting strokes row by row is a Python-level call per row, column and threshold. Most of those can be ruled
# out from the quiet rows alone (a row of a column is quiet, count 0, exactly when none of its pixels is ink):
# a band is a run of rows from a busy row with two quiet rows among the six above it to a busy row 3 to 47 rows
# further down with two quiet rows among the six below it, with no two quiet rows in a row between them (two
# non-busy rows end a band). Quiet rows are found for all thresholds at once: each pixel becomes a byte whose
# bits are its ink at eight thresholds (a second byte for the ninth), OR-ed over each column's width by
# doubling (shift and OR of one big integer). The rule then runs on one byte per row and column, its bits the
# thresholds, with shifts and masks of a small integer, and gives the rows that can belong to such a run (and
# two rows around them, which decide where a run starts and ends). Only those rows are counted; every other
# row is quiet (count 0) or taken as not busy, which changes no band: the pieces found are exactly those of
# counting every row (tests/pixels/test_text_presence.py checks this against an independent count).
_ORDER = [("light", t) for t in LIGHT] + [("dark", t) for t in DARK]  # _BINARY's order
_PACKS = [_ORDER[:8], _ORDER[8:]]
_PACK_TABLES = [bytes(sum(_BINARY[key][v] << b for b, key in enumerate(pack)) for v in range(256))
                for pack in _PACKS]
_BIT = [bytes(v >> b & 1 for v in range(256)) for b in range(8)]
_PAD = 7  # quiet rows between columns (the frame's edge counts as quiet; bands never cross two quiet rows)


def _possible(px: bytes, w: int, h: int, columns: list[tuple[int, int]]) -> dict[tuple[str, int], list]:
    """{threshold key: [(column, counts with 0/1 for quiet/not quiet, rows to count)]} for the columns where a
    band at that threshold is not ruled out, in _BINARY's order."""
    out: dict[tuple[str, int], list] = {}
    stride = h + _PAD
    for pack, table in zip(_PACKS, _PACK_TABLES):
        packed = px.translate(table)
        if not packed.strip(b"\0"):
            continue
        rows = _or_columns(packed, w, h, columns)
        ink = bytes(rows)
        hits, span = _band_rule(int.from_bytes(ink, "little"), len(ink))
        if not hits:
            continue
        hit_rows, span_rows = hits.to_bytes(len(ink), "little"), span.to_bytes(len(ink), "little")
        for b, key in enumerate(pack):
            for k, column in enumerate(columns):
                first = _PAD + k * stride
                if not hit_rows[first:first + h].translate(_BIT[b]).count(1):
                    continue
                todo = span_rows[first:first + h].translate(_BIT[b])
                out.setdefault(key, []).append((column, list(ink[first:first + h].translate(_BIT[b])), _ones(todo)))
    return {key: out[key] for key in _ORDER if key in out}


def _or_columns(packed: bytes, w: int, h: int, columns: list[tuple[int, int]]) -> bytearray:
    """One byte per row of each column (after _PAD quiet rows, and _PAD after each column): the OR of the
    row's packed bytes in that column, i.e. the thresholds at which it holds ink."""
    n = w * h
    widths = {x1 - x0 for x0, x1 in columns}
    need = max(widths).bit_length()
    rows = bytearray(_PAD)
    if widths == {COLUMN} and w % COLUMN == 0:
        # whole columns of 64: OR neighbouring bytes and keep one of each pair, six times (the data halves
        # each time): byte y * (w // 64) + c is then the OR of row y of column c
        cur = packed
        for _ in range(6):
            cur = (int.from_bytes(cur[0::2], "little") | int.from_bytes(cur[1::2], "little")).to_bytes(
                len(cur) // 2, "little")
        for c in range(len(columns)):
            rows += cur[c::len(columns)] + bytes(_PAD)
    else:
        # levels[j]: byte i holds the OR of pixels i .. i + 2**j - 1 (within the frame's bytes)
        levels = {0: packed}
        cur = int.from_bytes(packed, "little")
        for j in range(1, need):
            cur |= cur >> (8 << (j - 1))
            if any(wd >> j & 1 for wd in widths):
                levels[j] = cur.to_bytes(n, "little")
        for x0, x1 in columns:
            acc, x = 0, x0
            for j in range(need - 1, -1, -1):
                if (x1 - x0) >> j & 1:
                    acc |= int.from_bytes(levels[j][x::w], "little")
                    x += 1 << j
            rows += acc.to_bytes(h, "little") + bytes(_PAD)
    return rows


def _ones(flags: bytes) -> list[int]:
    out = []
    y = flags.find(1)
    while y >= 0:
        out.append(y)
        y = flags.find(1, y + 1)
    return out


def _band_rule(ink: int, length: int) -> tuple[int, int]:
    """(bytes (rows) where a band that the quiet rows allow can end, the rows such bands can span and two
    around them), each bit a threshold; (0, 0) if there is no such band."""
    full = (1 << (8 * length)) - 1
    quiet = ink ^ full
    above = above2 = below = below2 = 0  # >= 1 and >= 2 quiet rows among the six above (below)
    for k in range(1, 7):
        up, down = (quiet << (8 * k)) & full, quiet >> (8 * k)
        above2 |= above & up
        above |= up
        below2 |= below & down
        below |= down
    starts, ends = ink & above2, ink & below2
    if not starts or not ends:
        return 0, 0
    open_ = full ^ (quiet & (quiet >> 8))  # rows that do not begin a pair of quiet rows
    reach = after = starts  # after: rows reached from a start (within a band's length, no pair of quiet rows)
    hits = 0
    for k in range(1, MAX_LINE):
        reach = ((reach & open_) << 8) & full
        if not reach:
            break
        after |= reach
        if k >= MIN_LINE - 1:
            hits |= reach & ends
    if not hits:
        return 0, 0
    back = before = hits  # rows from which a reachable end is reached
    for _ in range(1, MAX_LINE):
        back = (back >> 8) & open_
        if not back:
            break
        before |= back
    span = after & before
    span |= (span << 8) | (span << 16) | (span >> 8) | (span >> 16)
    return hits, span & full


# ---- the numpy path: every threshold at once ------------------------------------------------------------
# The frame's ink at the nine thresholds is one boolean array (thresholds, rows, pixels), made by two broadcast
# comparisons and packed into bits: 64 pixels of a row in one 64-bit word, pixel i its bit i. A stroke starts
# at a pixel of ink whose left neighbour is no ink, or at a column's left edge: word & ~(word << 1), the bit
# shifted in from the word before when that word is of the same column (a last column wider than 64 px). The
# strokes of a row of a column are then the set bits of its one or two words.
_M1, _M2, _M4, _BYTE_SUM = (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101)


def _popcount(np, words):
    """Set bits of each 64-bit word (numpy's bitwise_count where it has one, else the usual SWAR sum)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    u = np.uint64
    words = words - ((words >> u(1)) & u(_M1))
    words = (words & u(_M2)) + ((words >> u(2)) & u(_M2))
    words = (words + (words >> u(4))) & u(_M4)
    return (words * u(_BYTE_SUM)) >> u(56)


def _stroke_counts(np, gray, columns: list[tuple[int, int]], pad: int = 0, planes=None):
    """Strokes per row of each column at each threshold: (thresholds * columns, pad + rows + pad), row k of it
    for threshold _ORDER[k // len(columns)] and column k % len(columns), `pad` zeros (no stroke) before and
    after each. A row's strokes are its own: a large frame is counted in bands of rows (the ink of every
    threshold at once is nine bytes a pixel: 72 MB for one 8 megapixel radiograph, 9 MB a band). `gray`: the
    8-bit frame, or the stored samples with `planes` (_cut_planes) for their ink."""
    h, w = gray.shape
    out = np.zeros((len(_ORDER), len(columns), h + 2 * pad), dtype=np.uint8)
    rows = max(1, _BAND_PIXELS // max(1, w))
    for r in range(0, h, rows):
        part = gray[r:r + rows]
        _band_stroke_counts(np, part, columns, out[:, :, pad + r:pad + r + part.shape[0]], planes)
    return out.reshape(len(_ORDER) * len(columns), h + 2 * pad)


_BAND_PIXELS = 1 << 20
_PAD_ROWS = 7  # rows of padding on either side of a row of counts (_pieces_numpy): six quiet rows and one more


def _band_stroke_counts(np, gray, columns: list[tuple[int, int]], out, planes=None) -> None:
    """The band's counts into out (thresholds, columns, rows)."""
    h, w = gray.shape
    keys, n, words = len(_ORDER), len(columns), -(-w // COLUMN)
    ink = (np.empty if w == words * COLUMN else np.zeros)((keys, h, words * COLUMN), dtype=bool)  # past the
    # frame's right edge (a last column narrower than 64 px): no ink
    if planes is None:
        np.greater_equal(gray, np.array(LIGHT, dtype=np.uint8)[:, None, None], out=ink[:len(LIGHT), :, :w])
        np.less(gray, np.array(DARK, dtype=np.uint8)[:, None, None], out=ink[len(LIGHT):, :, :w])
    else:
        planes(gray, ink[:, :, :w])
    # (keys, rows, words): pixel i is bit i. Packed as one flat run of bits: each row is a whole number of
    # bytes, so the bytes are those of packing along the rows, and numpy packs a flat array twice as fast.
    bits = np.packbits(ink.reshape(-1), bitorder="little").view("<u8").reshape(keys, h, words)
    u = np.uint64
    before = bits << u(1)
    if words > n:  # a column of two words: its second word's first pixel follows the first word's last
        follow = [j for j in range(1, words) if j * COLUMN not in {x0 for x0, _ in columns}]
        before[:, :, follow] |= bits[:, :, [j - 1 for j in follow]] >> u(COLUMN - 1)
    np.invert(before, out=before)  # (in place: no new array for each step)
    strokes = _popcount(np, np.bitwise_and(before, bits, out=before))
    if words > n:
        firsts = [x0 // COLUMN for x0, _ in columns]
        strokes = np.add.reduceat(strokes, firsts, axis=2)
    out[...] = strokes.transpose(0, 2, 1)  # (bitwise_count gives uint8; the SWAR sum, 0..64 in uint64)


def _pieces_numpy(np, px: bytes, w: int, h: int, columns: list[tuple[int, int]],
                  first_only: bool, cuts: list | None = None) -> list[tuple[Box, tuple[str, int]]]:
    """candidate_pieces with numpy: strokes counted for every threshold and column at once (see above), then
    the bands of every row of counts found together; the same pieces, in the same order, as the byte path.
    With `cuts` (candidate_pieces_stored), `px` is the stored samples' array and each threshold's ink is
    where they pass its cut."""
    gray = np.frombuffer(px, dtype=np.uint8).reshape(h, w) if cuts is None else px
    found = _compiled_pieces(gray, columns, first_only, cuts)
    if found is not None:  # the count and the band rule in one compiled pass (native builds)
        return found
    planes = None if cuts is None else _cut_planes(np, cuts, gray.dtype)
    n = len(columns)
    # row k of counts: threshold _ORDER[k // n], column k % n. Runs of busy rows, joined across single rows,
    # each row of counts between _PAD_ROWS rows of padding (no run), so that along the flattened rows every run
    # begins and ends where the value changes: changes come in pairs, a run's first row and the row after its
    # last. The quiet rows (no stroke) are counted in the same layout, the padding quiet (the frame's edge
    # counts as quiet): the six rows above a run and the six from the row after it are gathered at the run's
    # own flat index (never reaching into another row), for the few runs of a line's height only.
    p, width = _PAD_ROWS, h + 2 * _PAD_ROWS
    flat_counts = _stroke_counts(np, gray, columns, p, planes).reshape(-1)  # the padding: no stroke (quiet, not busy)
    runs = _bands_numpy(np, flat_counts, width)
    if runs is None:
        return []
    k_at, y0, y1 = runs
    found: list[tuple[Box, tuple[str, int]]] = []
    for k, top, bottom in zip(k_at.tolist(), y0.tolist(), y1.tolist()):
        key = _ORDER[k // n]
        x0, x1 = columns[k % n]
        band = gray[top:bottom, x0:x1]
        if cuts is None:
            ink = band >= key[1] if key[0] == "light" else band < key[1]
        else:
            op, cut = cuts[k // n]
            ink = band >= cut if op == ">=" else band < cut
        cols = np.flatnonzero(ink.any(axis=0))
        found.append(((x0 + int(cols[0]), top, int(cols[-1] - cols[0]) + 1, bottom - top) if len(cols)
                      else (x0, top, x1 - x0, bottom - top), key))
        if first_only:
            break
    return found


_GRAY_CUTS = tuple((kind == "light", t) for kind, t in _ORDER)  # the 8-bit frame: light ink at or above t
_RULE = (MIN_LINE, MAX_LINE, QUIET_ROWS, BUSY)


def _compiled_pieces(samples, columns: list[tuple[int, int]], first_only: bool,
                     cuts: list | None) -> list[tuple[Box, tuple[str, int]]] | None:
    """_pieces_numpy's pieces from the compiled pass (the same ones, in the same order:
    tests/pixels/test_lines_compiled.py); None where there is none or it does not take the samples."""
    found = compiled.pieces(samples, _GRAY_CUTS if cuts is None else [(op == ">=", cut) for op, cut in cuts],
                            [x for column in columns for x in column], _RULE, first_only)
    return None if found is None else [((x, y, bw, bh), _ORDER[k]) for k, x, y, bw, bh in found]


# ---- the numpy path on the stored samples ------------------------------------------------------------------
# A grayscale frame whose gray value rises (or falls) with its stored sample value (render.ink_cuts) holds ink
# at a threshold exactly where its samples pass a cut: the screen then compares the stored samples with the
# nine cuts and finds the same pieces without rendering the frame (a table look-up per pixel). A frame
# the screen clears, most of them, is never rendered; one it does not is rendered for the glyph test after.
THRESHOLDS = tuple(t for _, t in _ORDER)  # the gray thresholds the cuts are asked for, in _ORDER


@dataclass(frozen=True)
class StoredInk:
    """A frame's stored samples (rows x columns array) and, per gray threshold of THRESHOLDS, the (op, cut)
    where its gray value is at or above it (render.ink_cuts)."""

    samples: object
    cuts: tuple


def candidate_pieces_stored(frame: StoredInk, *, first_only: bool = False,
                            numpy=None) -> list[tuple[Box, tuple[str, int]]]:
    """candidate_pieces of the frame that renders from these samples, from the samples themselves (numpy)."""
    h, w = frame.samples.shape
    if w < 8 or h < MIN_LINE + 2:
        return []
    # light ink: gray >= t, the cut as given; dark ink: gray < t, the same cut with the other comparison
    cuts = [(op if kind == "light" else ("<" if op == ">=" else ">="), cut)
            for (kind, _), (op, cut) in zip(_ORDER, frame.cuts)]
    return _pieces_numpy(numpy, frame.samples, w, h, _columns(w), first_only, cuts)


def _cut_planes(np, cuts: list, dtype):
    """A function that writes the ink of every threshold (the samples against each cut) into (keys, rows,
    columns): one comparison for each run of thresholds with the same operation (two for a frame)."""
    values = np.array([cut for _, cut in cuts], dtype=dtype).reshape(len(cuts), 1, 1)  # one array, sliced
    runs, start = [], 0
    for k in range(1, len(cuts) + 1):
        if k == len(cuts) or cuts[k][0] != cuts[start][0]:
            runs.append((start, k, np.greater_equal if cuts[start][0] == ">=" else np.less, values[start:k]))
            start = k

    def planes(samples, out) -> None:
        for start, stop, compare, values in runs:
            compare(samples, values, out=out[start:stop])
    return planes


def screen_stored(frame: StoredInk, *, numpy=None) -> list[tuple[Box, tuple[str, int]]]:
    """screen() of the frame the samples render to, without rendering it: the glyph test reads each window's
    ink from the samples too (_SampleWindows)."""
    pieces = candidate_pieces_stored(frame, numpy=numpy)
    return pieces if pieces and text_like_pieces(_SampleWindows(frame, numpy), pieces) else []


class _SampleWindows:
    """What the glyph test reads of a frame (its size, and the ink of a window at a threshold), from its stored
    samples against the cuts: the same ink as the rendered frame's at every threshold (render.ink_cuts), so
    the same glyphs and answer, and a frame the test clears is never rendered. A window's pixel is coded as
    how many of the cuts its sample is at or above; each threshold's ink is then one of those codes' tables."""

    def __init__(self, frame: StoredInk, np) -> None:
        self.height, self.width = frame.samples.shape
        self.samples, self.np = frame.samples, np
        cuts = sorted({cut for _, cut in frame.cuts})
        self.cuts = np.array(cuts, dtype=np.int64)
        self.tables = {}
        for key, (op, cut) in zip(_ORDER, frame.cuts):
            at = cuts.index(cut) + 1  # codes at or above it: samples at or above the cut
            # light ink: gray >= t, the cut as given; dark ink: gray < t, the same cut with the other comparison
            above = (op == ">=") == (key[0] == "light")
            self.tables[key] = b"0" * at + b"1" * (256 - at) if above else b"1" * at + b"0" * (256 - at)

    def window(self, r0: int, r1: int, c0: int, c1: int) -> bytes:
        """The window's rows of codes joined with a byte between them (as _window joins pixels)."""
        np = self.np
        codes = np.zeros((r1 - r0, c1 - c0 + 1), dtype=np.uint8)
        codes[:, :-1] = np.searchsorted(self.cuts, self.samples[r0:r1, c0:c1], side="right")
        return codes.tobytes()[:-1]

    def ink(self, window: bytes, key: tuple[str, int]) -> int:
        """The window's ink at `key` as _glyph_boxes reads it (its bits between rows cleared by the caller)."""
        return int(window.translate(self.tables[key])[::-1], 2)


_LINE_SPAN, _QUIET = MAX_LINE - MIN_LINE, QUIET_ROWS


def _bands_numpy(np, flat_counts, width: int):
    """(row of counts, first row, row after the last) of every band (as _bands has them) in the padded layout
    of _pieces_numpy (rows of `width` counts, _PAD_ROWS of padding first); None if there is none."""
    if not _any_band(np, flat_counts):  # most frames: decided in a few numpy calls, the rows as bits
        return None
    p = _PAD_ROWS
    flat = flat_counts >= BUSY
    flat[1:-1] |= flat[:-2] & flat[2:]  # (the padding keeps this within one row of counts)
    change = np.flatnonzero(flat[1:] != flat[:-1])  # a run's first row - 1, the row after its last - 1
    if not len(change):
        return None
    # six[j]: quiet rows among j .. j + 5 (the padding quiet). One pass of shifted sums over all the rows of
    # counts, read at each run's two ends: numpy's reductions along a short axis (six rows of a few hundred
    # runs) cost more than adding the whole array. By doubling: pairs, fours of pairs, a four and a pair.
    quiet = (flat_counts == 0).view(np.uint8)
    two = quiet[:-1] + quiet[1:]
    four = two[:-2] + two[2:]
    four[:-2] += two[4:]
    six = four[:-2]
    before, after = change[0::2], change[1::2]
    # a line's height (the difference taken as unsigned: one comparison for both bounds), two quiet rows
    # among the six above the run (from its first row - 6) and among the six from the row after it
    keep = ((after - before - MIN_LINE).view(np.uint64) <= _LINE_SPAN) & (six[before - 5] >= _QUIET) & (
        six[after + 1] >= _QUIET)
    if not keep.any():
        return None
    k_at, y0 = np.divmod(before[keep] + 1, width)
    y0 -= p
    y1 = after[keep] + 1 - k_at * width - p
    return k_at, y0, y1


def _any_band(np, flat_counts) -> bool:
    """Whether _bands_numpy finds a band, with the rows of counts as the bits of two Python integers (row j bit
    j): busy rows and quiet rows, packed by numpy, then shifts and masks of those, a fixed number whatever the
    frame (about 30, each over a bit a row: 9,720 bits for a 256-row frame). A numpy call costs a few us more
    in the pipeline than in a loop (each runs after the header's work); this takes 6 where the runs and their
    ends take 18. The same rule, step by step: busy rows joined across single rows (j), each run's first row
    (starts), runs of MIN_LINE rows or more (s + 1 .. s + 3 in the run) and not of MAX_LINE + 1 or more (not
    s .. s + 48 all in it), two quiet rows among the six above the first row (w, read 6 rows up), then each
    such run carried to the row after its last by adding its first row's bit to the run's bits (the carry
    runs through the run's ones and stops at the zero after it), where two quiet rows among the six from
    there (w) make it a band. The padding keeps every run and window within its row of counts. The constants
    are spelt out (4, 48, two of six): tests/pixels/test_screen_same_as_before.py checks them."""
    busy = int.from_bytes(np.packbits(flat_counts >= BUSY, bitorder="little").tobytes(), "little")
    quiet = int.from_bytes(np.packbits(flat_counts == 0, bitorder="little").tobytes(), "little")
    one, both = quiet | (quiet >> 1), quiet & (quiet >> 1)  # one or more, two, quiet among rows j, j + 1
    one2, one4 = one >> 2, one >> 4
    w = both | (both >> 2) | (both >> 4) | (one & one2) | (one & one4) | (one2 & one4)  # 2+ quiet in j .. j + 5
    j = busy | ((busy << 1) & (busy >> 1))
    starts = j & ~(j << 1)
    tall = starts & (j >> 1) & (j >> 2) & (j >> 3)  # MIN_LINE (4) rows or more
    a2 = j & (j >> 1)
    a4 = a2 & (a2 >> 2)
    a8 = a4 & (a4 >> 4)
    a16 = a8 & (a8 >> 8)
    too_tall = (a16 & (a16 >> 16)) & (a16 >> 32) & (j >> 48)  # rows s .. s + 48 all in the run
    first = tall & ~too_tall & (w << 6)
    if not first:
        return False
    return bool((j + first) & ~j & w)


def _ink_extent(binary: bytes, w: int, x0: int, x1: int, y0: int, y1: int) -> Box:
    """The band's rows of the column, narrowed to the columns its ink spans."""
    left, right = x1, x0 - 1
    for y in range(y0, y1):
        row = binary[y * w + x0:y * w + x1]
        first = row.find(1)
        if first >= 0:
            left, right = min(left, x0 + first), max(right, x0 + row.rfind(1))
    return (left, y0, right - left + 1, y1 - y0) if right >= left else (x0, y0, x1 - x0, y1 - y0)


def has_text(image: GrayImage) -> bool:
    return bool(candidate_lines(image, first_only=True))


def _bands(counts: list[int], rows: list[int] | None = None) -> list[tuple[int, int]]:
    """Row ranges that look like a line of glyphs: busy rows (BUSY strokes or more; one row of a gap allowed),
    MIN_LINE to MAX_LINE of them, quiet rows close above and below. `rows`: ascending, every busy row among
    them (the scan goes from one to the next instead of row by row)."""
    out = []
    h = len(counts)
    y = 0
    ahead = iter(rows if rows is not None else range(h))
    while y < h:
        nxt = next(ahead, h)
        if nxt < y:
            continue
        y = nxt
        if y >= h or counts[y] < BUSY:
            y += 1
            continue
        start, end, gap = y, y, 0
        while end + 1 < h and (counts[end + 1] >= BUSY or (gap == 0 and end + 2 < h and counts[end + 2] >= BUSY)):
            gap = 1 if counts[end + 1] < BUSY else 0
            end += 1
        y = end + 1
        size = end - start + 1
        if not MIN_LINE <= size <= MAX_LINE:
            continue
        # Quiet: no stroke, within 6 rows (past descenders and accents), the frame's edge counting as quiet
        # (annotation is drawn up to it).
        above = counts[max(0, start - 6):start]
        below = counts[end + 1:end + 7]
        quiet_above = sum(c == 0 for c in above) + (6 - len(above))
        quiet_below = sum(c == 0 for c in below) + (6 - len(below))
        if quiet_above >= QUIET_ROWS and quiet_below >= QUIET_ROWS:
            out.append((start, end + 1))
    return out



# ---- is a found line text? ------------------------------------------------------------------------------
# The screen errs towards finding text: line-like anatomy (a row of teeth, a sinus wall, vessels across a fold)
# gives a band too, and a false alarm costs OCR and a rewritten instance. Before a screened frame goes to OCR,
# each piece's rows are looked at once more, at every threshold of its polarity (light or dark ink): a line
# of text there breaks into glyphs, separate pieces of ink at least half as tall as the band that stay within
# a few rows of it and are not much wider than tall, and either three or more of them line up to a pixel at
# their tops (cap or x-height line) or bottoms (baseline), or two stand side by side on one line. The second
# form keeps a word of which only two letters stand clear of the anatomy around them (the rest merged into
# bright tissue at every threshold); the first is also tried with ink a pixel apart joined (glyphs that
# anti-aliasing over a busy ground broke up). This decides only whether OCR runs on the frame: when any
# piece looks like text, every piece is read as before. What it costs in recall was measured, not assumed
# (docs/pixel-evaluation.md): words drawn on real MR anatomy that the screen finds and OCR would have masked,
# and that this clears, are counted there.
GLYPHS_IN_A_ROW = 3  # glyph-sized pieces of ink lined up at their tops or bottoms that make a piece text
_MARGIN = 6  # rows above and below a band looked at (the screen's quiet rows lie within them)
_REACH = 2  # band heights looked at on either side of a piece (a line goes on beyond its column)


def looks_like_text(image: GrayImage, piece: Box, key: tuple[str, int] | None = None) -> bool:
    """Whether the piece's rows, within its column and two band heights on either side, hold glyphs lined
    up as a line of text does (see above) at some threshold; `key`, the one it was found at, is tried first."""
    keys = ([key] if key else []) + [k for k in _ORDER if k != key and (key is None or k[0] == key[0])]
    seen: dict = {}  # threshold -> (the window's rows of ink, how many pieces of ink they hold)
    if any(_glyph_line(image, piece, k, seen=seen) for k in keys):
        return True
    # Joined, the pieces of ink at a threshold are fewer, never more, and each joined piece that stays within
    # the rows looked at holds a piece that does (seen's count): where there are fewer than GLYPHS_IN_A_ROW of
    # those, the joined pass (which needs that many lined up) cannot pass, and is not run.
    return any(_glyph_line(image, piece, k, bridged=True, seen=seen) for k in keys
               if seen[k][1] >= GLYPHS_IN_A_ROW)


def screen(image: GrayImage, *, numpy=None) -> list[tuple[Box, tuple[str, int]]]:
    """What the pixel step sends to OCR on a screened frame: the frame's candidate pieces when any of them
    looks like text (text_like_pieces), else [] (no OCR)."""
    pieces = candidate_pieces(image, numpy=numpy)
    return pieces if pieces and text_like_pieces(image, pieces) else []


def text_like_pieces(image: GrayImage, pieces: list[tuple[Box, tuple[str, int]]]) -> bool:
    """Whether any of the screen's pieces looks like text (looks_like_text): the frame then goes to OCR."""
    return any(looks_like_text(image, box, key) for box, key in pieces)


def _glyph_line(image: GrayImage, piece: Box, key: tuple[str, int], bridged: bool = False,
                seen: dict | None = None) -> bool:
    glyphs = _glyph_boxes(image, piece, key, bridged, seen)
    if len(glyphs) < 2:
        return False
    if max(_largest_cluster([g[1] for g in glyphs]), _largest_cluster([g[1] + g[3] for g in glyphs])) >= GLYPHS_IN_A_ROW:
        return True
    if bridged:
        return False
    glyphs.sort()
    for a, b in zip(glyphs, glyphs[1:]):  # neighbours from left to right
        gap = b[0] - (a[0] + a[2])
        if -1 <= gap <= max(a[3], b[3]) and _one_line(a, b):
            return True
    return False


def _one_line(a: Box, b: Box) -> bool:
    """Two glyphs of one line: the shorter at least half as tall as the taller, and on the same baseline (to
    a pixel) or within the taller's rows (a letter beside a descender: "Jo")."""
    short, tall = sorted((a, b), key=lambda g: g[3])
    if 2 * short[3] < tall[3]:
        return False
    return (abs(a[1] + a[3] - b[1] - b[3]) <= 1
            or (short[1] >= tall[1] - 1 and short[1] + short[3] <= tall[1] + tall[3] + 1))


def _glyph_boxes(image: GrayImage, piece: Box, key: tuple[str, int], bridged: bool = False,
                 seen: dict | None = None) -> list[Box]:
    """The glyph-sized pieces of ink (at threshold `key`) in the piece's band, as boxes in frame pixels.
    `bridged`: ink one pixel apart counts as touching (a glyph that anti-aliasing over a busy ground broke
    into pieces at every threshold), each piece's box taken one pixel in from the joined one's. `seen`: the
    window's ink and count of pieces of ink within its rows per threshold, kept there by the first pass (plain)
    for the second (bridged) of the same piece, and the window's pixels (under None) for every threshold."""
    w, h, px = image.width, image.height, getattr(image, "pixels", None)
    x, y, bw, bh = piece
    r0, r1 = max(0, y - _MARGIN), min(h, y + bh + _MARGIN)
    c0, c1 = max(0, x - _REACH * bh), min(w, x + bw + _REACH * bh)
    if r1 <= r0 or c1 <= c0:
        if seen is not None and not bridged:
            seen[key] = (0, 0)
        return []
    # The window's ink as one big integer (glyphs.ink_boxes: a bit a pixel, row after row, a zero bit between
    # rows), from the window's pixels joined once for all thresholds of the piece
    stride = c1 - c0 + 1
    window = seen.get(None) if seen is not None else None
    if window is None:
        window = (image.window(r0, r1, c0, c1), _inside(r0, r1, c0, c1)) if px is None else _window(
            px, w, r0, r1, c0, c1)
        if seen is not None:
            seen[None] = window
    pixels, inside = window
    if seen is not None and key in seen:
        ink = seen[key][0]
    elif px is None:  # the stored samples (_SampleWindows)
        ink = image.ink(pixels, key) & inside
    else:
        ink = int(pixels.translate(_ASCII_INK[key])[::-1], 2) & inside
    if bridged:  # each pixel of ink grown to its eight neighbours, within the window
        ink = (ink | (ink << 1) | (ink >> 1)) & inside
        ink = (ink | (ink << stride) | (ink >> stride)) & inside
    tall = max(3, (bh + 1) // 2)
    out = []
    # Pieces that run on beyond the rows looked at are no glyphs of this line: their ink is taken out at once
    # (one flood from the window's first and last rows), and only the rest is split into pieces
    pieces = ink_boxes(ink ^ _edge_ink(ink, stride, r1 - r0, r0 > 0, r1 < h), stride)
    if seen is not None and not bridged:
        seen[key] = (ink, len(pieces))
    for left, top, cw, ch in pieces:
        if bridged:
            left, top, cw, ch = left + 1, top + 1, cw - 2, ch - 2
        top += r0
        if top + ch <= y or top >= y + bh or ch < tall or cw > 3 * ch + 2:
            continue  # outside the band, too short, or too wide for a glyph
        out.append((left + c0, top, cw, ch))
    return out


def _edge_ink(ink: int, stride: int, rows: int, top: bool, bottom: bool) -> int:
    """The ink of the 8-connected pieces of `ink` (a window as ink_boxes has it, `rows` rows) that reach its
    first row (`top`) or its last (`bottom`): grown from there eight ways, kept to the ink, until it stops."""
    row = (1 << stride) - 1
    piece = (ink & row if top else 0) | (ink & (row << (rows - 1) * stride) if bottom else 0)
    if not piece:
        return 0
    while True:
        grown = piece | (piece << 1) | (piece >> 1)
        grown = (grown | (grown << stride) | (grown >> stride)) & ink
        if grown == piece:
            return piece
        piece = grown


# each threshold's ink as the characters "1" (ink) and "0": int(..., 2) reads a window's ink in one call
_ASCII_INK = {key: table.translate(bytes.maketrans(b"\x00\x01", b"01")) for key, table in _BINARY.items()}


def _window(px: bytes, w: int, r0: int, r1: int, c0: int, c1: int) -> tuple[bytes, int]:
    """The window's rows of pixels joined with a byte between them, and the bits of that which are pixels."""
    return b"\0".join([px[r * w + c0:r * w + c1] for r in range(r0, r1)]), _inside(r0, r1, c0, c1)


def _inside(r0: int, r1: int, c0: int, c1: int) -> int:
    """The bits of a window's joined rows (a bit between rows) that are pixels."""
    inner = ("1" * (c1 - c0) + "0") * (r1 - r0)
    return int(inner[-2::-1], 2)


def _largest_cluster(values: list[int]) -> int:
    """The most values within one pixel of some value."""
    return max((sum(abs(u - v) <= 1 for u in values) for v in set(values)), default=0)



def regions_to_read(lines: list[Box], width: int, height: int) -> list[Box]:
    """What OCR reads around candidate lines: whole lines (two columns on either side: a line's ends may hold
    words too short to be found on their own) with a line's height above and below, merged."""
    grown = [geometry.clip(geometry.grow(b, 2 * COLUMN, max(8, b[3])), width, height) for b in lines]
    return geometry.merge_overlapping(g for g in grown if g)


def ink_outside(image: GrayImage, pieces: list[tuple[Box, tuple[str, int]]], boxes: list[Box],
                share: float = 0.15, numpy=None) -> list[Box]:
    """For each piece of a line, its ink that none of `boxes` covers: the box of that ink, when it is more than
    `share` of the piece's ink ([] per piece otherwise). Gaps between words hold no ink and give nothing.
    `numpy`: the host's numpy module, if it has one (the same boxes)."""
    w, px = image.width, image.pixels
    frame = None if numpy is None else numpy.frombuffer(px, numpy.uint8).reshape(image.height, w)
    out = []
    for (x, y, bw, bh), key in pieces:
        table = _BINARY[key]  # each piece's rows only: the whole frame at each threshold was 8 bytes a pixel
        over = [b for b in boxes if b[0] < x + bw and x < b[0] + b[2] and b[1] < y + bh and y < b[1] + b[3]]
        if frame is not None and 0 <= x and 0 <= y and x + bw <= w and y + bh <= image.height:
            found = _ink_outside_numpy(numpy, frame, (x, y, bw, bh), table, over, share)
            if found:
                out.append(found)
            continue
        total = rest = 0
        left, right, top, bottom = x + bw, x - 1, None, None
        for row in range(y, y + bh):
            seg = bytearray(px[row * w + x:row * w + x + bw].translate(table))
            total += seg.count(1)
            for bx, by, bw2, bh2 in over:
                if by <= row < by + bh2:
                    a, b = max(0, bx - x), min(bw, bx + bw2 - x)
                    if b > a:
                        seg[a:b] = bytes(b - a)
            n = seg.count(1)
            if n:
                rest += n
                left, right = min(left, x + seg.find(1)), max(right, x + seg.rfind(1))
                top = row if top is None else top
                bottom = row
        if total and rest > share * total and right >= left:
            out.append((left, top, right - left + 1, bottom - top + 1))
    return out


def _ink_outside_numpy(np, frame, piece: Box, table: bytes, over: list[Box], share: float) -> Box | None:
    """ink_outside of one piece (inside the frame) with numpy."""
    x, y, bw, bh = piece
    ink = np.frombuffer(table, np.uint8)[frame[y:y + bh, x:x + bw]]
    total = int(np.count_nonzero(ink))
    if not total:
        return None
    for bx, by, bw2, bh2 in over:
        r0, r1 = max(by, y) - y, min(by + bh2, y + bh) - y
        a, b = max(0, bx - x), min(bw, bx + bw2 - x)
        if r1 > r0 and b > a:
            ink[r0:r1, a:b] = 0
    if not np.count_nonzero(ink) > share * total:
        return None
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    left, right, top, bottom = x + int(columns[0]), x + int(columns[-1]), y + int(rows[0]), y + int(rows[-1])
    return (left, top, right - left + 1, bottom - top + 1)
