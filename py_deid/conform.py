"""The last pass before an instance is written: every element that stays must be a valid value of its VR.

Runs after the profile, the markers and the trial identifiers, so it checks what this tool wrote as well as
what it kept. The verdicts come from py_deid.values; this module decides what happens to each element:
repaired (a number re-written in its VR's form), emptied or given a dummy where the IOD needs the attribute,
removed otherwise; and a value whose bytes no writer of its VR produces fails the whole instance.
"""

from __future__ import annotations

from collections import Counter

from pydicom.charset import decode_bytes
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from . import values
from .elements import dictionary_vr, dictionary_vr_of_int, dummy_value, keyword, new_element, plain_value, tag_text
from .iod import IodTypes

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
    """One walk over an instance: fixes what it can (`fix`), or only lists the problems (the verifier's use)."""

    def __init__(self, iod: IodTypes, little: bool, implicit: bool, new_uid, fix: bool = True,
                 valid_as_read=frozenset()) -> None:
        self.iod = iod
        self.valid_as_read = valid_as_read  # ids of raw elements already judged valid as read
        self.fix = fix
        self.problems: list[tuple[str, str]] = []  # (tag path, verdict) when only checking
        self.new_uid = new_uid
        self.little = little
        self.implicit = implicit
        self.changed: Counter = Counter()

    def dataset(self, ds: Dataset, path: tuple[str, ...], encodings, where: str = "") -> None:
        """Every element of one dataset (the instance, or the item at `where`), but the file meta and the
        instance's Pixel Data."""
        valid_as_read, little, implicit, top = self.valid_as_read, self.little, self.implicit, not path
        check = values.check
        for key, raw in list(ds._dict.items()):
            tag = int(key)  # a plain int: pydicom's BaseTag comparisons are slow
            if ((tag >> 16) == 0x0002) or ((tag == PIXEL_DATA) and top) or (id(raw) in valid_as_read):
                continue
            self.at = (where, tag)  # the tag path is spelled out only when something is wrong
            if raw.__class__ is RawDataElement:
                # The common case, inline (it runs for nearly every element; as element() judges it): a value
                # kept as read, valid, with its own VR (see declared_as_other).
                known = None if ((tag >> 16) & 1) else dictionary_vr_of_int(tag)
                known = _AMBIGUOUS.get(known, known)
                vr = raw.VR
                vr = _AMBIGUOUS.get(vr, vr)
                if (vr is None) or (vr == "UN"):
                    vr = known or "UN"
                if (vr != "SQ") and (check(vr, raw.value or b"", tag=tag, encodings=encodings, little=little,
                                           implicit=implicit) == values.VALID) \
                        and not (known and (vr != known) and (vr != "UN") and (known in _TEXTUAL)):
                    continue
            self.element(ds, tag, raw, path, encodings)

    def element(self, ds: Dataset, tag: int, raw, path: tuple[str, ...], encodings) -> None:
        """One element, judged as the VR it was declared with (the dictionary's when none or UN): a sequence
        is walked, a value is judged as this tool converted it (text) or as it was read (bytes)."""
        known = None if ((tag >> 16) & 1) else dictionary_vr(tag)
        known = _AMBIGUOUS.get(known, known)
        vr = _AMBIGUOUS.get(raw.VR, raw.VR)
        if (vr is None) or (vr == "UN"):
            vr = known or "UN"
        if getattr(raw, "is_raw", False) and (vr != "SQ"):
            # A value kept as read, valid, with its own VR (see declared_as_other); dataset() judges raw
            # elements the same way inline before it calls this.
            verdict = values.check(vr, raw.value or b"", tag=tag, encodings=encodings, little=self.little,
                                   implicit=self.implicit)
            if (verdict == values.VALID) and not (known and (vr != known) and (vr != "UN") and (known in _TEXTUAL)):
                return
        if (vr == "SQ") or isinstance(raw.value, Sequence):
            self.sequence(ds, tag, path, encodings, self.where)
            return
        data = _bytes_of(raw, vr)
        if data is None:
            return  # a value this tool set (numbers): valid by construction
        if isinstance(data, str):
            self.converted_text(ds, tag, vr, data, path)
        else:
            self.value_as_read(ds, tag, vr, known, data, path, encodings)

    def check(self, vr: str, data: bytes, tag: int, encodings) -> str:
        return values.check(vr, data, tag=tag, encodings=encodings, little=self.little, implicit=self.implicit)

    def converted_text(self, ds: Dataset, tag: int, vr: str, data: str, path: tuple[str, ...]) -> None:
        """A value pydicom converted (or this tool wrote) as text: judged as text, repaired or handled as
        an invalid value."""
        if vr in values.TEXT_VRS:
            verdict = values.check_text(vr, data, tag)
        else:
            verdict = values.check(vr, data.encode("latin-1", "replace"), tag=tag)
        if verdict == values.BROKEN:
            self.broken(tag)
            return
        if (verdict != values.VALID) and (not self.fix):
            self.problems.append((self.where, verdict))
            return
        if verdict != values.INVALID:
            return
        if vr in values.TEXT_VRS:
            self.put(ds, tag, vr, values.repaired_text(vr, data, tag), "repaired")
        else:
            self.invalid(ds, tag, vr, data.encode("latin-1", "replace"), path)

    def value_as_read(self, ds: Dataset, tag: int, vr: str, known: str | None, data: bytes,
                      path: tuple[str, ...], encodings) -> None:
        """A value as read (bytes). One declared with another VR than the attribute's textual one is judged
        (and written) as the attribute's; an invalid one is repaired, or handled as invalid."""
        verdict = self.check(vr, data, tag, encodings)
        if verdict == values.BROKEN:
            self.broken(tag)
            return
        other = declared_as_other(vr, known)
        if not self.fix:
            if (verdict == values.VALID) and other:
                verdict = values.check(known, data, tag=tag, encodings=encodings)
            if verdict != values.VALID:
                self.problems.append((self.where, verdict))
            return
        if (verdict == values.VALID) and other:
            vr = known
            verdict = self.check(vr, data, tag, encodings)
            if verdict == values.BROKEN:
                self.broken(tag)
                return
            if verdict == values.VALID:
                self.put(ds, tag, vr, _decoded(data, vr, encodings), "vr")
                return
        if verdict == values.VALID:
            return
        if vr in values.TEXT_VRS:
            self.put(ds, tag, vr, values.repaired_text(vr, _joined(data, encodings), tag), "repaired")
            return
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

    def put(self, ds: Dataset, tag: int, vr: str, value, change: str) -> None:
        """A new element in place of the old one, counted as `change`."""
        ds._dict[tag] = new_element(tag, vr, value)
        self.changed[change] += 1

    def invalid(self, ds: Dataset, tag: int, vr: str, data: bytes, path: tuple[str, ...]) -> None:
        """A value its VR does not allow: repaired where that is exact, else a dummy (Type 1), empty
        (Type 2) or removed, as the instance's IOD needs the attribute."""
        if (vr == "UI") and (self.new_uid is not None) and (b"\\" not in data):
            # A kept UID that breaks the UID grammar (retain_uids): mapped, as every instance maps it alike.
            old = data.decode("latin-1").strip("\0 ")
            self.put(ds, tag, vr, self.new_uid(old), "repaired")
            return
        if vr == "CS":
            codes = values.repaired_code_string(data, tag)
            if codes is not None:
                self.put(ds, tag, vr, codes.split("\\") if "\\" in codes else codes, "repaired")
                return
        if vr in ("DS", "IS"):
            number = values.repaired_number(vr, data, tag)
            if number is not None:
                self.put(ds, tag, vr, number, "repaired")
                return
        kind = self.iod.type_of(path, keyword(tag))
        if kind in ("1", "1C"):
            self.put(ds, tag, vr, dummy_value(vr), "dummy")
        elif kind in ("2", "2C"):
            self.put(ds, tag, vr, b"" if vr in values.BINARY_SIZE else None, "emptied")
        else:
            del ds._dict[tag]
            self.changed["removed"] += 1


def declared_as_other(vr: str, known: str | None) -> bool:
    """Declared with another VR than the attribute's own, which is a textual one (a VR this pass can judge)."""
    return bool(known) and (vr != known) and (vr != "UN") and (known in _TEXTUAL)


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
    try:
        return decode_bytes(data.rstrip(b"\0"), encodings or ["ISO_IR 6"], {0x5C, 0x3D, 0x5E})
    except Exception:
        return data.decode("latin-1")


def _decoded(data: bytes, vr: str, encodings):
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
    sop_class = plain_value(ds, 0x00080016)  # read without converting it where it is plain
    run = _Pass(IodTypes(ds.get("SOPClassUID") if sop_class is None else sop_class), little, implicit, new_uid)
    encodings = getattr(ds, "_character_set", None)
    run.dataset(ds, (), encodings)
    return run.changed


def problems(ds: Dataset, *, little: bool = True, implicit: bool = False,
             valid_as_read=frozenset()) -> list[tuple[str, str]]:
    """(tag path, verdict) of every element that is not a valid value of its VR; nothing is changed.
    `valid_as_read`: ids of raw elements of ds the caller has judged valid as read (values.check of their
    bytes under the VR this pass would take, no other VR declared) and that are still in ds: skipped."""
    run = _Pass(IodTypes(ds.get("SOPClassUID")), little, implicit, None, fix=False, valid_as_read=valid_as_read)
    run.dataset(ds, (), getattr(ds, "_character_set", None))
    return run.problems
