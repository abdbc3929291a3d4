"""RLE Lossless (PS3.5 Annex G) in pure Python, so that the browser can mask RLE frames and keep the syntax.

Decoded frames use the layout the segments have: little-endian samples, one plane per sample (planar 1).
"""

from __future__ import annotations

import re
import struct

from .info import PixelCodecError
from .layout import Layout

_RUN = re.compile(rb"(.)\1{2,}", re.S)  # three or more equal bytes: worth a replicate run


def layout_for(rows: int, columns: int, samples: int, bps: int) -> Layout:
    return Layout(rows, columns, samples, bps, 1 if samples > 1 else 0, True, False)


def decode(frame: bytes, layout: Layout) -> bytearray:
    """One RLE frame -> layout.frame_length bytes; raises PixelCodecError if it does not decode in full."""
    if len(frame) < 64:
        raise PixelCodecError("rle", "RLE frame shorter than its header")
    header = struct.unpack("<16L", frame[:64])
    count, offsets = header[0], list(header[1:])
    bps, n = layout.bps, layout.rows * layout.columns
    if count != layout.samples * bps:
        raise PixelCodecError("rle", "RLE segment count does not match the image description")
    out = bytearray(layout.frame_length)
    ends = offsets[1:count] + [len(frame)]
    for seg in range(count):
        start, stop = offsets[seg], ends[seg]
        if not 64 <= start <= stop <= len(frame):
            raise PixelCodecError("rle", "RLE segment offsets out of range")
        plane = unpack(frame[start:stop], n)
        sample, msb_index = divmod(seg, bps)
        base = sample * n * bps
        byte = bps - 1 - msb_index  # segments go most significant byte first
        out[base + byte:base + n * bps:bps] = plane
    return out


def unpack(segment: bytes, n: int) -> bytes:
    """PackBits: 0..127 copy the next n+1 bytes, 129..255 repeat the next byte 257-n times, 128 is a no-op."""
    out = bytearray()
    i, size = 0, len(segment)
    while len(out) < n and i < size:
        c = segment[i]
        i += 1
        if c < 128:
            out += segment[i:i + c + 1]
            i += c + 1
        elif c > 128:
            out += segment[i:i + 1] * (257 - c)
            i += 1
    if len(out) < n:
        raise PixelCodecError("rle", "RLE segment decodes to fewer bytes than the image needs")
    return bytes(out[:n])


def encode(buf, layout: Layout, offset: int = 0) -> bytes:
    """A frame in the decode() layout -> one RLE frame (segments padded to even length, rows never crossed)."""
    bps, n, columns = layout.bps, layout.rows * layout.columns, layout.columns
    data = bytes(memoryview(buf)[offset:offset + layout.frame_length])
    segments = []
    for sample in range(layout.samples):
        base = sample * n * bps
        for msb_index in range(bps):
            plane = data[base + bps - 1 - msb_index:base + n * bps:bps]
            seg = bytearray()
            for r in range(layout.rows):
                _pack_row(plane[r * columns:(r + 1) * columns], seg)
            if len(seg) % 2:
                seg.append(0)
            segments.append(bytes(seg))
    if len(segments) > 15:
        raise PixelCodecError("rle", "RLE allows at most 15 segments")
    offsets, pos = [], 64
    for seg in segments:
        offsets.append(pos)
        pos += len(seg)
    header = struct.pack("<16L", len(segments), *(offsets + [0] * (15 - len(offsets))))
    return header + b"".join(segments)


def _pack_row(row: bytes, out: bytearray) -> None:
    pos = 0
    for m in _RUN.finditer(row):
        start, stop = m.span()
        _literal(row, pos, start, out)
        value = row[start:start + 1]
        left = stop - start
        while left:
            k = min(left, 128)
            if k == 1:
                out.append(0)
            else:
                out.append(257 - k)
            out += value
            left -= k
        pos = stop
    _literal(row, pos, len(row), out)


def _literal(row: bytes, start: int, stop: int, out: bytearray) -> None:
    while start < stop:
        k = min(stop - start, 128)
        out.append(k - 1)
        out += row[start:start + k]
        start += k
