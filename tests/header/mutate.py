"""Byte-level mutations of Part 10 files for the regression tests and the fuzzer.

This walks element headers on its own (it does not use py_deid.structure, the code under test) and
changes bytes the way a broken writer or an attacker would: lengths stretched over the next elements,
tags changed, VRs changed, bits flipped, files spliced and cut.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

LONG = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
UNDEFINED = 0xFFFFFFFF


@dataclass(frozen=True)
class Element:
    offset: int  # of the tag
    header: int  # bytes of tag, VR and length
    tag: int
    vr: bytes | None
    length: int
    length_at: int  # offset of the length field
    length_size: int  # 2 or 4
    depth: int


def meta_end(data: bytes) -> int:
    pos = 132
    while pos + 8 <= len(data) and data[pos:pos + 2] == b"\x02\x00":
        vr = data[pos + 4:pos + 6]
        if vr in LONG:
            pos += 12 + struct.unpack_from("<I", data, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    return pos


def encoding(data: bytes) -> tuple[bool, bool]:
    """(implicit, little) of the dataset, from the meta's transfer syntax."""
    if b"1.2.840.10008.1.2.2" in data[132:meta_end(data)]:
        return False, False
    ts_at = data.find(b"\x02\x00\x10\x00", 132)
    ts = data[ts_at + 8:ts_at + 8 + struct.unpack_from("<H", data, ts_at + 6)[0]].rstrip(b"\0 ")
    return ts == b"1.2.840.10008.1.2", True


def elements(data: bytes) -> list[Element]:
    """Every element of the dataset at every depth (best effort: stops where the structure breaks)."""
    implicit, little = encoding(data)
    e = "<" if little else ">"
    out: list[Element] = []

    def walk(pos: int, end: int, depth: int) -> int:
        while pos + 8 <= end:
            group, elem = struct.unpack_from(e + "HH", data, pos)
            tag = group << 16 | elem
            if group == 0xFFFE:
                return pos + 8 if elem == 0xE00D else pos
            if implicit:
                vr, length, at, size, header = None, struct.unpack_from(e + "I", data, pos + 4)[0], pos + 4, 4, 8
            else:
                vr = data[pos + 4:pos + 6]
                if vr in LONG:
                    length, at, size, header = struct.unpack_from(e + "I", data, pos + 8)[0], pos + 8, 4, 12
                else:
                    length, at, size, header = struct.unpack_from(e + "H", data, pos + 6)[0], pos + 6, 2, 8
            out.append(Element(pos, header, tag, vr, length, at, size, depth))
            body = pos + header
            is_seq = vr == b"SQ" or (vr is None and length == UNDEFINED and tag != 0x7FE00010)
            if is_seq or (vr is None and _looks_like_items(data, body, e)):
                stop = body + length if length != UNDEFINED else end
                pos = items(body, stop, depth + 1)
                continue
            if length == UNDEFINED:  # encapsulated pixel data: skip its items
                pos = body
                while pos + 8 <= end:
                    g, el, ln = struct.unpack_from(e + "HHI", data, pos)
                    pos += 8 + (0 if (g, el) == (0xFFFE, 0xE0DD) else ln)
                    if (g, el) == (0xFFFE, 0xE0DD):
                        break
                continue
            pos = body + length
        return pos

    def items(pos: int, end: int, depth: int) -> int:
        while pos + 8 <= end:
            g, el, ln = struct.unpack_from(e + "HHI", data, pos)
            if (g, el) == (0xFFFE, 0xE0DD):
                return pos + 8
            if (g, el) != (0xFFFE, 0xE000):
                return pos
            if ln == UNDEFINED:
                pos = walk(pos + 8, end, depth)
            else:
                walk(pos + 8, pos + 8 + ln, depth)
                pos += 8 + ln
        return pos

    walk(meta_end(data), len(data), 0)
    return out


def _looks_like_items(data: bytes, pos: int, e: str) -> bool:
    return data[pos:pos + 4] == struct.pack(e + "HH", 0xFFFE, 0xE000)


def find(data: bytes, tag: int, depth: int = 0) -> Element:
    for el in elements(data):
        if el.tag == tag and el.depth == depth:
            return el
    raise KeyError(hex(tag))


def set_length(data: bytes, el: Element, length: int) -> bytes:
    implicit, little = encoding(data)
    fmt = ("<" if little else ">") + ("H" if el.length_size == 2 else "I")
    return data[:el.length_at] + struct.pack(fmt, length) + data[el.length_at + el.length_size:]


def stretch(data: bytes, el: Element, until: int) -> bytes:
    """Make el's value run to offset `until` (swallowing the elements in between)."""
    return set_length(data, el, until - (el.offset + el.header))


def set_tag(data: bytes, el: Element, tag: int) -> bytes:
    _, little = encoding(data)
    return data[:el.offset] + struct.pack("<HH" if little else ">HH", tag >> 16, tag & 0xFFFF) + data[el.offset + 4:]


def set_vr(data: bytes, el: Element, vr: bytes) -> bytes:
    if el.vr is None or (vr in LONG) != (el.vr in LONG):
        return data
    return data[:el.offset + 4] + vr + data[el.offset + 6:]


# -- random mutations for the fuzzer ----------------------------------------------------------------

MUTATIONS = ("stretch", "shrink", "tag-kept", "tag-unknown", "vr", "bitflip", "splice", "cut-boundary", "cut-inside",
             "deep-nesting", "many-items", "undefined-no-delimiter")
KEPT_TAGS = (0x00080060, 0x00080070, 0x00181030, 0x00080008, 0x00200011, 0x00280030, 0x0008103E, 0x00081030,
             0x00200013, 0x00180015, 0x00081090, 0x00321060)


def mutate(data: bytes, kind: str, rng: random.Random, other: bytes | None = None) -> bytes:
    els = [el for el in elements(data) if el.tag != 0x7FE00010 or kind in ("stretch", "shrink")]
    if not els:
        return data[: len(data) // 2]
    el = rng.choice(els)
    _, little = encoding(data)
    e = "<" if little else ">"
    if kind == "stretch":
        later = [x.offset for x in els if x.offset > el.offset + el.header]
        if not later:
            return data
        until = rng.choice(later[:12]) if rng.random() < 0.8 else rng.choice(later)
        if el.length_size == 2 and until - el.offset - el.header > 0xFFFE:
            return data
        return stretch(data, el, until if (until - el.offset) % 2 == 0 else until + 1)
    if kind == "shrink":
        if el.length in (0, UNDEFINED):
            return data
        return set_length(data, el, rng.randrange(0, el.length, 2) if el.length >= 2 else 0)
    if kind == "tag-kept":
        return set_tag(data, el, rng.choice(KEPT_TAGS))
    if kind == "tag-unknown":
        return set_tag(data, el, rng.choice((0x00700999, 0x00089999, 0x00311234, 0x7FE10010, 0x00104321)))
    if kind == "vr":
        return set_vr(data, el, rng.choice((b"LO", b"UN", b"CS", b"PN", b"OB", b"UT", b"XX", b"SQ", b"ST")))
    if kind == "bitflip":
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(132, len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if kind == "splice":
        src = other or data
        a, b = rng.randrange(132, len(data)), rng.randrange(132, len(src))
        return data[:a] + src[b:b + rng.randint(8, 400)] + data[a:]
    if kind == "cut-boundary":
        return data[:el.offset]
    if kind == "cut-inside":
        return data[:el.offset + rng.randint(1, max(1, el.header + min(el.length, 64) - 1))]
    if kind == "deep-nesting":
        depth = rng.choice((40, 70, 200))
        nest = b""
        for _ in range(depth):
            nest = (struct.pack(e + "HH", 0x0040, 0xA730) + (b"SQ\0\0" if el.vr else b"") + struct.pack(e + "I", UNDEFINED)
                    + struct.pack(e + "HHI", 0xFFFE, 0xE000, UNDEFINED) + nest
                    + struct.pack(e + "HHI", 0xFFFE, 0xE00D, 0) + struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0))
        return data[:el.offset] + nest + data[el.offset:]
    if kind == "many-items":
        n = rng.choice((1000, 20000))
        body = struct.pack(e + "HHI", 0xFFFE, 0xE000, 0) * n
        head = struct.pack(e + "HH", 0x0008, 0x1140) + (b"SQ\0\0" if el.vr else b"") + struct.pack(e + "I", len(body))
        return data[:el.offset] + head + body + data[el.offset:]
    if kind == "undefined-no-delimiter":
        head = struct.pack(e + "HH", 0x0008, 0x1115) + (b"SQ\0\0" if el.vr else b"") + struct.pack(e + "I", UNDEFINED)
        return data[:el.offset] + head + struct.pack(e + "HHI", 0xFFFE, 0xE000, UNDEFINED) + data[el.offset:]
    raise ValueError(kind)
