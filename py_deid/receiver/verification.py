"""The front door's check of one received part, using the same core as the uploader (py_deid.verify).

Only a complete PS3.10 file whose structure is whole, whose UIDs are valid, which holds its pixels if it
is an image (pixels_missing) and which the residual-PHI check finds clean is accepted. A refusal names the class of problem and the tags involved, never a value.
Most de-identified parts are accepted by py_deid.verify_fast, which reads their bytes without pydicom and
proves what this check would find; whatever it cannot prove meets this check as before.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import warnings

import pydicom
from dataclasses import dataclass

from ..inflate import DEFAULT_LIMITS, DEFLATED, InflateLimits, inflate_part10
from ..structure import meta_end, valid_uid
from ..instance import DICOMDIR_CLASS, InstanceProblem, read_dataset, short_text, transfer_syntax_of
from ..iod import is_image_class
from ..options import Options
from .. import verify_fast
from ..verify import check_received
from . import reasons
from .reasons import Failure

_TAG = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)")
MAX_OFFENDING = 32
# The fast accept path first (py_deid.verify_fast); PY_DEID_RECEIVER_FAST=0 turns it off, to compare (the
# benchmark) or to rule it out. Off, every part meets the full check alone, as before.
FAST = os.environ.get("PY_DEID_RECEIVER_FAST", "1") != "0"


@dataclass(frozen=True)
class Identity:
    sop_class_uid: str
    sop_uid: str
    study_uid: str = ""
    series_uid: str = ""
    modality: str = ""
    transfer_syntax: str = ""

    @property
    def referable(self) -> bool:
        """Whether a FailedSOPSequence item can name it (SOP Instance Reference Macro: both UIDs, Type 1)."""
        return valid_uid(self.sop_class_uid) and valid_uid(self.sop_uid)


def inspect(data: bytes, options: Options, expected_study: str | None = None,
            inflate: InflateLimits = DEFAULT_LIMITS) -> tuple[Identity | None, Failure | None]:
    """(identity, None) when the part may be stored; (identity or None, failure) when it is refused.
    MemoryError is left to the caller (the worker's address-space limit was reached)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None, Failure.of(reasons.CANNOT_UNDERSTAND, "part is not a DICOM PS3.10 file")
    if FAST:
        proven = verify_fast.accept(data, options, expected_study)
        if proven is not None:  # provably accepted by the full check below (py_deid.verify_fast)
            return Identity(*proven), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings quote values from the file
        try:
            ds = read_dataset(data, inflate)
        except InstanceProblem as p:
            if p.code == "dicomdir":
                return None, Failure.of(reasons.SOP_CLASS_NOT_SUPPORTED)
            if p.code == "inflate-limit":
                return None, Failure.of(reasons.INFLATE_LIMIT)
            return None, Failure.of(reasons.CANNOT_UNDERSTAND, p.message)  # core messages hold no values
        except MemoryError:
            raise
        except Exception:
            return None, Failure.of(reasons.CANNOT_UNDERSTAND)
        text = lambda keyword: short_text(ds, keyword)  # noqa: E731
        ident = Identity(text("SOPClassUID"), text("SOPInstanceUID"), text("StudyInstanceUID"),
                         text("SeriesInstanceUID"), text("Modality")[:16], transfer_syntax_of(ds))
        if (not ident.referable or not valid_uid(ident.study_uid) or not valid_uid(ident.series_uid)
                or not _raw_uids_valid(data, ds, inflate)):
            failure = Failure.of(reasons.CANNOT_UNDERSTAND, "SOP, study or series UID missing or invalid")
            return (ident if ident.referable else None), failure
        if ident.sop_class_uid == DICOMDIR_CLASS:
            return ident, Failure.of(reasons.SOP_CLASS_NOT_SUPPORTED)
        if not valid_uid(ident.transfer_syntax):
            return ident, Failure.of(reasons.CANNOT_UNDERSTAND, "transfer syntax missing or invalid")
        if expected_study is not None and ident.study_uid != expected_study:
            return ident, Failure.of(reasons.STUDY_MISMATCH, offending=("0020000D",))
        if pixels_missing(ds, ident.sop_class_uid):
            return ident, Failure.of(reasons.CANNOT_UNDERSTAND, "image without its pixel data (cut short?)",
                                     offending=("7FE00010",))
        try:
            findings = check_received(ds, options, data=data)  # the bytes: the preamble is checked too
        except MemoryError:
            raise
        except Exception:
            return ident, Failure.of(reasons.PROCESSING_FAILURE, "the de-identification check failed")
    if not findings:
        return ident, None
    return ident, _failure(findings)


_UID_TAGS = (0x00080016, 0x00080018, 0x0020000D, 0x0020000E)
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float Pixel Data, Double Float Pixel Data
_ROWS_COLUMNS = (0x00280010, 0x00280011)


def pixels_missing(ds, sop_class_uid: str) -> bool:
    """An image without its pixels: a part cut short where an element starts, anywhere between the UIDs
    and the Pixel Data, reads as a whole data set (nothing in the bytes says more was to come), so only
    the IOD can tell. Refused as incomplete: every image IOD requires its pixels (Image Pixel module), and
    a pixel description without pixels is the same cut whatever the SOP class (a private one too)."""
    if any(tag in ds for tag in PIXEL_TAGS):
        return False
    return is_image_class(sop_class_uid) or any(tag in ds for tag in _ROWS_COLUMNS)


def _raw_uids_valid(data: bytes, ds, inflate: InflateLimits) -> bool:
    """The UIDs as written, before pydicom's conversion (which drops trailing whitespace, so a UID
    ending in a newline would pass): digits and dots, at most one trailing NUL of padding."""
    values = [_raw_value(data, ds, tag) for tag in _UID_TAGS] if transfer_syntax_of(ds) != DEFLATED else [None]
    if any(v is None for v in values):  # not located in these bytes (deflated): read the UIDs again
        if transfer_syntax_of(ds) == DEFLATED:
            data = inflate_part10(data, meta_end(data), inflate)  # within the caps read_dataset just passed
        raw = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=list(_UID_TAGS))
        values = [_raw_value(data, raw, tag) for tag in _UID_TAGS]
    for value in values:
        if value is None:
            return False
        if not valid_uid((value[:-1] if value.endswith(b"\0") else value).decode("ascii", "replace")):
            return False
    return True


def _raw_value(data: bytes, ds, tag: int) -> bytes | None:
    """An element's value bytes: as read when pydicom has not converted it yet, else from `data` at the
    offset pydicom recorded, after checking that the element's header there is this tag's."""
    elem = ds.get_item(tag)
    if elem is None:
        return None
    if isinstance(elem.value, (bytes, bytearray)):
        return bytes(elem.value)
    tell = getattr(elem, "file_tell", None)
    if not isinstance(tell, int) or tell < 8 or tell > len(data):
        return None
    group, element = tag >> 16, tag & 0xFFFF
    le = struct.pack("<HH", group, element)
    if data[tell - 8:tell - 4] == le and data[tell - 4:tell - 2] == b"UI":  # explicit VR little endian
        (length,) = struct.unpack_from("<H", data, tell - 2)
    elif data[tell - 8:tell - 4] == le:  # implicit VR little endian
        (length,) = struct.unpack_from("<I", data, tell - 4)
    elif data[tell - 8:tell - 4] == struct.pack(">HH", group, element) and data[tell - 4:tell - 2] == b"UI":
        (length,) = struct.unpack_from(">H", data, tell - 2)
    else:
        return None
    return data[tell:tell + length] if tell + length <= len(data) else None


def inspect_range(path: str, start: int, end: int, options: Options, expected_study: str | None,
                  inflate: InflateLimits = DEFAULT_LIMITS) -> tuple[Identity | None, Failure | None, str]:
    """inspect() of one part of a spooled body, read here (in a worker process); also its sha256."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    if len(data) != end - start:
        return None, Failure.of(reasons.PROCESSING_FAILURE, "spooled body shorter than expected"), ""
    return inspect_bytes(data, options, expected_study, inflate)


def inspect_bytes(data: bytes, options: Options, expected_study: str | None,
                  inflate: InflateLimits = DEFAULT_LIMITS) -> tuple[Identity | None, Failure | None, str]:
    """inspect() of one part held in memory; also its sha256."""
    try:
        ident, failure = inspect(data, options, expected_study, inflate)
    except MemoryError:
        del data
        return None, Failure.of(reasons.MEMORY_LIMIT), ""
    return ident, failure, hashlib.sha256(data).hexdigest()


def _failure(findings) -> Failure:
    order = list(reasons.FINDINGS)
    first = min(findings, key=lambda f: order.index(f.code) if f.code in order else len(order))
    reason = reasons.FINDINGS.get(first.code, reasons.OTHER_FINDING)
    comment = reasons.finding_comment(first.code)
    tags: list[str] = []
    for f in findings:
        m = _TAG.search(f.where or "")
        tag = (m.group(1) + m.group(2)).upper() if m else ""
        if tag and tag not in tags and len(tags) < MAX_OFFENDING:
            tags.append(tag)
    return Failure.of(reason, comment, offending=tuple(tags))
