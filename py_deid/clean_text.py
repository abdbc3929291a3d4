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

from ._standard.vocabulary import WORDS

PLACEHOLDER = "***"
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.,][0-9]+)*")
_RUNS = re.compile(r"[A-Za-z]+|[0-9]+(?:[.,][0-9]+)*")
_NUMBER = re.compile(r"[0-9]{1,4}(?:[.,][0-9]+)*")
# Short numbers run together with spaces, dots or dashes into seven digits or more: a phone number or an ID
# written in pieces, whatever the format.
_PIECES = re.compile(r"(?<![\w.])\+?\(?\d{2,4}\)?(?:[ .()/-]{1,3}\d{2,5}){1,4}(?![\w])")
_PLACEHOLDERS = re.compile(r"\*{3}(?:[\s,;:^/_.-]*\*{3})+")
MAX_MIXED = 10


def known_word(token: str) -> bool:
    """Whether one token (letters, digits, or both run together) is known not to identify anyone."""
    if token.isalpha():
        return len(token) == 1 or token.lower() in WORDS
    if _NUMBER.fullmatch(token):
        return True
    if len(token) > MAX_MIXED:
        return False
    for run in _RUNS.findall(token):
        if run[0].isalpha():
            if len(run) > 1 and run.lower() not in WORDS:
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

    out = _TOKEN.sub(judge, _PIECES.sub(pieces, text))
    if removed:
        out = _PLACEHOLDERS.sub(PLACEHOLDER, out)
    return out, removed
