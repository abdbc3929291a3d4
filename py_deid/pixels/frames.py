"""FrameStore: the frames of one instance, for OCR (render, region digests) and for masking (mask, finish)."""

from __future__ import annotations

import hashlib
from array import array

from pydicom.dataset import Dataset

from ..hosts.services import CodecService, GrayImage
from . import backends, render
from .hand_off import HandOff
from .info import JPEG_DCT, RLE, PixelCodecError, PixelInfo, background_for, has_pixel_data
from .layout import Box

__all__ = ["FrameStore", "HandOff", "PixelCodecError"]
_NATIVE_LITTLE = array("H", b"\x01\x00")[0] == 1


class FrameStore:
    """Open once per instance; every method takes a 0-based frame index.

    Fails closed: a missing decoder or a frame that does not decode raises PixelCodecError (a
    ServiceUnavailable) naming the transfer syntax and, where the host knows it, the package to install.
    """

    def __init__(self, info: PixelInfo, backend: backends.Backend, numpy=None) -> None:
        self.info = info
        self.numpy = numpy  # the host's numpy module, if it has one: rendering and the text screen use it
        self._backend = backend
        self._gray: dict[tuple, bytes] = {}
        self.masked: dict[int, list[Box]] = {}  # frame -> rectangles actually blanked

    @classmethod
    def open(cls, ds: Dataset, info: PixelInfo, codecs: CodecService | None, *,
             require_decoder: bool = True, hand_off: HandOff | None = None) -> "FrameStore":
        """`require_decoder=False` opens any syntax without a decoder on the host (fixed-region masking);
        render() then raises. JPEG Baseline/Extended need none: the core decodes them itself (jpeg_decode).
        `hand_off`: see HandOff."""
        if not has_pixel_data(ds):
            raise PixelCodecError("no-pixel-data", "the instance has no Pixel Data")
        ts = info.transfer_syntax
        if info.native:
            backend = backends.Native(ds, info, hand_off)
        elif ts == RLE:
            backend = backends.Rle(ds, info, hand_off)
        else:
            # JPEG Baseline/Extended always have a decoder: our own (jpeg_decode) where the host has none.
            if require_decoder and ts not in JPEG_DCT and (codecs is None or not codecs.can_decode(ts)):
                raise backends.missing_decoder(codecs, ts)
            backend = (backends.JpegDct if ts in JPEG_DCT else backends.Codec)(ds, info, codecs, hand_off)
        return cls(info, backend, getattr(codecs, "arrays", None))

    @property
    def count(self) -> int:
        return self.info.frames

    @property
    def changed(self) -> bool:
        return self._backend.changed

    def _index(self, index: int) -> int:
        if not 0 <= index < self.info.frames:
            raise IndexError("frame index out of range")
        return index

    def render(self, index: int, *, box: Box | None = None, scale: int = 1, window="auto",
               invert: bool = False, smooth: bool = False) -> GrayImage:
        """8-bit gray of a frame (or of `box` = (x, y, w, h) of it), enlarged `scale` times.

        Display polarity (MONOCHROME1 inverted; text drawn at the top of the range comes out light on dark),
        `invert=True` for the negative. Window: see py_deid.pixels.render (the "auto" window is computed on
        the whole frame, so crops of one frame agree with each other). Enlargement repeats pixels
        (nearest neighbour); `smooth=True` interpolates linearly instead."""
        index = self._index(index)
        if scale < 1:
            raise ValueError("scale must be a positive integer")
        gray = self._full_gray(index, window, invert)
        width, height = self.info.columns, self.info.rows
        if box is not None:
            x, y, w, h = (int(v) for v in box)
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
            if x1 <= x0 or y1 <= y0:
                raise ValueError("box lies outside the image")
            gray = render.crop(gray, width, (x0, y0, x1 - x0, y1 - y0))
            width, height = x1 - x0, y1 - y0
        return GrayImage(width * scale, height * scale, render.enlarge(gray, width, height, scale, smooth=smooth))

    def _full_gray(self, index: int, window, invert: bool) -> bytes:
        key = (index, window, invert)
        gray = self._gray.get(key)
        if gray is None:
            buf, offset, layout, work = self._backend.view(index)
            exclude = background_for(work, work.photometric)[0] if work.samples == 1 else None
            coded = work.photometric == "RGB" and self.info.photometric != "RGB"  # YBR undone by the codec
            gray = render.gray_frame(buf, offset, layout, work, window=window, invert=invert, exclude=exclude,
                                     numpy=self.numpy,
                                     saturated=render.CODED_SATURATED if coded else render.SATURATED)
            if len(self._gray) >= 4:
                self._gray.pop(next(iter(self._gray)))
            self._gray[key] = gray
        return gray

    def stored_ink(self, index: int, thresholds) -> tuple | None:
        """(samples, cuts) of render.ink_cuts for a frame as render() shows it by default (the "auto" window,
        not inverted): its ink at each gray threshold read from the stored samples, without rendering it.
        None where the host has no numpy or the frame does not render as a monotone function of its samples
        (then render it)."""
        if self.numpy is None:
            return None
        buf, offset, layout, work = self._backend.view(self._index(index))
        if work.samples != 1 or work.photometric == "PALETTE COLOR":
            return None
        exclude = background_for(work, work.photometric)[0]  # as _full_gray has it
        return render.ink_cuts(buf, offset, layout, work, thresholds, exclude=exclude, numpy=self.numpy)

    def region_digest(self, index: int, box: Box) -> bytes:
        """A 16-byte hash of the stored pixels of a region (equal digests: same pixels, OCR can be reused)."""
        buf, offset, layout, _ = self._backend.view(self._index(index))
        clipped = layout.clip(box)
        h = hashlib.blake2b(digest_size=16)
        if clipped is None:
            return h.digest()
        h.update(repr(clipped[2:]).encode())
        view = memoryview(buf)
        for start, stop, _ in layout.spans(clipped, offset):
            h.update(view[start:stop])
        return h.digest()

    def mask(self, index: int, boxes: list[Box]) -> list[Box]:
        """Fill the boxes (clipped to the image) with the background on that frame; returns the rectangles
        actually blanked (JPEG DCT: grown to whole MCUs; subsampled YBR: to whole pixel pairs). Pixels
        outside them do not change."""
        index = self._index(index)
        done = self._backend.mask(index, [tuple(int(v) for v in b) for b in boxes])
        if done:
            self.masked.setdefault(index, []).extend(done)
            for key in [k for k in self._gray if k[0] == index]:
                del self._gray[key]
        return done

    def view(self, index: int):
        """(buffer, offset, Layout, PixelInfo of those pixels) of one uncompressed frame; read-only use."""
        return self._backend.view(self._index(index))

    def replace_samples(self, index: int, samples) -> None:
        """Replace a frame's samples (an array in native byte order, in the view's layout)."""
        _, _, layout, _ = self._backend.view(self._index(index))
        values = array(samples.typecode, samples)
        if layout.bps > 1 and layout.little != _NATIVE_LITTLE:
            values.byteswap()
        self._backend.replace(index, values.tobytes())
        for key in [k for k in self._gray if k[0] == index]:
            del self._gray[key]

    def finish(self, ds: Dataset) -> str:
        """Write Pixel Data (and what depends on it) back into ds; returns the transfer syntax of the result.
        Nothing is rewritten when nothing was masked."""
        return self._backend.finish(ds)
