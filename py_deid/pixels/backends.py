"""How each kind of Pixel Data is read, masked and written back (one class per kind, used by FrameStore).

Native: frames read one at a time from the value (a view of the input), a masked frame kept as the fills made
on it and made again when written (slice assignment per row). RLE: our own codec, only masked frames are
re-encoded. JPEG DCT: block surgery on the compressed frame (decoder only for rendering). Other syntaxes:
the host's codec service; masked frames are re-encoded losslessly where the syntax is lossless and the host
can, else the whole instance is written as Explicit VR Little Endian.
"""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from ..encoder import Made, Pieces, buffers
from ..hosts.services import CodecService, ServiceUnavailable
from . import encapsulation
from .info import EXPLICIT_BE, EXPLICIT_LE, LOSSLESS, LOSSY_METHOD, PixelCodecError, PixelInfo, background_for
from .layout import Box, Layout

# The RLE and JPEG DCT modules (rle, jpeg_dct, jpeg_decode, jpeg_markers: ~15 ms of a command's start-up) are
# imported by the backends that use them, when one is made: uncompressed images never need them.


def syntax_name(ts: str) -> str:
    try:
        name = UID(ts).name
    except Exception:
        name = ""
    return f"{name} ({ts})" if name and name != ts else ts


class Backend:
    """The frames of one instance. `view(i)` -> (buffer, offset, layout, info of those pixels)."""

    def __init__(self, ds: Dataset, info: PixelInfo) -> None:
        self.info = info
        self.changed = False

    def view(self, index: int):
        raise NotImplementedError

    def mask(self, index: int, boxes: list[Box]) -> list[Box]:
        buf, offset, layout, work = self.view(index)
        done = _fill(buf, offset, layout, boxes, background_for(work, work.photometric))
        if done:
            self.touch(index, buf)
        return done

    def touch(self, index: int, buf) -> None:
        self.changed = True

    def replace(self, index: int, data: bytes) -> None:
        """Put a whole frame of samples (in the view's layout) in place of the current one."""
        buf, offset, layout, _ = self.view(index)
        if len(data) != layout.frame_length:
            raise ValueError("replacement frame has the wrong size")
        buf[offset:offset + len(data)] = data
        self.touch(index, buf)

    def finish(self, ds: Dataset) -> str:
        raise NotImplementedError


def _fill(buf, offset: int, layout: Layout, boxes: list[Box], values: tuple[int, ...]) -> list[Box]:
    done = []
    for box in boxes:
        clipped = layout.clip(box)
        if clipped is not None:
            layout.fill(buf, clipped, values, offset)
            done.append(clipped)
    return done


class Native(Backend):
    """Frames read where the value is: a view of the input when the instance shared it (a memory map in the
    CLI), one frame at a time (the hand-off's `release` is called as the step moves on to another frame: the
    host lets go of the pages read). A masked frame is not kept as a copy: it is the fills made on it, made
    again on a copy of the input's frame when it is looked at or written. With a hand-off, finish leaves Pixel
    Data as encoder.Pieces: runs of unchanged frames as views of the value read, masked frames as encoder.Made;
    a cine with text on every frame then never holds more than a frame or two of its pixels."""

    def __init__(self, ds: Dataset, info: PixelInfo, hand_off=None) -> None:
        super().__init__(ds, info)
        data = encapsulation.pixel_value(ds)
        self.layout = Layout.of(info)
        self.in_pieces = hand_off is not None
        self.release = getattr(hand_off, "release", None)
        self.dropped = False
        needed = info.frame_length * info.frames
        if len(data) < needed:
            raise PixelCodecError("truncated", "pixel data shorter than the image it describes")
        if len(data) > needed + needed % 2:
            # Bytes past the frames the header describes are never examined (a Number of Frames, Rows or
            # Samples per Pixel made smaller hides the rest of the pixels there): they are dropped from the
            # dataset now, whatever the step decides later, so nothing unexamined is written out.
            data = memoryview(data)[:needed]
            self.tail = b"\0" * (needed % 2)
            _store(ds, [data, self.tail], self.in_pieces)
            self.dropped = True
        else:
            self.tail = data[needed:]  # the value's padding byte, if any, as read
        self.data = data
        # Big endian OW holding 8-bit samples swaps every byte pair (PS3.5 8.1.1): work on the real order, on a
        # copy of the whole value (pairs may straddle frames; a retired syntax, small files).
        self.swapped = info.transfer_syntax == EXPLICIT_BE and info.bits_allocated == 8 and \
            _pixel_vr(ds) == "OW"
        if self.swapped:
            self.data = bytearray(data) + (bytearray(self.tail) if self.dropped else bytearray())
            _swap_pairs(self.data)
        self.fills: dict[int, list] = {}  # masked frame -> [(clipped box, values)], in the order made
        self.replaced: dict[int, bytes] = {}  # frame -> samples put in its place (replace), before its fills
        self._made: tuple[int, bytearray] | None = None  # the last masked frame made (rendering, masking)
        self._at = -1

    def _visit(self, index: int) -> None:
        if index != self._at:
            self._at = index
            if self.release is not None:
                self.release()

    def _original(self, index: int):
        start = index * self.info.frame_length
        return memoryview(self.data)[start:start + self.info.frame_length]

    def _frame(self, index: int) -> bytearray:
        """The masked frame as it is now: the input's frame (or its replacement) with its fills made again."""
        if self._made is not None and self._made[0] == index:
            return self._made[1]
        self._visit(index)
        buf = bytearray(self.replaced.get(index, b"") or self._original(index))
        for box, values in self.fills.get(index, ()):
            self.layout.fill(buf, box, values)
        self._made = (index, buf)
        return buf

    def view(self, index: int):
        if self.swapped:
            return self.data, index * self.info.frame_length, self.layout, self.info
        if index in self.fills or index in self.replaced:
            return self._frame(index), 0, self.layout, self.info
        self._visit(index)
        return self.data, index * self.info.frame_length, self.layout, self.info

    def mask(self, index: int, boxes: list[Box]) -> list[Box]:
        if self.swapped:
            return super().mask(index, boxes)
        clipped = [c for c in (self.layout.clip(b) for b in boxes) if c is not None]
        if not clipped:
            return []
        values = background_for(self.info, self.info.photometric)
        buf = self._frame(index)
        fills = self.fills.setdefault(index, [])
        for box in clipped:
            self.layout.fill(buf, box, values)
            fills.append((box, values))
        self.changed = True
        return clipped

    def replace(self, index: int, data: bytes) -> None:
        if self.swapped:
            return super().replace(index, data)
        if len(data) != self.layout.frame_length:
            raise ValueError("replacement frame has the wrong size")
        self.replaced[index] = bytes(data)
        self.fills[index] = []  # made on the frame before: they are in the replacement
        self._made = None
        self.changed = True

    def _written(self, index: int) -> bytearray:
        """A masked frame as written (made again; not kept)."""
        buf = bytearray(self.replaced.get(index, b"") or self._original(index))
        for box, values in self.fills.get(index, ()):
            self.layout.fill(buf, box, values)
        return buf

    def finish(self, ds: Dataset) -> str:
        self._made = None
        if self.changed and self.swapped:
            _swap_pairs(self.data)
            _store(ds, [bytes(self.data)], self.in_pieces)
        elif self.changed:
            length, pieces, run = self.info.frame_length, [], None
            view = memoryview(self.data)
            for index in range(self.info.frames):
                if index in self.fills or index in self.replaced:
                    if run is not None:
                        pieces.append(view[run * length:index * length])
                        run = None
                    pieces.append(Made(length, lambda i=index: self._written(i)))
                elif run is None:
                    run = index
            if run is not None:
                pieces.append(view[run * length:self.info.frames * length])
            pieces.append(self.tail)
            _store(ds, pieces, self.in_pieces)
        if self.release is not None:
            self.release()
        return self.info.transfer_syntax


def _pixel_vr(ds: Dataset) -> str | None:
    raw = ds._dict.get(encapsulation.PIXEL_DATA)
    return getattr(raw, "VR", None)


def _store(ds: Dataset, pieces: list, in_pieces: bool) -> None:
    """Pixel Data's new value: in pieces for a host that writes through py_deid.encoder (the element stays raw,
    written piece by piece as pydicom would write it whole); else joined, pydicom's element."""
    raw = ds._dict.get(encapsulation.PIXEL_DATA)
    if in_pieces and type(raw) is RawDataElement:
        value = Pieces(pieces)
        ds._dict[encapsulation.PIXEL_DATA] = raw._replace(value=value, length=len(value))
    else:
        ds.PixelData = b"".join(buffers(pieces))


def _swap_pairs(buf: bytearray) -> None:
    n = len(buf) // 2 * 2
    even = buf[0:n:2]
    buf[0:n:2] = buf[1:n:2]
    buf[1:n:2] = even


class _Framed(Backend):
    """Encapsulated frames (views of the input where the value was shared and holds one fragment a frame);
    decoded frames are cached (masked ones kept until finish); with a hand-off, finish writes the items as
    pieces (encapsulation.join), unchanged frames as the views they are."""

    def __init__(self, ds: Dataset, info: PixelInfo, hand_off=None) -> None:
        super().__init__(ds, info)
        self.in_pieces = hand_off is not None  # see Native; frames in one fragment are views of the input
        self.release = getattr(hand_off, "release", None)
        # what a frame holds beside its compressed image (after its end; comments, APPn data) is never
        # examined: it goes now, whatever the step decides later (Pixel Data written again, a fragment a frame)
        self.frames = encapsulation.split_clean(ds, info.frames, info.transfer_syntax, self.in_pieces)
        self.original_size = sum(len(f) for f in self.frames)
        self.masked: dict[int, bytearray] = {}
        self._recent: dict[int, bytearray] = {}

    def frame(self, index: int) -> bytes:
        """A compressed frame as bytes (a copy of one frame where it is a view of the input)."""
        frame = self.frames[index]
        return frame if type(frame) is bytes else bytes(frame)

    def decode(self, index: int) -> bytearray:
        raise NotImplementedError

    def decoded(self, index: int) -> bytearray:
        if index in self.masked:
            return self.masked[index]
        buf = self._recent.get(index)
        if buf is None:
            buf = self.decode(index)
            if self.release is not None:
                self.release()  # the input's pages of the frame decoded
            if len(self._recent) >= 2:
                self._recent.pop(next(iter(self._recent)))
            self._recent[index] = buf
        return buf

    def touch(self, index: int, buf) -> None:
        self.changed = True
        self.masked[index] = buf
        self._recent.pop(index, None)


class Rle(_Framed):
    def __init__(self, ds: Dataset, info: PixelInfo, hand_off=None) -> None:
        from . import rle

        self.rle = rle
        super().__init__(ds, info, hand_off)
        self.layout = rle.layout_for(info.rows, info.columns, info.samples, info.bytes_per_sample)
        self.work = info

    def decode(self, index: int) -> bytearray:
        return self.rle.decode(self.frame(index), self.layout)

    def view(self, index: int):
        return self.decoded(index), 0, self.layout, self.work

    def finish(self, ds: Dataset) -> str:
        if self.changed:
            for index, buf in self.masked.items():
                self.frames[index] = self.rle.encode(buf, self.layout)
            encapsulation.join(ds, self.frames, self.in_pieces)
        return self.info.transfer_syntax


class Codec(_Framed):
    def __init__(self, ds: Dataset, info: PixelInfo, codecs: CodecService | None, hand_off=None) -> None:
        super().__init__(ds, info, hand_off)
        self.codecs = codecs
        self.work = info.decoded()
        self.layout = Layout.of(self.work)

    def decode(self, index: int) -> bytearray:
        return decode_frame(self.codecs, self.frame(index), self.info, self.layout, index)

    def view(self, index: int):
        return self.decoded(index), 0, self.layout, self.work

    def finish(self, ds: Dataset) -> str:
        if not self.changed:
            return self.info.transfer_syntax
        ts = self.info.transfer_syntax
        if ts in LOSSLESS and self.codecs is not None and self.codecs.can_encode(ts):
            for index, buf in self.masked.items():
                self.frames[index] = encode_frame(self.codecs, bytes(buf), self.info)
            encapsulation.join(ds, self.frames, self.in_pieces)
            return ts
        return write_native(ds, self.info, self.work, [bytes(self.decoded(i)) for i in range(self.info.frames)],
                            self.original_size)


class JpegDct(Codec):
    """JPEG Baseline/Extended: masks are made in the DCT domain; the decoder is only needed to render.
    Should a frame not allow block surgery (e.g. progressive or arithmetic coding under a DCT syntax), masks
    fall back to decoded pixels and the instance is written as Explicit VR Little Endian.
    Frames are decoded by the host's codec service where it can; where it has no decoder for the syntax
    (the browser has none for 12-bit JPEG Extended) or rejects the frame, by our own sequential DCT decoder
    (jpeg_decode)."""

    def __init__(self, ds: Dataset, info: PixelInfo, codecs: CodecService | None, hand_off=None) -> None:
        super().__init__(ds, info, codecs, hand_off)
        # 8-bit JPEG in 8 bits allocated, 12-bit in 16 (PS3.5 8.2.1): a header saying otherwise describes
        # an image other than the codestream's, which readers then disagree on (pydicom refuses it)
        for index, frame in enumerate(self.frames):
            precision = encapsulation.jpeg_precision(frame)
            if precision is not None and ({8: 8, 12: 16}.get(precision) != info.bits_allocated
                                          or info.bits_stored > precision):
                raise PixelCodecError("pixel-description", f"frame {index + 1}: JPEG sample precision does not "
                                      "match bits allocated / bits stored")
        if self.release is not None:
            self.release()  # the pages of every frame's header
        self.fallback = False
        self.rewritten: set[int] = set()
        bg = info.background[0] if info.samples == 1 else 0
        self.gray_target = bg & ((1 << info.bits_stored) - 1)

    def decode(self, index: int) -> bytearray:
        from . import jpeg_decode
        from .jpeg_markers import JpegUnsupported

        ts = self.info.transfer_syntax
        failure: PixelCodecError | None = None
        if self.codecs is not None and self.codecs.can_decode(ts):
            try:
                return decode_frame(self.codecs, self.frame(index), self.info, self.layout, index)
            except (PixelCodecError, ServiceUnavailable) as e:
                failure = e if isinstance(e, PixelCodecError) else None
        try:
            out = jpeg_decode.decode_frame(self.frame(index), self.info.codec_info())
        except JpegUnsupported as e:
            if failure is not None:
                raise failure from None
            raise PixelCodecError("decode", f"frame {index + 1} could not be decoded ({syntax_name(ts)}): "
                                  f"{e}") from None
        if len(out) < self.layout.frame_length:
            raise PixelCodecError("decode", f"frame {index + 1} decoded to fewer bytes than the image needs")
        return bytearray(out[:self.layout.frame_length])

    def mask(self, index: int, boxes: list[Box]) -> list[Box]:
        from . import jpeg_dct
        from .jpeg_markers import JpegUnsupported

        if not self.fallback:
            try:
                info = self.info
                data, done = jpeg_dct.blank(self.frame(index), boxes, photometric=info.photometric,
                                            gray_target=self.gray_target,
                                            expect=(info.columns, info.rows, info.samples))
            except JpegUnsupported:
                self.fallback = True  # masked as decoded pixels; decode() raises if no decoder can read it
            else:
                if self.release is not None:
                    self.release()  # the input's pages of the frame read
                if done:
                    self.frames[index] = data
                    self.rewritten.add(index)
                    self._recent.pop(index, None)
                    self.changed = True
                return done
        return super().mask(index, boxes)

    def replace(self, index: int, data: bytes) -> None:
        self.fallback = True  # whole-frame sample edits cannot be made in the DCT domain
        super().replace(index, data)

    def finish(self, ds: Dataset) -> str:
        if not self.changed:
            return self.info.transfer_syntax
        if self.fallback:
            return write_native(ds, self.info, self.work,
                                [bytes(self.decoded(i)) for i in range(self.info.frames)], self.original_size)
        encapsulation.join(ds, self.frames, self.in_pieces)
        mark_lossy(ds, self.info, self.original_size)
        return self.info.transfer_syntax


# ---- codec service calls ---------------------------------------------------------------------------------
def decode_frame(codecs: CodecService | None, frame: bytes, info: PixelInfo, layout: Layout, index: int) -> bytearray:
    ts = info.transfer_syntax
    if codecs is None or not codecs.can_decode(ts):
        raise missing_decoder(codecs, ts)
    try:
        out = codecs.decode(frame, ts, info.codec_info())
    except ServiceUnavailable:
        raise
    except Exception:
        raise PixelCodecError("decode", f"frame {index + 1} could not be decoded ({syntax_name(ts)})") from None
    if len(out) < layout.frame_length:
        raise PixelCodecError("decode", f"frame {index + 1} decoded to fewer bytes than the image needs")
    if len(out) > layout.frame_length:  # the rest of a larger image would be kept in the output unexamined
        raise PixelCodecError("decode", f"frame {index + 1} decoded to more pixels than the header describes")
    return bytearray(out)


def encode_frame(codecs: CodecService, pixels: bytes, info: PixelInfo) -> bytes:
    try:
        frame = bytes(codecs.encode(pixels, info.transfer_syntax, info.codec_info()))
    except ServiceUnavailable:
        raise
    except Exception:
        raise PixelCodecError("encode", f"a masked frame could not be re-encoded "
                              f"({syntax_name(info.transfer_syntax)})") from None
    # an encoder signs its codestream in a comment ("Created by OpenJPEG"): written frames hold their image only
    cut = encapsulation.sanitized([frame], info.transfer_syntax)
    return cut[0] if cut is not None else frame


def missing_decoder(codecs, ts: str) -> PixelCodecError:
    need = getattr(codecs, "requirement", None)
    hint = need(ts) if callable(need) else ""
    if codecs is None:
        return PixelCodecError("codec-missing", f"no pixel codec service to decode {syntax_name(ts)}")
    return PixelCodecError("codec-missing", f"no decoder for {syntax_name(ts)}"
                           + (f": install {hint}" if hint else ""))


# ---- writing ---------------------------------------------------------------------------------------------
def write_native(ds: Dataset, info: PixelInfo, work: PixelInfo, frames: list[bytes], original_size: int) -> str:
    """Decoded frames as Explicit VR Little Endian; the header then describes the decoded pixels."""
    ds.PixelData = b"".join(frames)
    elem = ds["PixelData"]
    elem.VR = "OB" if info.bits_allocated == 8 else "OW"
    elem.is_undefined_length = False
    encapsulation.drop_offset_tables(ds)
    ds.PhotometricInterpretation = work.photometric
    if info.samples > 1:
        ds.PlanarConfiguration = 0
    mark_lossy(ds, info, original_size)
    return EXPLICIT_LE


def mark_lossy(ds: Dataset, info: PixelInfo, compressed_size: int) -> None:
    """PS3.3 C.7.6.1.1.5: once lossy, always marked; a compression we know of but that is not recorded is
    added (method and ratio together); a recorded history is left as it is."""
    if not info.lossy_syntax:
        return
    ds.LossyImageCompression = "01"
    if "LossyImageCompressionMethod" in ds or "LossyImageCompressionRatio" in ds:
        return
    ds.LossyImageCompressionMethod = LOSSY_METHOD[info.transfer_syntax]
    raw = info.rows * info.columns * info.samples * info.bytes_per_sample * info.frames
    if compressed_size > 0:
        ds.LossyImageCompressionRatio = f"{raw / compressed_size:.4g}"
