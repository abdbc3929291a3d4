"""PALETTE COLOR lookup tables (PS3.3 C.7.6.3.1.5/6, C.7.9.2): normal and segmented, reduced to 8 bits.

Pure Python: rendering only needs 8-bit red/green/blue per index, and the mask needs the darkest index.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from functools import cached_property

from pydicom.dataset import Dataset

_COLOURS = ("Red", "Green", "Blue")


class PaletteError(ValueError):
    """The palette lookup tables are missing or inconsistent (no values quoted)."""


@dataclass(frozen=True)
class Palette:
    """R, G, B as 8-bit values per LUT entry; index values below `first` map to entry 0, above the end to the last."""

    first: int
    red: bytes
    green: bytes
    blue: bytes

    @property
    def entries(self) -> int:
        return len(self.red)

    def entry(self, index: int) -> int:
        return min(max(index - self.first, 0), self.entries - 1)

    @cached_property
    def luminance(self) -> bytes:
        """BT.601 luma of every entry (what OCR sees of a palette pixel)."""
        return bytes((299 * r + 587 * g + 114 * b + 500) // 1000
                     for r, g, b in zip(self.red, self.green, self.blue))

    @cached_property
    def darkest_index(self) -> int:
        """The pixel value whose colour is closest to black (ties: the lowest index)."""
        r, g, b = self.red, self.green, self.blue
        best = min(range(self.entries), key=lambda i: (r[i] * r[i] + g[i] * g[i] + b[i] * b[i], i))
        return best + self.first


def read_palette(ds: Dataset, little_endian: bool) -> Palette:
    """The dataset's palette; raises PaletteError when it is missing or does not match its descriptor."""
    tables = []
    first_values = set()
    for colour in _COLOURS:
        desc = ds.get(f"{colour}PaletteColorLookupTableDescriptor")
        if desc is None or isinstance(desc, (str, bytes)) or len(desc) != 3:
            raise PaletteError("palette colour lookup table descriptor missing or malformed")
        entries, first, bits = (int(v) for v in desc)
        entries = entries or 65536  # 0 means 2**16 entries
        first_values.add(first)
        segmented = ds.get(f"Segmented{colour}PaletteColorLookupTableData")
        plain = ds.get(f"{colour}PaletteColorLookupTableData")
        if segmented is not None:
            values = expand_segmented(_words(segmented, little_endian, 2), entries)
        elif plain is not None:
            one_byte = bits == 8 and isinstance(plain, (bytes, bytearray)) and len(plain) in (entries, entries + 1)
            values = list(_words(plain, little_endian, 1 if one_byte else 2))
        else:
            raise PaletteError("palette colour lookup table data missing")
        if len(values) < entries:
            raise PaletteError("palette colour lookup table shorter than its descriptor")
        # 16-bit entries keep their high byte; 8-bit entries stored in 16-bit words sit in the low byte
        tables.append(bytes((v >> 8) & 0xFF if bits > 8 else v & 0xFF for v in values[:entries]))
    if len(first_values) != 1 or len({len(t) for t in tables}) != 1:
        raise PaletteError("palette colour lookup tables disagree on their layout")
    return Palette(first_values.pop(), *tables)


def _words(value, little_endian: bool, size: int):
    """LUT data as integers: raw bytes in the file's byte order, or a list some readers give for US/SS."""
    if not isinstance(value, (bytes, bytearray)):
        return [int(v) & 0xFFFF for v in value]
    if size == 1:
        return array("B", value)
    words = array("H", value[: len(value) // 2 * 2])
    if little_endian != (array("H", b"\x01\x00")[0] == 1):
        words.byteswap()
    return words


def expand_segmented(words, limit: int | None = None) -> list[int]:
    """Expand segmented LUT data (PS3.3 C.7.9.2): discrete (0), linear (1) and indirect (2) segments; at most
    `limit` entries (the descriptor's count): a few hundred bytes of linear segments of 65535 entries each
    would otherwise expand to hundreds of millions of entries (minutes and gigabytes for one file)."""
    out: list[int] = []
    _expand(words, 0, None, out, nested=False, limit=limit if limit is not None else 1 << 62)
    return out


def _expand(words, i: int, count: int | None, out: list[int], *, nested: bool, limit: int) -> None:
    n, done = len(words), 0
    while i < n and (count is None or done < count):
        if len(out) >= limit:
            return
        if i + 1 >= n:
            raise PaletteError("segmented palette truncated")
        opcode, length = words[i], words[i + 1]
        room = limit - len(out)
        if opcode == 0:
            if i + 2 + length > n:
                raise PaletteError("segmented palette truncated")
            out.extend(words[i + 2:i + 2 + min(length, room)])
            i += 2 + length
        elif opcode == 1:
            # A linear segment ramps from the last value written (whatever segment wrote it) to its end value.
            if not out or i + 2 >= n:
                raise PaletteError("linear segment without a start value")
            start, end = out[-1], words[i + 2]
            out.extend(round(start + (end - start) * (k + 1) / length) for k in range(min(length, room)))
            i += 3
        elif opcode == 2 and not nested:
            if i + 3 >= n:
                raise PaletteError("segmented palette truncated")
            # Replays `length` segments found at a word offset (low word first) into the same data.
            _expand(words, words[i + 2] | (words[i + 3] << 16), length, out, nested=True, limit=limit)
            i += 4
        else:
            raise PaletteError("unsupported segment type in segmented palette")
        done += 1
    if count is not None and done < count and len(out) < limit:
        raise PaletteError("indirect segment points outside the palette")
