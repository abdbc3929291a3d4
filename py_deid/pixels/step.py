"""The pixel step: decide how hard to look at an instance, read every frame, mask, and say what was done.

    outcome = yield from clean(ds, settings, terms, transfer_syntax=ts, codecs=codecs)

Runs on the original dataset, before the header is de-identified (the PHI terms come from it). Fails closed:
when cleaning is required and OCR or a codec is missing, the error propagates and nothing is claimed.

`plan` (frame -> boxes) is the reviewer's decision (py_deid.review): exactly those boxes are masked and OCR does
not run on the frames; a plan with any box is carried out even where the policy would not clean the pixels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from ..hosts.services import OcrRequest, ServiceUnavailable, Word
from . import geometry, off, overlays, templates, text_presence
from .info import has_pixel_data, raw_text, value_of
from .outcome import BURNED_IN_MODALITIES, PixelError, PixelOutcome

# What reads and decides text (the frame reader, the text policy, the PHI matcher, the masks on glyphs) is
# imported where a frame is first read, not with this module: a run whose images the screen clears never needs
# it (~60 ms of a command's start-up, more than a hundred textless images' screens).
if TYPE_CHECKING:
    from .detect import FrameReader
    from .glyphs import Glyphs
    from .phi_text import PhiMatcher
    from .text_policy import Decision

SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"  # SC Image Storage and its multi-frame variants

Steps = Generator[OcrRequest, list[Word], PixelOutcome]

# Text modes in which found ink that no OCR reading boxed is masked (phi: outside image content only).
UNREAD_MODES = ("strict", "phi")


def _text(ds: Dataset, keyword: str) -> str:
    raw = raw_text(ds, keyword)  # the same text, without converting the element
    if raw is not None:
        return raw.strip().upper()
    try:
        value = value_of(ds, keyword, "")
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return "\\".join(str(v) for v in value).strip().upper()
        return str(value or "").strip().upper()
    except Exception:
        return ""


def _is_secondary_capture(ds: Dataset) -> bool:
    if _text(ds, "SOPClassUID").startswith(SECONDARY_CAPTURE_PREFIX):
        return True
    return "SECONDARY" in _text(ds, "ImageType").split("\\") or bool(_text(ds, "ConversionType"))


# Reasons that raise the effort to OCR of every whole frame; any other image in `auto` is screened.
FULL_EFFORT = frozenset({"pixels-all", "clean-pixel-data-option", "burned-in-annotation-yes", "modality",
                         "secondary-capture-sop-class"})


def requirement(ds: Dataset, settings) -> tuple[bool, str]:
    """(the pixels are checked, why): a PHI-free reason code for the report. In `auto` every image is checked:
    the indications (Burned In Annotation, modality, a Secondary Capture SOP Class) raise the effort to whole
    frames read by OCR; without them each frame is screened for text (text_presence) and OCR reads only the
    candidate lines, so an image without text costs no OCR at all."""
    if settings.pixels == "off":
        return False, "pixels-off"
    if not has_pixel_data(ds):
        return False, "no-pixel-data"
    if settings.pixels == "all":
        return True, "pixels-all"
    if getattr(settings.options, "clean_pixel_data", False):
        return True, "clean-pixel-data-option"
    burned = _text(ds, "BurnedInAnnotation")
    if burned == "YES":
        return True, "burned-in-annotation-yes"
    if _text(ds, "Modality") in BURNED_IN_MODALITIES and burned != "NO":
        return True, "modality"
    if _text(ds, "SOPClassUID").startswith(SECONDARY_CAPTURE_PREFIX) and burned != "NO":
        return True, "secondary-capture-sop-class"
    # Burned In Annotation NO is a claim of whoever wrote the file: it lowers the effort, it does not skip.
    if burned == "NO":
        return True, "screen-burned-in-annotation-no"
    if _is_secondary_capture(ds):  # DERIVED\SECONDARY, a Conversion Type: screened like any other image
        return True, "screen-secondary"
    return True, "screen"


def cleaning_required(ds: Dataset, policy) -> bool:
    """Kept for callers that only have the --pixels value (or whole settings)."""
    if isinstance(policy, str):
        from ..options import Settings

        policy = Settings(pixels=policy)
    return requirement(ds, policy)[0]


def open_frames(ds: Dataset, transfer_syntax: str, codecs, hand_off=None):
    """The pixel description and frame store of ds; a PixelError names what cannot be read. `hand_off`: see
    frames.HandOff."""
    from .frames import FrameStore
    from .info import PixelCodecError, PixelInfo

    try:
        info = PixelInfo.from_dataset(ds, transfer_syntax)
        return info, FrameStore.open(ds, info, codecs, hand_off=hand_off)
    except PixelCodecError as e:
        raise PixelError(getattr(e, "code", "pixel-data"), str(e)) from None


def clean(ds: Dataset, settings, terms, *, transfer_syntax: str, codecs=None,
          plan: dict[int, list[geometry.Box]] | None = None, hand_off=None, batch: bool = False,
          start: bool = False) -> Steps:
    """Clean ds's pixels (and overlays); a generator of OcrRequests, and of OcrBatches when `batch` (a host that
    reads several images at once: the same outcome), with OcrStart before them when `start` (see FrameReader)."""
    if off.applies(settings, plan):
        return off.unchecked(ds, transfer_syntax)
    outcome = PixelOutcome()
    required, outcome.reason = requirement(ds, settings)
    matcher = None  # built when text is read: most instances never need it
    if plan is not None and has_pixel_data(ds) and (required or any(plan.values())):
        required, outcome.reason = True, "reviewer-plan"
        _planned_frames(ds, transfer_syntax, codecs, plan, outcome, hand_off)
    elif not required:
        off.without_codestream_extras(ds, transfer_syntax)
    elif required:
        screened = outcome.reason not in FULL_EFFORT
        found = yield from _clean_frames(ds, settings, transfer_syntax, codecs, terms, None, outcome, screened,
                                         hand_off, batch, start)
        if not found:  # screened, and no frame holds anything like text: nothing read, nothing changed
            required, outcome.reason = False, "no-text-found"
    outcome.required = required
    if settings.pixels != "off" and getattr(settings.options, "clean_graphics", False) and overlays.groups(ds):
        # Clean Graphics keeps the overlays: read and mask them (what is not read, the pipeline removes).
        from .overlay_text import clean_overlays
        from .phi_text import PhiMatcher
        from .text_policy import default_vocabulary

        groups, boxes = yield from clean_overlays(ds, transfer_syntax, settings.text, matcher or PhiMatcher(terms),
                                                  default_vocabulary())
        outcome.overlays_cleaned = groups
        outcome.overlay_boxes = boxes
    return outcome


def _clean_frames(ds: Dataset, settings, transfer_syntax: str, codecs, terms, vocabulary,
                  outcome: PixelOutcome, screened: bool = False,
                  hand_off=None, batch: bool = False, start: bool = False) -> Generator[OcrRequest, list[Word], bool]:
    """Read, decide and mask every frame; False when screening found no text anywhere (then nothing is
    written and the instance keeps its pixels as they were). The PHI matcher is built from `terms` when the
    first readings are decided, and `vocabulary` (None: the default one) and the modules that read and decide
    text are loaded when a frame is first read (a screened image without text never needs them)."""
    matcher = None
    info, store = open_frames(ds, transfer_syntax, codecs, hand_off)
    width, height = info.columns, info.rows
    # The reader and the ultrasound regions are made when a frame is read: a screened frame without text needs
    # neither (neither reads the pixels nor can fail).
    reader = clinical = None
    fixed, names = templates.boxes_for(ds)
    fixed = [b for b in (geometry.clip(b, width, height) for b in fixed) if b]
    counts = {"frames": store.count, "frames_masked": 0, "words": 0, "masked_words": 0,
              "template_boxes": len(fixed), "templates": len(names)}
    if screened:
        counts.update({"frames_screened": 0, "frames_with_text": 0})
    seen: dict[tuple, dict] = {}
    earlier_phi: deque[set[Word]] = deque(maxlen=8)  # words masked as PHI on the frames before (carried_phi)
    earlier_rest: deque[list] = deque(maxlen=8)  # and the rest of their lines masked there (carried_line)
    closer: dict[tuple, bool] = {}  # (box, its pixels' digest) -> a closer look confirmed technical text
    screens: dict[bytes, list] = {}  # a cine's frames with the same stored pixels are screened once
    for i in range(store.count):
        if screened:
            counts["frames_screened"] += 1
            pieces = _screen(store, i, screens)
            if not pieces:
                if fixed:
                    _mask_frame(store, i, list(fixed), counts, outcome)
                continue
            counts["frames_with_text"] += 1
        if reader is None:
            from ..phi import fold_ocr
            from .glyphs import Glyphs
            from .line_rest import rest_of_lines
            from .phi_text import PhiMatcher
            from .text_policy import (after_label, against_phi, at_frame_side, beside_masked, carried_line,
                                      carried_phi, decide_readings, default_vocabulary, find_bands, mask_boxes,
                                      rest_of_terms, settled_boxes, slivers)

            if vocabulary is None:
                vocabulary = default_vocabulary()
            reader, clinical = _reader(ds, store, vocabulary, batch, start)
        if screened:
            lines = [box for box, _ in pieces]
            readings = yield from reader.read_regions(i, text_presence.regions_to_read(lines, width, height))
        else:
            readings = yield from reader.read(i)
            pieces = (text_presence.candidate_pieces(store.render(i), numpy=store.numpy)
                      if settings.text in UNREAD_MODES else [])
        # Image content: the header's ultrasound regions and the tiles the reader found textured (grown by half
        # a tile: speckle at a tile's edge is read as letters too).
        content = clinical + [geometry.grow(t, 16) for t in reader.textured]
        if matcher is None:
            matcher = PhiMatcher(terms)
        decisions = decide_readings(readings, settings.text, matcher, vocabulary, content)
        carried: list = []
        before: list = []  # a cine's words masked as PHI on the frames before
        if store.count > 1:  # a cine's words read in part where an earlier frame masked them whole
            before = [w for frame in earlier_phi for w in frame]
            decisions = carried_phi(readings, decisions, before)
            carried = carried_line(readings, decisions, [geometry.word_box(w) for w in before]
                                   + [b for frame in earlier_rest for b in frame])
            earlier_phi.append({words[d.index] for words, ds in zip(readings, decisions) for d in ds
                                if d.mask and d.reason.startswith("phi")})
        if settings.text == "strict":
            yield from _look_closer(reader, store, i, readings, decisions, matcher, vocabulary, content, closer)
        # Every mask is drawn on the glyphs OCR's boxes hold, not on the boxes (pixels.glyphs): the same masks
        # whichever engine read the frame, and no letter cut in half.
        glyphs = Glyphs(store.render(i), numpy=store.numpy)
        boxes = list(fixed)
        every_word = [w for words in readings for w in words]
        # A cine's stamp read on an earlier frame in a box of its line's height says which rows of a far taller box
        # of the same word on this one are its line (mask_boxes cuts a reading to the clear readings it holds):
        # "RX40493422" boxed 51 px tall over the speckle of an 18 px line on some frames, 18 px on the others.
        if before:
            said = {fold_ocr(w.text) for w in every_word}
            around = every_word + [w for w in before if fold_ocr(w.text) in said]
        else:
            around = every_word
        # The frame's usual text height, and the readings that are only a band of their line (a region's or a
        # block's edge cut the line), once: they mask their line's rows, settle nothing, and, kept, leave their
        # line's rows unread.
        near = [box for box, _ in pieces]
        bands = find_bands(readings, decisions, glyphs.snap, near, content, near)
        for k, (words, dec) in enumerate(zip(readings, decisions)):
            boxes += mask_boxes(words, dec, width, height, glyphs.snap_clean, around, content,
                                {j: r for (kk, j), r in bands.rows.items() if kk == k}, bands.typical)
            # the rest of a name where its letters would be, and the whole of the glyphs that box holds
            boxes += [_with_glyphs(glyphs, b) for b in rest_of_terms(words, dec, matcher, width, height)]
            _count(counts, dec)
            _remember(seen, i, words, dec)
        # the rest of a cine's stamp where an earlier frame masked it and this one read it in part
        # (as masked there: the glyphs over moving tissue are no longer whole glyphs to snap to)
        boxes += carried
        # a glyph the frame's side cut, on a line of PHI (its word cannot be read)
        boxes += [geometry.clip(geometry.grow(b, 2), width, height) or b
                  for b in at_frame_side(readings, decisions, width)]
        # Where a PHI word's line goes on over image content in strokes like its own, unread (line_rest): the
        # rest of a date or a name. Not from plain text strict mode masks: a setting beside it would go too.
        rests = [b for b in (geometry.clip(geometry.grow(r, 2), width, height) for r in rest_of_lines(
            glyphs.image, [_on_its_rows(glyphs, geometry.word_box(words[d.index]))
                           for words, dec in zip(readings, decisions) for d in dec if d.reason.startswith("phi")],
            [words[d.index] for words, dec in zip(readings, decisions) for d in dec if not d.mask],
            content, bands.typical)) if b]
        boxes += rests
        if store.count > 1:
            earlier_rest.append(rests)
        # Detect, then read: in strict mode, found text that no OCR reading boxed is masked, on the images where
        # text is expected (the indications); over image content only where it is shaped like text (speckle
        # breaks into grains). A screened image has its found lines read, and the readings decided, but unread
        # ink there is not masked: on images without text the screen's false alarms are anatomy (measured: 3 of
        # 26 real CT/MR frames would lose 0.4-1.1% of their pixels). In phi mode the same holds outside image
        # content, for glyphs on a plain ground: text there that OCR cannot read at all may be a name or a date
        # (a 10 px light-grey banner no reading boxed), and nothing shows it is not; over anatomy or speckle it
        # stays. Either way, unread ink is masked where it is text beyond doubt: beside masked text on its line
        # (an NM banner in 7 px type read as "ISSA" and slivers), or two or more whole words shaped like text
        # side by side.
        if settings.text in UNREAD_MODES:
            unread = text_presence.ink_outside(store.render(i), pieces,
                                               settled_boxes(readings, decisions, glyphs.snap, content, near=near,
                                                             bands=bands),
                                               numpy=store.numpy)
            if unread:  # a weak read beside unread ink is no reading either (the rest of a half-read name)
                unread = text_presence.ink_outside(store.render(i), pieces, settled_boxes(
                    readings, decisions, glyphs.snap, content, [glyphs.snap_or_keep(u) for u in unread], near=near,
                    bands=bands),
                    numpy=store.numpy)
            # Lines read only in a band (a block's edge cut them) are unread on their rows, kept reading or not.
            unread += [u for u in slivers(readings, decisions, bands=bands) if u not in unread]
            unread = geometry.without_contained(_snap_unread(glyphs, u, pieces, bands.typical) for u in unread)
            # Words of a line no reading made sense of are text wherever they stand: two or more side by side,
            # each whole glyphs shaped like text (a 7 px banner read as "MARTIAATE" and "BA,", its small dense
            # type taken for texture).
            shaped = [u for u in unread if glyphs.snap_clean(u)[1] and glyphs.text_shaped(u)]
            worded = [u for u in shaped if any(o is not u and geometry.shares_a_row(u, o) for o in shaped)]
            # After a PHI label read clearly ("ID:" with its number unread): the label's value, in either mode.
            labelled = [u for u in unread if after_label(u, readings)]
            # Running into a PHI word with no space between: that word's glyphs its reading left out of its box,
            # masked in either mode whatever a closer look reads them as ("a." of "a.doe@example.org").
            joined = [u for u in unread if against_phi(u, readings, decisions)]
            if screened:  # beside masked text, or beside unread ink that is (the rest of that line)
                taken = [u for u in unread if u in labelled or beside_masked(u, readings, decisions)]
                taken += [u for u in worded if u not in taken]
                rest = [u for u in unread if u not in taken]
                while rest:
                    more = [u for u in rest if any(geometry.shares_a_row(u, t) for t in taken)]
                    if not more:
                        break
                    taken += more
                    rest = [u for u in rest if u not in more]
                unread = taken
            if settings.text == "phi":  # and only glyphs on a plain ground: speckle's false alarms run into it
                unread = [u for u in unread if u in worded or u in labelled
                          or glyphs.snap_clean(u)[1] and not geometry.mostly_within(u, content)]
            else:  # over image content, only ink shaped like text: speckle breaks into grains, a word into glyphs
                unread = [u for u in unread if not geometry.mostly_within(u, content) or glyphs.text_shaped(u)]
            unread = yield from _unless_technical(reader, store, i, unread, matcher, vocabulary, closer)
            unread += [u for u in joined if u not in unread]
            counts["unread_ink"] = counts.get("unread_ink", 0) + len(unread)
            boxes += [b for b in (geometry.clip(geometry.grow(u, 2), width, height) for u in unread) if b]
        _mask_frame(store, i, boxes, counts, outcome)
    if screened and not counts["frames_with_text"] and not fixed:
        outcome.counts = counts
        return False
    if reader is None:  # template boxes alone: nothing was read
        from .detect import ReadStats

        stats = ReadStats()
    else:
        stats = reader.stats
    counts.update({f"ocr_{k}": v for k, v in stats.as_dict().items()})
    _finish(ds, store, transfer_syntax, counts, outcome)
    outcome.words = list(seen.values())
    return True


def _reader(ds: Dataset, store, vocabulary, batch: bool, start: bool) -> tuple[FrameReader, list]:
    """The frame reader of a store and the header's ultrasound regions (image content)."""
    from .detect import FrameReader
    from .text_policy import settled_by
    from .us_regions import clinical_regions

    width, height = store.info.columns, store.info.rows
    reader = FrameReader(store, width, height, settled=settled_by(vocabulary), batch=batch, start=batch and start)
    return reader, clinical_regions(ds, width, height)


def _with_glyphs(glyphs: Glyphs, box) -> tuple:
    """A box, grown to the whole glyphs it holds where they are whole glyphs on a plain ground (+2 px)."""
    snapped, clean = glyphs.snap_clean(box)
    return geometry.union([box, geometry.grow(snapped, 2)]) if snapped and clean else box


def _on_its_rows(glyphs: Glyphs, box) -> tuple:
    """A PHI word's glyphs, where a line over image content is followed from (line_rest); its own box where the
    glyphs run into the tissue under it (a snap far taller than the box: "023" of a date over anatomy snapped
    41 px tall, a line rest_of_lines cannot follow, and "5-MAY-2" was left)."""
    snapped = glyphs.snap_or_keep(box)
    return box if snapped[3] > 1.5 * box[3] else snapped


def _snap_unread(glyphs: Glyphs, box, pieces, typical: int = 0) -> tuple:
    """Unread ink snapped to its glyphs; where the usual snap finds no whole glyphs (text across a bar's edge),
    at the threshold the detector found its line at. Never less than the ink's own box; no taller than a line
    of the frame's usual text height (`typical`) around it, where that is known."""
    return _within_a_line(_snapped_unread(glyphs, box, pieces), box, typical)


def _within_a_line(snapped: tuple, box, typical: int) -> tuple:
    """`snapped` cut to the rows a line of `typical` height holding `box` can have, when it is taller than one
    and a half such lines: ink snapped across a text line's edge into the tissue beside it (a date's unread
    "18.05." over NM anatomy, 18 rows of ink, snapped 43 rows tall), not its glyphs. The rows are the box's
    and as many more above and below as the box is short of a line: a band of a line (its glyphs cut by a
    bar's edge) still gets its line's whole height."""
    if not typical or snapped[3] <= 1.5 * typical:
        return snapped
    spare = max(0, typical - box[3])
    top = max(snapped[1], box[1] - spare)
    bottom = min(geometry.bottom(snapped), geometry.bottom(box) + spare)
    return (snapped[0], top, snapped[2], bottom - top)


def _snapped_unread(glyphs: Glyphs, box, pieces) -> tuple:
    snapped, clean = glyphs.snap_clean(box)
    if snapped and clean:
        # the whole glyphs found, and the rest of the ink: a glyph running into the tissue under it is no whole
        # glyph (the "0" of "20-JAN-2021" was left out of its line's mask)
        return geometry.union([snapped, box])
    found = []
    for piece, key in pieces:  # at each threshold the line was found at (they see different parts of it)
        if geometry.intersects(piece, box):
            # Ink that reaches its column's edge runs on into the next column, where one letter alone does not
            # make a line for the detector (the "7" of a date): look a text height beyond that edge.
            x, y, w, h = box
            left = h if x <= piece[0] else 0
            right = h if x + w >= piece[0] + piece[2] else 0
            at, whole = glyphs.snap_at((x - left, y, w + left + right, h), key)
            if at and whole:
                found.append(at)
    return geometry.union(found + [box]) if found else snapped or box


def _screen(store, i: int, screens: dict) -> list:
    """The text screen's pieces on frame i (numpy when the host has it: the same pieces); a frame whose stored
    pixels equal an earlier frame's gets that frame's pieces without rendering or screening again."""
    if store.count == 1:
        return _screen_frame(store, i)
    key = store.region_digest(i, (0, 0, store.info.columns, store.info.rows))
    if key not in screens:
        screens[key] = _screen_frame(store, i)
    return list(screens[key])


def _screen_frame(store, i: int) -> list:
    """text_presence.screen of the rendered frame; where its gray value is a monotone function of the stored
    samples (grayscale with numpy, most of them), the screen and its glyph test read the samples against the
    thresholds' cuts and the frame is not rendered (the same pieces and answer: render.ink_cuts)."""
    stored = store.stored_ink(i, text_presence.THRESHOLDS)
    if stored is None:
        return text_presence.screen(store.render(i), numpy=store.numpy)
    samples, cuts = stored
    return text_presence.screen_stored(text_presence.StoredInk(samples, tuple(cuts)), numpy=store.numpy)


def _unless_technical(reader: FrameReader, store, i: int, unread: list, matcher: PhiMatcher, vocabulary,
                      cache: dict) -> Generator[OcrRequest, list[Word], list]:
    """Found ink that the frame's readings did not settle, less what a closer reading (enlarged four times, one
    line) calls technical through and through; what stays is masked. Pieces of one line are read together:
    half a date alone ("02.12.") reads as a number."""
    groups = []
    for group in _line_groups(unread):
        box = geometry.union(group)
        area = reader.closer_area(box)
        groups.append((group, box, (area, store.region_digest(i, area)) if area else None))
    yield from _closer_looks(reader, i, [(box, key) for _, box, key in groups if key], matcher, vocabulary, cache)
    return [u for group, _, key in groups if not (key and cache[key]) for u in group]


def _closer_looks(reader: FrameReader, i: int, looks: list, matcher: PhiMatcher, vocabulary,
                  cache: dict) -> Generator[OcrRequest, list[Word], None]:
    """cache[key]: whether a closer look at the box calls it technical, for each (box, key) of `looks` whose key
    (its area and the area's pixels) is not in the cache yet; the same pixels are not read twice."""
    todo: dict = {}
    for box, key in looks:
        if key not in cache:
            todo.setdefault(key, box)
    found = yield from reader.look_closer_many(i, list(todo.values()))
    from .text_policy import confirms_technical

    for key, words in zip(todo, found):
        cache[key] = confirms_technical(words, matcher, vocabulary)


def _line_groups(boxes: list) -> list[list]:
    """Boxes in chains of boxes sharing a row (geometry.shares_a_row), in their order."""
    groups: list[list] = []
    for b in boxes:
        joined = [g for g in groups if any(geometry.shares_a_row(b, o) for o in g)]
        merged = [o for g in joined for o in g] + [b]
        groups = [g for g in groups if g not in joined] + [merged]
    return groups


def _look_closer(reader: FrameReader, store, i: int, readings, decisions, matcher: PhiMatcher, vocabulary,
                 content, cache: dict) -> Generator[OcrRequest, list[Word], None]:
    """Strict mode masks words it cannot call technical; a doubtful one (short, a digit or a technical label in
    it: maybe a setting misread at a small size) is read once more, closer. Kept only when that reading is
    technical through and through; PHI or plain text there, or nothing read, and it stays masked."""
    from .text_policy import Decision, doubtful

    looks = []
    for k, ds in enumerate(decisions):
        for n, d in enumerate(ds):
            if d.reason != "text":
                continue
            word = readings[k][d.index]
            if not doubtful(word, vocabulary, content):
                continue
            box = geometry.word_box(word)
            area = reader.closer_area(box)
            if area:  # the same pixels are not read twice (cine, two readings)
                looks.append((k, n, box, (area, store.region_digest(i, area))))
    yield from _closer_looks(reader, i, [(box, key) for _, _, box, key in looks], matcher, vocabulary, cache)
    for k, n, _, key in looks:
        if cache[key]:
            decisions[k][n] = Decision(decisions[k][n].index, False, "technical")


def _planned_frames(ds: Dataset, transfer_syntax: str, codecs, plan: dict, outcome: PixelOutcome,
                    hand_off=None) -> None:
    """Mask the reviewer's boxes, frame by frame, and nothing else (no OCR: what to mask is decided)."""
    info, store = open_frames(ds, transfer_syntax, codecs, hand_off)
    counts = {"frames": store.count, "frames_masked": 0, "reviewer_plan": 1}
    for i in range(store.count):
        boxes = [b for b in (geometry.clip(tuple(int(v) for v in b), info.columns, info.rows)
                             for b in plan.get(i, ())) if b]
        _mask_frame(store, i, boxes, counts, outcome)
    _finish(ds, store, transfer_syntax, counts, outcome)


def _mask_frame(store, i: int, boxes: list, counts: dict, outcome: PixelOutcome) -> None:
    boxes = geometry.without_contained(boxes)
    if not boxes:
        return
    try:
        done = store.mask(i, boxes)  # the boxes as masked (a codec may widen them to whole blocks)
    except ServiceUnavailable as e:
        raise PixelError(getattr(e, "code", "mask"), str(e)) from None
    outcome.frames[i] = [tuple(b) for b in (done if done is not None else boxes)]
    counts["frames_masked"] += 1


def _finish(ds: Dataset, store, transfer_syntax: str, counts: dict, outcome: PixelOutcome) -> None:
    # Retired embedded overlays live in Pixel Data bits outside Bits Stored. Nothing reads them for text, so
    # they are cleared (stored values are untouched): fail closed, like unread overlay groups.
    if overlays.clear_unused_bits(store):
        counts["embedded_overlay_bits_cleared"] = 1
    try:
        new_ts = store.finish(ds)
    except ServiceUnavailable as e:
        raise PixelError(getattr(e, "code", "encode"), str(e)) from None
    ds.BurnedInAnnotation = "NO"
    outcome.cleaned = True
    outcome.transfer_syntax = new_ts if new_ts and new_ts != transfer_syntax else ""
    outcome.counts = counts


def _count(counts: dict, decisions: list[Decision]) -> None:
    counts["words"] += len(decisions)
    for d in decisions:
        counts[d.reason] = counts.get(d.reason, 0) + 1
        counts["masked_words"] += d.mask


def _remember(seen: dict, frame: int, words: list[Word], decisions: list[Decision]) -> None:
    """Local-only record for the review screen: each distinct word once, with the frames it is on."""
    for d in decisions:
        w = words[d.index]
        key = (w.text, w.left, w.top, w.width, w.height)
        entry = seen.get(key)
        if entry is None:
            seen[key] = {"text": w.text, "box": [w.left, w.top, w.width, w.height],
                         "confidence": round(w.confidence, 1), "masked": d.mask, "reason": d.reason,
                         "frames": [frame]}
        else:
            entry["frames"].append(frame)
