"""RLE Lossless (PS3.5 Annex G) without numpy, so that the browser can mask RLE frames and keep the syntax:
decoded by pydicom's own RLE decoder, encoded here (rows packed separately, as G.3.1 asks, and faster than
pydicom's encoder on masked frames).

Decoded frames use the layout the segments have: little-endian samples, one plane per sample (planar 1).
"""

from __future__ import annotations

import re
import struct

from pydicom.pixels.decoders.rle import _rle_decode_segment

from .info import PixelCodecError
from .layout import Layout

_RUN = re.compile(rb"(.)\1{2,}", re.S)  # three or more equal bytes: worth a replicate run


def layout_for(rows: int, columns: int, samples: int, bps: int) -> Layout:
    return Layout(rows, columns, samples, bps, 1 if samples > 1 else 0, True, False)


def decode(frame: bytes, layout: Layout) -> bytearray:
    """One RLE frame -> layout.frame_length bytes; raises PixelCodecError if it does not decode in full.

    The header is checked here (segment count, offsets inside the frame and in order); the segments are
    unpacked by pydicom's own RLE segment decoder, which needs no numpy and so runs in the browser too. Every
    segment must decode to exactly Rows x Columns bytes."""
    if len(frame) < 64:
        raise PixelCodecError("rle", "RLE frame shorter than its header")
    header = struct.unpack("<16L", frame[:64])
    count, offsets = header[0], list(header[1:])
    if count != layout.samples * layout.bps:
        raise PixelCodecError("rle", "RLE segment count does not match the image description")
    ends = offsets[1:count] + [len(frame)]
    if any(not 64 <= start <= stop <= len(frame) for start, stop in zip(offsets[:count], ends)):
        raise PixelCodecError("rle", "RLE segment offsets out of range")
    n = layout.rows * layout.columns
    bps = layout.bps
    segments = []
    for k in range(count):
        try:
            segment = _rle_decode_segment(frame[offsets[k]:ends[k]])
        except (ValueError, IndexError) as e:
            raise PixelCodecError("rle", "RLE segment could not be decoded") from e
        # Exactly the image's bytes: fewer cannot be shown, more would be kept in the output unexamined (a
        # header whose Rows or Columns were made smaller hides the rest of the image there).
        if len(segment) < n:
            raise PixelCodecError("rle", "RLE segment decodes to fewer bytes than the image needs")
        if len(segment) > n:
            raise PixelCodecError("rle", "RLE segment decodes to more bytes than the image described in the header")
        segments.append(segment)
    out = bytearray(n * layout.samples * bps)  # allocated once the segments showed the header's size is real
    for k, segment in enumerate(segments):
        sample, msb_index = divmod(k, bps)
        start = sample * n * bps + (bps - 1 - msb_index)  # little-endian samples, one plane per sample
        out[start:start + n * bps:bps] = segment
    return out


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
