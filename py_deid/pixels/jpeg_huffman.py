"""Huffman tables and bit I/O for JPEG entropy-coded data (ISO 10918-1 Annex C, F.1.2, K.2)."""

from __future__ import annotations

from functools import lru_cache

from .jpeg_markers import JpegUnsupported


class HuffTable:
    """A DHT table: `lookup[peek16]` = (code length << 8) | symbol (0: no such code); `codes[symbol]` =
    (code, length)."""

    __slots__ = ("lookup", "codes")

    def __init__(self, spec: bytes) -> None:
        counts, symbols = spec[:16], spec[16:]
        lookup = [0] * 65536
        codes: dict[int, tuple[int, int]] = {}
        code, k = 0, 0
        for length in range(1, 17):
            for _ in range(counts[length - 1]):
                if code >= 1 << length:
                    raise JpegUnsupported("Huffman table over-subscribed")
                symbol = symbols[k]
                codes[symbol] = (code, length)
                first = code << (16 - length)
                span = 1 << (16 - length)
                lookup[first:first + span] = [(length << 8) | symbol] * span
                code += 1
                k += 1
            code <<= 1
        self.lookup = lookup
        self.codes = codes


@lru_cache(maxsize=64)
def table(spec: bytes) -> HuffTable:
    """Tables are usually the same in every frame of a multi-frame instance: build each once."""
    return HuffTable(spec)


def unstuff(data: bytes) -> bytes:
    """Entropy-coded bytes without the 0x00 stuffed after every 0xFF, plus zero padding for look-ahead."""
    return data.replace(b"\xff\x00", b"\xff") + b"\0\0\0\0"


def stuff(data: bytes) -> bytes:
    return data.replace(b"\xff", b"\xff\x00")


class BitWriter:
    __slots__ = ("out", "acc", "n")

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def write(self, value: int, nbits: int) -> None:
        self.acc = (self.acc << nbits) | value
        self.n += nbits
        if self.n >= 64:
            keep = self.n & 7
            self.out += (self.acc >> keep).to_bytes(self.n >> 3, "big")
            self.acc &= (1 << keep) - 1
            self.n = keep

    def copy(self, src: bytes, start: int, stop: int) -> None:
        """Append bits [start, stop) of `src` (MSB first)."""
        if stop <= start:
            return
        first, last = start >> 3, (stop + 7) >> 3
        value = int.from_bytes(src[first:last], "big") >> (last * 8 - stop)
        self.write(value & ((1 << (stop - start)) - 1), stop - start)

    def finish(self) -> bytes:
        """Pad the last byte with 1-bits (F.1.2.3) and return the unstuffed bytes."""
        if self.n & 7:
            pad = 8 - (self.n & 7)
            self.write((1 << pad) - 1, pad)
        self.out += self.acc.to_bytes(self.n >> 3, "big")
        self.acc, self.n = 0, 0
        return bytes(self.out)


def category(value: int) -> int:
    return abs(value).bit_length()


def optimal_spec(freq: dict[int, int]) -> bytes:
    """DHT counts + symbols of an optimal length-limited code for these symbol frequencies (Annex K.2)."""
    freqs = [0] * 257
    for symbol, f in freq.items():
        freqs[symbol] = f
    freqs[256] = 1  # reserves the all-ones code word
    size = [0] * 257
    others = [-1] * 257
    active = [i for i in range(257) if freqs[i]]
    while len(active) > 1:
        v1 = v2 = -1
        for i in active:  # the two least frequent, the larger symbol first on ties
            if v1 < 0 or freqs[i] <= freqs[v1]:
                v1 = i
        for i in active:
            if i != v1 and (v2 < 0 or freqs[i] <= freqs[v2]):
                v2 = i
        active.remove(v2)
        freqs[v1] += freqs[v2]
        freqs[v2] = 0
        for v in (v1, v2):
            size[v] += 1
            while others[v] >= 0:
                v = others[v]
                size[v] += 1
        tail = v1
        while others[tail] >= 0:
            tail = others[tail]
        others[tail] = v2
    bits = [0] * 33
    for s in size:
        if s:
            bits[s] += 1
    for i in range(32, 16, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # drop the reserved symbol
    symbols = [s for length in range(1, 33) for s in range(256) if size[s] == length]
    return bytes(bits[1:17]) + bytes(symbols)
