"""Clean (C) as an allowlist: a cleaned text keeps a word only when it is known not to identify anyone.

PS3.15 E.1 defines C as replacing values with ones of similar meaning "known not to contain identifying
information". Removing the instance's own PHI terms is not enough (another person's name, a relative's
phone in an odd format, an ID that is not this patient's would all stay), so after those terms are gone each
word must earn its place: a word of the generated vocabulary (PS3.16 meanings, PS3.6 names, imaging
abbreviations; never a census first name or surname, see _standard/generate_vocabulary.py), a single letter,
a number without a PHI shape (at most 4 digits before a decimal point), or letters and short numbers run
together where every letter part is such a word ("T1W", "5mm", "fl2d"). Everything else becomes a
placeholder, and a run of placeholders one placeholder.
"""

from __future__ import annotations

import re
from functools import lru_cache

PLACEHOLDER = "***"
# A word: letters and digits of any script (so "Dinkelsbühl" is one word, not "Dinkelsb" and "hl"), with
# decimal parts.
_TOKEN = re.compile(r"[^\W_]+(?:\.[0-9]+)?")
_RUNS = re.compile(r"[^\W\d_]+|[0-9]+(?:\.[0-9]+)?")
_NUMBER = re.compile(r"[0-9]{1,4}(?:\.[0-9]+)?")
# Numbers with two or more dots: dates, phone numbers, addresses (a measurement has one decimal point).
_DOTTED = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+){2,}(?![\w])")
# Short numbers run together with spaces, dots or dashes into seven digits or more: a phone number or an ID
# written in pieces, whatever the format.
_PIECES = re.compile(r"(?<![\w.])(?:\+\s?)?(?:\(?\d+\)?[ ./-]{0,3}){2,}\d+(?:\s*(?:x|ext\.?)\s*\d{1,5})?(?![\w])",
                     re.IGNORECASE)
# A short number right before or after a word that was replaced: a house, suite or record number that goes
# with it ("6415 *** Station", "*** 302"), unless a unit says it is a measurement.
_NEXT_TO_PLACEHOLDER = re.compile(r"(?<![\w.])[0-9]{1,4}(?:\.[0-9]+)?(?=[ ,./()+-]*\*{3})|(?<=\*{3})([ ,./()+-]*)"
                                  r"[0-9]{1,4}(?:\.[0-9]+)?(?![\w.])")
# Words joined by hyphens are judged together: "Pius-Linke-Ring" is a street, "White-Wagner" a company, while
# "follow-up" and "T1-weighted" are known through and through.
_COMPOUND = re.compile(r"[^\W_]+(?:\.[0-9]+)?(?:-[^\W_]+(?:\.[0-9]+)?)+")
_PLACEHOLDERS = re.compile(r"\*{3}(?:[\s,;:^/_.-]*\*{3})+")
MAX_MIXED = 10


@lru_cache(maxsize=1)
def _words() -> frozenset[str]:
    from ._standard.vocabulary import WORDS  # noqa: PLC0415 - 112,000 words: loaded when text is first cleaned

    return WORDS


def known_word(token: str) -> bool:
    """Whether one token (letters, digits, or both run together) is known not to identify anyone."""
    words = _words()
    if token.isalpha():
        return (len(token) == 1 and token.isascii()) or token.lower() in words
    if _NUMBER.fullmatch(token):
        return True
    if len(token) > MAX_MIXED:
        return False
    for run in _RUNS.findall(token):
        if run[0].isalpha():
            if (len(run) > 1 or not run.isascii()) and run.lower() not in words:
                return False
        elif len(run.split(".")[0].split(",")[0]) > 3:
            return False
    return True


def allowlisted(text: str) -> tuple[str, int]:
    """text with every word that is not known to be safe replaced by the placeholder; (text, words replaced)."""
    removed = 0

    def judge(match: re.Match) -> str:
        nonlocal removed
        if known_word(match.group(0)):
            return match.group(0)
        removed += 1
        return PLACEHOLDER

    def pieces(match: re.Match) -> str:
        nonlocal removed
        if sum(c.isdigit() for c in match.group(0)) < 7:
            return match.group(0)
        removed += 1
        return PLACEHOLDER

    def dotted(match: re.Match) -> str:
        nonlocal removed
        removed += 1
        return PLACEHOLDER

    def compound(match: re.Match) -> str:
        nonlocal removed
        if all(known_word(part) for part in match.group(0).split("-")):
            return match.group(0)
        removed += 1
        return PLACEHOLDER

    out = _DOTTED.sub(dotted, _PIECES.sub(pieces, text))
    out = _TOKEN.sub(judge, _COMPOUND.sub(compound, out))
    if PLACEHOLDER in out:  # also the placeholders of the PHI terms removed before
        def neighbour(match: re.Match) -> str:
            nonlocal removed
            removed += 1
            return (match.group(1) or "") + PLACEHOLDER

        for _ in range(4):  # "5-8" after a street: each number joins the placeholder next to it
            out = _PLACEHOLDERS.sub(PLACEHOLDER, _NEXT_TO_PLACEHOLDER.sub(neighbour, out))
    return out, removed
