"""Deflated Explicit VR Little Endian, inflated in a stream under a cap on size and ratio.

pydicom inflates a deflated dataset whole, so a 600 KB file can ask for gigabytes of memory before
anything has looked at it. Here the body is inflated a chunk at a time and abandoned as soon as it passes
either cap; the result is an ordinary Explicit VR Little Endian Part 10 file that any reader accepts.
The CLI, the browser and the receiver share these limits (the receiver passes its own, smaller ones).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_CHUNK = 1 << 20
_TS_TAG = b"\x02\x00\x10\x00"  # (0002,0010) Transfer Syntax UID, little endian
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})


@dataclass(frozen=True)
class InflateLimits:
    """Largest inflated dataset in bytes, and the largest inflated/deflated ratio."""

    max_size: int = 512 << 20
    max_ratio: int = 200


DEFAULT_LIMITS = InflateLimits()


class InflateError(ValueError):
    """A deflated dataset that is broken or inflates past a cap; the message holds no value from the file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def inflate_body(deflated: bytes | memoryview, limits: InflateLimits = DEFAULT_LIMITS) -> bytes:
    """The raw-deflate stream inflated, or InflateError when it is broken or over a cap."""
    cap = min(limits.max_size, max(len(deflated), 1) * limits.max_ratio)
    unpacker = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    data = memoryview(deflated)
    try:
        for pos in range(0, len(data), _CHUNK):
            pending: bytes | memoryview = data[pos:pos + _CHUNK]
            while pending and not unpacker.eof:
                # max_length keeps one call from producing more than the cap allows
                out += unpacker.decompress(pending, cap + 1 - len(out))
                if len(out) > cap:
                    raise InflateError("inflate-limit", _over_cap_message(limits, cap))
                pending = unpacker.unconsumed_tail
            if unpacker.eof:
                break
        out += unpacker.flush()
    except zlib.error:
        raise InflateError("deflate-corrupt", "deflated dataset is corrupt") from None
    if len(out) > cap:
        raise InflateError("inflate-limit", _over_cap_message(limits, cap))
    return bytes(out)


def _over_cap_message(limits: InflateLimits, cap: int) -> str:
    return (f"deflated dataset inflates to more than {cap >> 20} MB (limits: {limits.max_size >> 20} MB, "
            f"{limits.max_ratio}x its deflated size); refused to protect memory")


def inflate_part10(data: bytes, meta_end: int, limits: InflateLimits = DEFAULT_LIMITS) -> bytes:
    """A Part 10 file with a deflated dataset rewritten as Explicit VR Little Endian (meta and body)."""
    body = inflate_body(memoryview(data)[meta_end:], limits)
    meta = _meta_with_transfer_syntax(data[:meta_end], EXPLICIT_LE)
    return meta + body


def meta_transfer_syntax(meta: bytes) -> str:
    """The Transfer Syntax UID of a Part 10 file's meta (preamble included), or "" when it has none."""
    for element, header in _meta_elements(meta[132:]):
        if element[:4] == _TS_TAG:
            return element[header:].decode("ascii", "replace").strip("\0 ")
    return ""


def _meta_elements(elements: bytes):
    pos = 0
    while pos + 8 <= len(elements):
        vr = elements[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", elements, pos + 8)
            header = 12
        else:
            (length,) = struct.unpack_from("<H", elements, pos + 6)
            header = 8
        yield elements[pos:pos + header + length], header
        pos += header + length


def _meta_with_transfer_syntax(meta: bytes, ts: str) -> bytes:
    """The preamble and file meta with (0002,0010) replaced and the group length made right again."""
    value = ts.encode("ascii")
    if len(value) % 2:
        value += b"\0"
    head, parts = meta[:132], []
    for element, _ in _meta_elements(meta[132:]):
        if element[:4] == _TS_TAG:
            element = _TS_TAG + b"UI" + struct.pack("<H", len(value)) + value
        parts.append(element)
    if parts and parts[0][:4] == b"\x02\x00\x00\x00":  # File Meta Information Group Length
        rest = b"".join(parts[1:])
        parts = [b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<I", len(rest)), rest]
    return head + b"".join(parts)
