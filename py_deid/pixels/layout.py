"""Where the bytes of a rectangle sit in one uncompressed frame buffer (any planar/endian/subsampling)."""

from __future__ import annotations

from dataclasses import dataclass

from .info import PixelInfo

Box = tuple[int, int, int, int]  # x, y, width, height in pixels


@dataclass(frozen=True)
class Layout:
    rows: int
    columns: int
    samples: int
    bps: int  # bytes per sample
    planar: int
    little: bool
    subsampled: bool  # YBR_FULL_422 as stored natively: Y0 Y1 Cb Cr per pixel pair

    @classmethod
    def of(cls, info: PixelInfo, *, planar: int | None = None, little: bool | None = None,
           subsampled: bool | None = None) -> "Layout":
        return cls(info.rows, info.columns, info.samples, info.bytes_per_sample,
                   info.planar if planar is None else planar,
                   info.little_endian if little is None else little,
                   info.subsampled if subsampled is None else subsampled)

    @property
    def frame_length(self) -> int:
        if self.subsampled:
            return self.rows * self.columns * 2 * self.bps
        return self.rows * self.columns * self.samples * self.bps

    @property
    def plane_length(self) -> int:
        return self.rows * self.columns * self.bps

    def clip(self, box: Box) -> Box | None:
        """The box inside the image (grown to whole pixel pairs for subsampled YBR), or None if outside."""
        x, y, w, h = (int(v) for v in box)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, self.columns), min(y + h, self.rows)
        if self.subsampled:
            x0, x1 = x0 & ~1, min((x1 + 1) & ~1, self.columns)
        if x1 <= x0 or y1 <= y0:
            return None
        return (x0, y0, x1 - x0, y1 - y0)

    def spans(self, box: Box, offset: int = 0):
        """(start, stop, plane) byte ranges, one per row and plane, covering a clipped box."""
        x, y, w, h = box
        if self.subsampled:
            for r in range(y, y + h):  # clip() made x and w even: two samples a pixel on average
                start = offset + (r * self.columns + x) * 2 * self.bps
                yield start, start + w * 2 * self.bps, 0
            return
        if self.planar == 0 or self.samples == 1:
            step = self.samples * self.bps
            for r in range(y, y + h):
                start = offset + (r * self.columns + x) * step
                yield start, start + w * step, -1
            return
        for s in range(self.samples):
            base = offset + s * self.plane_length
            for r in range(y, y + h):
                start = base + (r * self.columns + x) * self.bps
                yield start, start + w * self.bps, s

    def sample_bytes(self, value: int) -> bytes:
        mask = (1 << (8 * self.bps)) - 1
        return (value & mask).to_bytes(self.bps, "little" if self.little else "big")

    def fill_patterns(self, values: tuple[int, ...]) -> dict[int, bytes]:
        """Bytes of one pixel (key -1), one pixel pair (subsampled, key 0) or one sample per plane (key s)."""
        if self.subsampled:
            y, cb, cr = (self.sample_bytes(v) for v in values)
            return {0: y + y + cb + cr}
        if self.planar == 0 or self.samples == 1:
            return {-1: b"".join(self.sample_bytes(v) for v in values)}
        return {s: self.sample_bytes(v) for s, v in enumerate(values)}

    def fill(self, buf: bytearray, box: Box, values: tuple[int, ...], offset: int = 0) -> None:
        """Set every pixel of a clipped box to `values`; nothing else in `buf` changes."""
        patterns = self.fill_patterns(values)
        width = box[2]
        rows: dict[int, bytes] = {}
        for start, stop, key in self.spans(box, offset):
            row = rows.get(key)
            if row is None:
                unit = patterns[key]
                count = width // 2 if self.subsampled else width
                row = rows[key] = unit * count
            buf[start:stop] = row
