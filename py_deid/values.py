"""Strict value checks: what stays in an output must be a valid value of its VR (PS3.5 6.2).

A value that breaks its VR is where a broken or hostile file hides things: a Modality whose length was
stretched over the Patient's Name that follows it reads as a CS value full of element headers. So every
element that stays is checked against its VR's repertoire, length, format and (where the data dictionary
fixes it) multiplicity. The verdicts:

- VALID: keep it;
- INVALID: the value is not one of its VR (a lower-case code string, a date in another format, a number too
  long): it is repaired where that is exact (a number re-written in the VR's form), else removed, or emptied /
  replaced by a dummy where the IOD needs the attribute;
- BROKEN: bytes that no writer of that VR produces (control characters in text, element headers of
  identifying attributes inside a value): the structure of the file cannot be trusted and the instance fails.

The checks read raw bytes where they can: most elements are never converted by pydicom.
"""

from __future__ import annotations

import re
import struct
from functools import lru_cache

from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_VM

from ._standard import table_e1_1
from .elements import dictionary_vr

VALID, INVALID, BROKEN = "valid", "invalid", "broken"

# PS3.5 Table 6.2-1: maximum length of one value, in characters.
MAX_CHARS = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "LT": 10240,
             "PN": 64, "SH": 16, "ST": 1024, "TM": 14, "UI": 64, "UC": None, "UR": None, "UT": None}
BINARY_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "SV": 8, "UV": 8,
               "OW": 2, "OF": 4, "OD": 8, "OL": 4, "OV": 8, "OB": 1, "UN": 1}
NUMERIC_BINARY = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "AT", "SV", "UV"})
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
MULTI_VALUED_TEXT = frozenset({"SH", "LO", "UC", "PN", "AE", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "AS"})

_FORMAT = {
    "AE": re.compile(rb"[ -\[\]-~]*"),  # default repertoire without backslash and control characters
    "AS": re.compile(rb"\d{3}[DWMY]"),
    "CS": re.compile(rb"[A-Z0-9 _]*"),
    "DA": re.compile(rb"(?:\d{4})(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"),
    "DS": re.compile(rb" *[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)? *"),
    "DT": re.compile(rb"\d{4}(?:(?:0[1-9]|1[0-2])(?:(?:0[1-9]|[12]\d|3[01])(?:(?:[01]\d|2[0-3])(?:[0-5]\d(?:(?:[0-5]\d|60)"
                     rb"(?:\.\d{1,6})?)?)?)?)?)?(?:[+-]\d{4})? *"),
    "IS": re.compile(rb" *[+-]?\d+ *"),
    "TM": re.compile(rb"(?:[01]\d|2[0-3])(?:[0-5]\d(?:(?:[0-5]\d|60)(?:\.\d{1,6})?)?)? *"),
    "UI": re.compile(rb"(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*))*"),
    "UR": re.compile(rb"[!#-;=?-\[\]_a-z~]*"),  # RFC 3986 characters; no spaces inside
}
# Text: printable ASCII plus what the VR allows (ESC for ISO 2022 code extensions; line breaks in long text).
_PLAIN_TEXT = re.compile(rb"[ -~\x1b]*")
_LONG_TEXT = re.compile(rb"[ -~\x1b\t\n\f\r]*")
# Bytes no text writer produces (NUL, controls other than TAB, LF, FF, CR and ESC): a broken structure.
# Line breaks in short text are a common writer bug: invalid (repaired), not broken.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\t\n\f\r]")


@lru_cache(maxsize=1)
def _identity_tags() -> tuple[tuple[int, str], ...]:
    """Tags of Table E.1-1 rows that are not kept by the Basic Profile: the element headers whose appearance
    inside another value means a length was stretched over them (or a value forged to look like one)."""
    out = []
    for tag_text, _name, _kw, _in_iod, basic, _opts, _edition in table_e1_1.ROWS:
        group, elem = tag_text.strip("()").split(",")
        if "X" in group + elem or "G" in group or basic == "K":
            continue
        tag = int(group + elem, 16)
        if tag >> 16 in (0x0000, 0x0002):
            continue
        out.append((tag, dictionary_vr(tag) or ""))
    return tuple(out)


@lru_cache(maxsize=2)
def _header_needles(little: bool) -> tuple[tuple[bytes, bytes], ...]:
    fmt = "<HH" if little else ">HH"
    return tuple((struct.pack(fmt, tag >> 16, tag & 0xFFFF), vr.encode("ascii")[:2]) for tag, vr in _identity_tags())


def holds_element_headers(value: bytes, *, little: bool = True, implicit: bool = False) -> bool:
    """Whether a binary value contains what reads as the element header of an identifying attribute: its tag
    followed by its explicit VR or, in an implicit VR dataset, by a short length over printable text."""
    if len(value) < 8:
        return False
    u32 = struct.Struct("<I" if little else ">I").unpack_from
    view = bytes(value)
    for needle, vr in _header_needles(little):
        at = view.find(needle)
        while at >= 0:
            if not implicit:
                if vr and view[at + 4:at + 6] == vr:
                    return True
            elif at + 8 <= len(view) and vr not in (b"SQ", b"OB", b"OW", b"UN", b""):
                length = u32(view, at + 4)[0]
                if 0 < length <= min(1024, len(view) - at - 8) and _PRINTABLE.fullmatch(view, at + 8, at + 8 + length):
                    return True
            at = view.find(needle, at + 1)
    return False


_PRINTABLE = re.compile(rb"[ -~\x80-\xff\x1b]+")


@lru_cache(maxsize=8192)
def max_multiplicity(tag: int) -> int | None:
    """The largest number of values the data dictionary allows, or None when it is open ("1-n", "2-2n")."""
    try:
        vm = dictionary_VM(tag)
    except KeyError:
        return None
    high = vm.split("-")[-1]
    return int(high) if high.isdigit() else None


def check(vr: str, value: bytes, *, tag: int = 0, encodings=None, little: bool = True, implicit: bool = False) -> str:
    """The verdict for one element's value bytes under its VR (see the module doc)."""
    if vr == "SQ":
        return VALID
    if vr in BINARY_SIZE:
        if len(value) % BINARY_SIZE[vr]:
            return INVALID if vr in NUMERIC_BINARY else BROKEN
        if vr in NUMERIC_BINARY:
            limit = max_multiplicity(tag) if tag else None
            if limit is not None and len(value) // BINARY_SIZE[vr] > limit:
                # More numbers than the attribute holds: a length that runs past its value.
                return BROKEN if holds_element_headers(value, little=little, implicit=implicit) else INVALID
            return VALID
        return BROKEN if holds_element_headers(value, little=little, implicit=implicit) else VALID
    text = value if value.__class__ is bytes else bytes(value)
    if vr in TEXT_VRS:
        if b"\\" not in text and _PLAIN_TEXT.fullmatch(text):
            # Fast path: one value of printable ASCII (most text in most files).
            longest = MAX_CHARS.get(vr)
            if not longest or vr == "PN" or len(text.rstrip(b"\0 ")) <= longest:
                return VALID if vr != "PN" else check_text(vr, text.decode("ascii"), tag)
        return _check_text(vr, text, tag, encodings)
    fmt = _FORMAT.get(vr)
    if fmt is None:
        return VALID
    if b"\\" not in text:
        # Fast path: one value.
        single = text.rstrip(b"\0 ") if vr != "DS" else text.rstrip(b"\0")
        longest = MAX_CHARS.get(vr)
        if not single.strip(b" ") or ((not longest or len(single) <= longest) and fmt.fullmatch(single)):
            return VALID
    stripped = text.rstrip(b"\0 ") if vr == "UI" else text.rstrip(b"\0").rstrip(b" ") if vr != "DS" else text.rstrip(b"\0")
    if _CONTROL.search(stripped.decode("latin-1")):
        return BROKEN
    if vr == "UR":
        return VALID if fmt.fullmatch(stripped) else INVALID
    values = stripped.split(b"\\") if stripped else []
    limit = max_multiplicity(tag) if tag else None
    if limit is not None and len(values) > limit:
        return INVALID
    longest = MAX_CHARS.get(vr)
    for v in values:
        if vr == "UI":
            v = v.rstrip(b"\0 ")
        if not v.strip(b" "):
            continue
        if longest and len(v) > longest:
            return INVALID
        if not fmt.fullmatch(v):
            return INVALID
    return VALID


def _check_text(vr: str, text: bytes, tag: int, encodings) -> str:
    text = text.rstrip(b"\0")
    long_text = vr in ("ST", "LT", "UT")
    ascii_ok = (_LONG_TEXT if long_text else _PLAIN_TEXT).fullmatch(text)
    if ascii_ok:
        decoded = text.decode("ascii")
    else:
        try:
            decoded = decode_bytes(text, encodings or ["ISO_IR 6"], {0x5C, 0x3D, 0x5E} if vr == "PN" else {0x5C})
        except Exception:
            return BROKEN
        if _CONTROL.search(decoded):
            return BROKEN
        if "\ufffd" in decoded and b"\xef\xbf\xbd" not in text:
            return BROKEN  # bytes the declared character set cannot decode
    return check_text(vr, decoded, tag)


def check_text(vr: str, decoded: str, tag: int = 0) -> str:
    """The verdict for a value already decoded to text (the values this tool writes itself)."""
    long_text = vr in ("ST", "LT", "UT")
    if _CONTROL.search(decoded):
        return BROKEN
    if not long_text and _LINE_BREAKS.search(decoded):
        return INVALID
    values = [decoded] if long_text else decoded.split("\\")
    limit = max_multiplicity(tag) if tag and not long_text else None
    if limit is not None and len(values) > limit:
        return INVALID
    longest = MAX_CHARS.get(vr)
    if longest:
        for v in values:
            if vr == "PN":
                if any(len(group) > longest for group in v.rstrip(" ").split("=")):
                    return INVALID
            elif len(v.rstrip(" ")) > longest:
                return INVALID
    return VALID


def repaired_text(vr: str, decoded: str, tag: int = 0) -> str | list[str]:
    """A text value made valid: line breaks in short text become spaces, values cut to the VR's length and
    the attribute's multiplicity (keeps what a writer meant, drops what its VR cannot hold)."""
    if vr in ("ST", "LT", "UT"):
        longest = MAX_CHARS.get(vr)
        return decoded[:longest] if longest else decoded
    parts = _LINE_BREAKS.sub(" ", decoded).split("\\")
    limit = max_multiplicity(tag) if tag else None
    if limit is not None:
        parts = parts[:limit]
    longest = MAX_CHARS.get(vr) or 0
    if vr != "PN" and longest:
        parts = [p.rstrip(" ")[:longest] for p in parts]
    elif vr == "PN":
        parts = ["=".join(g[:longest] for g in p.rstrip(" ").split("=")) for p in parts]
    return parts if len(parts) > 1 else parts[0]


def repaired_code_string(value: bytes, tag: int = 0) -> str | None:
    """A CS value made valid: lower case made upper case, every value that is still not a code string dropped,
    the attribute's multiplicity kept; None when no value is left. Nothing new is made from invalid bytes."""
    parts = []
    for p in value.split(b"\\"):
        p = p.strip(b" \0").upper()
        if len(p) <= 16 and _FORMAT["CS"].fullmatch(p):
            parts.append(p.decode("ascii"))
    limit = max_multiplicity(tag) if tag else None
    if limit is not None:
        parts = parts[:limit]
    return "\\".join(parts) if any(parts) else None


def repaired_number(vr: str, value: bytes, tag: int = 0) -> str | None:
    """A DS or IS value re-written in its VR's form when it holds numbers that are only too long or too many
    for the attribute, else None."""
    try:
        parts = [p.strip(b" \0").decode("ascii") for p in value.split(b"\\")]
        limit = max_multiplicity(tag) if tag else None
        if limit is not None:
            parts = parts[:limit]
        if vr == "IS":
            numbers = [str(int(float(p))) if p else "" for p in parts]
            return "\\".join(numbers) if all(len(n) <= 12 for n in numbers) else None
        out = []
        for p in parts:
            if not p:
                out.append("")
                continue
            number = float(p)
            if number != number or number in (float("inf"), float("-inf")):
                return None
            out.append(_ds(number))
        return "\\".join(out)
    except (ValueError, UnicodeDecodeError):
        return None


def _ds(number: float) -> str:
    for digits in range(16, 0, -1):
        text = f"{number:.{digits}g}"
        if len(text) <= 16:
            return text
    return "0"
