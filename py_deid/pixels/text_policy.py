"""Which words OCR read are masked: `--text strict` (all but technical text), `phi` (PHI only), `all`.

Order of the tests, for every phrase of a frame (words on one line, close together):
1. PHI first: the instance's terms (tolerant matching, words combined) and PHI-shaped patterns (dates, times
   of day with or without a date, long digit runs, dashed identifiers, e-mail, phone, values after labels like "ID:");
2. noise: marks with no letter or digit, single characters and weak reads that stand alone (not in a line or
   column of clearly read words), reads of a size unlike the frame's text, and weak reads inside image
   content (ultrasound regions, textured tiles) are not text: speckle, rulers, icons, traces;
3. then the mode: `all` masks every word, `phi` nothing more, `strict` every word the technical vocabulary
   (config/technical_vocabulary.toml) does not cover.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..hosts.services import Word
from ..package_data import config_text
from ..phi import fold_ocr
from . import geometry
from .phi_text import (AS_DIGIT, PhiMatcher, clock_hits, is_label, normalise, pattern_hits, stamp_time, term_hits,
                       within_edits)

MODES = ("strict", "phi", "all")
_TRIM = "\"'*`,;_|()[]{}<>~-=.:!?\u00b4\u2018\u2019 "
_TIME_LIKE = re.compile(r"\d:\d")
WEAK = 40  # confidence below which a read beside a date is taken for the rest of that date, garbled
UNREADABLE = 50  # confidence under which no word of a line was read (phi mode: such a line beside PHI is masked)

# One rule for "does this reading stand for its whole line?", with one set of thresholds. BAND: a reading under two
# thirds of its line's height is a band of it (the three rules it replaces used 0.6 of the glyphs' height, 0.6 of
# the usual height, and two thirds of the line's: the largest is kept, so every band any of them found is one).
# USUAL: a reading OCR made sense of that is 0.7 of the frame's usual text height or more stands for its line
# whatever is under it: the glyphs or pieces found there can be taller than the line ("PRF" 16 px over speckle
# snapped to glyphs run into it; two lines merged in one piece). A read taken for noise outside image content is
# not trusted so far.
BAND = 2 / 3
USUAL = 0.7


@dataclass(frozen=True)
class Vocabulary:
    """The technical words and patterns that --text strict keeps."""

    words: frozenset[str]
    patterns: tuple[re.Pattern, ...]
    max_digits: int
    joiners: str

    @classmethod
    def from_toml(cls, text: str) -> Vocabulary:
        data = tomllib.loads(text)
        words = frozenset(w.lower() for group in data.get("words", {}).values() for w in group)
        patterns = tuple(re.compile(p, re.IGNORECASE) for p in data.get("patterns", {}).values())
        numbers = data.get("numbers", {})
        return cls(words, patterns, int(numbers.get("max_number_digits", 3)), str(numbers.get("joiners", "")))

    def is_technical(self, text: str) -> bool:
        t = normalise(text).strip(_TRIM)
        if not t:
            return True
        low = t.lower()
        if low in self.words:
            return True
        if _TIME_LIKE.search(t):
            return False
        if any(p.fullmatch(low) for p in self.patterns):
            return True
        for token in re.findall(r"[^\W\d_]+|\d+(?:[.,]\d+)?|\S", low):
            if token[0].isdigit():
                if len(re.split(r"[.,]", token)[0]) > self.max_digits:
                    return False
            elif token[0].isalpha():
                if token not in self.words:
                    return False
            elif token not in self.joiners:
                return False
        return True


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    return Vocabulary.from_toml(config_text("technical_vocabulary.toml"))


@dataclass(frozen=True)
class Decision:
    index: int  # into the words decided on
    mask: bool
    reason: str  # phi-term | phi-pattern | phi-carried | text | technical | noise | kept


def _alnum(text: str) -> int:
    return sum(c.isalnum() for c in text)


def text_height(words: Sequence[Word]) -> int:
    """The usual height of the text of a frame: the median of the confidently read words (0 if none)."""
    hs = sorted(w.height for w in words if w.confidence >= 60 and _alnum(w.text) >= 2)
    return hs[len(hs) // 2] if hs else 0


def _isolated(i: int, words: Sequence[Word], dx: float = 2, dy: float = 0) -> bool:
    """No clearly read word of similar size (two or more letters or digits, confidence 70 or more) within
    dx / dy text heights: annotation text comes in lines and columns, speckle read as letters does not."""
    w = words[i]
    reach = geometry.grow(geometry.word_box(w), int(dx * w.height), int(dy * w.height))
    return not any(j != i and o.confidence >= 70 and _alnum(o.text) >= 2
                   and 0.5 * w.height <= o.height <= 2 * w.height
                   and geometry.intersects(reach, geometry.word_box(o)) for j, o in enumerate(words))


def _is_noise(i: int, words: Sequence[Word], clinical: Sequence[geometry.Box], height: int) -> bool:
    """Marks that are not text: rulers and icons (no letter or digit, or one character on its own), and
    weak reads of speckle or traces (low confidence with a size unlike the frame's text)."""
    word = words[i]
    n = _alnum(word.text)
    if n == 0 or (n == 1 and _isolated(i, words)):
        return True
    if n <= 2 and word.confidence < 50 and _isolated(i, words, 3, 2.5):
        return True
    if height and not 0.5 * height <= word.height <= 2.5 * height and (word.confidence < 50 or _isolated(i, words)):
        return True
    if (word.confidence < 50 or (n <= 3 and word.confidence < 70)) and _isolated(i, words, 3, 2.5):
        return True
    # In image content (an ultrasound region, or tiles the reader found textured) letters are read in speckle:
    # a read there is text only when it is sure, or stands in a line or column of sure words.
    inside = geometry.mostly_within(geometry.word_box(word), clinical)
    return inside and ((n <= 4 and word.confidence < 35) or (word.confidence < 90 and _isolated(i, words, 3, 2.5)))


def _misread_value(i: int, words: Sequence[Word], vocabulary: Vocabulary) -> bool:
    """A weak two-character read right after a technical label is that label's value misread ("GAIN BZ" is
    "GAIN 82"): letters that look like digits, read as digits, make a short number."""
    w = words[i]
    text = normalise(w.text).strip(_TRIM)
    if len(text) > 2 or w.confidence >= 60 or not text.translate(AS_DIGIT).isdigit():
        return False
    left = [o for o in words if o.right <= w.left and o.left >= w.left - 8 * w.height
            and min(o.bottom, w.bottom) - max(o.top, w.top) >= 0.5 * min(o.height, w.height)]
    if not left:
        return False
    label = normalise(max(left, key=lambda o: o.right).text).strip(_TRIM).lower()
    return label.isalpha() and label in vocabulary.words


def _clear_label(word: Word) -> bool:
    """A PHI label read with confidence: what may carry its value a column away, or its line's unread ink."""
    return word.confidence >= 50 and is_label(word.text)


_WINDOW_LABELS = frozenset({"w", "l", "ww", "wl", "wc", "c", "win", "lev", "level", "window", "width", "center"})


def _window_value(i: int, words: Sequence[Word]) -> bool:
    """A number of four or five digits right after a window label on the same line ("W 4096", "L 2048"):
    window settings of 12- and 16-bit images, longer than the vocabulary's short numbers. (PHI patterns are
    tested before: a date or a long identifier never gets here.)"""
    w = words[i]
    text = normalise(w.text).strip(_TRIM)
    if not (text.isdigit() and 4 <= len(text) <= 5) and not re.fullmatch(r"-\d{4,5}", text):
        return False
    left = [o for o in words if o.right <= w.left and o.left >= w.left - 6 * w.height
            and min(o.bottom, w.bottom) - max(o.top, w.top) >= 0.5 * min(o.height, w.height)]
    if not left:
        return False
    label = normalise(max(left, key=lambda o: o.right).text).strip(_TRIM).rstrip(":=").lower()
    return label in _WINDOW_LABELS


def decide(words: Sequence[Word], mode: str, matcher: PhiMatcher, vocabulary: Vocabulary | None = None,
           clinical: Sequence[geometry.Box] = ()) -> list[Decision]:
    """One decision per word. `clinical`: image regions (ultrasound data regions) where speckle is read as text."""
    if mode not in MODES:
        raise ValueError("text mode must be strict, phi or all")
    vocabulary = vocabulary or default_vocabulary()
    reason: dict[int, str] = {}
    date_boxes, time_words, clocks = [], [], []
    segments = _phrases(words)
    for seg in segments:
        texts = [words[i].text for i in seg]
        for k in term_hits(texts, matcher, readable=[words[i].confidence >= 30 for i in seg]):
            reason[seg[k]] = "phi-term"
        dates, times, other = pattern_hits(texts, [words[i].confidence >= 50 for i in seg])
        # A date that is one of the instance's terms is a date too: the time read right after it is its stamp's
        # ("1808215" "1620:43", the colon misplaced in 7 px type).
        for k in range(len(seg) - 1):
            if reason.get(seg[k]) == "phi-term" and sum(c.isdigit() for c in texts[k]) >= 4 and \
                    stamp_time(texts[k + 1:k + 2]):
                times.add(k + 1)
        # A weak read right beside a date is the rest of it, garbled (the day and month of "15-FEB-2022" over
        # anatomy read as "Ea" beside its "2022").
        for k in sorted(dates):
            for j in (k - 1, k + 1):
                if 0 <= j < len(seg) and j not in dates and words[seg[j]].confidence < WEAK and _alnum(texts[j]):
                    other.add(j)
        for k in dates | other:
            reason.setdefault(seg[k], "phi-pattern")
        date_boxes += [geometry.word_box(words[seg[k]]) for k in dates]
        date_boxes += [geometry.word_box(words[i]) for i in seg if reason.get(i) == "phi-term"
                       and any(c.isdigit() for c in words[i].text)]
        time_words += [seg[k] for k in times]
        for k in clock_hits(texts):  # a time of day is PHI with or without its date (phi_text.clock_hits)
            reason.setdefault(seg[k], "phi-pattern")
            clocks.append(seg[k])
    for i in time_words:
        if any(geometry.near(geometry.word_box(words[i]), b) for b in date_boxes):
            reason.setdefault(i, "phi-pattern")
    _garbled_stamp_dates(words, segments, set(time_words), reason)
    # The seconds and the AM/PM read apart from a time masked as PHI are the rest of that time (":24" "PM"
    # after "023,3:10", a date-time over anatomy read in pieces).
    # Found by place, not by phrase: speckle read around a clock over anatomy can put its "AM" in another line
    # of `geometry.lines` ("11:46:49" "AM" on an RGB cine's first frame).
    for i in [i for i in reason if reason[i].startswith("phi") and _TIME_END.search(normalise(words[i].text))]:
        last = words[i]
        # (through a piece already PHI: ":24" of a date's digits read after it, then "PM")
        while (j := _next_on_row(last, words)) is not None and reason.get(j, "phi").startswith("phi") and \
                _TIME_REST.fullmatch(normalise(words[j].text).strip()):
            reason.setdefault(j, "phi-pattern")
            last = words[j]
    # A year read clearly right before a time of day is the end of its date: a stamp puts the date first ("16"
    # of "03.04.2016 15:18:56" over a CT's anatomy, its "03.04.20" unread; strict mode kept "16" as a number).
    # As PHI, the rest of its line over the image is followed from it (line_rest). Weak reads there and numbers
    # that are no year ("1024", "117") are left to the rules for garbled dates and a year's tail.
    for i in clocks:
        j = _next_on_row(words[i], words, -1)
        if j is not None and j not in reason and words[j].confidence >= 60 and \
                _DATE_END.fullmatch(normalise(words[j].text).strip()):
            reason[j] = "phi-pattern"
    _joined_pieces(words, reason)
    if mode == "phi":
        for i in _unreadable_beside_phi(words, segments, reason, clinical):
            reason.setdefault(i, "unreadable-beside-phi")
    out = []
    height = text_height(words)
    # A weak read in the same phrase as PHI is part of that line of text (a clock next to a date), not speckle.
    beside_phi = {i for seg in segments if any(j in reason for j in seg) for i in seg}
    for i, w in enumerate(words):
        if i in reason:
            out.append(Decision(i, True, reason[i]))
        elif i not in beside_phi and _is_noise(i, words, clinical, height):
            out.append(Decision(i, False, "noise"))
        elif mode == "all":
            out.append(Decision(i, True, "text"))
        elif (mode == "strict" and not vocabulary.is_technical(w.text) and not _misread_value(i, words, vocabulary)
              and not _window_value(i, words)):
            out.append(Decision(i, True, "text"))
        else:
            out.append(Decision(i, False, "technical" if mode == "strict" else "kept"))
    return out


def _unreadable_beside_phi(words: Sequence[Word], segments: list[list[int]], reason: dict[int, str],
                          clinical: Sequence[geometry.Box]) -> set[int]:
    """Phi mode: the words of a line OCR could not read (every word of its phrase under UNREADABLE confidence)
    right above or below a phrase holding PHI, within that phrase's columns and outside image content. Patient
    details come in a block of lines, and a line of it nothing could read may be more of them: held-out draw
    20300215, an NM frame's "LAKEVIEW MEDICAL CENTER" in 9 px type under its PID and DOB line, read "Riedie"
    "fel" "dda" "SoC" (confidence 5-48) by every reading, was kept whole and read after. Strict mode masks such
    reads already (they are no technical text)."""
    phi = [seg for seg in segments if any(reason.get(i, "").startswith("phi") for i in seg)]
    out: set[int] = set()
    for seg in segments:
        if seg in phi or any(words[i].confidence >= UNREADABLE for i in seg) or \
                sum(_alnum(words[i].text) for i in seg) < 3:
            continue
        for p in phi:
            span = geometry.union([geometry.word_box(words[i]) for i in p])
            tall = sorted(words[i].height for i in p)[len(p) // 2]
            reach = geometry.grow(span, tall, tall)  # a text height across, and to the next line's rows
            for i in seg:
                box = geometry.word_box(words[i])
                if geometry.intersects(box, reach) and not geometry.intersects(box, span) and \
                        not geometry.mostly_within(box, clinical):
                    out.add(i)
    return out


def _joined_pieces(words: Sequence[Word], reason: dict[int, str]) -> None:
    """A token read in pieces: where a PHI word and the word read right beside it (less than a letter's width
    apart) meet at a character no token starts or ends with (the right-hand one starting with ".", "@" or "_",
    the left-hand one ending with "@", "_" or "-"), that word is the rest of the PHI word's token, with its
    reason. Held-out draw 20300415: "j.smith@example.org" on a palette frame was read "j" and
    ".smith@example.org"; the surname made the second PHI, and phi mode kept the "j". A word may end with "."
    ("Dr.") and start with "-" (a negative value), so those say nothing. Followed along the row, piece by
    piece."""
    todo = [i for i in reason if reason[i].startswith("phi")]
    while todo:
        i = todo.pop()
        word = words[i]
        text = normalise(word.text).strip()
        if not text:
            continue
        per_char = word.width / len(text)
        for side in (-1, 1):
            j = _next_on_row(word, words, side)
            if j is None or j in reason:
                continue
            other = normalise(words[j].text).strip()
            left, right = (other, text) if side < 0 else (text, other)
            gap = word.left - words[j].right if side < 0 else words[j].left - word.right
            if other and gap <= per_char and (right[0] in _STARTS_NO_TOKEN or left[-1] in _ENDS_NO_TOKEN):
                reason[j] = reason[i]
                todo.append(j)


_STARTS_NO_TOKEN, _ENDS_NO_TOKEN = frozenset(".@_"), frozenset("@_-")


def _next_on_row(word: Word, words: Sequence[Word], side: int = 1) -> int | None:
    """The nearest word starting right of `word` (`side` -1: ending left of it) on its rows (half the lower one's
    height shared), within a phrase's gap (1.6 text heights)."""
    best = None
    for j, o in enumerate(words):
        shared = min(o.bottom, word.bottom) - max(o.top, word.top)
        if side > 0:
            gap, beyond, nearer = o.left - word.right, o.left > word.left, best is None or o.left < words[best].left
        else:
            gap, beyond, nearer = word.left - o.right, o.right < word.right, best is None or o.right > words[best].right
        if o is not word and beyond and -2 <= gap <= 1.6 * max(o.height, word.height) and \
                2 * shared >= min(o.height, word.height) and nearer:
            best = j
    return best


def _garbled_stamp_dates(words: Sequence[Word], segments: list[list[int]], times: set[int],
                         reason: dict[int, str]) -> None:
    """A date-time whose date OCR could not read: a run of weak reads right before or after a time, with at
    least a date's digits among them (4: "1/2/23"), is the stamp's date, and the time is its time, PHI both
    ("11" ".82:2823" "15:30:10" for "11.02.2023 15:30:10" in 16 px type on mid grey; no date pattern matches
    the garble, so neither the date's own rule nor the time's "near a date" could see it)."""
    for seg in segments:
        for k, i in enumerate(seg):
            if i not in times:
                continue
            for step in (-1, 1):
                run, j = [], k + step
                while 0 <= j < len(seg) and seg[j] not in reason and seg[j] not in times and \
                        words[seg[j]].confidence < WEAK and any(c.isdigit() for c in words[seg[j]].text):
                    run.append(seg[j])
                    j += step
                if sum(c.isdigit() for x in run for c in words[x].text) >= 4:
                    for x in (*run, i):
                        reason.setdefault(x, "phi-pattern")


# a date's end: its year's two digits or a year, after the rest of the date or a separator ("16", "2016",
# ".2016", "04.2016"; not "1024", "117")
_DATE_END = re.compile(r"[./-]?(?:\d{1,4}[./-])*(?:\d{2}|(?:19|20)\d{2}),?")
_TIME_END = re.compile(r"\d[:.]\d{2}$")
_TIME_REST = re.compile(r":\d{2}(?:\s?[AP]\.?M\.?)?|[AP]\.?M\.?", re.IGNORECASE)


def _phrases(words: Sequence[Word]) -> list[list[int]]:
    """geometry.segments, with a PHI label read clearly joined to the word after it up to 3 text heights away:
    a label's value may stand in a column of its own ("Birth:  1953-02-25", two spaces of a monospaced face,
    were two phrases, and the date read as "1953-52" was kept)."""
    out: list[list[int]] = []
    for line in geometry.lines(words):
        current = [line[0]]
        for prev, nxt in zip(line, line[1:]):
            h = max(words[prev].height, words[nxt].height, 1)
            label = _clear_label(words[prev])
            if words[nxt].left - words[prev].right > (3 if label else 1.6) * h:
                out.append(current)
                current = []
            current.append(nxt)
        out.append(current)
    return out


def doubtful(word: Word, vocabulary: Vocabulary, content: Sequence[geometry.Box] = ()) -> bool:
    """A word strict mode masks as plain text that may be a technical word misread at a small size ("GAINB2",
    "Gnss", "AD=100%"): short, with a digit or a technical label at its start, and outside image content."""
    text = normalise(word.text).strip(_TRIM).lower()
    if not 3 <= len(text) <= 12 or sum(c.isdigit() for c in text) > vocabulary.max_digits:
        return False
    if geometry.mostly_within(geometry.word_box(word), content):
        return False
    letters = re.match(r"[^\W\d_]*", text).group(0)
    return any(c.isdigit() for c in text) or any(
        letters[:n] in vocabulary.words for n in range(2, len(letters)) if letters[:n].isalpha())


_LABEL_VALUE = re.compile(r"([^\W\d_]{2,})([^\W_]{1,4})")


def _label_and_value(text: str, vocabulary: Vocabulary) -> bool:
    """A technical label run into its value with a digit misread as a letter ("GAINB2" for "GAIN 82"). At least
    one real digit is required: letters alone ("MISS") never become a setting this way."""
    m = _LABEL_VALUE.fullmatch(normalise(text).strip(_TRIM))
    if not m or not any(c.isdigit() for c in m.group(2)):
        return False
    label, value = m.group(1).lower(), m.group(2)
    for cut in range(len(label), 1, -1):  # the label may have taken a digit-like letter of the value ("GAINB")
        rest = (m.group(1)[cut:] + value).translate(AS_DIGIT)
        if label[:cut] in vocabulary.words and rest.isdigit() and len(rest) <= vocabulary.max_digits:
            return True
    return False


def confirms_technical(words: Sequence[Word], matcher: PhiMatcher, vocabulary: Vocabulary) -> bool:
    """A closer reading of a doubtful word says it is technical: something read, no PHI (the instance's terms,
    PHI-shaped patterns), and every word a technical one."""
    texts = [w for w in words if _alnum(w.text)]
    if not texts or any(d.mask and d.reason.startswith("phi") for d in decide(words, "strict", matcher, vocabulary)):
        return False
    return all(vocabulary.is_technical(w.text) or _label_and_value(w.text, vocabulary) for w in texts)


def settled_by(vocabulary: Vocabulary | None = None):
    """The test the reader uses to skip a second look: a confidently read technical word."""
    vocabulary = vocabulary or default_vocabulary()

    def settled(word: Word) -> bool:
        return word.confidence >= 80 and vocabulary.is_technical(word.text)
    return settled


def decide_readings(readings: Sequence[Sequence[Word]], mode: str, matcher: PhiMatcher,
                    vocabulary: Vocabulary | None = None,
                    clinical: Sequence[geometry.Box] = ()) -> list[list[Decision]]:
    """Decisions for several readings of one frame. A word that only one reading calls plain text, where another
    reading saw the same technical word (the same letters up to one OCR error), is that technical word misread;
    so is one the other reading split into technical words that cover it ("L1024" there, "L" "1024" here), and a
    sliver of a line (a reading of a region whose edge cut the line reads its lower half: "nV" in the box where
    the other reading saw "kV" whole, at confidence 70 or more)."""
    vocabulary = vocabulary or default_vocabulary()
    out = [decide(r, mode, matcher, vocabulary, clinical) for r in readings]
    if len(readings) >= 2 and mode != "all":
        _phrases_across(readings, out)
    if mode != "strict" or len(readings) < 2:
        return out
    technical = [(geometry.word_box(readings[k][d.index]), fold_ocr(readings[k][d.index].text),
                  readings[k][d.index].confidence, k)
                 for k, ds in enumerate(out) for d in ds if d.reason == "technical"]
    for k, ds in enumerate(out):
        for n, d in enumerate(ds):
            if d.reason != "text":
                continue
            w = readings[k][d.index]
            box, folded = geometry.word_box(w), fold_ocr(w.text)
            area = box[2] * box[3]
            inside = [(tbox, tfolded) for tbox, tfolded, _, _ in technical
                      if geometry.intersection_area(box, tbox) >= 0.5 * tbox[2] * tbox[3]]
            # split into technical words that cover it ("Gnss" there, "Gn" "55" here): each of those was
            # judged technical with its own digits, so the digit limit below does not apply
            covered = sum(geometry.intersection_area(box, t) for t, _ in inside)
            split = len(inside) >= 2 and covered >= 0.6 * area
            if not split and sum(c.isdigit() for c in w.text) > vocabulary.max_digits:
                continue
            same = any(geometry.intersection_area(box, tbox) >= 0.5 * area
                       and within_edits(folded, tfolded, 1) for tbox, tfolded in inside)
            sliver = any(other != k and confidence >= 70 and box[3] <= 0.75 * tbox[3]
                         and geometry.intersection_area(box, tbox) >= 0.8 * area
                         for tbox, _, confidence, other in technical)
            if same or split or sliver:
                ds[n] = Decision(d.index, False, "technical")
    return out


_DATE_HEAD = re.compile(r"[0-3]?\d[/.-][0-3]?\d?[/.-]?")


def _phrases_across(readings: Sequence[Sequence[Word]], out: list[list[Decision]]) -> None:
    """A word kept by its own reading that forms a PHI pattern with a masked pattern word another reading saw
    beside it on its line ("(370)" read alone in one region, "555-8318" after it in another: a phone number; a
    clock beside a date) is masked as that pattern."""
    _read_again(readings, out)
    found = [(readings[k][d.index], k) for k, ds in enumerate(out) for d in ds if d.reason == "phi-pattern"]
    if not found:
        return
    for k, ds in enumerate(out):
        for n, d in enumerate(ds):
            w = readings[k][d.index]
            if d.mask or w.confidence < 50:
                continue
            for p, other in found:
                if other == k or not geometry.same_line(w, p):
                    continue
                gap = max(p.left - w.right, w.left - p.right)
                if not 0 <= gap <= 1.6 * max(w.height, p.height):
                    continue
                pair = [w, p] if w.left < p.left else [p, w]
                dates, times, hits = pattern_hits([x.text for x in pair], [True, True])
                if pair.index(w) in hits | dates or pair.index(w) in times and pair.index(p) in dates:
                    ds[n] = Decision(d.index, True, "phi-pattern")
                    break
                # a day and month before a date's masked digits ("5/1" in one reading, "017" before its time in
                # another, of "05/17/2017 16:09:17" over XA anatomy): the rest of that date
                if w.right <= p.left and _DATE_HEAD.fullmatch(normalise(w.text).strip()) and \
                        sum(c.isdigit() for c in p.text) >= 3:
                    ds[n] = Decision(d.index, True, "phi-pattern")
                    break


def _read_again(readings: Sequence[Sequence[Word]], out: list[list[Decision]]) -> None:
    """A word kept by its own reading that another reading read as (part of) a PHI word on the same glyphs is
    that PHI ("021" at confidence 97 inside the box of "2021", a date-time's year, in another reading): kept, it
    also stopped the rest of the date's line (line_rest) from being followed past it."""
    phi = [(geometry.word_box(readings[k][d.index]), fold_ocr(readings[k][d.index].text), k, d.reason)
           for k, ds in enumerate(out) for d in ds if d.mask and d.reason.startswith("phi")]
    if not phi:
        return
    for k, ds in enumerate(out):
        for n, d in enumerate(ds):
            if d.mask:
                continue
            w = readings[k][d.index]
            box, folded = geometry.word_box(w), fold_ocr(w.text)
            if _alnum(folded) < 2:
                continue
            for pbox, pfolded, other, reason in phi:
                if other != k and geometry.intersection_area(box, pbox) >= 0.7 * box[2] * box[3] and (
                        folded in pfolded or within_edits(folded, pfolded, 1)):
                    ds[n] = Decision(d.index, True, reason)
                    break


def mask_boxes(words: Sequence[Word], decisions: Sequence[Decision], width: int, height: int,
               snap=None, around: Sequence[Word] = (), content: Sequence[geometry.Box] = (),
               bands: dict | None = None, typical: int | None = None) -> list[geometry.Box]:
    """Rectangles to blank: masked words of one phrase joined (nothing readable left between them), plus a margin.
    `snap(box)`: (the box of the glyphs a word's box holds, whether they are whole glyphs) (pixels.glyphs
    Glyphs.snap_clean), or None. With it, each word's mask is its glyphs plus 2 px, whatever box the OCR engine
    gave; without it, where it finds no glyph, or where the ink runs into image content (the glyphs' edges are
    not known), OCR's box plus a margin of a third of the text height across and a sixth above and below is
    masked as well. `around`: the frame's other readings, `content`: image content (a reading far taller than
    those it holds, its extra rows over image content, is cut to their rows). `bands` (word index -> rows) and
    `typical`: this reading's bands of their lines and the frame's usual text height (find_bands), when the caller
    worked them out; else found here from `snap` alone. A masked band covers its line's rows."""
    masked = {d.index for d in decisions if d.mask}
    around = list(words) + [w for w in around if w not in words]
    if typical is None:
        typical = text_height(around) if masked else 0
    if bands is None:
        bands = {} if not masked else {
            i: r for i in masked for b in [_line_of(words[i], around, content)]
            for r in [band_of_line(b, snap(b)[0] if snap else None, (), typical)] if r}
    boxes = []
    for seg in geometry.segments(words):
        run: list[int] = []
        for i in seg + [-1]:
            if i in masked:
                run.append(i)
                continue
            if run:
                groups: list[list[geometry.Box]] = []
                last, last_parts = None, []
                for j in run:
                    wb = _line_of(words[j], around, content)
                    snapped, whole = snap(wb) if snap else (None, False)
                    # glyphs a third of the line's height or less are not its letters (a 2 px rule across a
                    # 15 px date snapped as "whole glyphs" left 28% of it bare): OCR's box is masked as well
                    if snapped and snapped[3] * 3 <= wb[3]:
                        whole = False
                    parts = [geometry.grow(snapped, 2)] if snapped else []
                    rows = bands.get(j)
                    if not snapped or not whole:
                        # Wider than high: the next line is close above and below, the next word is not. The
                        # margins of its line's height where the reading was cut to its line ("CLIN" boxed 41 px
                        # tall over NM anatomy on an 18 px line took 6 rows more of the image each side).
                        h = wb[3]
                        part = geometry.grow(wb, max(3, round(0.3 * h)), max(2, round(0.15 * h)))
                        if rows and not snapped:
                            # A band of its line with no glyph of it found (the top half of "20" of a date over
                            # anatomy, read "2N" 9 px high on a 16 px line): where the line's rows are not known,
                            # its usual height above and below.
                            part = geometry.grow(part, 0, max(0, typical - wb[3]))
                        parts.append(part)
                    if rows:  # and the rows of its line, as far as they are known
                        parts.append(geometry.grow(rows, 2))
                    # Joined only to a neighbour of its own line and size: a garbage reading two lines tall
                    # (speckle and the ends of both lines) must not join the lines into one block. And only
                    # across ink no reading boxed (a glyph OCR left out between two words): an empty space
                    # between two words hides nothing, and masked it is image lost.
                    if last is None or not _joinable(last, wb) or (snap and _blank_between(last_parts, parts, snap)):
                        groups.append([])
                    groups[-1] += parts
                    last, last_parts = wb, parts
                for parts in groups:
                    clipped = geometry.clip(geometry.union(parts), width, height)
                    if clipped:
                        boxes.append(clipped)
                run = []
    return geometry.without_contained(boxes)


def _line_of(word: Word, words: Sequence[Word], content: Sequence[geometry.Box]) -> geometry.Box:
    """A word's box; for a reading far taller than clear readings it holds or that stand beside it within its
    rows (Tesseract boxed a line together with the speckle under it: "eh" 43 px tall over a 19 px date, "Rapp"
    39 px tall after "IMAGI"), the rows of those readings, when it is far taller than the frame's usual text or
    its other rows lie over image content. Not otherwise: then the shorter readings are slivers of the line,
    and the tall one is whole."""
    box = geometry.word_box(word)

    def of_its_line(o: Word) -> bool:
        ob = geometry.word_box(o)
        # within its rows, not half in them: a tall "LAKEVIEW" box reaching up into the line above holds half of
        # "MRN:", and cut to MRN's rows its mask left every glyph of LAKEVIEW bare
        rows = min(o.bottom, word.bottom) - max(o.top, word.top)
        if geometry.intersection_area(ob, box) >= 0.5 * o.width * o.height and rows >= 0.8 * o.height:
            return True
        gap = max(o.left - word.right, word.left - o.right)
        return 0 <= gap <= o.height and word.top <= o.top and o.bottom <= word.bottom

    # the readings that say where the line is: clear ones (a garbage sliver "J" of "RIVERSIDE" does not)
    inner = [o for o in words if o is not word and 1.5 * o.height < word.height and o.confidence >= 60
             and _alnum(o.text) >= 2 and of_its_line(o)]
    if not inner:
        return box
    # Held readings that span a small part of it are slivers of a glyph or two, not its line ("UU", 6 px, the
    # lower half of "00" in a 16 px date across a bar's edge, cut the date's mask to those 6 rows).
    if all(geometry.intersects(geometry.word_box(o), box) for o in inner) and \
            sum(min(o.right, word.right) - max(o.left, word.left) for o in inner) < 0.5 * word.width:
        return box
    top, bottom = min(o.top for o in inner), max(o.bottom for o in inner)
    cut = [b for b in [(box[0], box[1], box[2], top - box[1]), (box[0], bottom, box[2], geometry.bottom(box) - bottom)]
           if b[3] > 0]
    area = sum(b[2] * b[3] for b in cut)
    if not area:
        return box
    typical = text_height(words)
    if not (typical and word.height > 1.5 * typical) and sum(
            geometry.share_within(b, content) * b[2] * b[3] for b in cut) < 0.5 * area:
        return box  # a reading of the frame's usual height, its other rows on plain ground: it is the line
    return (box[0], top, box[2], bottom - top)


def _blank_between(left: list[geometry.Box], right: list[geometry.Box], snap) -> bool:
    """Whether the space between two words' masks (each a list of boxes) holds no ink: the snap finds no
    glyph in it. False when the masks touch or overlap."""
    if not left or not right:
        return False
    a, b = sorted((geometry.union(left), geometry.union(right)))
    x0, x1 = geometry.right(a), b[0]
    y0, y1 = max(a[1], b[1]), min(geometry.bottom(a), geometry.bottom(b))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return False
    return snap((x0, y0, x1 - x0, y1 - y0))[0] is None


def _joinable(a: geometry.Box, b: geometry.Box) -> bool:
    """Neighbouring word boxes of one line and about one size: their masks join across the space between."""
    low, high = sorted((a[3], b[3]))
    shared = min(geometry.bottom(a), geometry.bottom(b)) - max(a[1], b[1])
    return high <= 1.5 * max(low, 1) and shared >= 0.5 * low


def rest_of_terms(words: Sequence[Word], decisions: Sequence[Decision], matcher: PhiMatcher, width: int,
                  height: int) -> list[geometry.Box]:
    """Where the unread words of a place the instance names must be, beside the words of it OCR read: "LAKEVIEW
    MEDICAL" masked as the institution's name, "CENTER" after it unread (text at the edge of a title bar,
    over speckle) is masked too, on the same line, as wide as its letters would be at the width of the words
    read; so is the end of a word read in part ("IMAGI" of "IMAGING"). Before the first word read and after the
    last, as far as the name goes; what stands there is masked whatever OCR made of it."""
    if not matcher.places:
        return []
    masked = {d.index for d in decisions if d.mask and d.reason == "phi-term"}
    out = []
    for seg in geometry.segments(words):
        hits = [(k, place, j) for k, i in enumerate(seg) if i in masked
                for place, j in matcher.place_words(words[i].text)]
        for place in {p for _, p, _ in hits}:
            mine = [(k, j) for k, p, j in hits if p == place]
            # One word of a name in another phrase ("MEDICAL" of "RIVERSIDE MEDICAL") is not that name: two of
            # its words, its first word, or a word before its last ("MARY" of "ST MARY HOSPITAL": a name's
            # last word is the one other names share) say where the rest of it is; a word before its last only
            # on a side where no other word was read clearly, or what was read is a misread of the name's word
            # ("51" for "ST").
            js = {j for _, j in mine}
            if len(js) < 2 and min(js) != 0 and max(js) == len(place) - 1:
                continue
            lone = len(js) < 2 and min(js) != 0
            for (k, j), side in ((max(mine), 1), (min(mine), -1)):
                if lone and 0 <= k + side < len(seg) and 0 <= j + side < len(place):
                    o = words[seg[k + side]]
                    if (o.confidence >= 80 and sum(c.isalpha() for c in o.text) >= 3
                            and not within_edits(fold_ocr(o.text), place[j + side], 1)):
                        continue
                w = words[seg[k]]
                read = len(fold_ocr(w.text))
                missing = place[j + 1:] if side > 0 else place[:j]
                # and the end of a word read in part ("IMAGI" of "IMAGING")
                tail = place[j][read:] if side > 0 and read < len(place[j]) else ""
                if not tail and not missing:
                    continue
                per_char = w.width / max(1, read)
                # no wider than the letters of the line's clear words: a weak read's box often holds the
                # whole word ("CLIN" at confidence 35 boxed all of "CLINIC", 24 px a letter against 15.6 for
                # "RIVERSIDE" before it, and its rest reached 77 px past the word into the NM image)
                clear = sorted(o.width / len(fold_ocr(o.text)) for o in (words[i] for i in seg)
                               if o.confidence >= 80 and sum(c.isalpha() for c in o.text) >= 3)
                if clear:
                    per_char = min(per_char, clear[len(clear) // 2])
                edge, tail, missing = _read_on(words, seg, k, side, masked, per_char, tail, list(missing))
                letters = len(tail) + sum(len(m) + 1 for m in missing)
                if not letters:
                    continue
                span = round(per_char * (letters + 0.5) * 1.15)  # half a letter more: widths vary by letter
                x = edge.left + edge.width if side > 0 else edge.left - span
                # on the rows of the line, not of a reading far taller (one that took in the speckle under it)
                _, top, _, tall = _line_of(w, words, ())
                box = geometry.clip(geometry.grow((x, top, span, tall), 2), width, height)
                if box:
                    out.append(box)
    return out


def _read_on(words: Sequence[Word], seg: list[int], k: int, side: int, masked: set[int], per_char: float,
             tail: str, missing: list[str]) -> tuple[Word, str, list[str]]:
    """The words of a place beside a word of it that were read too, as far as they go: the last of them, and what
    is still unread past it (the unread end of a word, then whole words). "MARY" of "ST MARY HOSPITAL" with
    "HOSPITA" read and masked after it: the rest is the "L", not all of "HOSPITAL" again (a 180 px block of a
    cine's speckle masked on every frame, held-out draw 20290715). A neighbour counts only masked as PHI, within
    two letters of the edge, and reading as the next letters of the name (one OCR error in them)."""
    edge = words[seg[k]]
    at = k + side
    while (tail or missing) and 0 <= at < len(seg) and seg[at] in masked:
        o = words[seg[at]]
        gap = o.left - edge.right if side > 0 else edge.left - o.right
        text = fold_ocr(o.text)
        if not text or not -per_char <= gap <= 2 * per_char:
            break
        if side > 0:  # the next letters: the rest of a word, else the next word, from its start
            word = tail or missing[0]
            part = word[:len(text)]
        else:  # the letters before: the previous word, from its end
            word = missing[-1]
            part = word[-len(text):]
        if len(text) > len(word) or not (part == text or len(text) >= 4 and within_edits(text, part, 1)):
            break
        rest = word[len(text):] if side > 0 else word[:len(word) - len(text)]
        if side > 0:
            if not tail:
                missing.pop(0)
            tail = rest
        else:
            missing.pop()
            if rest:  # the start of that word is still unread, right before this one
                missing.append(rest)
                break
        edge, at = o, at + side
    return edge, tail, missing


def settled_boxes(readings: Sequence[Sequence[Word]], decisions: Sequence[Sequence[Decision]],
                  snap=None, content: Sequence[geometry.Box] = (),
                  masked_ink: Sequence[geometry.Box] = (),
                  near: Sequence[geometry.Box] | None = None,
                  lines: Sequence[geometry.Box] | None = None,
                  bands: Bands | None = None) -> list[geometry.Box]:
    """Strict mode's rule for text the detector found (pixels.text_presence) whatever OCR made of it: its ink
    may stay only under a word OCR read there (whose own decision then applies). Ink that no reading boxed at
    all is text OCR could not see, and is masked; so is ink under reads taken for noise beside masked text on
    the same line (a stray letter or a weak read of the rest of a name, outside image content). A word's ink is that of the
    glyphs its box holds (`snap`, pixels.glyphs: the same whichever engine boxed it), else its box; grown by 2 px
    for the anti-aliased rim.

    Only boxes of words read are taken, not their confidence: Tesseract reports confidence 0 for settings it
    reads right in sparse mode ("MI" "1.1" on a 14 px line), so requiring a confidence here (50 was tried)
    masked a third of the technical text of the generated tests.

    `near`: the boxes the result will be tested against (the detector's pieces); a word whose box, snapped or
    not, cannot reach any of them is left out unsnapped (snapping speckle read as letters was most of the
    cost: the glyphs of a box lie within twice its height of it, see pixels.glyphs). `lines`: the detector's
    pieces, where a reading may be a band of its line. `bands`: the frame's bands (find_bands), when the caller
    worked them out; else they are found here from `snap` and `lines`. A band of a line settles nothing."""
    masked = [geometry.word_box(r[d.index]) for r, ds in zip(readings, decisions) for d in ds if d.mask]
    masked += list(masked_ink)  # unread ink found to be masked (a first pass of the caller)
    every = [w for r in readings for w in r]
    if bands is None:
        bands = find_bands(readings, decisions, snap, lines or (), content, near)
    out = []
    for k, (r, ds) in enumerate(zip(readings, decisions)):
        for d in ds:
            # A reading far taller than its line reads only that line, as its mask covers only that (_line_of):
            # "NORTHGATE" boxed 41 px from the ID line above it, right under a bar, took that line's ink for read.
            wb = _line_of(r[d.index], every, content)
            if near is not None:
                reach = geometry.grow(wb, max(6, 2 * wb[3]) + 3)
                if not any(geometry.intersects(reach, b) for b in near):
                    continue
            # A band of a line is not a reading of that line whatever it was read as (a second look whose block's
            # edge cut a date over anatomy read its top 9 px as "2N", "MAD", "DM"; 7 px type read "MARTIAATE" 4 px
            # high): its ink is unread.
            if (k, d.index) in bands.rows:
                continue
            snapped = snap(wb) if snap else None
            # A weak read next to masked text on its line (the rest of a name OCR half read) is not a reading of
            # it: its ink is unread. In image content (`content`: ultrasound regions, textured tiles) it is
            # speckle read as letters, and stays.
            if d.reason == "noise" and not geometry.mostly_within(wb, content):
                word = r[d.index]
                # Nor is, outside image content, garbage (three characters or more, confidence under 30): OCR did
                # not read those glyphs.
                garbage = word.confidence < 30 and _alnum(word.text) >= 3
                if garbage or _beside(wb, masked):
                    continue
                # Otherwise only the ink inside its own box: at 7 px type letters touch, and the glyphs a weak
                # "ESL" snaps to are the whole of "NORTHGATE".
                snapped = None
            out.append(geometry.grow(snapped, 2) if snapped else geometry.grow(wb, 1))
    return out


def band_of_line(box: geometry.Box, glyphs: geometry.Box | None, lines: Sequence[geometry.Box] = (),
                 typical: int = 0, noise: bool = False) -> geometry.Box | None:
    """The rows of the line a reading's `box` is a band of, over the box's columns; None when the reading stands
    for its line. A reading of USUAL of the usual text height (`typical`) or more stands for it, unless it was
    taken for noise (`noise`). The line is, in this order of trust:
    - the glyphs found in the box (`glyphs`, pixels.glyphs' snap), where they are as tall as the box or taller
      ("MAD" 9 px over the 15 px glyphs of "MAR"; "MARTIAATE" 4 px high over 7 px type);
    - else (no glyph found, or only a speck: glyphs running into the tissue under them) the detector's pieces
      under the box (`lines`);
    - else, with no glyph found at all, the usual height itself: a box under BAND of it is a band whose line's
      rows are not known, so it covers that height above and below ("2N" 9 px high on a 16 px date over
      anatomy)."""
    if typical and not noise and box[3] >= USUAL * typical:
        return None
    if glyphs is not None and glyphs[3] >= box[3]:
        if box[3] >= BAND * glyphs[3]:
            return None
        tall = [glyphs]
    else:
        tall = [p for p in lines if geometry.intersects(p, box) and box[3] < BAND * p[3]]
        if not tall:
            # glyphs found a little shorter than the box are its line's whole glyphs ("Frame" boxed 8 px over
            # 7 px type on a frame whose usual text is 19 px): only a box that holds no glyph at all says nothing
            if glyphs is not None or not (typical and box[3] < BAND * typical):
                return None
            more = typical - box[3]
            top = max(0, box[1] - more)
            return (box[0], top, box[2], geometry.bottom(box) + more - top)
    top = min(p[1] for p in tall + [box])
    bottom = max(geometry.bottom(p) for p in tall + [box])
    return (box[0], top, box[2], bottom - top)


@dataclass(frozen=True)
class Bands:
    """A frame's readings that are bands of their lines (band_of_line), worked out once per frame: `typical` is the
    frame's usual text height, `rows[(reading, word index)]` the rows of the line that word is a band of."""

    typical: int
    rows: dict


def find_bands(readings: Sequence[Sequence[Word]], decisions: Sequence[Sequence[Decision]], snap,
               lines: Sequence[geometry.Box] = (), content: Sequence[geometry.Box] = (),
               near: Sequence[geometry.Box] | None = None) -> Bands:
    """The bands of a frame's readings. `snap(box)`: the box of the glyphs a box holds, or None (Glyphs.snap);
    without it only the detector's pieces and the usual height say. `near`: the detector's pieces; a read taken
    for noise that cannot reach any of them is not snapped (speckle read as letters: snapping it was most of the
    cost of settled_boxes), as nothing there is decided by its band."""
    every = [w for r in readings for w in r]
    typical = text_height(every)
    rows = {}
    for k, (words, ds) in enumerate(zip(readings, decisions)):
        for d in ds:
            word = words[d.index]
            # A reading far taller than its line reads only that line (_line_of); its own box is tested too.
            boxes = [_line_of(word, every, content)]
            if boxes[0] != geometry.word_box(word):
                boxes.append(geometry.word_box(word))
            # Outside image content a read taken for noise is not trusted as a reading (settled_boxes); in it, it
            # is speckle read as letters, and is judged as any reading.
            noise = d.reason == "noise" and not d.mask and not geometry.mostly_within(boxes[0], content)
            if d.reason == "noise" and not d.mask and near is not None and not any(
                    geometry.intersects(geometry.grow(b, max(6, 2 * b[3]) + 3), p) for b in boxes for p in near):
                continue
            found = [r for r in (band_of_line(b, snap(b) if snap else None, lines, typical, noise) for b in boxes)
                     if r]
            if found:
                rows[(k, d.index)] = geometry.union(found)
    return Bands(typical, rows)


def slivers(readings: Sequence[Sequence[Word]], decisions: Sequence[Sequence[Decision]], snap=None,
            lines: Sequence[geometry.Box] = (), bands: Bands | None = None) -> list[geometry.Box]:
    """Ink of the lines that readings kept read only in a band (band_of_line), on the line's rows: unread ink, to be
    decided as such. The detector's pieces may not hold those glyphs: the "2" of "20-JAN-2021" ran into the tissue
    under it and no piece began before the "0". Not where another reading boxed those rows whole (its own decision
    applies there), nor for reads taken for noise. `bands`: the frame's (find_bands), else found from `snap` and
    `lines`."""
    if bands is None:
        bands = find_bands(readings, decisions, snap, lines)
    every = [w for r in readings for w in r]
    out = []
    for k, (words, ds) in enumerate(zip(readings, decisions)):
        for d in ds:
            # A read taken for noise says nothing of a line ("=" 7 px over a setting in speckle): its ink is left
            # to the detector, as any other. A masked band is masked by mask_boxes, on its line's rows.
            rows = bands.rows.get((k, d.index))
            if rows is None or d.mask or d.reason == "noise":
                continue
            if not any(o.height >= BAND * rows[3] and geometry.intersection_area(
                    rows, geometry.word_box(o)) >= 0.8 * rows[2] * rows[3] for o in every):
                out.append(rows)
    return out


def beside_masked(box: geometry.Box, readings: Sequence[Sequence[Word]],
                  decisions: Sequence[Sequence[Decision]]) -> bool:
    """Whether a masked word of the frame's readings shares a row with `box`, within 3 text heights across (a
    row, not half the height: the masked read may be a sliver of the line)."""
    return any(d.mask and geometry.shares_a_row(box, geometry.word_box(r[d.index]))
               for r, ds in zip(readings, decisions) for d in ds)


def against_phi(box: geometry.Box, readings: Sequence[Sequence[Word]],
                decisions: Sequence[Sequence[Decision]]) -> bool:
    """Whether `box` runs into a word masked as PHI on its line: most of the smaller height shared and no space
    between them (under half a text height). Glyphs touching a PHI word that its reading left out of its box are
    that word's own ("a." of "a.doe@example.org" boxed from "doe"), over image content too."""
    for words, ds in zip(readings, decisions):
        for d in ds:
            if not (d.mask and d.reason.startswith("phi")):
                continue
            w = words[d.index]
            shared = min(geometry.bottom(box), w.bottom) - max(box[1], w.top)
            gap = max(box[0], w.left) - min(geometry.right(box), w.right)
            if shared >= 0.6 * min(box[3], w.height) and gap < 0.5 * max(box[3], w.height):
                return True
    return False


def _core(text: str) -> str:
    return "".join(c for c in normalise(text).upper() if c.isalnum() or c in "/.-:")


def _misread_of(core: str, earlier: str) -> bool:
    """A long word one character in eight from an earlier frame's PHI word: the same word misread ("H.OBRIENG
    EXAMPLE.ORG" for "H.OBRIEN@EXAMPLE.ORG", the "@" read as "g" on five frames of a cine after the first read it
    right; with no "@" it is no address, and phi mode kept it)."""
    return len(core) >= 8 and within_edits(core, earlier, max(1, len(core) // 8))


def carried_phi(readings: Sequence[Sequence[Word]], decisions: Sequence[Sequence[Decision]],
                earlier: Sequence[Word]) -> list[list[Decision]]:
    """The decisions with a kept word masked where an earlier frame of the same instance masked a PHI word whose text
    holds it, or that it holds (two characters or more), or that it misreads (_misread_of), over half of it in that
    word's box: the same word read in part ("8/" and "22" of a cine's "05/28/2022" over moving speckle, read
    "28/2022" on the frame before, kept as numbers; the rest then goes as the rest of a masked date's line).
    `earlier`: the words masked as PHI on the frames before."""
    out = []
    for words, ds in zip(readings, decisions):
        row = []
        for d in ds:
            w = words[d.index]
            core = _core(w.text)
            if not d.mask and d.reason != "noise" and len(core) >= 2 and any(
                    geometry.intersection_area(geometry.word_box(w), geometry.word_box(e)) >= 0.5 * w.width * w.height
                    and (core in _core(e.text) or len(_core(e.text)) >= 2 and _core(e.text) in core
                         or _misread_of(core, _core(e.text)))
                    for e in earlier):
                d = Decision(d.index, True, "phi-carried")
            row.append(d)
        out.append(row)
    return out


def carried_line(readings: Sequence[Sequence[Word]], decisions: Sequence[Sequence[Decision]],
                 earlier: Sequence[geometry.Box]) -> list[geometry.Box]:
    """Boxes of PHI words (and of the rest of their lines) an earlier frame of the same cine masked that stand beside
    a word this frame masks as PHI (its rows shared, a like height, at most two text heights across) and that this
    frame did not mask or read clearly as something kept: the rest of a stamp over moving image content that this
    frame read in part ("01-NOV-2017" before "1:46:51" on an RGB cine over anatomy, read on frames 1, 3 and 5 and on
    none of 2 and 4, where the line's strokes could not be followed over the tissue). A burned-in stamp stays where
    it is from frame to frame; anything else on its rows beside it would be its line's too."""
    phi = [geometry.word_box(words[d.index]) for words, ds in zip(readings, decisions) for d in ds
           if d.mask and d.reason.startswith("phi")]
    kept = [geometry.word_box(words[d.index]) for words, ds in zip(readings, decisions) for d in ds
            if not d.mask and d.reason != "noise" and words[d.index].confidence >= 60]
    out: list[geometry.Box] = []
    for box in earlier:
        beside = [p for p in phi if geometry.shares_a_row(box, p, 2) and 2 * min(box[3], p[3]) >= max(box[3], p[3])]
        if not beside or geometry.mostly_within(box, phi):
            continue
        # on the rows of this frame's line (2 px more): an earlier frame's reading may have boxed speckle under it
        top = max(box[1], min(p[1] for p in beside) - 2)
        bottom = min(geometry.bottom(box), max(geometry.bottom(p) for p in beside) + 2)
        box = (box[0], top, box[2], bottom - top)
        if box in out or bottom <= top or any(geometry.intersection_area(box, k) * 2 >= k[2] * k[3] for k in kept):
            continue
        out.append(box)
    return out


def at_frame_side(readings: Sequence[Sequence[Word]], decisions: Sequence[Sequence[Decision]],
                  width: int) -> list[geometry.Box]:
    """Reads taken for noise that touch the frame's left or right side on a line with a word masked as PHI, as
    boxes over that line's rows: a glyph the side cut, whose word cannot be read and runs on from PHI (the
    first "7" of "77Y" drawn past a 512-px frame after a birth date: 4 columns left, read "1", 7 px tall). Only
    a glyph's size, no wider than tall and no taller than the line: a garbled box over a corner of the frame
    ("TR" 189x82 over a palette ultrasound's top right) is no glyph, and which engine reads one differs."""
    phi = [geometry.word_box(words[d.index]) for words, ds in zip(readings, decisions) for d in ds
           if d.mask and d.reason.startswith("phi")]
    out = []
    for words, ds in zip(readings, decisions):
        for d in ds:
            w = words[d.index]
            if d.mask or d.reason != "noise" or 1 < w.left and w.right < width - 1 or w.width > w.height:
                continue
            box = geometry.word_box(w)
            line = [b for b in phi if geometry.shares_a_row(box, b) and w.height <= 1.5 * b[3]]
            if line:
                top = min(b[1] for b in [box, *line])
                out.append((w.left, top, w.width, max(geometry.bottom(b) for b in [box, *line]) - top))
    return out


def after_label(box: geometry.Box, readings: Sequence[Sequence[Word]]) -> bool:
    """Whether a PHI label ("ID:", "DOB", "MRN"), read clearly, stands before `box` on its line (half the
    label's height shared, within 3 text heights across): what follows a label is its value, read or not (phi
    mode masks an unread value there as it masks a read one)."""
    for words in readings:
        for w in words:
            if not _clear_label(w):
                continue
            shared = min(geometry.bottom(box), w.bottom) - max(box[1], w.top)
            gap = box[0] - w.right
            if shared >= 0.5 * min(box[3], w.height) and -w.width < gap <= 3 * max(box[3], w.height):
                return True
    return False


def _beside(box: geometry.Box, others: Sequence[geometry.Box], reach: float = 3) -> bool:
    """Another box on the same line (half the smaller height shared) within `reach` text heights across."""
    for o in others:
        small = min(box[3], o[3])
        shared = min(geometry.bottom(box), geometry.bottom(o)) - max(box[1], o[1])
        gap = max(box[0], o[0]) - min(geometry.right(box), geometry.right(o))
        if shared >= 0.5 * small and gap <= reach * max(box[3], o[3]):
            return True
    return False
