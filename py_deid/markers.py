"""What a de-identified instance says about itself: PS3.15 E.1.1 markers, trial identifiers, file meta."""

from __future__ import annotations

from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

from . import __version__
from ._standard import cid7050, table_e1_1
from .elements import plain_value
from .options import BASIC_PROFILE_CODE, OPTION_CODES, PIXEL_OPTIONS, Settings

CODE_MEANING = {value: meaning for value, _scheme, meaning in cid7050.CODES}
# A fixed UID of this implementation (2.25 form, derived once from the name "py_deid").
IMPLEMENTATION_CLASS_UID = "2.25.71168346427746817002000737528715788693"
IMPLEMENTATION_VERSION = ("PY_DEID_" + __version__.replace(".", "_"))[:16]
TOOL = f"py_deid {__version__}"


def method_codes(settings: Settings, *, pixels_cleaned: bool) -> list[str]:
    codes = [BASIC_PROFILE_CODE]
    for name in settings.options.names:
        if name in PIXEL_OPTIONS:
            continue
        codes.append(OPTION_CODES[name])
    if pixels_cleaned:
        codes.append(OPTION_CODES["clean_pixel_data"])
    return sorted(set(codes))


def method_text(settings: Settings) -> str:
    """De-identification Method (LO: one value of at most 64 characters): the tool and the profile's edition.
    The options applied are in De-identification Method Code Sequence, as CID 7050 codes."""
    return f"{TOOL}; PS3.15 E.1-1 {table_e1_1.EDITION}+{table_e1_1.LATER_EDITIONS}"[:64]


def _put(ds: Dataset, tag: int, vr: str, value) -> None:
    # Our own valid values: set without pydicom's keyword lookup and value validation, which cost more per
    # file than the rest of marking; and straight into the dataset's dict (keyed by BaseTag, as pydicom keys
    # it): Dataset.__setitem__'s checks are for private elements, pixel data and raw sequences, none of
    # which this module sets (a new element goes last, a replaced one keeps its place, as there).
    ds._dict[BaseTag(tag)] = DataElement(tag, vr, value, validation_mode=config.IGNORE)


def mark(ds: Dataset, settings: Settings, *, pixels_cleaned: bool) -> None:
    _put(ds, 0x00120062, "CS", "YES")  # Patient Identity Removed
    _put(ds, 0x00120063, "LO", method_text(settings))  # De-identification Method
    items = []
    for code in method_codes(settings, pixels_cleaned=pixels_cleaned):
        item = Dataset()
        _put(item, 0x00080100, "SH", code)  # Code Value
        _put(item, 0x00080102, "SH", "DCM")  # Coding Scheme Designator
        _put(item, 0x00080104, "LO", CODE_MEANING[code])  # Code Meaning
        items.append(item)
    _put(ds, 0x00120064, "SQ", Sequence(items))  # De-identification Method Code Sequence
    options = settings.options
    _put(ds, 0x00280303, "CS",  # Longitudinal Temporal Information Modified
         "UNMODIFIED" if options.retain_long_full_dates else
         "MODIFIED" if options.retain_long_modified_dates else "REMOVED")
    set_trial(ds, settings)


# The clinical-trial attributes set_trial writes from the trial's configuration (after the profile ran).
TRIAL_TAGS = frozenset({0x00120010, 0x00120020, 0x00120021, 0x00120030, 0x00120031, 0x00120040, 0x00120042,
                        0x00120050, 0x00120051, 0x00120060})


def set_trial(ds: Dataset, settings: Settings) -> None:
    """The 0012,xxxx attributes from configuration, only as whole modules so that the IOD stays valid."""
    t = settings.trial
    if t.sponsor_name and t.protocol_id and (t.subject_id or t.subject_reading_id):
        # Clinical Trial Subject module: Types 1, 1, 2, 2, 2, 1C.
        ds.ClinicalTrialSponsorName = t.sponsor_name
        ds.ClinicalTrialProtocolID = t.protocol_id
        ds.ClinicalTrialProtocolName = t.protocol_name or None
        ds.ClinicalTrialSiteID = t.site_id or None
        ds.ClinicalTrialSiteName = t.site_name or None
        if t.subject_id:
            ds.ClinicalTrialSubjectID = t.subject_id
        if t.subject_reading_id:
            ds.ClinicalTrialSubjectReadingID = t.subject_reading_id
    if t.time_point_id or t.time_point_description:
        ds.ClinicalTrialTimePointID = t.time_point_id or None
        if t.time_point_description:
            ds.ClinicalTrialTimePointDescription = t.time_point_description
    if t.coordinating_center_name:
        ds.ClinicalTrialCoordinatingCenterName = t.coordinating_center_name


def file_meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    """New File Meta Information (E.1.1: the original's AE titles and private data must not survive)."""
    meta = FileMetaDataset()
    _put(meta, 0x00020001, "OB", b"\x00\x01")  # File Meta Information Version
    sop_class = plain_value(ds, 0x00080016)  # read without converting it where it is plain
    # Media Storage SOP Class UID
    _put(meta, 0x00020002, "UI", UID(str(ds.SOPClassUID) if sop_class is None else sop_class))
    _put(meta, 0x00020003, "UI", UID(str(ds.SOPInstanceUID)))  # Media Storage SOP Instance UID
    _put(meta, 0x00020010, "UI", UID(transfer_syntax))  # Transfer Syntax UID
    _put(meta, 0x00020012, "UI", UID(IMPLEMENTATION_CLASS_UID))  # Implementation Class UID
    _put(meta, 0x00020013, "SH", IMPLEMENTATION_VERSION)  # Implementation Version Name
    return meta


def encode_file_meta(meta: FileMetaDataset) -> bytes:
    """Group 0002 in explicit VR little endian, with its group length (PS3.10 7.1). Written by hand: it is
    six short elements, and pydicom's general writer costs more than the rest of a small file."""
    body = b"".join(_element(tag, vr, value) for tag, vr, value in (
        (0x00020001, b"OB", bytes(meta.FileMetaInformationVersion)),
        (0x00020002, b"UI", _uid_bytes(meta.MediaStorageSOPClassUID)),
        (0x00020003, b"UI", _uid_bytes(meta.MediaStorageSOPInstanceUID)),
        (0x00020010, b"UI", _uid_bytes(meta.TransferSyntaxUID)),
        (0x00020012, b"UI", _uid_bytes(meta.ImplementationClassUID)),
        (0x00020013, b"SH", _text_bytes(meta.ImplementationVersionName)),
    ))
    return _element(0x00020000, b"UL", len(body).to_bytes(4, "little")) + body


def _uid_bytes(uid) -> bytes:
    data = str(uid).encode("ascii")
    return data + b"\0" if len(data) % 2 else data


def _text_bytes(text) -> bytes:
    data = str(text).encode("ascii")
    return data + b" " if len(data) % 2 else data


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    head = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little") + vr
    if vr == b"OB":
        return head + b"\0\0" + len(value).to_bytes(4, "little") + value
    return head + len(value).to_bytes(2, "little") + value
