"""The last pass before an instance is written: every element that stays must be a valid value of its VR.

Runs after the profile, the markers and the trial identifiers, so it checks what this tool wrote as well as
what it kept. The verdicts come from py_deid.values; this module decides what happens to each element:
repaired (a number re-written in its VR's form), emptied or given a dummy where the IOD needs the attribute,
removed otherwise; and a value whose bytes no writer of its VR produces fails the whole instance.
"""

from __future__ import annotations

from collections import Counter

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from . import values
from .iod import IodTypes
from .elements import dictionary_vr, dummy_value, keyword, tag_text

PIXEL_DATA = 0x7FE00010
_AMBIGUOUS = {"OB or OW": "OB", "US or SS": "US", "US or OW": "US", "US or SS or OW": "US"}
_TEXTUAL = values.TEXT_VRS | {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR"}


class MalformedValue(ValueError):
    """An element whose bytes cannot belong to its VR; the message names the attribute, never the value."""

    def __init__(self, where: str) -> None:
        super().__init__(f"the value of {where} holds bytes its VR cannot hold (a broken or forged structure)")
        self.code = "malformed-value"
        self.message = str(self)


class _Pass:
    def __init__(self, iod: IodTypes, little: bool, implicit: bool, new_uid, fix: bool = True) -> None:
        self.iod = iod
        self.fix = fix
        self.problems: list[tuple[str, str]] = []  # (tag path, verdict) when only checking
        self.new_uid = new_uid
        self.little = little
        self.implicit = implicit
        self.changed: Counter = Counter()

    def dataset(self, ds: Dataset, path: tuple[str, ...], encodings, where: str = "") -> None:
        elements = ds._dict
        check = values.check
        for tag, raw in list(elements.items()):
            self.at = (where, tag)  # the tag path is spelled out only when something is wrong
            if tag >> 16 == 0x0002 or (tag == PIXEL_DATA and not path):
                continue
            declared = raw.VR
            known = dictionary_vr(tag) if not (tag >> 16) & 1 else None
            known = _AMBIGUOUS.get(known, known)
            vr = _AMBIGUOUS.get(declared, declared)
            if vr is None or vr == "UN":
                vr = known or "UN"
            if getattr(raw, "is_raw", False):
                if vr != "SQ":
                    verdict = check(vr, raw.value or b"", tag=tag, encodings=encodings, little=self.little,
                                    implicit=self.implicit)
                    if verdict == values.VALID and (known is None or vr == known or vr == "UN"
                                                    or known not in _TEXTUAL):
                        continue  # the common case: a value kept as read, valid, with its own VR
            if vr == "SQ" or isinstance(raw.value, Sequence):
                self.sequence(ds, tag, path, encodings, self.where)
                continue
            data = _bytes_of(raw, vr)
            if data is None:
                continue  # a value this tool set (numbers): valid by construction
            if isinstance(data, str):  # a converted text value: judged as text
                verdict = values.check_text(vr, data, tag) if vr in values.TEXT_VRS else values.check(
                    vr, data.encode("latin-1", "replace"), tag=tag)
                if verdict == values.BROKEN:
                    self.broken(tag)
                    continue
                if verdict != values.VALID and not self.fix:
                    self.problems.append((self.where, verdict))
                    continue
                if verdict == values.INVALID:
                    if vr in values.TEXT_VRS:
                        ds._dict[tag] = DataElement(tag, vr, values.repaired_text(vr, data, tag))
                        self.changed["repaired"] += 1
                    else:
                        self.invalid(ds, tag, vr, data.encode("latin-1", "replace"), path)
                continue
            verdict = values.check(vr, data, tag=tag, encodings=encodings, little=self.little,
                                   implicit=self.implicit)
            if verdict == values.BROKEN:
                self.broken(tag)
                continue
            if not self.fix:
                if verdict == values.VALID and known and vr != known and vr != "UN" and known in _TEXTUAL:
                    verdict = values.check(known, data, tag=tag, encodings=encodings)
                if verdict != values.VALID:
                    self.problems.append((self.where, verdict))
                continue
            if verdict == values.VALID and known and vr != known and vr != "UN" and known in _TEXTUAL:
                # Declared with another VR than the attribute has: judged (and written) as the attribute's.
                vr = known
                verdict = values.check(vr, data, tag=tag, encodings=encodings, little=self.little,
                                       implicit=self.implicit)
                if verdict == values.BROKEN:
                    self.broken(tag)
                    continue
                if verdict == values.VALID:
                    ds._dict[tag] = DataElement(tag, vr, _decoded(data, vr, encodings))
                    self.changed["vr"] += 1
                    continue
            if verdict == values.VALID:
                continue
            if vr in values.TEXT_VRS:
                ds._dict[tag] = DataElement(tag, vr, values.repaired_text(vr, _joined(data, encodings), tag))
                self.changed["repaired"] += 1
                continue
            self.invalid(ds, tag, vr, data, path)

    def sequence(self, ds: Dataset, tag: int, path: tuple[str, ...], encodings, where: str) -> None:
        try:
            items = ds[tag].value
        except Exception:
            items = None
        if not isinstance(items, (Sequence, list)):
            self.broken(tag)
            return
        sub = (*path, keyword(tag))
        for i, item in enumerate(items):
            item_encodings = getattr(item, "_character_set", None) or encodings
            self.dataset(item, sub, item_encodings, f"{where}[{i}]")

    @property
    def where(self) -> str:
        where, tag = self.at
        return f"{where}>{tag_text(tag)}" if where else tag_text(tag)

    def broken(self, tag: int) -> None:
        if self.fix:
            raise MalformedValue(keyword(tag))
        self.problems.append((self.where, values.BROKEN))

    def invalid(self, ds: Dataset, tag: int, vr: str, data: bytes, path: tuple[str, ...]) -> None:
        if vr == "UI" and self.new_uid is not None and b"\\" not in data:
            # A kept UID that breaks the UID grammar (retain_uids): mapped, as every instance maps it alike.
            old = data.decode("latin-1").strip("\0 ")
            ds._dict[tag] = DataElement(tag, vr, self.new_uid(old))
            self.changed["repaired"] += 1
            return
        if vr == "CS":
            codes = values.repaired_code_string(data, tag)
            if codes is not None:
                ds._dict[tag] = DataElement(tag, vr, codes.split("\\") if "\\" in codes else codes)
                self.changed["repaired"] += 1
                return
        if vr in ("DS", "IS"):
            number = values.repaired_number(vr, data, tag)
            if number is not None:
                ds._dict[tag] = DataElement(tag, vr, number)
                self.changed["repaired"] += 1
                return
        kind = self.iod.type_of(path, keyword(tag))
        if kind in ("1", "1C"):
            ds._dict[tag] = DataElement(tag, vr, dummy_value(vr))
            self.changed["dummy"] += 1
        elif kind in ("2", "2C"):
            ds._dict[tag] = DataElement(tag, vr, b"" if vr in values.BINARY_SIZE else None)
            self.changed["emptied"] += 1
        else:
            del ds._dict[tag]
            self.changed["removed"] += 1


def _bytes_of(raw, vr: str) -> bytes | str | None:
    """The element's value as read (bytes), as text when it was converted, or None for converted numbers."""
    value = raw.value
    if getattr(raw, "is_raw", False):
        return bytes(value or b"")
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if vr not in _TEXTUAL:
        return None
    parts = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    return "\\".join("" if p is None else str(p) for p in parts)


def _joined(data: bytes, encodings) -> str:
    from pydicom.charset import decode_bytes  # noqa: PLC0415

    try:
        return decode_bytes(data.rstrip(b"\0"), encodings or ["ISO_IR 6"], {0x5C, 0x3D, 0x5E})
    except Exception:
        return data.decode("latin-1")


def _decoded(data: bytes, vr: str, encodings):
    from pydicom.charset import decode_bytes  # noqa: PLC0415

    try:
        text = decode_bytes(data.rstrip(b"\0"), encodings or ["ISO_IR 6"], {0x5C})
    except Exception:
        text = data.decode("latin-1")
    text = text.rstrip(" ")
    parts = text.split("\\") if vr not in ("ST", "LT", "UT") else [text]
    return parts if len(parts) > 1 else parts[0]


def conform(ds: Dataset, *, little: bool = True, implicit: bool = False, new_uid=None) -> Counter:
    """Make every element of ds valid for its VR, in place; counts of what changed. Raises MalformedValue.
    `new_uid(old)`: the keyed replacement of a UID that breaks the UID grammar."""
    run = _Pass(IodTypes(ds.get("SOPClassUID")), little, implicit, new_uid)
    encodings = getattr(ds, "_character_set", None)
    run.dataset(ds, (), encodings)
    return run.changed


def problems(ds: Dataset, *, little: bool = True, implicit: bool = False) -> list[tuple[str, str]]:
    """(tag path, verdict) of every element that is not a valid value of its VR; nothing is changed."""
    run = _Pass(IodTypes(ds.get("SOPClassUID")), little, implicit, None, fix=False)
    run.dataset(ds, (), getattr(ds, "_character_set", None))
    return run.problems
