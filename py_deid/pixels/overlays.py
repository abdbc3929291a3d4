"""Overlay planes (60xx, PS3.3 C.9.2): render them for OCR, blank boxes in them, or remove them.

Two kinds: separate Overlay Data (60xx,3000), one bit per pixel, first pixel in the least significant bit
(PS3.5 8.1.2), possibly several frames; and the retired embedded kind, bits of Pixel Data above (or below)
the stored bits. Embedded bits are found and handled through the FrameStore (unused_bits, render_bits,
clear_unused_bits), so they work on every transfer syntax the store reads.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from pydicom.dataset import Dataset

from ..hosts.services import GrayImage
from .info import EXPLICIT_BE
from .layout import Box

_ROWS, _COLUMNS, _FRAMES, _ORIGIN, _FRAME_ORIGIN = 0x0010, 0x0011, 0x0015, 0x0050, 0x0051
_BITS_ALLOCATED, _BIT_POSITION, _DATA = 0x0100, 0x0102, 0x3000
# bit k of every byte as 0/255 (for rendering) and 0/1 (for masking)
_BIT255 = [bytes(255 if (b >> k) & 1 else 0 for b in range(256)) for k in range(8)]
_BIT1 = [bytes((b >> k) & 1 for b in range(256)) for k in range(8)]
_TO_BIT = [bytes(min(b, 1) << k for b in range(256)) for k in range(8)]


@dataclass(frozen=True)
class Overlay:
    group: int
    rows: int
    columns: int
    frames: int
    origin: tuple[int, int]  # (row, column), 1-based, relative to the image
    first_frame: int  # 1-based image frame the overlay's first frame belongs to
    bit_position: int
    embedded: bool  # retired: the plane lives in a bit of Pixel Data

    def image_box(self, box: Box) -> Box:
        """A box in overlay coordinates -> the same pixels in image coordinates."""
        x, y, w, h = box
        return (x + self.origin[1] - 1, y + self.origin[0] - 1, w, h)


def groups(ds: Dataset) -> list[int]:
    """Groups 6000-601E (even) that describe an overlay plane."""
    found = set()
    for tag in ds.keys():
        group = tag >> 16
        if 0x6000 <= group <= 0x601E and group % 2 == 0 and (tag & 0xFFFF) in (_ROWS, _DATA):
            found.add(group)
    return sorted(found)


def read(ds: Dataset, group: int) -> Overlay:
    def value(element: int, default=None):
        elem = ds.get((group << 16) | element)
        return default if elem is None or elem.value in (None, "") else elem.value
    origin = value(_ORIGIN, [1, 1])
    rows, columns = int(value(_ROWS, 0)), int(value(_COLUMNS, 0))
    bits = int(value(_BITS_ALLOCATED, 1))
    return Overlay(group, rows, columns, int(value(_FRAMES, 1) or 1), (int(origin[0]), int(origin[1])),
                   int(value(_FRAME_ORIGIN, 1) or 1), int(value(_BIT_POSITION, 0) or 0),
                   embedded=value(_DATA) is None and bits > 1)


def data(ds: Dataset, overlay: Overlay, transfer_syntax: str) -> bytes:
    """Overlay Data in byte order (big endian OW swaps byte pairs)."""
    elem = ds[(overlay.group << 16) | _DATA]
    raw = bytes(elem.value)
    if transfer_syntax == EXPLICIT_BE and elem.VR == "OW":
        swapped = bytearray(raw)
        swapped[0::2], swapped[1::2] = raw[1::2], raw[0::2]
        raw = bytes(swapped)
    return raw


def unpack(raw: bytes, count: int, start: int = 0, *, on: int = 255) -> bytes:
    """Bits start..start+count-1 as one byte each (0 or `on`)."""
    tables = _BIT255 if on == 255 else _BIT1
    first = start // 8  # only the bytes that hold those bits: one frame of many is one slice
    raw = raw[first:(start + count + 7) // 8 + 1]
    start -= 8 * first
    out = bytearray(len(raw) * 8)
    for k in range(8):
        out[k::8] = raw.translate(tables[k])
    return bytes(out[start:start + count])


def pack(bits: bytes) -> bytes:
    """Inverse of unpack (any nonzero byte is a set bit), padded to an even length."""
    n = (len(bits) + 7) // 8
    padded = bits + bytes(n * 8 - len(bits))
    total = 0
    for k in range(8):
        total |= int.from_bytes(padded[k::8].translate(_TO_BIT[k]), "little")
    out = total.to_bytes(n, "little")
    return out + b"\0" if len(out) % 2 else out


def render(ds: Dataset, overlay: Overlay, transfer_syntax: str, frame: int = 0, *, scale: int = 1,
           invert: bool = False) -> GrayImage:
    """One frame of a separate overlay plane as gray: set bits white on black (the render() polarity)."""
    from .render import enlarge
    n = overlay.rows * overlay.columns
    bits = unpack(data(ds, overlay, transfer_syntax), n, frame * n)
    if len(bits) < n:
        raise ValueError("overlay data shorter than its rows and columns")
    if invert:
        bits = bits.translate(bytes(range(255, -1, -1)))
    return GrayImage(overlay.columns * scale, overlay.rows * scale,
                     enlarge(bits, overlay.columns, overlay.rows, scale))


def mask(ds: Dataset, overlay: Overlay, transfer_syntax: str, boxes: list[Box], frame: int | None = None) -> list[Box]:
    """Clear the bits inside boxes (overlay coordinates) on one overlay frame, or on all when frame is None."""
    raw = data(ds, overlay, transfer_syntax)
    n = overlay.rows * overlay.columns
    bits = bytearray(unpack(raw, n * overlay.frames, on=1))
    done = []
    for x, y, w, h in boxes:
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, overlay.columns), min(y + h, overlay.rows)
        if x1 <= x0 or y1 <= y0:
            continue
        done.append((x0, y0, x1 - x0, y1 - y0))
        zero = bytes(x1 - x0)
        for f in range(overlay.frames) if frame is None else [frame]:
            for r in range(y0, y1):
                start = f * n + r * overlay.columns + x0
                bits[start:start + x1 - x0] = zero
    if done:
        packed = pack(bytes(bits))
        if transfer_syntax == EXPLICIT_BE and ds[(overlay.group << 16) | _DATA].VR == "OW":
            swapped = bytearray(packed)
            swapped[0::2], swapped[1::2] = packed[1::2], packed[0::2]
            packed = bytes(swapped)
        ds[(overlay.group << 16) | _DATA].value = packed
    return done


def remove(ds: Dataset) -> list[int]:
    """Delete every overlay group (60xx, even); returns the groups removed."""
    removed = groups(ds)
    for tag in [t for t in ds.keys() if 0x6000 <= (t >> 16) <= 0x601E and (t >> 16) % 2 == 0]:
        del ds[tag]
    return removed


# ---- embedded overlays (bits of Pixel Data outside Bits Stored) -------------------------------------------
def unused_bits(store, index: int) -> int:
    """A mask of the Pixel Data bits outside the stored value that are in use on this frame (for signed
    data: bits that differ from the sign extension). Nonzero means an embedded overlay (or garbage)."""
    samples, info = _samples(store, index)
    if samples is None:
        return 0
    used = 0
    for raw in set(samples):
        used |= raw ^ _clean(raw, info)
    return used


def render_bits(store, index: int, bits: int, *, scale: int = 1) -> GrayImage:
    """Pixels where any of `bits` is in use (set; for signed data: differs from the sign extension), white
    on black (e.g. one embedded overlay plane)."""
    from .render import enlarge
    samples, info = _samples(store, index)
    if samples is None:
        out = bytes(info.rows * info.columns)
    else:
        table = {raw: 255 if (raw ^ _clean(raw, info)) & bits else 0 for raw in set(samples)}
        out = bytes(map(table.__getitem__, samples))
    return GrayImage(info.columns * scale, info.rows * scale, enlarge(out, info.columns, info.rows, scale))


def clear_unused_bits(store) -> bool:
    """Zero (or sign-extend) every bit outside the stored value, on every frame; True if anything changed."""
    info = store.info
    if info.bits_allocated != 16 or info.samples != 1 or info.bits_stored == 16:
        return False  # no bits outside the stored value: no frame needs decoding again to find that out
    changed = False
    for index in range(store.count):
        samples, info = _samples(store, index)
        if samples is None:
            continue
        table = {raw: _clean(raw, info) for raw in set(samples)}
        if all(k == v for k, v in table.items()):
            continue
        cleaned = array(samples.typecode, map(table.__getitem__, samples))
        store.replace_samples(index, cleaned)
        changed = True
    return changed


def _samples(store, index: int):
    """The frame's samples as an unsigned array in native order (None for 8-bit colour/32-bit data)."""
    buf, offset, layout, info = store.view(index)
    if layout.bps != 2 or layout.samples != 1:
        return None, info
    values = array("H")
    values.frombytes(memoryview(buf)[offset:offset + layout.frame_length])  # one copy: bytes() first made two
    if layout.little != (array("H", b"\x01\x00")[0] == 1):
        values.byteswap()
    return values, info


def _clean(raw: int, info) -> int:
    """The sample with only its stored bits (sign-extended for signed data), as an unsigned 16-bit word."""
    stored = (raw >> info.shift) & ((1 << info.bits_stored) - 1)
    if info.signed and stored >> (info.bits_stored - 1):
        stored -= 1 << info.bits_stored
    return (stored << info.shift) & 0xFFFF
