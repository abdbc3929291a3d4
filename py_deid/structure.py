"""A strict check of a DICOM file's element structure before anything is trusted.

pydicom reads what it can and stops quietly at the end of a truncated file; a de-identifier must not write
such a file out as if it were whole. This walk checks that every element, item and fragment fits inside
its parent and the file, that items are where items belong, and that native pixel data is as long as the
image says. It reads tags and lengths only (no values), so it costs little.
"""

from __future__ import annotations

import re
import struct

ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
MAX_DEPTH = 64


_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


def valid_uid(text: object) -> bool:
    """A UID as PS3.5 9.1 writes it: digits and dots, no leading zeros in a component, at most 64 characters
    (the one grammar of the core, the receiver and its queries)."""
    return isinstance(text, str) and 0 < len(text) <= 64 and _UID.fullmatch(text) is not None


class StructureError(ValueError):
    """The file's structure is broken; the message says where by kind, never by value."""


_LE_TAG_LEN = struct.Struct("<HHI")  # group, element, 32-bit length (implicit VR, items)
_BE_TAG_LEN = struct.Struct(">HHI")
_LE_EXPLICIT = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length
_BE_EXPLICIT = struct.Struct(">HH2sH")
_LE_U32 = struct.Struct("<I")
_BE_U32 = struct.Struct(">I")


class _Walker:
    # Hot loop: struct objects and locals are bound once; every file passes through here.
    def __init__(self, data: bytes, implicit: bool, little: bool) -> None:
        self.data = data
        self.implicit = implicit
        self.tag_len = _LE_TAG_LEN if little else _BE_TAG_LEN
        self.explicit = _LE_EXPLICIT if little else _BE_EXPLICIT
        self.u32 = _LE_U32 if little else _BE_U32

    def dataset(self, pos: int, end: int, depth: int, until_item_end: bool = False,
                implicit: bool | None = None) -> int:
        """Walk elements from pos to end (or to an item delimiter); returns the position after."""
        if depth > MAX_DEPTH:
            raise StructureError("sequences nested too deeply")
        data = self.data
        implicit = self.implicit if implicit is None else implicit
        tag_len, explicit, u32 = self.tag_len.unpack_from, self.explicit.unpack_from, self.u32.unpack_from
        while pos < end:
            if end - pos < 8:
                if depth == 0 and not any(data[pos:end]):
                    return end
                raise StructureError("element header cut short")
            if implicit:
                group, elem, length = tag_len(data, pos)
                vr = None
                pos += 8
            else:
                group, elem, vr, length = explicit(data, pos)
                if vr in LONG_VRS:
                    if end - pos < 12:
                        raise StructureError("element header cut short")
                    length = u32(data, pos + 8)[0]
                    pos += 12
                else:
                    pos += 8
            if group == 0xFFFE:
                tag = 0xFFFE0000 | elem
                if tag == ITEM_END and until_item_end:
                    return pos
                if tag == ITEM_END:
                    raise StructureError("item delimiter outside an item")
                raise StructureError("item tag where an element belongs")
            if group == 0 and elem == 0 and depth == 0 and not any(data[pos - 8:end]):
                return end  # some writers pad the file with NUL bytes after the last element
            if length == UNDEFINED:
                if group == 0x7FE0 and elem == 0x0010:
                    pos = self.fragments(pos, end)
                else:
                    # PS3.5 6.2.2: an undefined-length UN holds implicit VR little endian items.
                    pos = self.items(pos, end, depth, undefined=True, implicit=implicit or vr == b"UN")
                continue
            if pos + length > end:
                raise StructureError("element longer than the data that holds it")
            if vr == b"SQ" and length:
                self.items(pos, pos + length, depth, undefined=False, implicit=implicit)
            pos += length
        if until_item_end:
            raise StructureError("item without its delimiter")
        return pos

    def top(self, pos: int, end: int, known_vrs) -> list[tuple] | None:
        """dataset() of the top level (depth 0, in self's encoding), which also lists its elements as pydicom's
        reader reads them one after another: (tag, VR bytes or None, length, value offset, value end). Raises
        StructureError where dataset() does (the same checks, in the same order: this is its loop, at depth 0).
        None, having checked only part of the data, where pydicom's reader would do more than read each element's
        bytes or parse a sequence: an explicit VR it does not know, a value of undefined length other than
        encapsulated Pixel Data of an explicit OB or OW and an (implicit or explicit) SQ, elements of group 0000 in
        the NUL padding at the end (pydicom reads them)."""
        data = self.data
        implicit = self.implicit
        tag_len, explicit, u32 = self.tag_len.unpack_from, self.explicit.unpack_from, self.u32.unpack_from
        out = []
        add = out.append
        while pos < end:
            if end - pos < 8:
                if not any(data[pos:end]):
                    return out
                raise StructureError("element header cut short")
            if implicit:
                group, elem, length = tag_len(data, pos)
                vr = None
                pos += 8
            else:
                group, elem, vr, length = explicit(data, pos)
                if vr not in known_vrs:
                    return None
                if vr in LONG_VRS:
                    if end - pos < 12:
                        raise StructureError("element header cut short")
                    length = u32(data, pos + 8)[0]
                    pos += 12
                else:
                    pos += 8
            if group == 0xFFFE:
                if elem == 0xE00D:
                    raise StructureError("item delimiter outside an item")
                raise StructureError("item tag where an element belongs")
            if group == 0 and elem == 0 and not any(data[pos - 8:end]):
                return None
            if length == UNDEFINED:
                start = pos
                if group == 0x7FE0 and elem == 0x0010:
                    if vr != b"OB" and vr != b"OW":
                        return None
                    pos = self.fragments(pos, end)
                elif vr is None or vr == b"SQ":  # a sequence, for pydicom's reader to parse as it reads
                    pos = self.items(pos, end, 0, undefined=True, implicit=implicit)
                else:
                    return None
                add(((group << 16) | elem, vr, length, start, pos))
                continue
            if pos + length > end:
                raise StructureError("element longer than the data that holds it")
            if vr == b"SQ" and length:
                self.items(pos, pos + length, 0, undefined=False, implicit=implicit)
            add(((group << 16) | elem, vr, length, pos, pos + length))
            pos += length
        return out

    def items(self, pos: int, end: int, depth: int, undefined: bool, implicit: bool) -> int:
        tag_len = self.tag_len.unpack_from
        while pos < end:
            if end - pos < 8:
                raise StructureError("item header cut short")
            group, elem, length = tag_len(self.data, pos)
            tag = (group << 16) | elem
            pos += 8
            if tag == SEQ_END:
                if not undefined:
                    raise StructureError("sequence delimiter in a sequence of defined length")
                return pos
            if tag != ITEM:
                raise StructureError("element where a sequence item belongs")
            if length == UNDEFINED:
                pos = self.dataset(pos, end, depth + 1, until_item_end=True, implicit=implicit)
            else:
                if pos + length > end:
                    raise StructureError("item longer than its sequence")
                self.dataset(pos, pos + length, depth + 1, implicit=implicit)
                pos += length
        if undefined:
            raise StructureError("sequence without its delimiter")
        return pos

    def fragments(self, pos: int, end: int) -> int:
        tag_len = self.tag_len.unpack_from
        while pos < end:
            if end - pos < 8:
                raise StructureError("pixel data fragment cut short")
            group, elem, length = tag_len(self.data, pos)
            tag = (group << 16) | elem
            pos += 8
            if tag == SEQ_END:
                return pos
            if tag != ITEM or length == UNDEFINED or pos + length > end:
                raise StructureError("pixel data fragments truncated or malformed")
            pos += length
        raise StructureError("pixel data fragments truncated or malformed")


def check(data: bytes, dataset_offset: int, *, implicit: bool, little: bool) -> None:
    """Raise StructureError unless the dataset at dataset_offset is structurally whole to the end."""
    if not implicit and len(data) >= dataset_offset + 6:
        vr = data[dataset_offset + 4:dataset_offset + 6]
        if not (vr.isalpha() and vr.isupper()):
            implicit = True  # meta says explicit, the data is implicit: read it as pydicom does
    _Walker(data, implicit, little).dataset(dataset_offset, len(data), 0)


def meta_end(data: bytes) -> int:
    """Offset of the dataset after the preamble and File Meta Information (explicit VR little endian)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return 0
    pos = 132
    while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
        vr = data[pos + 4:pos + 6]
        if vr in LONG_VRS:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            pos += 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            pos += 8
        if length == UNDEFINED or pos + length > len(data):
            raise StructureError("file meta information truncated")
        pos += length
    return pos


def expected_native_length(rows: int, columns: int, samples: int, bits_allocated: int, frames: int,
                           photometric: str = "") -> int:
    if photometric == "YBR_FULL_422" and samples == 3:
        samples = 2  # two chroma samples are shared by each pair of pixels (PS3.3 C.7.6.3.1.2)
    bits = rows * columns * samples * bits_allocated * max(frames, 1)
    return (bits + 7) // 8


def read_top(data: bytes, dataset_offset: int, *, implicit: bool, little: bool, known_vrs) -> list[tuple] | None:
    """check() of a dataset in the encoding given (the caller has seen that its first element is in it: no
    switch to implicit VR), listing its top-level elements as it goes (_Walker.top); None where pydicom's reader
    would not simply read them one after another."""
    return _Walker(data, implicit, little).top(dataset_offset, len(data), known_vrs)


def meta_elements(data: bytes) -> list[tuple] | None:
    """The File Meta Information's elements as meta_end walks them (tag, VR bytes, length, value offset, value
    end), for a file with the preamble and its prefix whose meta elements are each of a VR in LONG_VRS or one of
    16-bit length; None when there is no such meta, or an element is of any other VR (`meta_end` raises where
    the meta is cut short)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    out = []
    pos = 132
    size = len(data)
    while pos + 8 <= size and _LE_EXPLICIT.unpack_from(data, pos)[0] == 0x0002:
        _, elem, vr, length = _LE_EXPLICIT.unpack_from(data, pos)
        if vr in LONG_VRS:
            length = _LE_U32.unpack_from(data, pos + 8)[0]
            begin = pos + 12
        elif vr in _SHORT_VRS:
            begin = pos + 8
        else:
            return None
        if length == UNDEFINED or begin + length > size:
            return None
        out.append((0x00020000 | elem, vr, length, begin, begin + length))
        pos = begin + length
    return out


_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN",
                        b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
