"""PHI in text read by OCR: this instance's terms (tolerant of OCR errors) and PHI-shaped patterns.

Builds on py_deid.phi (the terms and the folding of confusable characters) with what OCR output needs on top:
words of one phrase combined (a date or a name split into several words), truncated values ("CLEVELAN.."),
two errors in a long word, dates written the way scanners print them ("Fri Apr 30 06:27:24 1993"), times next
to a date, and values that follow a label such as "ID:" or "DOB".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .. import dates as _dates
from ..dates import _MONTHS
from ..phi import _EMAIL, _PHONE, _SSN, PhiTerms, fold_ocr

_MON = r"(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|SEPT|[O0]CT|N[O0]V|DEC)[A-Z]*\.?"
_DAY = r"(?:MON|TUE|WED|THU|FRI|SAT|SUN)[A-Z]*\.?,?"
_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AP]\.?M\.?)?"
DATES = (
    r"(?<![\w.])\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?![\w.])",  # 08/29/1951, 5/25/11, 29.08.1951
    r"(?<![\w.])\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)\d{2}",  # glued to what follows ("03/02/201705:24PM")
    r"(?<![\w.])(?:1[89]|20)\d{2}[/.-]\d{1,2}[/.-]\d{1,2}(?![\w.])",  # 2017-03-02
    r"(?<![\w.])(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?![\w.])",  # 20170302
    rf"(?<![\w.])\d{{1,2}}\s?[ -]?{_MON}[ -]?\s?(?:\d{{4}}|\d{{2}})(?![\w.])",  # 30 JAN 94, 24-MAY-02
    rf"(?<![\w.])(?:{_DAY}\s)?{_MON}\s\d{{1,2}},?\s(?:{_TIME}\s)?\d{{4}}(?![\w.])",  # Fri Apr 30 06:27:24 1993
    rf"(?<![\w.]){_MON}[ -]?(?:19|20)\d{{2}}(?![\w.])",  # month and year: OCT 2016
)
# Month and day with the year cut or misread ("Nov 5,"), on the words as read: a setting one letter from a
# month ("mAs 63") is not a month here.
MONTH_DAY_RE = re.compile(r"(?<![\w.])(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|SEPT|OCT|NOV|DEC)[A-Z]*\.?\s"
                          r"(?:0?[1-9]|[12]\d|3[01])(?:ST|ND|RD|TH)?,?(?![\w.:])", re.IGNORECASE)
OTHER = (
    _EMAIL, _SSN, _PHONE,  # the header's patterns (py_deid.phi)
    # an address read in part: its domain without the dot ("s.hassan@example"), or with the rest read as a word of
    # its own after an unread dot ("s.hassan@example" "org"); a whole address is _EMAIL's, and a word after it stays
    r"[\w.+-]*\w@\w[\w-]*(?:\.?\s\.?[A-Z]{2,24}(?![\w.@])|\.(?![\w-]))?(?![\w.@-])",
    # an address read as two words at its @ ("l.smith@" "example.org", "l.smith" "@example.org"): the domain
    # needs its dot and a top-level part, so that "@" beside a setting is not an address
    r"[\w.+-]*\w(?:@\s|\s@)\w[\w-]*(?:\.[\w-]+)*\.[A-Z]{2,24}(?![\w.@-])",
    r"(?<![\w.])\(\d{3}\)\s?\d{3}(?:[\s.-]\d{0,4})?(?![\w.])",  # a phone read in part: (370) 555-
    r"(?<![\d.])\d{6,}(?![\d.])",  # long digit runs (IDs, accession numbers), also glued to letters
    r"(?<![\w.])\d{2,}(?:-\d{2,}){2,}(?![\w.])",  # dashed identifiers: 11-05-25-142825
    r"(?<![\w.])\d{1,3}\s?(?:Y|YO|Y/O|YR|YRS|YEARS?)(?![\w/])",  # ages: 45Y, 45 yrs, 45 y/o
    r"(?<![\w.])0\d{2}[DWMY](?![\w])",  # ages as DICOM writes them (Age String): 045Y, 006M
    r"(?<![\w.])\d{5}-\d{4}(?![\w.])",  # ZIP+4
    r"(?<![\w.])(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|"
    r"T[NX]|UT|V[AT]|W[AIVY]),?\s\d{5}(?![\w.])",  # a US state and ZIP code: OH 44195
    r"(?<![\w.])[A-Z]{1,2}\d[A-Z\d]?\s\d[ABD-HJLNP-UW-Z]{2}(?![\w.])",  # a UK postcode: SW1A 1AA
)
DATE_RE = re.compile("|".join(f"(?:{p})" for p in DATES), re.IGNORECASE)
TIME_RE = re.compile(rf"(?<![\w.]){_TIME}(?![\w])", re.IGNORECASE)
OTHER_RE = re.compile("|".join(f"(?:{p})" for p in OTHER), re.IGNORECASE)
# Titles are case-sensitive: "DR" alone is an ultrasound label (dynamic range).
HONORIFIC_RE = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Doctor)\b\.?\s*[A-Z][A-Za-z'-]+")
# Labels after which the next words are an identifier or a name, whatever they say.
LABELS = re.compile(
    r"^(?:ID|PID|MRN|MR#|PT|PAT|PATIENT|NAME|PT\.?NAME|DOB|D\.O\.B|BIRTH|BD|ACC|ACC#|ACCESSION|EX|EXAM|"
    r"STUDY|REF|REFERRING|PHYS|PHYSICIAN|OPERATOR|OP|SONOGRAPHER|HOSP|HOSPITAL|INST|ADDR|TEL|PHONE|"
    r"SSN|INS|INSURANCE|AGE|ZIP|POSTCODE|EMAIL|E-MAIL|MOBILE|CELL)[:#.]*$", re.IGNORECASE)
_DASHES = str.maketrans({"\u2014": "-", "\u2013": "-", "\u2012": "-", "\u2212": "-", "\u201c": '"', "\u201d": '"',
                         "\u2026": "..."})


def is_label(text: str) -> bool:
    """Whether `text` is a PHI label ("Name:", "DOB", "MRN"), quotes and stars around it aside."""
    return bool(LABELS.match(normalise(text).strip("\"'*")))


def normalise(text: str) -> str:
    """OCR text with typographic dashes, quotes and ellipses as ASCII, and runs of dashes collapsed."""
    return re.sub(r"-{2,}", "-", text.translate(_DASHES))


def within_edits(a: str, b: str, k: int) -> bool:
    """Levenshtein distance <= k (banded; the strings are short)."""
    if abs(len(a) - len(b)) > k:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        lo, hi = max(1, i - k), min(len(b), i + k)
        if lo > 1:
            cur[lo - 1] = k + 1
        for j in range(lo, hi + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != b[j - 1]))
        if hi < len(b):
            cur[hi + 1:] = [k + 1] * (len(b) - hi)
        if min(cur) > k:
            return False
        prev = cur
    return prev[-1] <= k


def _allowed_edits(n: int) -> int:
    return 0 if n < 5 else 1 if n < 8 else 2


class PhiMatcher:
    """This instance's PHI terms, folded the way OCR errs, and a tolerant test of OCR text against them."""

    def __init__(self, terms: PhiTerms | None) -> None:
        forms: set[str] = set()
        if terms is not None:
            names = set(getattr(terms, "names", ()))
            for term in names | set(terms.ids) | set(terms.phones):
                forms.add(fold_ocr(term))
            for place in terms.places:
                forms.add(fold_ocr(place))
                forms.update(fold_ocr(w) for w in re.split(r"[\s^,]+", place) if len(w) >= 4)
            for a in names:
                for b in names:
                    if a != b:
                        forms.add(fold_ocr(a + b))
            for d in terms.dates:
                forms.update(fold_ocr(f) for f in _dates.written_forms(d))
        self.forms = frozenset(f for f in forms if len(f) >= 2)
        # Multi-word places as their folded words, for the rest of a name OCR read only in part (rest_of_term).
        self.places = tuple(ws for ws in (tuple(fold_ocr(w) for w in re.split(r"[\s^,]+", place) if fold_ocr(w))
                                          for place in (terms.places if terms is not None else ())) if len(ws) >= 2)
        self._long = tuple(sorted((f for f in self.forms if len(f) >= 4), key=len, reverse=True))
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.forms)

    def matches(self, text: str, *, inside: bool = True) -> bool:
        """`inside`: also when a term is only part of the text (off for combined words, where that part is
        one of the words and matches on its own)."""
        key = (text, inside)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._matches(text, inside)
        return hit

    def _matches(self, text: str, inside: bool) -> bool:
        folded = fold_ocr(normalise(text))
        if len(folded) < 2:
            return False
        if folded in self.forms:
            return True
        truncated = text.rstrip().endswith(("..", "\u2026", "\\..", "!.."))
        n = len(folded)
        for form in self._long:
            if inside and form in folded:
                return True
            if n >= 4 and form.startswith(folded) and (truncated or n >= 5):
                return True
            k = _allowed_edits(min(n, len(form)))
            if k and within_edits(form, folded, k):
                return True
            if truncated and n >= 5 and within_edits(form[:n], folded, _allowed_edits(n)):
                return True
        return False


    def place_words(self, text: str) -> list[tuple[tuple[str, ...], int]]:
        """(place, index of the word) for every word of a multi-word place that `text` is (OCR errors allowed)."""
        folded = fold_ocr(normalise(text))
        out = []
        if len(folded) < 2:
            return out
        for place in self.places:
            for j, word in enumerate(place):
                if folded == word or (len(folded) >= 4 and word.startswith(folded)) or (
                        _allowed_edits(min(len(folded), len(word))) and
                        within_edits(word, folded, _allowed_edits(min(len(folded), len(word))))):
                    out.append((place, j))
        return out


def _spans(text: str, regex: re.Pattern) -> list[tuple[int, int]]:
    return [m.span() for m in regex.finditer(text)]


def phrase_text(texts: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Words joined by one space, and each word's character span in the result."""
    out, spans, pos = [], [], 0
    for t in texts:
        t = normalise(t)
        spans.append((pos, pos + len(t)))
        out.append(t)
        pos += len(t) + 1
    return " ".join(out), spans


def _covered(spans: list[tuple[int, int]], hits: list[tuple[int, int]]) -> set[int]:
    return {k for k, (a, b) in enumerate(spans) for (s, e) in hits if a < e and s < b}


AS_DIGIT = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "@": "0", "\u00d8": "0", "\u00f8": "0",
                           "I": "1", "l": "1", "|": "1", "!": "1", "Z": "2", "z": "2", "S": "5", "s": "5",
                           "$": "5", "B": "8", "G": "6", "b": "6", "g": "9", "q": "9"})


def canonical(texts: Sequence[str]) -> list[str]:
    """OCR words as the patterns expect them: letters read in place of digits in a mostly numeric word become
    digits ("S84" -> "584", "@:83:46" -> "0:83:46"), and a month name one letter off next to a number is
    that month ("JAM 94" -> "JAN 94")."""
    out = []
    for t in texts:
        t = normalise(t)
        alnum = [c for c in t if c.isalnum() or c in "@|!$\u00d8\u00f8"]
        digits = sum(c.isdigit() for c in t)
        if digits and 2 * digits >= len(alnum) and not re.search(r"[A-Za-z]{2}", t):
            t = t.translate(AS_DIGIT)
        out.append(t)
    for k, t in enumerate(out):
        core = t.strip(".,-").upper()
        if len(core) == 3 and core.isalpha() and core not in _MONTHS:
            neighbours = [out[j] for j in (k - 1, k + 1) if 0 <= j < len(out)]
            if any(any(c.isdigit() for c in n) for n in neighbours):
                for m in _MONTHS:
                    if within_edits(core, m, 1):
                        out[k] = t.upper().replace(core, m)
                        break
    return out


# The shapes of a date and of an identifier whatever OCR made of their digits: a weak read of "10/08/1967" is
# "1N/NR/1ART", of "9277988373" "Q277QRR37". Letters read in place of digits are not all in AS_DIGIT (they depend
# on the font), but the shape survives: day, month and year groups between two equal separators, or a long run of
# capitals and digits, mostly digits.
_DATE_SHAPE = re.compile(r"[^\W_]{1,2}([/.-])[^\W_]{1,2}\1[^\W_]{2,4}|[^\W_]{4}([/.-])[^\W_]{1,2}\2[^\W_]{1,2}")
_ID_SHAPE = re.compile(r"[A-Z\d]{6,}")
# Three groups of digits between two equal separators with a digit read twice or lost ("2.311.201" for
# "02.11.2017" over ultrasound anatomy, read at confidence 0): 5 to 9 digits in all.
_LOOSE_DATE = re.compile(r"\d{1,3}([/.-])\d{1,3}\1\d{1,4}")
_EDGE = "\"'*`,;:|()[]{}<>~=!? "


def misread_shape(text: str) -> str:
    """"date" or "id" when a word has the shape of one with some digits read as letters (see above), else ""."""
    t = normalise(text).strip(_EDGE)
    digits = sum(c.isdigit() for c in t)
    if digits >= 2 and _DATE_SHAPE.fullmatch(t) or 5 <= digits <= 9 and _LOOSE_DATE.fullmatch(t):
        return "date"
    if 2 * digits >= len(t) and _ID_SHAPE.fullmatch(t):
        return "id"
    return ""


_STAMP_TIME = re.compile(r"\d{1,2}[:.]?\d{2}(?:[:.]?\d{2})?(?:[AP]M)?", re.IGNORECASE)


def stamp_time(texts: Sequence[str]) -> bool:
    """The first of `texts` is the time of a date stamp, even with its colon lost or misplaced ("1026",
    "1620:43"): what follows a date on its line."""
    nxt = canonical(texts[:1])
    return bool(nxt) and _STAMP_TIME.fullmatch(nxt[0].strip()) is not None


_YEAR_TIME_RE = re.compile(r"(?<!\d)(?:19|20)\d{2}[:.]?\d{1,2}:\d{2}")
# A time of day in range, in a word of its own or run into garble before it ("[7.11:46:53" over a cine's
# speckle). On the words as read: "G:55" made digits by `canonical` would be a clock.
_CLOCK_RE = re.compile(r"(?<![\d:])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?![\d:])")


def clock_hits(texts: Sequence[str]) -> set[int]:
    """Word positions that hold a time of day ("11:46:49", "1:46:51" with its first digit lost, "9:05"). The
    issue's phi mode takes every date, time and date-time as PHI, whether or not a date is read beside it: a
    clock over anatomy whose date no reading saw is still the acquisition's time, and the line it stands on
    is followed from it (line_rest) to that date."""
    return {k for k, t in enumerate(texts) if _CLOCK_RE.search(normalise(t))}


def pattern_hits(texts: Sequence[str], readable: Sequence[bool] | None = None) -> tuple[set[int], set[int], set[int]]:
    """Word positions in one phrase covered by (dates, times, other PHI-shaped patterns incl. labelled values).
    `readable[k]`: word k was read clearly enough to count as a label (a weak "PT" is speckle)."""
    text, spans = phrase_text(canonical(texts))
    dates = _covered(spans, _spans(text, DATE_RE)) | {k for k, t in enumerate(texts) if misread_shape(t) == "date"}
    raw, raw_spans = phrase_text(texts)
    dates |= _covered(raw_spans, _spans(raw, MONTH_DAY_RE))
    times = _covered(spans, _spans(text, TIME_RE)) | clock_hits(texts)
    for k in sorted(dates):  # the year after a month and day, read in part or wrong: "Nov" "5," "198:"
        nxt = canonical(texts[k + 1:k + 2])
        if nxt and re.fullmatch(r"\d{1,2}(?:ST|ND|RD|TH)?,?", normalise(texts[k]).strip(), re.IGNORECASE) and \
                re.fullmatch(r"\d{2,3}\W?|\d{4}|\d{3}\w", nxt[0].strip()):
            dates.add(k + 1)
    for k in sorted(dates):  # a stamp's time right after its date, even with the colon lost: "09/10/2021 1026"
        if stamp_time(texts[k + 1:k + 2]):
            times.add(k + 1)
        # or read in pieces of digits: "2.311.201" "7" "10" "43513" of "02.11.2017 10:43:13" over anatomy (up
        # to three words after the date, of digits, colons and dots only, a time's digits and a stray one)
        total = 0
        for j in range(k + 1, min(k + 4, len(texts))):
            t = normalise(texts[j]).strip()
            n = sum(c.isdigit() for c in t)
            if j in dates or not n or not re.fullmatch(r"[\d:.]+", t) or total + n > 8:
                break
            total += n
            times.add(j)
    # the year of a date-time whose day and month were not read: "Ea" "2022" "3:34:56"; with the separator
    # before it ("-2021" "3:26:56" of "08-OCT-2021 3:26:56" over anatomy), or its first digit lost with them
    # ("017" "3:34:17" of "05-JAN-2017 3:34:17" over anatomy: three digits from 0 or 9 are a year's tail), or
    # with the day or month before it ("8/2022" "10:31:47" of "05/28/2022 10:31:47" over a cine's speckle)
    for k in sorted(times):
        prev = canonical(texts[k - 1:k]) if k else []
        if prev and re.fullmatch(r"(?:\d{1,2})?[-/.]?(?:19|20)\d{2},?|[09]\d{2},?", prev[0].strip()):
            dates.add(k - 1)
    # a year glued to the time after it is a date-time's date, whatever came of its day and month: ".2019:11:10:59"
    # (with "21512" before it for "21.12.")
    dates |= _covered(spans, _spans(text, _YEAR_TIME_RE))
    other = _covered(spans, _spans(text, OTHER_RE) + _spans(text, HONORIFIC_RE))
    other |= {k for k, t in enumerate(texts) if misread_shape(t) == "id"}
    for k, t in enumerate(texts):
        if is_label(t) and (readable is None or readable[k]):
            # The value(s) after a label: up to three words, stopping at the next label.
            for j in range(k + 1, min(k + 4, len(texts))):
                nxt = normalise(texts[j]).strip("\"'*")
                # the next label; not a value ending in a colon ("198:", a year whose last digit was misread)
                if LABELS.match(nxt) or (nxt.endswith(":") and j > k + 1 and any(c.isalpha() for c in nxt)):
                    break
                other.add(j)
    return dates, times - dates, other


def term_hits(texts: Sequence[str], matcher: PhiMatcher, max_words: int = 4,
              readable: Sequence[bool] | None = None) -> set[int]:
    """Word positions in one phrase that are (part of) one of the instance's PHI terms. A group of words is
    only taken whole when the words at its ends were read clearly (`readable`) or match by themselves: a
    speckle blot read as "LO" next to a name is not part of the name."""
    hit: set[int] = set()
    if not matcher:
        return hit
    alone = [matcher.matches(t) for t in texts]
    ok = [alone[k] or readable is None or readable[k] for k in range(len(texts))]
    for i in range(len(texts)):
        if alone[i]:
            hit.add(i)
        if not ok[i]:
            continue
        for j in range(i + 2, min(i + max_words, len(texts)) + 1):
            if ok[j - 1] and matcher.matches("".join(texts[i:j]), inside=False):
                hit.update(range(i, j))
    return hit
