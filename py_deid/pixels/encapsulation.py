"""Encapsulated Pixel Data (PS3.5 A.4): split into frames, put back together with fresh offset tables."""

from __future__ import annotations

import struct

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames

from ..encoder import Pieces
from .info import PixelCodecError

PIXEL_DATA = 0x7FE00010


def pixel_value(ds: Dataset):
    """Pixel Data's value as the dataset holds it, without a copy where it can: a view of the input when the
    instance shared it (instance._share_pixel_data; the element stays raw, written as read), else bytes (read
    now if it was left unread)."""
    raw = ds._dict.get(PIXEL_DATA)
    if type(raw) is RawDataElement and raw.value is not None:
        if type(raw.value) is bytes or type(raw.value) is memoryview:
            return raw.value
        if type(raw.value) is Pieces:
            return raw.value.tobytes()
    value = ds.PixelData
    if type(value) is Pieces:
        return value.tobytes()
    return value or b""


class _Reader:
    """The file interface pydicom's frame splitter reads from, over a view (BytesIO would copy it whole)."""

    def __init__(self, data) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        start = self.pos
        self.pos = len(self.data) if n is None or n < 0 else min(len(self.data), start + n)
        return bytes(self.data[start:self.pos])

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else len(self.data) + offset
        return self.pos

    def tell(self) -> int:
        return self.pos


def split(ds: Dataset, frames: int) -> list[bytes]:
    """The compressed bytes of every frame; raises PixelCodecError unless exactly `frames` are found. A frame in
    one fragment of a value that is a view of the input is a view of it too (no copy); any other value is
    split by pydicom."""
    data = pixel_value(ds)
    if type(data) is memoryview:
        if "ExtendedOffsetTable" not in ds:
            views = _one_fragment_a_frame(data, frames)
            if views is not None:
                return views
        data = _Reader(data)
    extended = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    try:
        found = list(generate_frames(data, number_of_frames=frames, extended_offsets=extended))
    except Exception:
        raise PixelCodecError("encapsulation", "encapsulated pixel data could not be split into frames") from None
    if len(found) != frames:
        raise PixelCodecError("encapsulation", "encapsulated pixel data does not hold the number of frames "
                              "the header declares")
    return found


_ITEM = b"\xfe\xff\x00\xe0"
_DELIMITER = b"\xfe\xff\xdd\xe0"


def _one_fragment_a_frame(data: memoryview, frames: int) -> list | None:
    """The frames as views of `data` where each is one fragment and the Basic Offset Table (if any) says so;
    None for anything else (pydicom splits it, as it always did)."""
    n = len(data)
    if n < 8 or data[:4] != _ITEM:
        return None
    (length,) = struct.unpack("<I", data[4:8])
    if length % 4 or 8 + length > n:
        return None
    bot = struct.unpack(f"<{length // 4}I", data[8:8 + length])
    pos, out, offsets, first = 8 + length, [], [], 8 + length
    while pos + 8 <= n:
        tag = data[pos:pos + 4]
        if tag == _DELIMITER:
            break
        if tag != _ITEM:
            return None
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        if size == 0xFFFFFFFF or pos + 8 + size > n:
            return None
        offsets.append(pos - first)
        out.append(data[pos + 8:pos + 8 + size])
        pos += 8 + size
    if pos < n and data[pos:pos + 4] != _DELIMITER:
        return None
    if len(out) != frames or (bot and list(bot) != offsets):
        return None
    return out


def _encapsulated(frames: list, has_bot: bool) -> list:
    """pydicom's encapsulate(frames, has_bot=...) for frames of even length, one fragment each, as pieces:
    the offset table, then each item's header and its frame as it is (a view stays a view)."""
    if has_bot:
        offsets, at = [], 0
        for f in frames:
            offsets.append(at)
            at += len(f) + 8
        pieces = [_ITEM + struct.pack(f"<I{len(frames)}I", 4 * len(frames), *offsets)]
    else:
        pieces = [_ITEM + b"\0\0\0\0"]
    for f in frames:
        pieces += [_ITEM + struct.pack("<I", len(f)), f]
    return pieces


def _extended_tables(frames: list) -> tuple[bytes, bytes]:
    """pydicom's encapsulate_extended tables (offsets and lengths, 64-bit) for frames of even length."""
    lengths = [len(f) for f in frames]
    offsets = [0]
    for length in lengths[:-1]:
        offsets.append(offsets[-1] + length + 8)
    return struct.pack(f"<{len(frames)}Q", *offsets), struct.pack(f"<{len(frames)}Q", *lengths)


def join(ds: Dataset, frames: list[bytes], in_pieces: bool = False) -> None:
    """Write frames as encapsulated Pixel Data (one fragment each) with a Basic Offset Table, or with an
    Extended Offset Table if the input had one (it is recomputed: frame sizes changed). `in_pieces` (a host
    writing through py_deid.encoder, pixels.frames.HandOff): the value stays in pieces, frames not joined."""
    frames = [bytes(f) + b"\0" if len(f) % 2 else f for f in frames]
    raw = ds._dict.get(PIXEL_DATA)
    if in_pieces and type(raw) is RawDataElement:
        if "ExtendedOffsetTable" in ds:
            ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = _extended_tables(frames)
            pieces = _encapsulated(frames, False)
        else:
            pieces = _encapsulated(frames, sum(len(f) + 8 for f in frames) < 2**32 - 1)
        ds._dict[PIXEL_DATA] = raw._replace(VR="OB", value=Pieces(pieces), length=0xFFFFFFFF)
        return
    if "ExtendedOffsetTable" in ds:
        data, offsets, lengths = encapsulate_extended(frames)
        ds.ExtendedOffsetTable = offsets
        ds.ExtendedOffsetTableLengths = lengths
    else:
        total = sum(len(f) + 8 for f in frames)
        data = encapsulate(frames, has_bot=total < 2**32 - 1)
    ds.PixelData = data
    elem = ds["PixelData"]
    elem.VR = "OB"
    elem.is_undefined_length = True


def drop_offset_tables(ds: Dataset) -> None:
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:
            del ds[keyword]


# ---- where a frame's compressed image ends -----------------------------------------------------------------
JPEG_FAMILY = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                         "1.2.840.10008.1.2.4.70"})
JPEG_LS = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
J2K_FAMILY = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
                        "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"})


def sanitized(frames: list[bytes], transfer_syntax: str) -> list[bytes] | None:
    """The frames with only their compressed image in them, or None when they are that already.

    - Bytes after the end of the codestream: a decoder stops at its end, so they are never examined and would
      be written out as they came (a second image appended to a frame, a fragment added after the last; real
      writers leave a few bytes of junk there too). Zero padding, and one byte of padding of any value, stay.
    - Text and pictures the codestream carries beside the image: JPEG COM and APPn segments (EXIF with its
      thumbnail, ICC, vendor data; a JFIF APP0 is kept without its thumbnail, an Adobe APP14 as it is: they say
      how the colours are coded), and JPEG 2000 COM marker segments. Nothing reads them, so they go.
    Raises PixelCodecError when the end is not found (truncated or malformed: nothing shows where the image
    ends) or a JPEG 2000 tile-part header carries a comment. Syntaxes not looked into here (RLE has its own
    checks; MPEG) give None."""
    if transfer_syntax in JPEG_FAMILY or transfer_syntax in JPEG_LS:
        walk = _jpeg_walk
    elif transfer_syntax in J2K_FAMILY:
        walk = _j2k_walk
    else:
        return None
    ls = transfer_syntax in JPEG_LS
    out, changed = [], False
    for index, original in enumerate(frames):
        frame = original if type(original) is bytes else bytes(original)  # one frame at a time (a view)
        found = walk(frame, ls)
        if found is None:
            raise PixelCodecError("encapsulation", f"frame {index + 1}: the end of its compressed image was not "
                                  "found (truncated or malformed)")
        end, replace = found
        rest = len(frame) - end
        if rest > 1 and frame.count(0, end) != rest:
            frame, changed = frame[:end], True
        if replace:
            parts, pos = [], 0
            for start, stop, new in replace:
                parts += [frame[pos:start], new]
                pos = stop
            frame, changed = b"".join(parts) + frame[pos:end], True
        if changed and len(frame) % 2:
            frame += b"\0"  # as join() writes it
        out.append(original if frame == original else frame)
    return out if changed else None



def split_clean(ds: Dataset, frames: int, transfer_syntax: str, in_pieces: bool = False) -> list[bytes]:
    """The frames of ds with only their compressed image in them (sanitized), Pixel Data written again when
    that dropped anything: whatever is done with the frames next, nothing beside the image is written out.
    `in_pieces`: see join."""
    found = split(ds, frames)
    cut = sanitized(found, transfer_syntax)
    if cut is None:
        return found
    join(ds, cut, in_pieces)
    return cut

_JFIF_NO_THUMBNAIL = 16  # APP0 length of a JFIF segment without a thumbnail (JFIF 1.02)


def _jpeg_kept(marker: int, body: bytes) -> bytes | None:
    """What of an APPn / COM segment stays (None: all of it), as the bytes that replace it."""
    if marker == 0xE0 and body[:5] == b"JFIF\0" and len(body) >= 14:
        if len(body) + 2 == _JFIF_NO_THUMBNAIL and body[12:14] == b"\0\0":
            return None
        return b"\xff\xe0" + (_JFIF_NO_THUMBNAIL).to_bytes(2, "big") + body[:12] + b"\0\0"
    if marker == 0xEE and body[:5] == b"Adobe" and len(body) <= 12:  # version, flags, transform: no room for text
        return None
    return b""


def _jpeg_walk(data: bytes, ls: bool = False):
    """(offset just past EOI, [(start, stop, replacement)] of APPn/COM segments) of a JPEG / JPEG-LS
    codestream (ISO 10918-1 B.1, ISO 14495-1 C.1), by its marker segments and, after each SOS, the
    entropy-coded data up to the next marker; None when it does not end."""
    n = len(data)
    if data[:2] != b"\xff\xd8":
        return None
    pos, replace = 2, []
    while True:
        while pos + 1 < n and data[pos] == 0xFF and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 2 > n or data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        start = pos
        pos += 2
        if marker == 0xD9:
            return pos, replace
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > n:
            return None
        length = int.from_bytes(data[pos:pos + 2], "big")
        if length < 2 or pos + length > n:
            return None
        pos += length
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            kept = _jpeg_kept(marker, data[start + 4:pos])
            if kept is not None:
                replace.append((start, pos, kept))
            continue
        if marker != 0xDA:
            continue
        i = data.find(b"\xff", pos)  # entropy-coded data: up to the first byte pair that is a marker
        while True:
            if i < 0 or i + 1 >= n:
                return None
            b = data[i + 1]
            if b == 0xFF:
                i += 1
                continue
            if (b < 0x80 if ls else b == 0x00) or 0xD0 <= b <= 0xD7:
                i = data.find(b"\xff", i + 2)
                continue
            pos = i
            break


def _j2k_walk(data: bytes, ls: bool = False):
    """(offset just past EOC, [(start, stop, b"")] of the main header's COM segments) of a JPEG 2000
    codestream (ISO 15444-1 A.4): the main header's marker segments, then tile-parts by their Psot lengths;
    None when it does not end. A comment in a tile-part header raises (removing it would change Psot)."""
    n = len(data)
    if data[4:8] == b"jP  ":
        return _jp2_walk(data)
    if data[:4] != b"\xff\x4f\xff\x51":
        return None
    pos, replace = 2, []
    while data[pos:pos + 2] != b"\xff\x90":
        if pos + 4 > n or data[pos] != 0xFF:
            return None
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2:
            return None
        if data[pos + 1] == 0x64:
            replace.append((pos, pos + 2 + length, b""))
        pos += 2 + length
    while data[pos:pos + 2] == b"\xff\x90":
        if pos + 12 > n:
            return None
        psot = int.from_bytes(data[pos + 6:pos + 10], "big")
        at = pos + 12  # the tile-part header's marker segments, up to SOD
        while at + 4 <= n and data[at] == 0xFF and data[at + 1] != 0x93:
            if data[at + 1] == 0x64:
                raise PixelCodecError("encapsulation", "a JPEG 2000 tile-part header carries a comment")
            at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
        if psot == 0:  # the last tile-part, to the EOC marker at the end
            end = len(data.rstrip(b"\0"))
            return (end, replace) if data[end - 2:end] == b"\xff\xd9" else None
        if psot < 14:
            return None
        pos += psot
    return (pos + 2, replace) if data[pos:pos + 2] == b"\xff\xd9" else None


_JP2_KEPT = (b"jP  ", b"ftyp", b"jp2h")  # signature, file type, header (image size, colour specification)


def _jp2_walk(data: bytes):
    """A codestream in the JP2 file format (ISO 15444-1 Annex I; not what PS3.5 A.4.4 asks for, but written):
    its boxes up to the contiguous codestream box. Other boxes (XML, UUID, IPR: text nothing reads) go; the
    codestream is walked as above and rewritten in its box without its comments."""
    pos, n, kept = 0, len(data), []
    while pos + 8 <= n:
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        head = 8
        if size == 1:
            if pos + 16 > n:
                return None
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = n - pos
        if size < head or pos + size > n:
            return None
        if kind == b"jp2c":
            found = _j2k_walk(data[pos + head:pos + size])
            if found is None:
                return None
            end, replace = found
            stream, at = [], pos + head
            for start, stop, new in replace:
                stream += [data[at:pos + head + start], new]
                at = pos + head + stop
            stream.append(data[at:pos + head + end])
            body = b"".join(stream)
            rebuilt = b"".join(kept) + (len(body) + 8).to_bytes(4, "big") + b"jp2c" + body
            if rebuilt == data[:pos + head + end]:  # nothing to drop: a frame already sanitized stays as it is
                return pos + head + end, []
            return pos + head + end, [(0, pos + head + end, rebuilt)]
        if kind in _JP2_KEPT:
            kept.append(data[pos:pos + size])
        pos += size
    return None


def jpeg_precision(data: bytes) -> int | None:
    """Sample precision of a JPEG frame's SOFn header (ISO 10918-1 B.2.2), None when there is none before SOS."""
    pos, n = 2, len(data)
    while pos + 4 < n and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return data[pos + 4]
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None
