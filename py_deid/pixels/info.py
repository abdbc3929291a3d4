"""PixelInfo: everything needed to interpret Pixel Data, read from the header once."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from ..hosts.services import ServiceUnavailable
from .palette import Palette, PaletteError, read_palette

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, DEFLATED, EXPLICIT_BE})
RLE = "1.2.840.10008.1.2.5"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
JPEG_DCT = frozenset({JPEG_BASELINE, JPEG_EXTENDED})
LOSSLESS = frozenset({RLE, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, J2K_LOSSLESS,
                      HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL}) | NATIVE
# Lossy Image Compression Method (0028,2114) defined terms, PS3.3 C.7.6.1.1.5.1.
LOSSY_METHOD = {JPEG_BASELINE: "ISO_10918_1", JPEG_EXTENDED: "ISO_10918_1", JPEG_LS_NEAR: "ISO_14495_1",
                J2K: "ISO_15444_1", HTJ2K: "ISO_15444_15"}


# Type 1 attributes of the Image Pixel module (PS3.3 C.7.6.3); Planar Configuration too when samples > 1.
_REQUIRED = ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
             "HighBit", "PixelRepresentation")
_SPACED = {"Rows": "Rows", "Columns": "Columns", "SamplesPerPixel": "Samples per Pixel",
           "PhotometricInterpretation": "Photometric Interpretation", "BitsAllocated": "Bits Allocated",
           "BitsStored": "Bits Stored", "HighBit": "High Bit", "PixelRepresentation": "Pixel Representation"}
# The photometric interpretations the pixel path reads, and the samples per pixel each has (PS3.3 C.7.6.3.1.2).
_SAMPLES = {"MONOCHROME1": 1, "MONOCHROME2": 1, "PALETTE COLOR": 1, "RGB": 3, "YBR_FULL": 3, "YBR_FULL_422": 3,
            "YBR_PARTIAL_422": 3, "YBR_PARTIAL_420": 3, "YBR_ICT": 3, "YBR_RCT": 3}


class PixelCodecError(ServiceUnavailable):
    """Pixel data that cannot be read or written: a missing decoder (named) or data that does not decode.

    `code` is a short machine-readable reason; the message never quotes values from the file.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PixelInfo:
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    signed: bool
    photometric: str
    planar: int
    frames: int
    transfer_syntax: str
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    window: tuple[float, float] | None = None
    palette: Palette | None = None

    @classmethod
    def from_dataset(cls, ds: Dataset, transfer_syntax: str) -> "PixelInfo":
        """Fails closed: pixels are only examined as the header describes them when the description is
        complete and valid (PS3.3 C.7.6.3: the attributes are Type 1). A reader that guessed a missing or
        invalid value could examine an image other than the one a viewer shows (say planar configuration 0
        where the samples are planar: OCR sees noise, the text stays)."""
        try:
            value = {k: value_of(ds, k) for k in _REQUIRED}  # each looked up once
            missing = [k for k in _REQUIRED if value[k] is None or value[k] == ""]
            if missing:
                raise PixelCodecError("pixel-description", "image pixel description incomplete: "
                                      + ", ".join(_SPACED[k] for k in missing) + " missing")
            rows, columns = int(value["Rows"]), int(value["Columns"])
            samples = int(value["SamplesPerPixel"])
            allocated = int(value["BitsAllocated"])
            stored = int(value["BitsStored"])
            high = int(value["HighBit"])
            representation = int(value["PixelRepresentation"])
            photometric = str(value["PhotometricInterpretation"]).strip().upper()
            planar_value = value_of(ds, "PlanarConfiguration")
            planar = int(planar_value) if samples > 1 and planar_value not in (None, "") else 0
            frames = value_of(ds, "NumberOfFrames")
            frames = int(1 if frames is None else frames or 1)
        except PixelCodecError:
            raise
        except (AttributeError, TypeError, ValueError):
            raise PixelCodecError("pixel-description", "image pixel description missing or invalid") from None
        if rows <= 0 or columns <= 0 or frames <= 0 or samples not in (1, 3) or allocated not in (8, 16, 32):
            raise PixelCodecError("pixel-description", "unsupported image pixel description "
                                  "(rows/columns/frames must be positive, 1 or 3 samples, 8/16/32 bits allocated)")
        if not 0 < stored <= allocated or not stored - 1 <= high < allocated:
            raise PixelCodecError("pixel-description", "bits stored / high bit inconsistent with bits allocated")
        if representation not in (0, 1):
            raise PixelCodecError("pixel-description", "pixel representation must be 0 or 1")
        signed = representation == 1
        if signed and photometric.startswith("YBR"):
            raise PixelCodecError("pixel-description", "YBR colour pixels must be unsigned")
        if photometric not in _SAMPLES:
            raise PixelCodecError("photometric", "unsupported photometric interpretation")
        if _SAMPLES[photometric] != samples:
            raise PixelCodecError("pixel-description", "samples per pixel inconsistent with the photometric "
                                  "interpretation")
        if samples > 1 and (planar_value in (None, "") or planar not in (0, 1)):
            raise PixelCodecError("pixel-description", "planar configuration missing or not 0 or 1")
        if photometric in ("YBR_PARTIAL_420", "YBR_PARTIAL_422") and transfer_syntax in NATIVE:
            # 420 is for compressed data only; uncompressed 422 partial is retired, and readers disagree on its
            # layout (pydicom reads it as three full samples a pixel)
            raise PixelCodecError("photometric", "YBR_PARTIAL_420/422 are not read as uncompressed pixel data")
        if photometric in ("YBR_FULL_422", "YBR_PARTIAL_422") and transfer_syntax in NATIVE and columns % 2:
            raise PixelCodecError("pixel-description", "horizontally subsampled YBR with an odd number of columns")
        palette = None
        if photometric == "PALETTE COLOR":
            try:
                palette = read_palette(ds, little_endian=transfer_syntax != EXPLICIT_BE)
            except PaletteError as e:
                raise PixelCodecError("palette", str(e)) from None
        slope, intercept = _number(ds, "RescaleSlope", 1.0), _number(ds, "RescaleIntercept", 0.0)
        center, width = _number(ds, "WindowCenter", None), _number(ds, "WindowWidth", None)
        window = (center, width) if center is not None and width is not None and width > 0 else None
        return cls(rows, columns, samples, allocated, stored, high, signed, photometric, planar, frames,
                   transfer_syntax, slope or 1.0, intercept, window, palette)

    # ---- derived -------------------------------------------------------------------------------------
    @property
    def bytes_per_sample(self) -> int:
        return self.bits_allocated // 8

    @property
    def little_endian(self) -> bool:
        return self.transfer_syntax != EXPLICIT_BE

    @property
    def native(self) -> bool:
        return self.transfer_syntax in NATIVE

    @property
    def lossy_syntax(self) -> bool:
        return self.transfer_syntax in LOSSY_METHOD

    @property
    def subsampled(self) -> bool:
        """Natively encoded YBR_FULL_422: two pixels share one Cb and one Cr (PS3.3 C.7.6.3.1.2)."""
        return self.photometric in ("YBR_FULL_422", "YBR_PARTIAL_422") and self.native

    @property
    def frame_length(self) -> int:
        """Bytes of one native frame."""
        if self.subsampled:
            return self.rows * self.columns * 2 * self.bytes_per_sample
        return self.rows * self.columns * self.samples * self.bytes_per_sample

    @property
    def shift(self) -> int:
        """Where the stored bits start (high bit above bits stored - 1 puts them higher)."""
        return self.high_bit - self.bits_stored + 1

    @property
    def background(self) -> tuple[int, ...]:
        return background_for(self, self.photometric)

    def decoded(self) -> "PixelInfo":
        """The description of the pixels a codec hands back (see decoded_photometric)."""
        photometric = decoded_photometric(self.transfer_syntax, self.photometric)
        return replace(self, photometric=photometric, planar=0, transfer_syntax=EXPLICIT_LE)

    def codec_info(self) -> dict:
        """What a CodecService needs to decode or encode one frame (pydicom's option names)."""
        return {
            "rows": self.rows, "columns": self.columns, "samples_per_pixel": self.samples,
            "bits_allocated": self.bits_allocated, "bits_stored": self.bits_stored,
            "pixel_representation": int(self.signed), "photometric_interpretation": self.photometric,
            # Compressed frames: the codestream says how its components are coded and Planar Configuration is
            # irrelevant (PS3.5 8.2); a 1 there must not make the decoder reorder what it hands back (pydicom
            # does: the image examined would be scrambled while a viewer that follows the standard shows it).
            "planar_configuration": self.planar if self.native or self.transfer_syntax == RLE else 0,
            "number_of_frames": 1,
            # The photometric interpretation the decoded bytes must be in (RGB when the codec undoes a
            # colour transform that is part of the compression; else the stored components as they are).
            "as_rgb": decoded_photometric(self.transfer_syntax, self.photometric) == "RGB"
            and self.photometric != "RGB",
        }


def decoded_photometric(transfer_syntax: str, photometric: str) -> str:
    """The photometric interpretation of decoded frames: JPEG DCT codecs and JPEG 2000 undo their own colour
    transform (YCbCr, ICT, RCT) and hand back RGB; every other codec hands back the stored components."""
    if transfer_syntax in JPEG_DCT and photometric.startswith("YBR"):
        return "RGB"
    if photometric in ("YBR_ICT", "YBR_RCT"):
        return "RGB"
    return photometric


def background_for(info: PixelInfo, photometric: str) -> tuple[int, ...]:
    """Stored sample values that display as black (for MONOCHROME1 that is the maximum value)."""
    bits = info.bits_stored
    if photometric == "MONOCHROME1":
        return ((1 << (bits - 1)) - 1 if info.signed else (1 << bits) - 1,)
    if photometric == "PALETTE COLOR":
        if info.palette is None:
            raise PixelCodecError("palette", "palette colour lookup tables missing")
        return (info.palette.darkest_index,)
    if info.samples == 1:
        return (-(1 << (bits - 1)) if info.signed else 0,)
    if photometric == "RGB":
        return (0, 0, 0)
    if photometric.startswith("YBR_PARTIAL"):
        return (16 << (bits - 8), 1 << (bits - 1), 1 << (bits - 1))
    if photometric.startswith("YBR"):
        return (0, 1 << (bits - 1), 1 << (bits - 1))
    raise PixelCodecError("photometric", "unsupported photometric interpretation for masking")


def _number(ds: Dataset, keyword: str, default):
    try:
        value = value_of(ds, keyword)
        if value is None or value == "":
            return default
        if not isinstance(value, (int, float)) and hasattr(value, "__len__") and not isinstance(value, str):
            value = value[0] if len(value) else None
        return float(value) if value is not None else default
    except (TypeError, ValueError, IndexError):
        return default


# ---- the few attributes, read without converting the dataset's raw elements ----------------------------------
# pydicom converts a raw element the first time it is looked up (and keeps the converted one, which the writer
# then encodes again). The Image Pixel attributes PixelInfo needs are read straight from the raw bytes where
# they are well formed: one unsigned short of the file's byte order, or a decimal or integer string of the
# usual form. Anything else (another VR, an empty or multi-valued element, an element already converted) is
# looked up through pydicom as before, so the values are the same either way (tests/pixels/test_auto_cost.py
# compares them on every sample file).
_US = frozenset({"Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                 "PlanarConfiguration"})
_DS = frozenset({"RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"})
_READ = _US | _DS | {"NumberOfFrames", "PhotometricInterpretation"}  # read from raw bytes
_TAG = {k: BaseTag(tag_for_keyword(k)) for k in _READ}
_DECIMAL = re.compile(rb" *[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)? *")
_INTEGER = re.compile(rb" *[+-]?[0-9]{1,12} *")
_CODE = re.compile(rb" *[A-Z0-9_][A-Z0-9_ ]* *")
_SLOW = object()


def value_of(ds: Dataset, keyword: str, default=None):
    """ds.get(keyword, default), without converting the element where it is raw and well formed (see above),
    and without pydicom's lookup by keyword where it is converted already (its value is what that returns)."""
    value = _raw(ds, keyword)
    if value is _ABSENT:
        return default
    return ds.get(keyword, default) if value is _SLOW else value


_ABSENT = object()


def _tag(keyword: str) -> BaseTag:
    tag = _TAG.get(keyword)
    if tag is None:
        tag = _TAG[keyword] = BaseTag(tag_for_keyword(keyword))
    return tag


def _raw(ds: Dataset, keyword: str):
    try:
        elem = ds._dict.get(_tag(keyword), _ABSENT)
    except (AttributeError, TypeError):
        return _SLOW
    if elem is _ABSENT:
        return _ABSENT
    if type(elem) is DataElement:
        return elem.value
    if type(elem) is not RawDataElement or keyword not in _READ:
        return _SLOW
    vr, data = elem.VR, elem.value
    if not isinstance(data, bytes) or not data:
        return _SLOW
    if keyword in _US:
        if vr not in ("US", None) or len(data) != 2:
            return _SLOW
        return int.from_bytes(data, "little" if elem.is_little_endian else "big")
    if keyword in _DS:
        if vr not in ("DS", None) or len(data) > 16 or not _DECIMAL.fullmatch(data):
            return _SLOW
        return float(data)
    if keyword == "NumberOfFrames":
        if vr not in ("IS", None) or not _INTEGER.fullmatch(data):
            return _SLOW
        return int(data)
    if vr not in ("CS", None) or not _CODE.fullmatch(data):  # PhotometricInterpretation
        return _SLOW
    return data.decode("ascii").strip()


PIXEL_DATA = 0x7FE00010


def has_pixel_data(ds: Dataset) -> bool:
    """`"PixelData" in ds`, by the tag's number: pydicom parses the keyword on every such test (about 8 µs, paid
    several times per checked image)."""
    try:
        return PIXEL_DATA in ds._dict
    except AttributeError:
        return "PixelData" in ds


def raw_text(ds: Dataset, keyword: str) -> str | None:
    """A short text element (CS, UI, LO, SH) as its raw bytes hold it, trailing padding removed, "" when absent: what
    pydicom's value gives when joined with backslashes, without converting the element. None where the element
    is not raw ASCII bytes of such a VR (then look it up through pydicom)."""
    try:
        elem = ds._dict.get(_tag(keyword))
    except (AttributeError, TypeError):
        return None
    if elem is None:
        return ""
    if type(elem) is not RawDataElement or elem.VR not in ("CS", "UI", "LO", "SH", None) or not isinstance(
            elem.value, bytes):
        return None
    data = elem.value
    # ASCII without ESC decodes alike in every character set a dataset can name (ISO 2022 switches with ESC)
    return data.decode("ascii").rstrip(" \0") if data.isascii() and b"\x1b" not in data else None
