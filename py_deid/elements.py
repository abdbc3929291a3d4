"""Facts about DICOM elements and small readers of them, shared by every pass over a header.

The header pass, the conform pass, the PHI term collector, the verifier and the residual sweep all ask the
same questions of an element: its dictionary VR and keyword, its value as a list, whether it parses as a
sequence, what a dummy of its VR is, how text is cut to its VR's length. They live here, under public names,
in a module that imports no other module of the package but `dates` (itself a leaf): a module that reads
elements needs none of the passes that edit them.
"""

from __future__ import annotations

import re
import struct
from functools import lru_cache

from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import PersonName

from .dates import DUMMY as DATE_DUMMIES

# Free text (PN apart: a name is replaced, never cleaned word by word).
TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
# Every VR of PS3.5, and the ambiguous ones of the data dictionary.
KNOWN_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD", "OF", "OL",
                       "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US",
                       "UT", "UV", "OB or OW", "US or SS", "US or OW", "US or SS or OW"})
BINARY_VRS = frozenset({"OB", "OW", "UN", "OD", "OF", "OL", "OV"})
# PS3.5 Table 6.2-1: the maximum length of one value, in characters, where text is cut to fit.
MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "ST": 1024, "LT": 10240, "DS": 16, "IS": 12}
DUMMY_TEXT = "ANONYMIZED"
_SEQUENCE_START = (b"\xfe\xff\x00\xe0", b"")  # an item tag (implicit VR little endian), or nothing


def dictionary_vr(tag: int) -> str | None:
    """The VR the data dictionary gives the tag, or None for a tag it does not know."""
    return dictionary_vr_of_int(int(tag))  # looked up by a plain int: pydicom's BaseTag compares slowly


@lru_cache(maxsize=4096)
def dictionary_vr_of_int(tag: int) -> str | None:
    """dictionary_vr of a tag that is already a plain int (hot loops: one call less)."""
    try:
        return dictionary_VR(BaseTag(tag))
    except KeyError:
        return None


def keyword(tag: int) -> str:
    """The dictionary keyword, or the tag written as (GGGG,EEEE) when there is none."""
    return _keyword(int(tag))  # looked up by a plain int: pydicom's BaseTag compares slowly


@lru_cache(maxsize=4096)
def _keyword(tag: int) -> str:
    return keyword_for_tag(tag) or tag_text(tag)


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def as_list(value) -> list:
    """A value as the list of its values: none, one, or each of a multi-valued one."""
    if value is None:
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return list(value)
    return [value]


def raw_text(ds: Dataset, tag: int) -> str:
    """A short value as read, without converting the element (a broken one must not raise here)."""
    raw = ds._dict.get(tag)
    value = getattr(raw, "value", None)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("ascii", "replace").strip("\0 ")
    if isinstance(value, str):
        return str(value or "").strip("\0 ")
    return ""


# The bytes of a single value whose conversion by pydicom is the text itself (less one trailing pad byte),
# the same in every character set pydicom decodes, valid under pydicom's strictest validation, and written
# back byte for byte: `plain_value` reads these without converting the element.
_PLAIN = {
    "UI": re.compile(rb"(?=[0-9.]{1,64}\0?$)(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*\0?"),
    "DA": re.compile(rb"[0-9]{8}"),
    "CS": re.compile(rb"[A-Z0-9_]{1,16} ?"),
    "IS": re.compile(rb"[0-9]{1,12} ?"),
    "LO": re.compile(rb"[0-9A-Za-z][0-9A-Za-z._-]{0,63} ?"),
}
_US = {True: struct.Struct("<H"), False: struct.Struct(">H")}


def plain_value(ds: Dataset, tag: int):
    """The value pydicom would give a top-level element of one of a few VRs (US as an int; UI, DA, CS, IS, LO
    as the text), read from its bytes without converting it in ds: a lookup by keyword converts the element,
    which costs more than the read and makes it slower to write. Only a plain value is read so (one value of
    even length, the characters of `_PLAIN`, one US of two bytes), where the text is exactly what pydicom's
    conversion gives and the element is written back as it was read (tests/header/test_plain_values.py).
    None otherwise (absent, converted already, empty, anything else): then the caller asks pydicom."""
    raw = ds._dict.get(tag)
    if type(raw) is not RawDataElement:
        return None
    data = raw.value
    if (type(data) is not bytes) or (len(data) & 1):
        return None  # an odd length: pydicom would write the converted value padded, not as read
    vr = raw.VR if raw.VR is not None else dictionary_vr(tag)
    if vr == "US":
        return _US[bool(raw.is_little_endian)].unpack(data)[0] if len(data) == 2 else None
    pattern = _PLAIN.get(vr)
    if (pattern is None) or (pattern.fullmatch(data) is None):
        return None
    return data.decode("ascii").rstrip("\0 ")


def as_sequence(ds: Dataset, tag: int) -> DataElement | None:
    """The element as a parsed sequence, or None when it is not one or cannot be parsed. A sequence read as
    UN (a private one, or one newer than the data dictionary) is parsed and put back in ds as SQ."""
    raw = ds.get_item(tag)
    try:
        if getattr(raw, "is_raw", False) and raw.VR in (None, "UN"):
            value = raw.value
            undefined_length = raw.length == 0xFFFFFFFF
            starts_with_item = isinstance(value, (bytes, bytearray)) and bytes(value[:4]) in _SEQUENCE_START
            if not (undefined_length or starts_with_item):
                return None
            # PS3.5 6.2.2: a sequence encoded as UN holds implicit VR little endian items.
            elem = convert_raw_data_element(raw._replace(VR="SQ", is_implicit_VR=True, is_little_endian=True),
                                            ds=ds)
            ds[tag] = elem
        else:
            elem = ds[tag]
    except Exception:
        return None
    return elem if elem.VR == "SQ" else None


def new_element(tag: int, vr: str, value) -> DataElement:
    """DataElement(tag, vr, value), its value validated only where pydicom is set to raise on an invalid one:
    otherwise validation ends in a warning, and pydicom's warnings are not shown while an instance is
    processed (they quote values). The same element either way, for less than half the cost."""
    mode = config.settings.reading_validation_mode
    if mode == config.RAISE:
        return DataElement(tag, vr, value, validation_mode=mode)
    return made_element(tag, vr, value)


# What pydicom's value setter makes of None and of one str without a backslash, by VR (DataElement.value,
# _convert_value, _convert): the value itself (None for every VR but a sequence, and UN, which pydicom may
# replace by the dictionary's VR; the str for the text-like VRs whose conversion does not depend on pydicom's
# config, as that of DA, DT and TM does), or a UID / PersonName made from it. tests/header/test_new_element.py
# holds pydicom to this.
_KEPT_NONE_VRS = KNOWN_VRS - {"SQ", "UN", "OB or OW", "US or SS", "US or OW", "US or SS or OW"}
_KEPT_STR_VRS = frozenset({"AE", "AS", "CS", "LO", "LT", "SH", "ST", "UC", "UR", "UT"})


def made_element(tag: int, vr: str, value) -> DataElement:
    """DataElement(tag, vr, value, validation_mode=IGNORE): for the values this tool sets most (an emptied
    attribute, a short text, a mapped UID, a pseudonym), the value converted here as pydicom would and passed as
    already converted: the same element without the value setter's dispatch (~2 us of ~4 an element)."""
    if value is None:
        if vr in _KEPT_NONE_VRS:
            return DataElement(BaseTag(tag), vr, None, already_converted=True, validation_mode=config.IGNORE)
    elif type(value) is str and "\\" not in value:
        if vr in _KEPT_STR_VRS:
            return DataElement(BaseTag(tag), vr, value, already_converted=True, validation_mode=config.IGNORE)
        if vr == "UI":
            return DataElement(BaseTag(tag), vr, UID(value, config.IGNORE), already_converted=True,
                               validation_mode=config.IGNORE)
        if vr == "PN":
            return DataElement(BaseTag(tag), vr, PersonName(value, validation_mode=config.IGNORE),
                               already_converted=True, validation_mode=config.IGNORE)
    return DataElement(tag, vr, value, validation_mode=config.IGNORE)


def writable_vr(ds: Dataset, tag: int, vr: str | None) -> str:
    """The VR a replacement is written with: the element's own, resolved when it was read as UN or implicit."""
    if vr and (vr != "UN") and (" or " not in vr):
        return vr
    raw = ds._dict[tag]
    if raw.VR and (raw.VR != "UN") and (" or " not in raw.VR):
        return raw.VR
    known = dictionary_vr(tag)
    if known and (" or " not in known):
        return known
    if known:  # "OB or OW" and friends: pydicom resolves these on conversion
        return ds[tag].VR
    return "UN"


def dummy_value(vr: str):
    """A value of the VR that says nothing (E.1's D): what a replaced or repaired Type 1 attribute holds."""
    if vr in ("DA", "DT", "TM"):
        return DATE_DUMMIES[vr]
    if vr in ("DS", "IS"):
        return "0"
    if vr == "AS":
        return "000D"
    if vr == "PN":
        return PersonName(DUMMY_TEXT)
    if vr == "AE":
        return "ANONYMOUS"
    if vr == "UR":
        return "urn:removed"
    if vr in ("US", "SS", "UL", "SL", "UV", "SV", "AT"):
        return 0
    if vr in ("FL", "FD"):
        return 0.0
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return b"\0\0"
    return DUMMY_TEXT


def fit(text: str, vr: str) -> str:
    """Cut to the VR's length at a word boundary: half a word is a word nobody checked."""
    limit = MAX_LENGTH.get(vr)
    if (not limit) or len(text) <= limit:
        return text
    cut = text[:limit]
    if text[limit].isalnum() and cut[-1:].isalnum():
        cut = cut.rstrip("".join(c for c in set(cut) if c.isalnum()))
    return cut.rstrip()


def short(value) -> str:
    """A value as text of at most 200 characters, for the local review screen."""
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
