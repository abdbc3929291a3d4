"""The native CodecService: pydicom's pixel decoders/encoders (numpy, pylibjpeg-*, pyjpegls, Pillow).

Contract (shared with the browser's codec service):
- decode(frame, ts, info) -> the frame's samples, little endian, planar configuration 0, in a container of
  info["bits_allocated"], in the photometric interpretation py_deid.pixels.info.decoded_photometric() names
  (RGB where the codec undoes its own colour transform: JPEG YCbCr, JPEG 2000 ICT/RCT; else as stored).
- encode(pixels, ts, info) is its inverse for lossless syntaxes (info describes the dataset, pixels are what
  decode gave), so that encode(decode(x)) decodes to the same samples.
- requirement(ts) names the packages that make a syntax work (for the "install ..." error).

JPEG Baseline and Extended frames that pydicom's plugins cannot decode (pylibjpeg-libjpeg rejects some real
files, e.g. zeros in a sequential scan's Ss/Se bytes; Pillow is 8-bit only) go to the core's own decoder
(py_deid.pixels.jpeg_decode), given numpy for its inverse DCT.
"""

from __future__ import annotations

from ..hosts.services import ServiceUnavailable
from . import native_plugins

_NEEDS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg and pylibjpeg-libjpeg (or pillow)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg and pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg and pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg and pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pyjpegls (or pylibjpeg and pylibjpeg-libjpeg)",
    "1.2.840.10008.1.2.4.81": "pyjpegls (or pylibjpeg and pylibjpeg-libjpeg)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg and pylibjpeg-rle",
}
# Lossless syntaxes we re-encode after masking (JPEG Lossless has no encoder in pydicom: written native).
_ENCODABLE = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90")
_JPEG_DCT = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
_OPTION_KEYS = ("rows", "columns", "samples_per_pixel", "bits_allocated", "bits_stored",
                "pixel_representation", "photometric_interpretation", "planar_configuration", "number_of_frames")


def requirement(ts: str) -> str:
    return "numpy and " + _NEEDS.get(ts, "a pydicom pixel data plugin for this transfer syntax")


class NativeCodecs:
    """pydicom-backed codecs; `available()` is False without numpy (then nothing compressed can be read)."""

    def available(self) -> bool:
        try:
            import numpy  # noqa: F401
            import pydicom.pixels  # noqa: F401
        except ImportError:
            return False
        return True

    def requirement(self, ts: str) -> str:
        return requirement(ts)

    @property
    def arrays(self):
        """numpy, for the core's array work (rendering, the text screen); None without it. Imported when a
        frame store is opened, not before: with --pixels off nothing loads it."""
        try:
            import numpy
        except ImportError:
            return None
        return numpy

    def can_decode(self, transfer_syntax: str) -> bool:
        native_plugins.load()  # the command line loads pydicom without them (native_plugins)
        if transfer_syntax in _JPEG_DCT:
            return self.available()  # our own decoder stands behind pydicom's plugins
        decoder = self._decoder(transfer_syntax)
        return decoder is not None and decoder.is_available

    def can_encode(self, transfer_syntax: str) -> bool:
        native_plugins.load()
        if transfer_syntax not in _ENCODABLE or not self.available():
            return False
        from pydicom.pixels import get_encoder
        try:
            return get_encoder(transfer_syntax).is_available
        except Exception:
            return False

    def decode(self, frame: bytes, transfer_syntax: str, info: dict) -> bytes:
        import numpy as np

        from ..pixels import jpeg_decode
        from ..pixels.info import decoded_photometric
        native_plugins.load()
        decoder = self._decoder(transfer_syntax)
        if decoder is None or not decoder.is_available:
            if transfer_syntax in _JPEG_DCT and self.available():
                return jpeg_decode.decode_frame(frame, info, numpy=np)
            raise ServiceUnavailable(f"no decoder for this transfer syntax: install {requirement(transfer_syntax)}")
        options = {k: info[k] for k in _OPTION_KEYS}
        try:
            # YBR to RGB is done here, a strip of rows at a time: pydicom converts a whole frame in float32
            # with a temporary copy, 85 MB for one 2048x1536 frame, the largest allocation of a whole run.
            arr, props = decoder.as_array(_single_frame(frame), index=0, as_rgb=False, **options)
            if info.get("as_rgb") and str(props.get("photometric_interpretation")) in _YBR_FULL:
                arr = _ybr_full_to_rgb(np.ascontiguousarray(arr))
                props["photometric_interpretation"] = "RGB"
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as e:
            # Rust plugins (pylibjpeg-rle) panic on some broken frames with pyo3's PanicException, a
            # BaseException that would pass every `except Exception` up to the batch: a frame that fails here.
            if transfer_syntax not in _JPEG_DCT:
                if isinstance(e, Exception):
                    raise
                raise ValueError("the decoder failed on this frame") from None
            return jpeg_decode.decode_frame(frame, info, numpy=np)
        expected = decoded_photometric(transfer_syntax, info["photometric_interpretation"])
        got = str(props.get("photometric_interpretation", expected))
        if info["samples_per_pixel"] == 3 and got != expected:
            raise ValueError("decoded colour space differs from the one the header implies")
        bits, signed = info["bits_allocated"], info["pixel_representation"] == 1
        dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
        return np.ascontiguousarray(arr).astype(dtype, copy=False).tobytes()

    def encode(self, pixels: bytes, transfer_syntax: str, info: dict) -> bytes:
        from pydicom.pixels import get_encoder
        native_plugins.load()
        if not self.can_encode(transfer_syntax):
            raise ServiceUnavailable(f"no lossless encoder for this transfer syntax: install "
                                     f"{requirement(transfer_syntax)}")
        options = {k: info[k] for k in _OPTION_KEYS}
        options["planar_configuration"] = 0
        return get_encoder(transfer_syntax).encode(pixels, **options)

    @staticmethod
    def _decoder(ts: str):
        try:
            from pydicom.pixels import get_decoder
            return get_decoder(ts)
        except Exception:
            return None


_YBR_FULL = ("YBR_FULL", "YBR_FULL_422")  # decoded 4:2:2 is upsampled: both convert the same way
_STRIP_ROWS = 64


def _ybr_full_to_rgb(arr):
    """pydicom's YBR_FULL -> RGB conversion, the same arithmetic, applied to strips of rows in place."""
    from pydicom.pixels.processing import convert_color_space
    if arr.ndim != 3 or not arr.flags.writeable:
        arr = arr.copy()
    if arr.ndim != 3:
        return convert_color_space(arr, "YBR_FULL", "RGB")
    for r in range(0, arr.shape[0], _STRIP_ROWS):
        arr[r:r + _STRIP_ROWS] = convert_color_space(arr[r:r + _STRIP_ROWS], "YBR_FULL", "RGB")
    return arr


def _single_frame(frame: bytes) -> bytes:
    """pydicom's decoders read encapsulated data: wrap one frame as a one-item sequence with an empty table."""
    from pydicom.encaps import encapsulate
    return encapsulate([frame if len(frame) % 2 == 0 else frame + b"\0"], has_bot=False)
