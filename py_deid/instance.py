"""One instance, bytes in, bytes out: read, clean the pixels, de-identify the header, mark, write.

The pipeline is a generator that does no I/O: when it needs OCR it yields an OcrRequest and expects the
words back (`run_sync` answers from a native OCR service; the browser's driver awaits tesseract.js). Every
failure becomes a Problem with a code and a message that never contains a value from the file.

The input is any buffer: `bytes` (the browser, the receiver), or a read-only memory map of the input file (the
CLI, for large files: py_deid.batch). A large Pixel Data is not copied at reading (pydicom's deferred read): it
becomes a view of the input once the dataset is read; the pixel step reads its frames one at a time from that
view and hands back unchanged frames as views of it, masked ones made again when written (pixels.hand_off.HandOff).
With `process(..., parts=True)` the output comes back as its pieces (InstanceResult.parts) instead of one bytes
object, so that a host can write and hash it piece by piece: then one instance never holds a whole copy of its
pixels, in or out.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Generator
from dataclasses import dataclass, field
from functools import lru_cache
from io import BytesIO

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_deferred_data_element, read_preamble
from pydicom.fileutil import read_undefined_length_value
from pydicom.filewriter import write_dataset
from pydicom.tag import BaseTag, SequenceDelimiterTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR as VR_
from pydicom.values import convert_string

try:  # the plain read (_read_plain) takes these parts of pydicom's reader; another pydicom without them: off
    from pydicom.filereader import ENCODED_VR, _dictionary_vr_fast, _read_file_meta_info, read_sequence
except ImportError:  # pragma: no cover - pydicom 3.0 has them
    ENCODED_VR = None

from . import encoder, markers, residual, structure
from .conform import MalformedValue, conform
from .elements import plain_value
from .header import HeaderCleaner, HeaderError
from .inflate import DEFAULT_LIMITS, InflateError, InflateLimits, inflate_part10, meta_transfer_syntax
from .hosts.services import CodecService, OcrBatch, OcrRequest, OcrService, OcrStart, ServiceUnavailable
from .options import Settings
from .phi import PhiTerms
from .pixels import off as pixels_off
from .pixels.hand_off import HandOff
from .pixels.outcome import PixelError
from .pseudonyms import Pseudonyms

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
PIXEL_DATA = 0x7FE00010
SOP_INSTANCE_UID = 0x00080018
DIRECTORY_RECORD_SEQUENCE = 0x00041220
UNDEFINED = 0xFFFFFFFF

Steps = Generator[OcrRequest | OcrBatch | OcrStart, list | None, "InstanceResult"]


class InstanceProblem(Exception):
    """A reason an instance is skipped or failed. `message` must never hold a value from the file."""

    def __init__(self, code: str, message: str, status: str = FAILED) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


@dataclass
class InstanceResult:
    status: str
    output: bytes | None = None  # the de-identified Part 10 file (None when asked for in parts, or not done)
    # The same file in pieces, in order (process(..., parts=True)): bytes, views of the input buffer that are
    # valid while it is (Pixel Data as read, unchanged frames), and encoder.Made pieces (a masked frame, made
    # from the input when called). Written one after another (encoder.buffers) they are `output`, byte for byte.
    parts: list | None = None
    problem: Problem | None = None
    sop_class_uid: str = ""
    modality: str = ""
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    transfer_syntax: str = ""
    actions: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pixels: dict | None = None  # PHI-free: whether cleaned, boxes per frame
    # Local only (the review screen, the site's own report): may hold PHI, never leaves the site.
    local: dict = field(default_factory=dict)


def read_dataset(data: bytes, limits: InflateLimits = DEFAULT_LIMITS) -> Dataset:
    """The dataset of a Part 10 file (or a bare dataset), after a strict check of its structure."""
    return _read(data, limits)[0]


def _read(data: bytes, limits: InflateLimits = DEFAULT_LIMITS) -> tuple[Dataset, bytes]:
    """read_dataset, and the bytes pydicom read it from (the input, or the input inflated)."""
    if not data:
        raise InstanceProblem("empty", "empty file", SKIPPED)
    deflated = False
    plain = None  # the dataset as pydicom reads it, its structure checked in the same walk (_read_plain)
    if len(data) < 132 or data[128:132] != b"DICM":
        # No preamble/meta: accepted only if it parses as a dataset that names its SOP instance.
        if not _looks_like_raw_dataset(data):
            raise InstanceProblem("not-dicom", "not a DICOM file", SKIPPED)
    else:
        try:
            end = structure.meta_end(data)
        except structure.StructureError as e:
            raise InstanceProblem("truncated", f"DICOM structure truncated or malformed: {e}") from None
        if meta_transfer_syntax(data[:end]) == DEFLATED:
            try:
                data = inflate_part10(data, end, limits)  # pydicom would inflate it whole, uncapped
            except InflateError as e:
                raise InstanceProblem(e.code, e.message) from None
            deflated = True
        elif FAST_READ and type(data) is bytes and len(data) < SHARED_PIXELS_MIN:
            plain = _read_plain(data, end)
    try:
        # A large Pixel Data is left where it is (pydicom's deferred read; read through the same reader if a
        # step looks at it), to become a view of the input when it is written (_share_pixel_data).
        defer = SHARED_PIXELS_MIN - 1 if DEFER_LARGE_VALUES and len(data) >= SHARED_PIXELS_MIN else None
        if plain is not None:
            ds = plain
        elif type(data) is bytes:
            ds = pydicom.dcmread(BytesIO(data), force=True, defer_size=defer)
        else:  # a memory map: BytesIO would copy it
            ds = pydicom.dcmread(BufferReader(data), force=True, defer_size=defer)
        if defer is not None:
            _read_deferred_but_pixel_data(ds)
        if plain_value(ds, SOP_INSTANCE_UID) is None:
            ds.get("SOPInstanceUID")  # converted: a value pydicom cannot read fails here
        else:  # a plain value converts without fail: what could fail is the character set its conversion reads
            _ = ds.original_character_set or ds._character_set
    except InvalidDicomError:
        raise InstanceProblem("not-dicom", "not a DICOM file", SKIPPED) from None
    except Exception:
        raise InstanceProblem("unreadable", "DICOM structure truncated or malformed") from None
    if _is_dicomdir(ds):
        raise InstanceProblem("dicomdir", "DICOMDIR: a media index whose records are PHI; never copied", SKIPPED)
    ts = transfer_syntax_of(ds)
    try:
        implicit, little = ts == IMPLICIT_LE, ts != EXPLICIT_BE
        if not str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", "") or ""):
            implicit, little = ds.original_encoding
        if plain is None:  # else checked as it was read, in this encoding, from this offset (_read_plain)
            structure.check(data, structure.meta_end(data), implicit=implicit, little=little)
    except structure.StructureError as e:
        raise InstanceProblem("truncated", f"DICOM structure truncated or malformed: {e}") from None
    if deflated:
        ds.file_meta.TransferSyntaxUID = DEFLATED  # written deflated again, as it came
        ts = DEFLATED
    try:
        _check_native_pixels(ds, ts)
    except structure.StructureError as e:
        raise InstanceProblem("pixel-description", f"pixel data does not match its description: {e}") from None
    return ds, data


def _read_plain(data: bytes, meta_end: int) -> Dataset | None:
    """The dataset pydicom's dcmread(BytesIO(data), force=True) reads, its structure checked (structure.check)
    in the same walk over the bytes: the walk that checks every element's tag and length lists them, and the
    dataset is made of those elements as pydicom's reader makes it (read_partial, read_dataset: its preamble and
    file meta read by pydicom itself). One walk over the elements in place of two, for the plain case: a Part 10
    file under 1 MiB (nothing deferred) whose transfer syntax is implicit or explicit VR little endian, explicit
    VR big endian or another explicit VR little endian one (not deflated) that its first element agrees with, no
    command set, and elements pydicom would read each by its own bytes (structure.read_top), but sequences of
    undefined length, which pydicom parses as it reads them: those are parsed by pydicom's own read_sequence at
    their offset, with the character sets read before them, as its reader does. None in every other case, or
    where the structure is broken: the caller then reads with dcmread and checks the structure as before, which raises as it did.
    tests/header/test_read_plain.py compares the datasets with dcmread's, attribute by attribute."""
    try:
        fp = BytesIO(data)
        preamble = read_preamble(fp, True)
        file_meta = _read_meta(data, fp)
        if file_meta is None:
            file_meta = _read_file_meta_info(fp)
        start = fp.tell()
        if preamble is None or start != meta_end or len(data) - start < 8 or data[start:start + 2] == b"\0\0":
            return None  # no dataset, or a command set (group 0000) first: read_partial reads it apart
        ts = file_meta.get("TransferSyntaxUID")
        if not isinstance(ts, str) or not ts or ts != ts.strip("\0 ") or ts == DEFLATED \
                or ts in pydicom.uid.PrivateTransferSyntaxes:
            return None
        implicit, little = ts == IMPLICIT_LE, ts != EXPLICIT_BE  # as read_partial and _read's check take them
        first_vr = data[start + 4:start + 6]
        if (0x40 < first_vr[0] < 0x5B and 0x40 < first_vr[1] < 0x5B) == implicit:
            return None  # pydicom would switch to the encoding the first element shows (_is_implicit_vr)
        found = structure.read_top(data, start, implicit=implicit, little=little, known_vrs=_ENCODED_VRS)
        if found is None:
            return None
        elements = {}
        vrs = _DECODED_VRS
        encoding = default_encoding  # the character sets read so far, for a sequence parsed as it is read
        for tag, vr, length, begin, end in found:
            if vr is not None:
                vr = vrs.get(vr) or vr.decode(default_encoding)
            if length == UNDEFINED:
                fp.seek(begin)
                if tag == PIXEL_DATA:  # encapsulated: where pydicom's own reading of it ends
                    value = read_undefined_length_value(fp, little, SequenceDelimiterTag, None)
                elif (vr or _dictionary_vr_fast(tag)) == "SQ":  # KeyError (not in the dictionary): declined
                    # pydicom's reader parses a sequence of undefined length as it reads it (its items are
                    # Datasets at once): its own parser, at the same offset, with the same character sets.
                    key = BaseTag(tag)
                    elements[key] = DataElement(key, vr or _dictionary_vr_fast(tag),
                                                read_sequence(fp, implicit, little, length, encoding), begin,
                                                is_undefined_length=True)
                    if fp.tell() != end:
                        return None
                    continue
                else:
                    return None
                if fp.tell() != end:
                    return None
            elif length:
                value = data[begin:end]
            else:
                value = empty_value_for_VR(vr, raw=True)
            if tag == 0x00080005:  # as pydicom's reader keeps them for the sequences that follow
                encoding = convert_encodings(convert_string(value or b"", little))
            key = BaseTag(tag)
            elements[key] = RawDataElement(key, vr, length, value, begin, implicit, little)
        # read_dataset makes a Dataset of the elements, whose own encodings nothing keeps: FileDataset takes its
        # dict, and the character sets come from the same elements with the same parent encoding. Only its
        # conversion of Specific Character Set can fail the read: done as it does it.
        if 0x00080005 in elements:
            convert_encodings(convert_raw_data_element(elements[BaseTag(0x00080005)]).value)
        fp.seek(len(data))  # where dcmread leaves it
        ds = FileDataset(fp, elements, preamble, file_meta, implicit, little)
        ds.set_original_encoding(implicit, little, ds._character_set)
        return ds
    except Exception:  # noqa: BLE001 - read again by dcmread, which fails (or not) as it does
        return None


def _read_meta(data: bytes, fp: BytesIO) -> FileMetaDataset | None:
    """pydicom's _read_file_meta_info(fp) (fp just past the preamble and prefix), its elements listed by the walk
    of structure.meta_end (structure.meta_elements): the meta made of them and looked at as pydicom does (its
    first element and the group length converted); fp is left where pydicom leaves it. None where the meta is not
    the plain case (none, a VR other than the standard ones, the first element not explicit VR, fewer than 8
    bytes after it): pydicom reads it then. pydicom logs a group length that does not match; this does not."""
    found = structure.meta_elements(data)
    if not found or not (0x40 < data[136] < 0x5B and 0x40 < data[137] < 0x5B):
        return None
    end = found[-1][4]
    if len(data) - end < 8:
        return None
    elements = {}
    vrs = _DECODED_VRS
    for tag, vr, length, begin, stop in found:
        vr = vrs[vr]
        key = BaseTag(tag)
        elements[key] = RawDataElement(key, vr, length, data[begin:stop] if length else empty_value_for_VR(vr, raw=True),
                                       begin, False, True)
    file_meta = FileMetaDataset(elements)  # of read_dataset's Dataset, only its dict is kept
    file_meta.set_original_encoding(is_implicit_vr=False, is_little_endian=True, character_encoding=default_encoding)
    file_meta[list(file_meta.elements())[0].tag]  # NotImplementedError: pydicom reads it again as implicit VR
    if "FileMetaInformationGroupLength" in file_meta:
        file_meta.FileMetaInformationGroupLength  # noqa: B018 - converted, as pydicom's check of it converts it
    fp.seek(end)
    return file_meta


# pydicom's reader reads an explicit VR it knows (filereader's ENCODED_VR: every VR's name) and takes a 32-bit
# length for EXPLICIT_VR_LENGTH_32; the plain read needs the structure walk to agree on both, else it is off.
_ENCODED_VRS = frozenset(vr.encode(default_encoding) for vr in VR_ if len(vr) == 2)
_DECODED_VRS = {vr: vr.decode(default_encoding) for vr in _ENCODED_VRS}
FAST_READ = (ENCODED_VR is not None) and \
    (structure.LONG_VRS == frozenset(vr.encode(default_encoding) for vr in EXPLICIT_VR_LENGTH_32)) and \
    (_ENCODED_VRS == frozenset(vr for vr in ENCODED_VR if len(vr) == 2))


SHARED_PIXELS_MIN = 1 << 20
# Values of SHARED_PIXELS_MIN bytes and more are not read with the rest (False: read whole, as pydicom does by
# default; the tests compare the two).
DEFER_LARGE_VALUES = True


class BufferReader:
    """The file interface pydicom reads from, over a buffer that is not bytes (a memory map): BytesIO would
    copy it whole. A read returns bytes (a copy of what is read: never the deferred values)."""

    def __init__(self, data) -> None:
        self.data = data
        self.size = len(data)
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        start = self.pos
        end = self.size if n is None or n < 0 else min(self.size, start + n)
        self.pos = max(start, end)
        return bytes(self.data[start:end])

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos


def _read_deferred_but_pixel_data(ds: Dataset) -> None:
    """Only the instance's Pixel Data stays unread: every step judges the other values as read (a value left
    unread looks empty to a check of the raw element), so any other large one is read now, raw, as a read
    without deferral would have read it."""
    for tag, raw in list(ds._dict.items()):
        if tag != PIXEL_DATA and type(raw) is RawDataElement and raw.value is None and raw.length != 0:
            ds._dict[tag] = read_deferred_data_element(ds.fileobj_type, ds.buffer, None, raw)


def _share_pixel_data(ds: Dataset, source) -> None:
    """Pixel Data still as read becomes a view of the buffer it was read from: the output of a large instance
    is then written from the input's pixels, never from a copy. A value left unread (deferred) becomes the view
    of where pydicom would read it; a value read (below the deferral size, or read by a step) only when the view
    holds exactly the value (compared), and pydicom's copy goes. The element stays raw, written as read."""
    raw = ds._dict.get(PIXEL_DATA)
    if type(raw) is not RawDataElement:
        return
    start = raw.value_tell
    if raw.value is None:
        if raw.length == UNDEFINED:  # where pydicom's read ends: its own search for the delimiter
            reader = BufferReader(source)
            reader.seek(start)
            try:
                read_undefined_length_value(reader, raw.is_little_endian, SequenceDelimiterTag,
                                            defer_size=SHARED_PIXELS_MIN - 1)
            except EOFError:
                return
            end = reader.tell() - 8
        else:
            end = start + raw.length
        if 0 <= start <= end <= len(source):
            ds._dict[PIXEL_DATA] = raw._replace(value=memoryview(source)[start:end])
        return  # else pydicom reads it when it is written
    if type(raw.value) is not bytes or len(raw.value) < SHARED_PIXELS_MIN:
        return
    view = memoryview(source)[start:start + len(raw.value)]
    if view == raw.value:
        ds._dict[PIXEL_DATA] = raw._replace(value=view)


def _unshare_pixel_data(ds: Dataset) -> None:
    """Back to bytes, for pydicom's writer (it looks at the value as bytes)."""
    raw = ds._dict.get(PIXEL_DATA)
    if type(raw) is RawDataElement and type(raw.value) is memoryview:
        ds._dict[PIXEL_DATA] = raw._replace(value=bytes(raw.value))
    elif type(raw) is RawDataElement and type(raw.value) is encoder.Pieces:
        ds._dict[PIXEL_DATA] = raw._replace(value=raw.value.tobytes())


# Rows, Columns, Samples per Pixel, Bits Allocated, Number of Frames, Photometric Interpretation
_PIXEL_DESCRIPTION = (0x00280010, 0x00280011, 0x00280002, 0x00280100, 0x00280008, 0x00280004)


def _pixel_description(ds: Dataset) -> tuple[int, int, int, int, int, str]:
    """The description native pixels are checked against: read from the bytes where every part is plain or
    absent (py_deid.elements.plain_value: the elements stay as read), else as pydicom converts them."""
    elements = ds._dict
    rows, columns, samples, bits, frames, photometric = (plain_value(ds, t) for t in _PIXEL_DESCRIPTION)
    if (rows is not None) and (columns is not None) and (bits is not None) and \
            ((samples is not None) or (0x00280002 not in elements)) and \
            ((frames is not None) or (0x00280008 not in elements)) and \
            ((photometric is not None) or (0x00280004 not in elements)):
        return (rows, columns, samples or 1, bits, (int(frames) if frames is not None else 0) or 1, photometric or "")
    return (int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel", 1) or 1), int(ds.BitsAllocated),
            int(ds.get("NumberOfFrames", 1) or 1), str(ds.get("PhotometricInterpretation", "")).strip())


def _check_native_pixels(ds: Dataset, ts: str) -> None:
    if PIXEL_DATA not in ds._dict or not _is_native(ts):  # by int: "PixelData" in ds parses the keyword
        return
    try:
        expected = structure.expected_native_length(*_pixel_description(ds))
        raw = ds._dict.get(PIXEL_DATA)
        if type(raw) is RawDataElement and raw.value is None and raw.length != UNDEFINED:
            actual = raw.length  # deferred: the length read (structure.check found the value whole)
        else:
            actual = len(ds.get_item("PixelData").value or b"")
    except Exception:
        raise structure.StructureError("image pixel description missing or invalid") from None
    if actual < expected:
        raise structure.StructureError("pixel data shorter than the image it describes")




def _image_parts_warning(ds: Dataset) -> str | None:
    """An image whose pixel description is there but whose pixels are not may have been cut short right
    before its Pixel Data: never a silent 'done'."""
    elements = ds._dict
    has_description = 0x00280010 in elements and 0x00280011 in elements  # Rows, Columns
    has_pixels = any(t in elements for t in (0x7FE00010, 0x7FE00008, 0x7FE00009))
    if has_description and not has_pixels:
        return ("no-pixel-data: the image's pixel description is present but its Pixel Data is missing "
                "(the file may have been cut short)")
    return None


def _is_native(ts: str) -> bool:
    return ts in (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED)


def _is_dicomdir(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    classes = {short_text(ds, "SOPClassUID"), short_text(meta, "MediaStorageSOPClassUID") if meta is not None else ""}
    return DICOMDIR_CLASS in classes or DIRECTORY_RECORD_SEQUENCE in ds._dict


def _looks_like_raw_dataset(data: bytes) -> bool:
    # A dataset without file meta starts with a group 0008 element (little or big endian).
    return data[:2] in (b"\x08\x00", b"\x00\x08") and len(data) > 8


def transfer_syntax_of(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") if meta is not None else "").strip("\0 ")
    if ts:
        return ts
    implicit, little = ds.original_encoding
    if implicit:
        return IMPLICIT_LE
    return EXPLICIT_LE if little else EXPLICIT_BE


@lru_cache(maxsize=64)
def _tag_for_keyword(keyword: str) -> int:
    return BaseTag(tag_for_keyword(keyword))


def short_text(ds: Dataset, keyword: str) -> str:
    """A short ASCII value (UI, CS) read straight from the element: a lookup by keyword would convert it."""
    try:
        tag = _tag_for_keyword(keyword)
        elem = ds._dict.get(tag)  # as get_item, without making a Tag of the key first
        if type(elem) is RawDataElement and elem.value is None:
            elem = ds.get_item(tag)  # a deferred read
        if elem is None:
            return ""
        value = elem.value
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("ascii", "replace").strip("\0 ")
        return str(value or "").strip("\0 ")
    except Exception:
        return ""


class Deidentifier:
    """The de-identification of one site's batch: settings and key fixed, any number of instances."""

    def __init__(self, settings: Settings, key: bytes, *, codecs: CodecService | None = None,
                 record: bool = False, ocr_batch: bool = False, ocr_start: bool = False) -> None:
        self.settings = settings
        if settings.pixels != "off":
            # The pixel step is imported here, not with this module: a header-only run never loads it, and a
            # pixel run loads it once, before the batch forks its workers or the browser takes its snapshot.
            from .pixels import step  # noqa: F401
        self.pseudonyms = Pseudonyms(key)
        self.header = HeaderCleaner(settings, self.pseudonyms)
        self.codecs = codecs
        self.record = record
        # Yield OcrBatch for readings that do not depend on each other (a host with several OCR engines reads
        # them at once); the outputs are the same byte for byte.
        self.ocr_batch = ocr_batch
        # With batches, also yield OcrStart (hosts.services) for a host that reads while the core works (the
        # browser's OCR engines are workers of their own); a driver answers it with None.
        self.ocr_start = ocr_start

    def process(self, data: bytes, *, pixel_plan: dict | None = None, parts: bool = False,
                release=None) -> Steps:
        """De-identify one instance's bytes (or any buffer: see the module doc); a generator. `pixel_plan`:
        the reviewer's boxes per frame, masked instead of what OCR finds (py_deid.review). `parts`: the output
        as InstanceResult.parts instead of InstanceResult.output. `release`: called when the pixel step is done
        with a frame read from `data` (a memory-mapping host lets go of the pages read)."""
        with warnings.catch_warnings():
            # pydicom's warnings quote values from the file: they must not reach a log.
            warnings.simplefilter("ignore")
            try:
                return (yield from self._process(data, pixel_plan, parts, release))
            except InstanceProblem as p:
                return InstanceResult(status=p.status, problem=Problem(p.code, p.message))
            except HeaderError as e:
                return InstanceResult(status=FAILED, problem=Problem("header", str(e)))
            except ServiceUnavailable as e:
                return InstanceResult(status=FAILED, problem=Problem(getattr(e, "code", "") or "service-unavailable",
                                                                     str(e)))
            except PixelError as e:
                return InstanceResult(status=FAILED, problem=Problem(e.code, e.message))
            except Exception as e:  # noqa: BLE001 - a per-file failure must never stop the batch
                return InstanceResult(status=FAILED, problem=Problem("internal", f"internal error ({type(e).__name__})"))

    def _overlays_fail_closed(self, ds: Dataset, outcome) -> int:
        """Under clean_graphics an overlay is kept only if the pixel step read and cleaned it."""
        if not self.settings.options.clean_graphics:
            return 0  # the profile removes overlays (60xx,3000 X) in the header step
        handled = set(getattr(outcome, "overlays_cleaned", ()) or ())
        removed = 0
        for group in _overlay_groups(ds) - handled:
            for tag in [t for t in ds.keys() if t >> 16 == group]:
                del ds[tag]
                removed += 1
        return removed

    def _process(self, data: bytes, pixel_plan: dict | None = None, in_parts: bool = False,
                 release=None) -> Steps:
        ds, source = _read(data)
        # Pixel Data as a view of the input from here on: the pixel step reads one frame at a time from it and
        # hands back unchanged frames as views of it (py_deid.pixels.backends), never a copy of the whole value.
        _share_pixel_data(ds, source)
        sop_class = short_text(ds, "SOPClassUID")
        if not sop_class:
            raise InstanceProblem("no-sop-class", "no SOP Class UID: not a composite instance")
        if not short_text(ds, "SOPInstanceUID"):
            raise InstanceProblem("no-sop-instance", "no SOP Instance UID")
        for kw in ("StudyInstanceUID", "SeriesInstanceUID"):
            if not short_text(ds, kw):
                raise InstanceProblem("no-uid", f"no {kw}")
        ts = transfer_syntax_of(ds)
        modality = short_text(ds, "Modality")
        source_implicit, source_little = ds.original_encoding
        image_warning = _image_parts_warning(ds)
        terms = PhiTerms.from_dataset(ds)

        pixel_summary = None
        pixels_cleaned = False
        if PIXEL_DATA in ds._dict or any(0x6000 <= (t >> 16) <= 0x60FF for t in ds._dict):
            if pixels_off.applies(self.settings, pixel_plan):
                outcome = pixels_off.unchecked(ds, ts)  # what the step does then, without importing it
            else:
                from .pixels.step import clean as clean_pixels

                outcome = yield from clean_pixels(ds, self.settings, terms, transfer_syntax=ts, codecs=self.codecs,
                                                  plan=pixel_plan, hand_off=HandOff(release), batch=self.ocr_batch,
                                                  start=self.ocr_start)
            pixels_cleaned = outcome.cleaned
            ts = outcome.transfer_syntax or ts
            pixel_summary = outcome.summary()
            local_words = outcome.local_words()
        else:
            local_words = None
            outcome = None

        overlays_removed = self._overlays_fail_closed(ds, outcome)
        header = self.header.clean(ds, terms, record=self.record)
        if image_warning:
            header.warnings.append(image_warning)
        if overlays_removed:
            header.actions["X"] += overlays_removed
            header.warnings.append("overlay removed: it could not be checked for burned-in text")
        markers.mark(ds, self.settings, pixels_cleaned=pixels_cleaned)
        try:
            conformed = conform(ds, little=source_little is not False, implicit=bool(source_implicit),
                                new_uid=self.pseudonyms.uid)
        except MalformedValue as e:
            raise InstanceProblem(e.code, e.message) from None
        if conformed:
            header.actions["X"] += conformed["removed"]
            header.actions["Z"] += conformed["emptied"]
            header.actions["D"] += conformed["dummy"]
            header.warnings.append("values not valid for their VR were repaired, emptied or removed")
        for kw in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            if not structure.valid_uid(short_text(ds, kw)):
                raise InstanceProblem("no-uid", f"{kw} is not a valid UID after its value was checked")
        ds.file_meta = markers.file_meta(ds, ts)
        ds.preamble = b"\0" * 128
        del source, data
        parts = _one_part_if_small(_encode(ds))
        found = residual.needles(terms)
        if found and _residual_present(parts, found, ts == EXPLICIT_BE):
            swept = residual.sweep(ds, terms)
            if swept:
                header.actions["C"] += swept
                header.warnings.append("a patient term found in a kept attribute was removed")
                parts = _one_part_if_small(_encode(ds))
        result = InstanceResult(
            status=DONE, output=None if in_parts else encoder.joined(parts), parts=parts if in_parts else None,
            sop_class_uid=sop_class, modality=modality,
            study_uid=short_text(ds, "StudyInstanceUID"), series_uid=short_text(ds, "SeriesInstanceUID"),
            sop_uid=short_text(ds, "SOPInstanceUID"), transfer_syntax=ts, actions=dict(header.actions),
            warnings=list(header.warnings), pixels=pixel_summary)
        result.local["original_uids"] = header.original_uids
        result.local["phi_terms"] = terms
        if header.changes is not None:
            result.local["changes"] = header.changes
        if local_words is not None:
            result.local["ocr_words"] = local_words
        return result


def _overlay_groups(ds: Dataset) -> set[int]:
    return {t >> 16 for t in ds.keys() if 0x6000 <= (t >> 16) <= 0x60FF and not (t >> 16) & 1}


def _match_encoding(ds: Dataset, ts: str) -> None:
    """Raw elements are written back as read; when the file's data was not in the encoding its meta names
    (or the transfer syntax changes), convert them so that pydicom writes them in the new one."""
    implicit, little = ts == IMPLICIT_LE, ts != EXPLICIT_BE
    for raw in ds._dict.values():
        if (type(raw) is RawDataElement) and (raw.is_implicit_VR != implicit or raw.is_little_endian != little):
            for _ in ds.iterall():
                pass
            return


class _PastHead(Exception):
    pass


class _WrittenHead:
    """The output up to the Pixel Data value, standing for the whole output in residual.header_end (which
    looks only at the bytes around a match, and at the output's length): a search that would need the bytes
    after the head raises _PastHead."""

    def __init__(self, head: bytes, total: int) -> None:
        self.head = head
        self.total = total

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, key):
        return self.head[key]

    def find(self, sub: bytes, start: int = 0) -> int:
        pos = self.head.find(sub, start)
        if pos == -1 or pos + 8 > len(self.head):
            raise _PastHead
        return pos


_BYTES_ONLY = frozenset({bytes})


def _one_part_if_small(parts: list) -> list:
    """An output of bytes only (no view of the input, no made frame) and at most SHARED_PIXELS_MIN long as one
    part: joined once here, the residual check, the output and a host writing the parts all take that one
    (bytes.join of a single bytes object is that object), where each would otherwise go over some hundred
    small parts. A larger one stays in parts, never held whole by this step."""
    if {*map(type, parts)} <= _BYTES_ONLY and sum(map(len, parts)) <= SHARED_PIXELS_MIN:  # every part exactly bytes
        return [b"".join(parts)]
    return parts


def _residual_present(parts: list, found: list[bytes], big_endian: bool) -> bool:
    """residual.present over the written header (residual.header_end), from the parts: only the parts before
    a view (Pixel Data as read, or its frames) or a made piece are joined; without one, or when the header's
    end is not found before it, the whole output is."""
    views = [i for i, part in enumerate(parts) if type(part) is memoryview or type(part) is encoder.Made]
    if views:
        head = b"".join(parts[:views[0]])
        try:
            end = residual.header_end(_WrittenHead(head, sum(map(len, parts))), big_endian)
            return residual.present(head, found, end)
        except _PastHead:
            pass
    output = encoder.joined(parts)
    return residual.present(output, found, residual.header_end(output, big_endian))


def _encode(ds: Dataset) -> list:
    """Part 10 bytes in parts (joined, they are the file): zero preamble, the new file meta, the dataset in its
    transfer syntax. Pixel Data shared with the input (_share_pixel_data) is one part, a view.

    The dataset is written by py_deid.encoder (raw elements copied, the rest by pydicom's element writer),
    or by pydicom's write_dataset where pydicom converts the dataset first. Both write the same bytes
    (tests/header/test_encoder.py); dcmwrite is not used: it deep-copies the file meta of every file."""
    ts = markers.transfer_syntax(ds.file_meta)  # read without converting it
    _match_encoding(ds, ts)
    implicit, little = ts == IMPLICIT_LE, ts != EXPLICIT_BE
    try:
        head = b"\0" * 128 + b"DICM" + markers.encode_file_meta(ds.file_meta)
        parts = encoder.dataset_parts(ds, implicit=implicit, little=little) if FAST_ENCODER else None
        if parts is None:
            _unshare_pixel_data(ds)
            body = DicomBytesIO()
            body.is_implicit_VR, body.is_little_endian = implicit, little
            write_dataset(body, ds)
            parts = [body.getvalue()]
        if ts == DEFLATED:
            packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
            parts = [packer.compress(part) for part in encoder.buffers(parts)]
            parts.append(packer.flush())
            if sum(map(len, parts)) % 2:
                parts.append(b"\0")
        parts.insert(0, head)
        return parts
    except Exception:
        raise InstanceProblem("write", "the de-identified instance could not be encoded") from None


# The raw-element encoder (py_deid.encoder); False writes every dataset with pydicom's write_dataset (tests
# compare the two).
FAST_ENCODER = True


def run_sync(steps: Steps, ocr: OcrService | None, pool=None) -> InstanceResult:
    """Drive the pipeline, answering OCR requests from a synchronous OCR service. `pool`: the host's executor
    (its `map`), whose threads read the requests of an OcrBatch at the same time (the service keeps an engine
    per thread); without it they are read one after the other. The core starts no thread itself."""
    try:
        request = next(steps)
        while True:
            if isinstance(request, OcrStart):  # read with the batch that follows
                request = steps.send(None)
            elif ocr is None:
                request = steps.throw(ServiceUnavailable("OCR is needed to clean these pixels and none is installed"))
            elif isinstance(request, OcrBatch):
                reads = pool.map(ocr.find_text, request.requests) if pool else map(ocr.find_text, request.requests)
                request = steps.send(list(reads))
            else:
                request = steps.send(ocr.find_text(request))
    except StopIteration as stop:
        return stop.value


def deidentify_bytes(data: bytes, settings: Settings, key: bytes, *, ocr: OcrService | None = None,
                     codecs: CodecService | None = None) -> InstanceResult:
    """Convenience for one instance on a synchronous host."""
    return run_sync(Deidentifier(settings, key, codecs=codecs).process(data), ocr)
