"""The dataset of a de-identified instance as bytes, written the way pydicom's `write_dataset` writes it.

pydicom's writer gives every element its own buffer and header writes (most of the time of a small instance).
Most elements of a de-identified header are still raw: the bytes read from the input, in the encoding of the
output. This encoder emits such an element as one packed header and its value bytes, encodes the common
values the de-identification sets (ASCII strings and text, numbers, number strings, person names) as
pydicom's value writers do, writes sequences (the items' lengths computed from the parts) itself, and hands
every other element to pydicom's `write_data_element`, so that what pydicom would write differently is
written by pydicom.

The rules are those of `write_dataset`, `write_data_element` and `write_sequence_item` (pydicom 3):
- elements in tag order; group length elements of groups above 0006 are left out;
- a dataset whose original encoding differs from the output's, or whose character set changed, is converted by
  pydicom before it is written: such a dataset (the top level, or an item) is written by pydicom whole,
  unless it holds only plain elements made here (nothing for pydicom to convert);
- (0008,0005) Specific Character Set is read (and so converted) before the elements are written;
- an explicit VR element whose value is over 64 KiB and whose VR has a 16-bit length becomes UN: pydicom's;
- an undefined length value is followed by a sequence delimiter; undefined length Pixel Data must start with
  an item tag (else pydicom refuses it, and so does this encoder, through pydicom);
- an item's length is that of its dataset, or undefined with an item delimiter when it was read that way.

The result is a list of byte strings (the raw values are not copied) that the caller joins or streams. A raw
value may also be a `Pieces` (Pixel Data rewritten frame by frame by py_deid.pixels): its pieces are emitted
one after another, as views, with `Made` pieces (a masked frame, made again when it is written) among them;
`buffers` / `joined` turn such parts into buffers.
"""

from __future__ import annotations

import copy
import struct

from pydicom.charset import convert_encodings, custom_encoders, default_encoding, handled_encodings, python_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_sequence_item
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, IS, DSdecimal, DSfloat, PersonName

UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
_LONG_VRS = frozenset(str(vr.value) for vr in EXPLICIT_VR_LENGTH_32)
# Values pydicom writes with write_string (UI padded with NUL, the others with a space); DA, DT and TM too when
# their value is a str (pydicom's default, datetime_conversion off).
_STRING_VRS = frozenset({"AE", "AS", "CS", "UR", "DA", "DT", "TM", "UI"})
_TEXT_VRS = frozenset({"LO", "SH", "LT", "ST", "UC", "UT"})  # write_text: encoded with the character set
_NUMBER_VRS = {"US": "H", "UL": "L", "SS": "h", "SL": "l", "FL": "f", "FD": "d"}  # write_numbers
_NUMBER_STRINGS = frozenset({"DS", "IS"})  # write_number_string
_PLAIN_VRS = _STRING_VRS | _TEXT_VRS | frozenset(_NUMBER_VRS) | _NUMBER_STRINGS | {"PN"}
_STR_TYPES = (str, UID)
_NUMBER_STRING_TYPES = (DSfloat, DSdecimal, IS)
# Python codecs (of the DICOM character sets) that encode an ASCII string as its ASCII bytes in encode_string's
# first step; ISO 2022 and the JIS X 0201 encoder are left to pydicom.
_ASCII_CODECS = (frozenset(python_encoding.values()) | {default_encoding}) - set(handled_encodings) \
    - set(custom_encoders)


class Made:
    """A piece of a value made when it is written: `make()` returns its `size` bytes (the same each time). A
    masked frame of a large instance is made again from the input and its masks rather than held."""

    __slots__ = ("size", "make")

    def __init__(self, size: int, make) -> None:
        self.size = size
        self.make = make

    def __len__(self) -> int:
        return self.size

    def __call__(self):
        data = self.make()
        if len(data) != self.size:
            raise ValueError("a piece made again has another size")
        return data


class Pieces:
    """A value as the concatenation of its pieces (bytes, bytearrays, memoryviews, Made): what the encoder emits
    piece by piece. Deliberately neither iterable nor indexable (pydicom would take it for a multi-value)."""

    __slots__ = ("pieces", "size")

    def __init__(self, pieces) -> None:
        self.pieces = [p for p in pieces if len(p)]
        self.size = sum(len(p) for p in self.pieces)

    def __len__(self) -> int:
        return self.size

    def head(self, n: int) -> bytes:
        out = b""
        for p in self.pieces:
            if len(out) >= n:
                break
            out += bytes((p() if type(p) is Made else p)[:n - len(out)])
        return out

    def tobytes(self) -> bytes:
        return b"".join(buffers(self.pieces))


def buffers(parts):
    """The parts as buffers, in order: a Made piece is made as it is reached."""
    for part in parts:
        yield part() if type(part) is Made else part


def joined(parts) -> bytes:
    return b"".join(buffers(parts))


class _Writer:
    def __init__(self, implicit: bool, little: bool) -> None:
        self.implicit = implicit
        self.little = little
        self.encoding = (implicit, little)
        order = "<" if little else ">"
        self.tag_len = struct.Struct(order + "HHI").pack  # implicit VR header, item and delimiter headers
        self.short = struct.Struct(order + "HH2sH").pack  # explicit VR, 16-bit length
        self.long = struct.Struct(order + "HH2sHI").pack  # explicit VR, reserved, 32-bit length
        self.seq_end = self.tag_len(0xFFFE, 0xE0DD, 0)
        self.item_end = self.tag_len(0xFFFE, 0xE00D, 0)
        self.item_tag = self.tag_len(0xFFFE, 0xE000, 0)[:4]
        self.vr_bytes: dict[str, bytes] = {}

    def converted_by_pydicom(self, ds: Dataset) -> bool:
        """Whether pydicom converts ds before writing it, with effect. write_dataset's own test, in its order (the
        second half reads the character set element), except for a dataset made here of plain elements
        (De-identification Method Code Sequence's items): converting it changes nothing."""
        if ds.original_encoding == self.encoding and ds.original_character_set == ds._character_set:
            return False
        # pydicom would correct ambiguous VRs (none here) and convert raw elements (none here)
        return not all(type(e) is DataElement and e.VR in _PLAIN_VRS for e in ds._dict.values())

    def dataset(self, parts: list, ds: Dataset, parent_encoding) -> int:
        """Append the elements of ds; returns the number of bytes appended."""
        # Specific Character Set, looked up by int first: most items have none, and a lookup by keyword costs more
        encodings = ds.get("SpecificCharacterSet", parent_encoding) if 0x00080005 in ds._dict else parent_encoding
        converted = None  # write_data_element's convert_encodings(encodings), once per dataset
        elements = ds._dict
        total = 0
        # Sorted as plain ints: pydicom's tags compare in Python, the tuples of ints in C (tags are unique).
        for tag, elem in sorted(zip(map(int, elements), elements.values())):
            if not tag & 0xFFFF and tag >> 16 > 6:
                continue  # retired group length
            if type(elem) is RawDataElement:
                if elem.value is not None:
                    n = self.raw(parts, tag, elem)
                    if n >= 0:
                        total += n
                        continue
            elif type(elem) is DataElement and not elem.is_buffered:
                if converted is None:
                    converted = convert_encodings(encodings or [default_encoding])
                if elem.VR == "SQ":
                    n = self.sequence(parts, tag, elem, converted)
                else:
                    n = self.element(parts, tag, elem, converted)
                if n >= 0:
                    total += n
                    continue
            total += self.pydicom_element(parts, ds.get_item(tag), encodings)
        return total

    def raw(self, parts: list, tag: int, elem: RawDataElement) -> int:
        """A raw element as read; -1 where pydicom would do more than copy it (then pydicom writes it)."""
        value = elem.value
        pieces = type(value) is Pieces  # Pixel Data written again frame by frame (py_deid.pixels)
        if type(value) is not bytes and type(value) is not memoryview and not pieces:  # a view: Pixel Data
            return -1
        n = len(value)
        undefined = elem.length == UNDEFINED
        if undefined and (tag != PIXEL_DATA or (value.head(4) if pieces else value[:4]) != self.item_tag):
            return -1
        if self.implicit:
            head = self.tag_len(tag >> 16, tag & 0xFFFF, UNDEFINED if undefined else n)
        else:
            vr = elem.VR
            if vr in _LONG_VRS:
                head = self.long(tag >> 16, tag & 0xFFFF, self.vr(vr), 0, UNDEFINED if undefined else n)
            elif undefined or n > 0xFFFF or vr is None or len(vr) != 2:
                return -1
            else:
                head = self.short(tag >> 16, tag & 0xFFFF, self.vr(vr), n)
        parts.append(head)
        if pieces:
            parts += [p if type(p) is Made or type(p) is memoryview else memoryview(p) for p in value.pieces]
        else:
            parts.append(value)
        if undefined:
            parts.append(self.seq_end)
            return len(head) + n + 8
        return len(head) + n

    def vr(self, vr: str) -> bytes:
        encoded = self.vr_bytes.get(vr)
        if encoded is None:
            encoded = self.vr_bytes[vr] = bytes(vr, default_encoding)
        return encoded

    def element(self, parts: list, tag: int, elem: DataElement, encodings: list[str]) -> int:
        """A DataElement of a common VR and value type, as pydicom encodes it; -1 for pydicom to write it."""
        vr = elem.VR
        if vr not in _PLAIN_VRS or elem.is_undefined_length:
            return -1  # pydicom checks the VR first (an ambiguous one cannot be written explicitly), even when empty
        try:
            value = b"" if elem.is_empty else self.value(vr, elem.value, encodings)
        except (UnicodeError, ValueError, TypeError, OverflowError, struct.error):
            return -1  # pydicom decides: it may raise, warn or write something else
        if value is None:
            return -1
        n = len(value)
        if self.implicit:
            head = self.tag_len(tag >> 16, tag & 0xFFFF, n)
        elif vr in _LONG_VRS:
            head = self.long(tag >> 16, tag & 0xFFFF, self.vr(vr), 0, n)
        elif n > 0xFFFF:
            return -1
        else:
            head = self.short(tag >> 16, tag & 0xFFFF, self.vr(vr), n)
        parts.append(head)
        parts.append(value)
        return len(head) + n

    def value(self, vr: str, value, encodings: list[str]) -> bytes | None:
        """The value bytes (padded to even length) or None where the encoder leaves the element to pydicom."""
        if vr in _STRING_VRS or vr in _TEXT_VRS:
            if isinstance(value, _STR_TYPES):
                text = value
            elif type(value) is MultiValue and all(isinstance(v, _STR_TYPES) for v in value):
                text = "\\".join(value)
            else:
                return None
            if not text.isascii() or (vr in _TEXT_VRS and encodings[0] not in _ASCII_CODECS):
                return None
            encoded = text.encode("ascii")
            if len(encoded) % 2:
                encoded += b"\0" if vr == "UI" else b" "
            return encoded
        fmt = _NUMBER_VRS.get(vr)
        if fmt is not None:
            order = "<" if self.little else ">"
            if type(value) is int or (type(value) is float and fmt in "fd"):
                return struct.pack(order + fmt, value)
            numbers = (int, float) if fmt in "fd" else (int,)
            if type(value) is MultiValue and fmt != "h" and all(type(v) in numbers for v in value):
                return struct.pack(f"{order}{len(value)}{fmt}", *value)
            return None
        if vr in _NUMBER_STRINGS:
            if isinstance(value, _NUMBER_STRING_TYPES):
                text = value.original_string if hasattr(value, "original_string") else str(value)
            elif type(value) is MultiValue and all(isinstance(v, _NUMBER_STRING_TYPES) for v in value):
                text = "\\".join(v.original_string if hasattr(v, "original_string") else str(v) for v in value)
            else:
                return None
            if not text.isascii():
                return None
            encoded = text.encode("ascii")
            return encoded + b" " if len(encoded) % 2 else encoded
        if vr == "PN" and type(value) is PersonName:
            encoded = value.encode(encodings)
            return encoded + b" " if len(encoded) % 2 else encoded
        return None

    def sequence(self, parts: list, tag: int, elem: DataElement, encodings) -> int:
        items = elem.value
        if not isinstance(items, Sequence) or not all(isinstance(item, Dataset) for item in items):
            return -1
        undefined = elem.is_undefined_length
        at = len(parts)
        parts.append(b"")
        n = 0
        if not elem.is_empty:
            for item in items:
                n += self.item(parts, item, encodings)
        length = UNDEFINED if undefined else n
        if self.implicit:
            head = self.tag_len(tag >> 16, tag & 0xFFFF, length)
        else:
            head = self.long(tag >> 16, tag & 0xFFFF, b"SQ", 0, length)
        parts[at] = head
        if undefined:
            parts.append(self.seq_end)
            return len(head) + n + 8
        return len(head) + n

    def item(self, parts: list, item: Dataset, encodings) -> int:
        if self.converted_by_pydicom(item):
            fp = self.buffer()
            write_sequence_item(fp, item, encodings)
            value = fp.getvalue()
            parts.append(value)
            return len(value)
        at = len(parts)
        parts.append(b"")
        n = self.dataset(parts, item, encodings)
        if getattr(item, "is_undefined_length_sequence_item", False):
            parts[at] = self.tag_len(0xFFFE, 0xE000, UNDEFINED)
            parts.append(self.item_end)
            return 16 + n
        parts[at] = self.tag_len(0xFFFE, 0xE000, n)
        return 8 + n

    def pydicom_element(self, parts: list, elem, encodings) -> int:
        if type(elem) is RawDataElement and type(elem.value) in (memoryview, Pieces):
            value = elem.value
            elem = elem._replace(value=value.tobytes() if type(value) is Pieces else bytes(value))  # as bytes
        elif type(elem) is DataElement and type(elem.value) in (memoryview, Pieces):
            # Pixel Data shared with the input and converted since (a walk of the whole dataset: the residual
            # sweep): pydicom's writer calls bytes methods on an undefined length value.
            value = elem.value
            elem = copy.copy(elem)
            elem.value = value.tobytes() if type(value) is Pieces else bytes(value)
        fp = self.buffer()
        write_data_element(fp, elem, encodings)
        value = fp.getvalue()
        parts.append(value)
        return len(value)

    def buffer(self) -> DicomBytesIO:
        fp = DicomBytesIO()
        fp.is_implicit_VR, fp.is_little_endian = self.implicit, self.little
        return fp


def dataset_parts(ds: Dataset, *, implicit: bool, little: bool) -> list[bytes] | None:
    """The encoded top-level dataset as a list of byte strings, or None when pydicom would convert the dataset
    before writing it (a new encoding or character set): the caller then writes it with pydicom."""
    writer = _Writer(implicit, little)
    if writer.converted_by_pydicom(ds):
        return None
    parts: list[bytes] = []
    writer.dataset(parts, ds, default_encoding)
    return parts
