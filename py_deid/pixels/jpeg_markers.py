"""Parse the marker structure of one JPEG (ISO 10918-1) image: frame header, tables, scans, entropy data."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SOI, EOI, SOS, DHT, DQT, DRI, DNL = 0xD8, 0xD9, 0xDA, 0xC4, 0xDB, 0xDD, 0xDC
SEQUENTIAL_HUFFMAN = (0xC0, 0xC1)  # baseline and extended sequential DCT, Huffman coded
_OTHER_SOF = {0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # the first marker that is not RSTn / stuffing / fill
_RST = re.compile(rb"\xff+[\xd0-\xd7]")


class JpegUnsupported(ValueError):
    """Not a Huffman-coded sequential DCT JPEG, or malformed: the block surgery cannot run on it."""


@dataclass(frozen=True)
class Component:
    ident: int
    h: int
    v: int
    tq: int


@dataclass
class Scan:
    sos: int  # offset of the SOS marker
    header_end: int  # offset of the first entropy-coded byte
    data_end: int  # offset of the marker that ends the scan
    components: list[tuple[int, int, int]]  # (index into frame components, DC table id, AC table id)
    restart: int
    dc_tables: dict[int, bytes]  # DHT payload (counts + symbols) per id, as in effect for this scan
    ac_tables: dict[int, bytes]
    quant_dc: dict[int, int]  # DC quantiser per quant table id
    quant: dict[int, tuple[int, ...]] = field(default_factory=dict)  # 64 quantisers (zig-zag order) per id


@dataclass
class JpegImage:
    data: bytes
    precision: int = 8
    width: int = 0
    height: int = 0
    components: list[Component] = field(default_factory=list)
    scans: list[Scan] = field(default_factory=list)
    jfif: bool = False
    adobe_transform: int | None = None

    @property
    def hmax(self) -> int:
        return max(c.h for c in self.components)

    @property
    def vmax(self) -> int:
        return max(c.v for c in self.components)

    def rgb_coded(self, photometric: str) -> bool:
        """Whether three components hold R, G, B rather than YCbCr. The codestream's own signs win (RGB
        component IDs, a JFIF marker, Adobe's transform flag); else the DICOM photometric interpretation
        decides, as PS3.5 8.2.1 and pydicom have it."""
        if len(self.components) != 3:
            return False
        if [c.ident for c in self.components] in ([0x52, 0x47, 0x42], [0x72, 0x67, 0x62]):
            return True
        if self.jfif:
            return False
        if self.adobe_transform is not None:
            return self.adobe_transform == 0
        return photometric == "RGB"


def parse(data: bytes) -> JpegImage:
    if data[:2] != b"\xff\xd8":
        raise JpegUnsupported("no SOI marker")
    img = JpegImage(data)
    dc: dict[int, bytes] = {}
    ac: dict[int, bytes] = {}
    quant: dict[int, tuple[int, ...]] = {}
    restart = 0
    pos, size = 2, len(data)
    sof_seen = False
    while pos < size:
        if data[pos] != 0xFF:
            raise JpegUnsupported("marker expected")
        marker = data[pos + 1] if pos + 1 < size else EOI
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == EOI:
            return _checked(img, sof_seen)
        if marker == SOI or 0xD0 <= marker <= 0xD7:
            raise JpegUnsupported("unexpected marker")
        if pos + 4 > size:
            raise JpegUnsupported("truncated marker segment")
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        body = data[pos + 4:pos + 2 + length]
        if len(body) != length - 2:
            raise JpegUnsupported("truncated marker segment")
        nxt = pos + 2 + length
        if marker in SEQUENTIAL_HUFFMAN:
            _frame(img, body)
            sof_seen = True
        elif marker in _OTHER_SOF:
            raise JpegUnsupported("not a Huffman sequential DCT JPEG")
        elif marker == DHT:
            _huffman(body, dc, ac)
        elif marker == DQT:
            _quant(body, quant)
        elif marker == DRI:
            restart = int.from_bytes(body[:2], "big")
        elif marker == DNL:
            raise JpegUnsupported("DNL marker")
        elif marker == 0xE0 and body[:5] == b"JFIF\0":
            img.jfif = True
        elif marker == 0xEE and body[:5] == b"Adobe" and len(body) >= 12:
            img.adobe_transform = body[11]
        elif marker == SOS:
            if not sof_seen:
                raise JpegUnsupported("scan before frame header")
            m = _SCAN_END.search(data, nxt)
            end = m.start() if m else size
            img.scans.append(_scan(img, body, pos, nxt, end, restart, dc, ac, quant))
            nxt = end
        pos = nxt
    return _checked(img, sof_seen)


def _checked(img: JpegImage, sof_seen: bool) -> JpegImage:
    if not sof_seen or not img.scans:
        raise JpegUnsupported("no frame header or no scan")
    return img


def _frame(img: JpegImage, body: bytes) -> None:
    if img.components:
        raise JpegUnsupported("more than one frame header")
    img.precision = body[0]
    img.height = int.from_bytes(body[1:3], "big")
    img.width = int.from_bytes(body[3:5], "big")
    n = body[5]
    if img.precision not in (8, 12) or img.height == 0 or not 1 <= n <= 4 or len(body) < 6 + 3 * n:
        raise JpegUnsupported("unsupported frame header")
    for i in range(n):
        ident, hv, tq = body[6 + 3 * i:9 + 3 * i]
        h, v = hv >> 4, hv & 15
        if not (1 <= h <= 4 and 1 <= v <= 4):
            raise JpegUnsupported("bad sampling factors")
        img.components.append(Component(ident, h, v, tq))


def _huffman(body: bytes, dc: dict, ac: dict) -> None:
    pos = 0
    while pos < len(body):
        tc_th = body[pos]
        counts = body[pos + 1:pos + 17]
        total = sum(counts)
        table = body[pos + 1:pos + 17 + total]
        if len(counts) != 16 or len(table) != 16 + total:
            raise JpegUnsupported("truncated Huffman table")
        (ac if tc_th >> 4 else dc)[tc_th & 15] = bytes(table)
        pos += 17 + total


def _quant(body: bytes, quant: dict) -> None:
    pos = 0
    while pos < len(body):
        pq, tq = body[pos] >> 4, body[pos] & 15
        size = 128 if pq else 64
        if pos + 1 + size > len(body):
            raise JpegUnsupported("truncated quantisation table")
        raw = body[pos + 1:pos + 1 + size]
        quant[tq] = tuple(int.from_bytes(raw[i:i + 2], "big") for i in range(0, 128, 2)) if pq else tuple(raw)
        pos += 1 + size


def _scan(img, body, sos, start, end, restart, dc, ac, quant) -> Scan:
    n = body[0] if body else 0
    if not 1 <= n <= 4 or len(body) < 4 + 2 * n:
        raise JpegUnsupported("bad scan header")
    comps = []
    for i in range(n):
        ident, tables = body[1 + 2 * i], body[2 + 2 * i]
        index = next((k for k, c in enumerate(img.components) if c.ident == ident), None)
        if index is None:
            raise JpegUnsupported("scan names an unknown component")
        comps.append((index, tables >> 4, tables & 15))
    # Ss, Se, Ah/Al (the next three bytes) mean nothing in a sequential frame, where every scan codes all 64
    # coefficients; some real files write zeros there (e.g. pydicom's JPEG-lossy.dcm). libjpeg 6b and GDCM
    # warn and decode all 64, as we do.
    for index, td, ta in comps:
        if td not in dc or ta not in ac or img.components[index].tq not in quant:
            raise JpegUnsupported("scan uses an undefined table")
    return Scan(sos, start, end, comps, restart, dict(dc), dict(ac), {k: q[0] for k, q in quant.items()},
                dict(quant))


def intervals(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(data_start, data_end, marker_end) of every restart interval of a scan; marker_end == data_end for the last."""
    out = []
    pos = start
    for m in _RST.finditer(data, start, end):
        out.append((pos, m.start(), m.end()))
        pos = m.end()
    out.append((pos, end, end))
    return out
