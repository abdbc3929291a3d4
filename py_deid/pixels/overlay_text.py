"""Text in overlay planes (60xx): with the Clean Graphics option the overlays stay, so they are read like
frames and their text masked by the same policy. Overlays that cannot be read are left to the pipeline,
which removes them (fail closed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator

from pydicom.dataset import Dataset

from ..hosts.services import GrayImage, OcrRequest, Word
from . import overlays
from .detect import FrameReader
from .geometry import Box
from .phi_text import PhiMatcher
from .text_policy import Vocabulary, decide_readings, mask_boxes


class OverlayFrames:
    """One separate overlay plane with the reading interface of a FrameStore (render, region_digest)."""

    def __init__(self, ds: Dataset, overlay: overlays.Overlay, transfer_syntax: str) -> None:
        self.ds, self.overlay, self.ts = ds, overlay, transfer_syntax
        self.count = overlay.frames
        self._last: tuple[int, GrayImage] | None = None

    def _full(self, index: int) -> GrayImage:
        # The reader asks for a digest of every tile and renders of parts of one frame: unpack it once.
        if self._last is None or self._last[0] != index:
            self._last = (index, overlays.render(self.ds, self.overlay, self.ts, index))
        return self._last[1]

    def forget(self) -> None:
        """The overlay data changed (masked): render again."""
        self._last = None

    def render(self, index: int, *, box: Box | None = None, scale: int = 1) -> GrayImage:
        from .render import crop, enlarge

        full = self._full(index)
        x, y, w, h = box if box is not None else (0, 0, full.width, full.height)
        part = full.pixels if box is None else crop(full.pixels, full.width, (x, y, w, h))
        return GrayImage(w * scale, h * scale, enlarge(part, w, h, scale))

    def region_digest(self, index: int, box: Box) -> bytes:
        from .render import crop

        full = self._full(index)
        return hashlib.blake2b(crop(full.pixels, full.width, box), digest_size=16).digest()


def clean_overlays(ds: Dataset, transfer_syntax: str, mode: str, matcher: PhiMatcher,
                   vocabulary: Vocabulary) -> Generator[OcrRequest, list[Word], tuple[set[int], dict]]:
    """Read and mask every separate overlay plane; returns (groups cleaned, boxes per 'group/frame')."""
    cleaned: set[int] = set()
    boxes_done: dict[str, list] = {}
    for group in overlays.groups(ds):
        try:
            ov = overlays.read(ds, group)
            if ov.embedded or ov.rows <= 0 or ov.columns <= 0:
                continue  # embedded planes are bits of Pixel Data: not read here, so the pipeline removes them
            source = OverlayFrames(ds, ov, transfer_syntax)
            source.render(0)
        except (KeyError, ValueError, TypeError):
            continue
        reader = FrameReader(source, ov.columns, ov.rows)
        for f in range(ov.frames):
            readings = yield from reader.read(f)
            decisions = decide_readings(readings, mode, matcher, vocabulary)
            boxes = [b for words, dec in zip(readings, decisions) for b in mask_boxes(words, dec, ov.columns, ov.rows)]
            if boxes:
                done = overlays.mask(ds, ov, transfer_syntax, boxes, frame=f)
                source.forget()
                boxes_done[f"{group:04X}/{f}"] = [list(b) for b in done]
        cleaned.add(group)
    return cleaned, boxes_done
