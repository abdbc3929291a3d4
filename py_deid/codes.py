"""Coded entries in sequences the profile replaces (D), empties or cleans: standard codes stay, others go.

A code item (Code Sequence Macro, PS3.3 Table 8.8-1) of a private or local coding scheme can carry anyone's
identity in its value and meaning: "EMP7788 / 99HOSP / Dr John Smith" is a person. E.1 lets D replace a
value with a dummy of the same kind, so such an item becomes the dummy code below. A code of a standard
scheme stays only when the standard itself defines it: its (scheme, value) pair is a concept of PS3.16 as
pydicom carries it (pydicom/sr/_concepts_dict.py, generated from the standard; SNOMED's legacy SRT values
through pydicom's SRT-to-SCT map), and its meaning is then written as the standard's own, so no free text
of the original survives.
"""

from __future__ import annotations

from functools import lru_cache

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

# Tags as pydicom's own tag type: a new key of a Dataset's element dict must be one for the writer.
CODE_VALUE, SCHEME, SCHEME_VERSION, MEANING = (BaseTag(t) for t in (0x00080100, 0x00080102, 0x00080103,
                                                                     0x00080104))
LONG_CODE_VALUE, URN_CODE_VALUE = BaseTag(0x00080119), BaseTag(0x00080120)
# Structure of a coded entry besides value, scheme and meaning: identifiers of context groups and mappings.
CODE_STRUCTURE = frozenset({0x0008010F, 0x00080105, 0x00080106, 0x00080107, 0x0008010B, 0x0008010D,
                            0x00080117, 0x00080118, 0x00080121, 0x00080122, 0x00080123, 0x00080124})
# Parts of coded entries: structure, not free text, so cleaning never touches them.
# (Code Meaning is free text and is cleaned: local codes can carry identity, E.1 notes.)
CODE_PARTS = frozenset({
    0x00080100,  # Code Value
    0x00080102,  # Coding Scheme Designator
    0x00080103,  # Coding Scheme Version
    0x00080105,  # Mapping Resource
    0x0008010F,  # Context Identifier
    0x00080119,  # Long Code Value
    0x00080120,  # URN Code Value
    0x00080122,  # Mapping Resource Name
})
# Every part of a coded entry, once settle() has made it a standard code or the dummy one.
CODE_ITEM = CODE_PARTS | CODE_STRUCTURE | {MEANING}
# The dummy: a value of this tool's own private scheme (PS3.16 8.2: designators beginning "99" are local).
DUMMY_SCHEME = "99PYDEID"
DUMMY_VALUE = "REMOVED"
DUMMY_MEANING = "Removed by de-identification"


@lru_cache(maxsize=1)
def _standard() -> dict[tuple[str, str], str]:
    from pydicom.sr._concepts_dict import concepts  # noqa: PLC0415 - large; loaded when a code is first met
    from pydicom.sr._snomed_dict import mapping  # noqa: PLC0415

    table: dict[tuple[str, str], str] = {}
    for scheme, by_name in concepts.items():
        for codes in by_name.values():
            for value, (meaning, _cids) in codes.items():
                table.setdefault((scheme, value), meaning)
    for srt, sct in mapping.get("SRT", {}).items():
        meaning = table.get(("SCT", sct))
        if meaning is not None:
            table.setdefault(("SRT", srt), meaning)
    return table


def standard_meaning(scheme: str, value: str) -> str | None:
    """The standard's meaning of this code, or None when the standard does not define it."""
    if scheme == DUMMY_SCHEME and value == DUMMY_VALUE:
        return DUMMY_MEANING
    return _standard().get((scheme, value))


def is_code_item(ds: Dataset) -> bool:
    elements = ds._dict
    return SCHEME in elements or CODE_VALUE in elements or LONG_CODE_VALUE in elements or URN_CODE_VALUE in elements


def _text(ds: Dataset, tag: int) -> str:
    raw = ds._dict.get(tag)
    if raw is None:
        return ""
    value = raw.value
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1", "replace")
    return str(value or "").strip("\0 ")


def settle(ds: Dataset) -> bool:
    """Make a code item hold a standard code with the standard's meaning, or the dummy code.
    True when the item was changed."""
    scheme, value = _text(ds, SCHEME), _text(ds, CODE_VALUE)
    meaning = standard_meaning(scheme, value) if scheme and value else None
    if meaning is not None and LONG_CODE_VALUE not in ds._dict and URN_CODE_VALUE not in ds._dict:
        if _text(ds, MEANING) == meaning[:64]:
            return False
        ds._dict[MEANING] = DataElement(MEANING, "LO", meaning[:64])
        return True
    for tag in (LONG_CODE_VALUE, URN_CODE_VALUE, SCHEME_VERSION, *CODE_STRUCTURE):
        ds._dict.pop(tag, None)
    ds._dict[CODE_VALUE] = DataElement(CODE_VALUE, "SH", DUMMY_VALUE)
    ds._dict[SCHEME] = DataElement(SCHEME, "SH", DUMMY_SCHEME)
    ds._dict[MEANING] = DataElement(MEANING, "LO", DUMMY_MEANING)
    return True
