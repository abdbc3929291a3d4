"""Reading the text of every frame with OCR, and reading again only what changed.

Readings of each frame, kept apart (each is a consistent reading of the lines; text_policy decides on
both and masks what either says must go):
1. the whole frame, enlarged smoothly (8-10 px annotation fonts become legible); the frame once more with its
   image content (speckle, anatomy) painted over, because Tesseract's layout analysis swallows text that sits
   right next to an image; and every banner band on its own: Tesseract thresholds an image globally, so light
   text on a grey title bar over a black ultrasound frame disappears unless the bar is read by itself;
2. a second look at the text lines found, enlarged twice as much, with room around them: it catches the words
   the first reading garbled or missed at the start of a line (a name is rarely read wrong twice);
3. a line that crosses a banner band's edge (half on the grey bar, half on the frame), read once more with
   each side measured from its own background: the band's reading and the frame's each see half glyphs.

Multi-frame: the frame is cut into tiles whose pixels are digested (FrameStore.region_digest). A tile whose
digest equals the one it had in the previous frame holds the same pixels, so the words read there are reused;
the tiles that changed are read again with a margin, grown to take in whole every word they touch, so that
a word is never read in halves.
Every frame ends up with complete readings: only re-reading of identical pixels is skipped.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import NamedTuple

from ..hosts.services import GrayImage, OcrBatch, OcrRequest, OcrStart, Word
from . import geometry
from .geometry import Box
from .ocr_image import blank, dark_on_light, edge_value, enlarge, flattened, pad, straddling, textured_tiles

Readings = list[list[Word]]
Reading = Generator[OcrRequest, list[Word], list[Word]]
BIG_TEXT = 14  # px: text at least this tall gets the second look at half the enlargement
BORDER = 16  # quiet border around every image sent: Tesseract drops glyphs that touch the edge


class _Job(NamedTuple):
    """One image to read: its key (a digest of the image sent), the image, and where it came from."""

    key: bytes
    sent: GrayImage
    rect: Box
    factor: int
    psm: int


def choose_factor(width: int, height: int) -> int:
    """Enlargement of the first reading: 2 up to 1600 px, else none (the second look doubles it)."""
    return 2 if max(width, height) <= 1600 else 1


_NEAR = [bytes(1 if abs(v - m) <= 12 else 0 for v in range(256)) for m in range(256)]


def banner_bands(image: GrayImage, min_height: int = 8, numpy=None) -> list[Box]:
    """Horizontal bands whose background differs from the frame's (grey title bars), as full-width boxes.
    `numpy`: the host's numpy module, if it has one (every row's median at once; the same bands)."""
    w, h = image.width, image.height
    medians, uniform = [], []
    if numpy is not None and w and h:
        samples = numpy.frombuffer(image.pixels, numpy.uint8).reshape(h, w)[:, ::4]
        n = samples.shape[1]
        middle = numpy.sort(samples, axis=1)[:, n // 2]
        near = numpy.count_nonzero(numpy.abs(samples.astype(numpy.int16) - middle[:, None]) <= 12, axis=1)
        medians, uniform = middle.tolist(), [c / n for c in near.tolist()]
    for y in range(h if not medians else 0):
        sample = image.pixels[y * w:(y + 1) * w:4]
        m = sorted(sample)[len(sample) // 2]
        medians.append(m)
        uniform.append(sample.translate(_NEAR[m]).count(1) / len(sample))  # share within 12 of the median
    if not medians:
        return []
    # The frame's background: the usual value of its flat rows. Rows across image content are not flat, and
    # taking them in would make a grey bar over a frame of tissue look like background.
    flat = sorted(m for m, u in zip(medians, uniform) if u >= 0.55) or sorted(medians)
    background = flat[len(flat) // 2]
    flags = [u >= 0.55 and abs(m - background) >= 30 for m, u in zip(medians, uniform)]
    bands, start, gap = [], None, 0
    for y, flag in enumerate(flags + [False] * 4):
        if flag:
            start = y if start is None else start
            gap = 0
        elif start is not None:
            gap += 1
            if gap > 3:  # a row of text can break the run; more than three rows end the band
                end = y - gap + 1
                if min_height <= end - start <= max(40, h // 8):
                    # Exactly the bar's rows: a strip of the darker frame below would pull Tesseract's
                    # threshold down to where the bar and its text fall on the same side.
                    bands.append((0, start, w, end - start))
                start, gap = None, 0
    return bands


def _clear(w: Word) -> bool:
    """A reading that is likely real text: two letters or digits or more, read with some confidence."""
    return sum(c.isalnum() for c in w.text) >= 2 and w.confidence >= 40


def line_blocks(words: list[Word], width: int, height: int, settled=None) -> list[Box]:
    """Where the second look reads: every line of real text, with room for a missed word at either end.
    `settled(word)`: true for words the first reading got beyond doubt (a clear technical label); a line of
    only those is not read again."""
    boxes = []
    for w in words:
        if _clear(w) and not (settled and settled(w)):
            # a line's height above and below: the lines of a column of settings become one block to read
            grown = geometry.grow(geometry.word_box(w), 6 * w.height, max(2, w.height))
            clipped = geometry.clip(grown, width, height)
            if clipped:
                boxes.append(clipped)
    return geometry.merge_overlapping(boxes)


@dataclass
class ReadStats:
    frames: int = 0
    requests: int = 0
    pixels_read: int = 0  # frame pixels sent to OCR (before enlargement)
    pixels_reused: int = 0
    frames_reused: int = 0
    requests_repeated: int = 0  # requests whose image was sent before, for this frame or the last: not sent again

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class FrameReader:
    """Reads frame after frame of one store; `read(i)` is a generator that yields OcrRequests."""

    store: object  # FrameStore: render(i, box, scale) -> GrayImage, region_digest(i, box) -> bytes
    width: int
    height: int
    factor: int = 0
    psm: int = 11
    tile: int = 64
    reuse: bool = True
    second_look: bool = True
    nearest: bool = False  # enlarge by pixel repetition (any factor) instead of smoothly (1, 2, 4)
    quiet_reading: bool = True  # also read with image content painted over (see _quiet)
    settled: object = None  # word -> bool, see line_blocks
    # Yield the independent readings of a step (the first readings of a frame, its second looks, closer looks) as
    # one OcrBatch, for a host that reads several images at once; the words and masks are the same either way.
    batch: bool = False
    # When batching, also yield OcrStart with the first image of a batch as soon as it is made: a host that reads
    # in the background (the browser) starts on it while the others are made. The same words either way.
    start: bool = False
    stats: ReadStats = field(default_factory=ReadStats)

    def __post_init__(self) -> None:
        self.factor = self.factor or choose_factor(self.width, self.height)
        self._tiles = [(x, y, min(self.tile, self.width - x), min(self.tile, self.height - y))
                       for y in range(0, self.height, self.tile) for x in range(0, self.width, self.tile)]
        self._digests: list[bytes] | None = None
        self._readings: Readings = [[], [], []]
        self._bands: list[Box] | None = None
        self.textured: list[Box] = []  # tiles of image content (speckle, anatomy) in the last frame read
        self._first_done = False
        self._sent: dict[bytes, list[Word]] = {}  # what OCR found in the images sent for this frame ...
        self._sent_before: dict[bytes, list[Word]] = {}  # ... and for the frame before
        self._frame = None

    # -- one OCR request ------------------------------------------------------------------------------

    def _prepare(self, i: int, rect: Box, factor: int, psm: int, image: GrayImage | None = None) -> _Job:
        """The image one OCR request would send for `rect` of frame i, and the key it is known by."""
        if self.nearest:
            # Enlarged by repeating pixels in the store (the verification pass reads the frame this way).
            sent = pad(self.store.render(i, box=rect, scale=factor), BORDER)
        else:
            if image is None:
                image = self.store.render(i, box=rect, scale=1)
            sent = pad(enlarge(image, factor, getattr(self.store, "numpy", None)), BORDER)
        sent = dark_on_light(sent)
        key = hashlib.blake2b(sent.pixels, digest_size=16, person=b"%d,%d,%d" % (sent.width, sent.height, psm)).digest()
        return _Job(key, sent, rect, factor, psm)

    def _read(self, i: int, rect: Box, factor: int, psm: int, image: GrayImage | None = None) -> Reading:
        return (yield from self._read_many(i, [(rect, factor, psm, image)]))[0]

    def _read_many(self, i: int, specs: list[tuple]) -> Generator[OcrRequest | OcrBatch, list, list[list[Word]]]:
        """The words of each image `_prepare(i, *spec)` makes, in frame coordinates. The images not read before
        go out as one OcrBatch when the reader batches (a host may read them at the same time); else one request
        at a time, each image made just before it is sent and let go after (the memory of one at a time)."""
        if not specs:
            return []
        if i != self._frame:
            self._frame, self._sent_before, self._sent = i, self._sent, {}
        # OCR gives the same words for the same image: a cine's frame whose speckle moved has its text lines,
        # its image content painted over and its second looks sent again pixel for pixel.
        todo: dict[bytes, _Job] = {}
        started: dict[bytes, OcrRequest] = {}  # the request made known early (OcrStart), by key
        placed = []  # (key, rect, factor) of each spec
        for n, spec in enumerate(specs):
            job = self._prepare(i, *spec)
            placed.append((job.key, job.rect, job.factor))
            if job.key in todo or self._sent.get(job.key, self._sent_before.get(job.key)) is not None:
                self.stats.requests_repeated += 1
                continue
            self.stats.requests += 1
            self.stats.pixels_read += job.rect[2] * job.rect[3]
            if not self.batch:
                self._sent[job.key] = list((yield self._request(i, job)) or ())
            else:
                todo[job.key] = job
                if self.start and not started and n + 1 < len(specs):
                    # the first image of the batch (the largest: the whole frame, a whole line) is read while the
                    # others are made
                    started[job.key] = self._request(i, job)
                    yield OcrStart(tuple(started.values()))
        if len(todo) == 1 and not started:
            job = next(iter(todo.values()))
            self._sent[job.key] = list((yield self._request(i, job)) or ())
        elif todo:
            answers = yield OcrBatch(tuple(started.get(key) or self._request(i, job) for key, job in todo.items()))
            for job, found in zip(todo.values(), answers):
                self._sent[job.key] = list(found or ())
        out = []
        for key, rect, factor in placed:
            found = self._sent.get(key, self._sent_before.get(key))
            self._sent[key] = found
            out.append(self._in_frame(found, rect, factor))
        return out

    def _request(self, i: int, job: _Job) -> OcrRequest:
        return OcrRequest(job.sent, job.psm, "detect", frame=i, frames=getattr(self.store, "count", 0))

    @staticmethod
    def _in_frame(found: list[Word], rect: Box, factor: int) -> list[Word]:
        out = []
        for w in found or ():
            x0 = max(0, (w.left - BORDER) // factor)
            y0 = max(0, (w.top - BORDER) // factor)
            x1 = min(rect[2], -(-(w.left + w.width - BORDER) // factor))
            y1 = min(rect[3], -(-(w.top + w.height - BORDER) // factor))
            if x1 > x0 and y1 > y0:
                out.append(Word(w.text, rect[0] + x0, rect[1] + y0, x1 - x0, y1 - y0, w.confidence))
        return out

    def closer_area(self, box: Box) -> Box | None:
        """What look_closer reads of a word's box: the box with room around it."""
        return geometry.clip(geometry.grow(box, max(4, box[3]), max(2, box[3] // 2)), self.width, self.height)

    def look_closer(self, i: int, box: Box) -> Reading:
        """One word's area (closer_area), enlarged four times and read as a single line: small fonts that both
        readings garbled ("GAINB2") are read right at that size."""
        return (yield from self.look_closer_many(i, [box]))[0]

    def look_closer_many(self, i: int, boxes: list[Box]) -> Generator[OcrRequest | OcrBatch, list, list[list[Word]]]:
        """look_closer for each box, read together when batching."""
        rooms = [self.closer_area(box) for box in boxes]
        found = iter((yield from self._read_many(i, [(room, 4, 7) for room in rooms if room])))
        return [next(found) if room else [] for room in rooms]

    # -- frames -----------------------------------------------------------------------------------------

    def read(self, i: int) -> Generator[OcrRequest, list[Word], Readings]:
        """The readings of frame i (words in frame coordinates)."""
        self.stats.frames += 1
        digests = [self.store.region_digest(i, t) for t in self._tiles] if self.reuse else None
        if self._digests is None or digests is None:
            yield from self._read_area(i, [(0, 0, self.width, self.height)], full=True)
        else:
            changed = [t for t, a, b in zip(self._tiles, digests, self._digests) if a != b]
            if not changed:
                self.stats.frames_reused += 1
                self.stats.pixels_reused += self.width * self.height
            else:
                rects = self._rects(changed)
                area = sum(r[2] * r[3] for r in rects)
                if area >= 0.85 * self.width * self.height:
                    yield from self._read_area(i, [(0, 0, self.width, self.height)], full=True)
                else:
                    self.stats.pixels_reused += self.width * self.height - area
                    yield from self._read_area(i, rects, full=False)
        self._digests = digests
        self._first_done = True
        return [list(r) for r in self._readings]

    def read_regions(self, i: int, rects: list[Box]) -> Generator[OcrRequest, list[Word], Readings]:
        """The readings of the given regions of frame i only (a screened frame's candidate lines): nothing of
        an earlier frame is carried over, so a region is never taken as read when its pixels changed."""
        self.stats.frames += 1
        self._readings = [[], [], []]
        self._digests = None
        yield from self._read_area(i, rects, full=False)
        self._first_done = True
        return [list(r) for r in self._readings]

    def _read_area(self, i: int, rects: list[Box], full: bool) -> Generator[OcrRequest, list[Word], None]:
        first, second, across = ([], [], []) if full else self._readings
        if not full:  # second-look words of a changed area are looked at again below (or are gone)
            second, across = ([w for w in words if not any(geometry.contains(r, geometry.word_box(w)) for r in rects)]
                              for words in (second, across))
        if self._bands is None:  # found on the first frame read, whole (a cine's bars do not move)
            self._bands = banner_bands(self.store.render(i, box=None, scale=1),
                                       numpy=getattr(self.store, "numpy", None))
        # The first readings do not depend on each other: all are prepared, read (together when batching), then
        # merged in this order.
        jobs: list[tuple] = []

        def job(*spec) -> int:
            jobs.append(spec)
            return len(jobs) - 1

        areas = []
        for rect in rects:
            image = self.store.render(i, box=rect, scale=1)
            # Bands painted over first, then image content looked for: a tile across a bar's edge holds the bar,
            # the frame and the glyphs of a line right under it (three values, like tissue), and the content
            # would be painted in the bar's value, so the line stayed against a grey edge in the very reading
            # meant to free it (an NM ID line right under its bar: no reading read it).
            unbanded = self._without_bands(rect, image)
            quiet = (self._quiet(rect, image if unbanded is None else unbanded)
                     if self.quiet_reading and not self.nearest else None)
            # After the first frame, changed image content (a cine's moving speckle) is read whole at its own
            # size, and enlarged only with the content painted over: the text around it gets the full
            # treatment, the speckle (where OCR finds nothing but noise) does not cost four times as much.
            factor = 1 if quiet is not None and self._first_done else self.factor
            whole = job(rect, factor, self.psm, image)
            # With image content and banner bands both in the rectangle, one reading with both painted over
            # serves for the two (the bands are read on their own below): a third whole-frame reading less.
            if unbanded is not None and quiet is not None:
                unbanded = quiet
            more = None
            if quiet is not None and unbanded is None:
                more = job(rect, self.factor, self.psm, quiet)
            if unbanded is not None:
                more = job(rect, self.factor, self.psm, unbanded)
            areas.append((rect, whole, more))
        bands = []
        for band in self._bands or ():
            if full or any(geometry.intersects(band, r) for r in rects):
                # A line across the band's edge, half on the bar and half on the frame, read as one line:
                # a reading of its own (the band's reading and the frame's each saw half glyphs).
                read = job(band, self.factor, self.psm)
                frame = self.store.render(i, box=None, scale=1)
                strips = [(rect, edge, job(rect, self.factor, self.psm, flattened(frame, rect, edge, bg_band, bg_other,
                                                                                   band_above)))
                          for rect, bg_band, bg_other, edge, band_above in straddling(frame, band)
                          if full or any(geometry.intersects(rect, r) for r in rects)]
                bands.append((band, read, strips))
        found = yield from self._read_many(i, jobs)
        for rect, whole, more in areas:
            fresh = found[whole] if more is None else _add_new(found[whole], found[more])
            first = _merge(first, fresh, rect)
        for band, read, strips in bands:
            first = _merge(first, found[read], band, cuts_lines=True)
            for rect, edge, n in strips:
                # only what crosses the edge: a line of the bar cut by the strip reads as garbage
                across = _merge(across, [w for w in found[n] if w.top < edge < w.top + w.height], rect)
        if self.second_look:
            blocks = line_blocks(first, self.width, self.height, self.settled)
            if not full:
                blocks = [b for b in blocks if any(geometry.intersects(b, r) for r in rects)]
            factor = min(4, 2 * self.factor)
            jobs = []
            for block in blocks:
                # Text that the first reading saw at BIG_TEXT px or more is read again at half the enlargement:
                # at twice its size it is already larger than Tesseract reads best, and four times the pixels
                # cost four times as much.
                heights = [w.height for w in first if _clear(w) and geometry.intersects(block, geometry.word_box(w))]
                f = max(self.factor, factor // 2) if heights and min(heights) >= BIG_TEXT else factor
                job(block, f, self.psm)
            for block, words in zip(blocks, (yield from self._read_many(i, jobs))):
                second = _merge(second, words, block)
        self._readings = [first, second, across]

    def _without_bands(self, rect: Box, image: GrayImage) -> GrayImage | None:
        """The rectangle with the banner bands it only partly holds painted in the rest's background (the bands
        are read on their own): one global threshold cannot serve text on a grey bar and text on black."""
        x0, y0 = rect[0], rect[1]
        inside = [geometry.clip((b[0] - x0, b[1] - y0, b[2], b[3]), image.width, image.height)
                  for b in self._bands or () if geometry.intersects(b, rect) and not geometry.contains(b, rect)]
        inside = [b for b in inside if b]
        if not inside:
            return None
        rows = [y for y in range(image.height) if not any(b[1] <= y < b[1] + b[3] for b in inside)]
        if not rows:
            return None
        rest = b"".join(image.pixels[y * image.width:(y + 1) * image.width:3] for y in rows)
        return blank(image, inside, Counter(rest).most_common(1)[0][0])

    def _quiet(self, rect: Box, image: GrayImage) -> GrayImage | None:
        """The rectangle with its image content (speckle, anatomy) painted over, to be read as well: Tesseract's
        layout analysis takes text right next to an image for part of it and reads neither. None when there
        is (almost) no image content or nothing but."""
        tiles = textured_tiles(image)
        self.textured = [b for b in self.textured if not geometry.intersects(b, rect)]
        self.textured += [(rect[0] + x, rect[1] + y, w, h) for x, y, w, h in tiles]
        covered = sum(t[2] * t[3] for t in tiles) / max(1, image.width * image.height)
        if not 0.03 <= covered <= 0.85:
            return None
        return blank(image, tiles, edge_value(image))

    def _rects(self, changed: list[Box]) -> list[Box]:
        """Changed tiles with a margin, grown to take in whole every word they touch (a word is never read in
        halves), merged into few rectangles."""
        rects = geometry.merge_overlapping(
            g for g in (geometry.clip(geometry.grow(c, 24, 8), self.width, self.height) for c in changed) if g)
        # Tesseract reads a few characters cut out tight badly: give a small change room (a clock ticking).
        rects = geometry.merge_overlapping(
            geometry.clip(geometry.grow(r, max(0, (192 - r[2]) // 2), max(0, (64 - r[3]) // 2)),
                          self.width, self.height) or r for r in rects)
        words = [geometry.grow(geometry.word_box(w), 4) for r in self._readings for w in r]
        for _ in range(3):  # a grown rectangle can touch more words; a few rounds settle it
            grown = []
            for r in rects:
                touching = [b for b in words if geometry.intersects(r, b)]
                grown.append(geometry.clip(geometry.union([r, *touching]), self.width, self.height) or r)
            merged = geometry.merge_overlapping(grown)
            if merged == rects:
                break
            rects = merged
        return rects


def _add_new(words: list[Word], more: list[Word]) -> list[Word]:
    """Words plus those of another reading of the same area that nothing read yet covers. A piece of a word
    (a glyph or two: "4" and "D" of "24 DEC 1982" read whole with the image content painted over) does not
    cover it, and is replaced by it: the pieces split the date so that no date form matched. Nor does a word
    read far taller (a box across two lines: "NORTHGATE" 41 px from the line above it) cover a word of a line
    it reaches into, out of its rows: an ID right under a bar, read only with the bar painted over, was
    dropped. (One taller over the speckle under its line, "[epth" 25 px over "Depth", holds that line.)"""
    out = list(words)
    for w in more:
        b = geometry.word_box(w)
        area = b[2] * b[3]
        over = [o for o in out if geometry.intersection_area(b, geometry.word_box(o)) >= 0.3 * min(area, o.width * o.height)]
        pieces = [o for o in over if o.width * o.height < 0.5 * area and o.confidence <= w.confidence
                  and geometry.intersection_area(b, geometry.word_box(o)) >= 0.5 * o.width * o.height]
        if any(o not in pieces and (o.height <= 1.5 * w.height or _rows_within(w, o)) for o in over):
            continue
        out = [o for o in out if o not in pieces] + [w]
    return out


def _rows_within(w: Word, o: Word) -> bool:
    """Whether w lies within o's rows (four fifths of its height): a box taller than its line, read over the
    speckle under it, holds the line; one across two lines leaves part of the other line out."""
    return min(w.bottom, o.bottom) - max(w.top, o.top) >= 0.8 * w.height


def _merge(old: list[Word], fresh: list[Word], rect: Box, cuts_lines: bool = False) -> list[Word]:
    """Words of a re-read rectangle replace the old words inside it; old words it only cuts stay unless a
    fresh word covers them (keeping a stale box over-masks a little; dropping it could miss text).
    `cuts_lines`: the rectangle may cut a line across its glyphs (a banner band, found over the top half of a
    line at the frame's edge), where half letters read as garble: "RVASVANIR" 16 px over "DAVIDSON" 36 px had
    replaced the name and the date beside it, read whole before, with noise. There a fresh word replaces an
    old one only when it covers most of its rows."""
    kept = []
    for w in old:
        b = geometry.word_box(w)
        if geometry.contains(rect, b):
            continue
        if geometry.intersects(rect, b) and any(
                geometry.intersection_area(b, geometry.word_box(f)) >= 0.3 * min(b[2] * b[3], f.width * f.height)
                and (not cuts_lines or min(f.bottom, w.bottom) - max(f.top, w.top) >= 0.5 * w.height)
                for f in fresh):
            continue
        kept.append(w)
    return kept + fresh
