"""What a de-identified instance says about itself: PS3.15 E.1.1 markers, trial identifiers, file meta."""

from __future__ import annotations

from functools import lru_cache

from pydicom import config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

from . import __version__
from ._standard import cid7050, table_e1_1
from .elements import made_element, plain_value
from .options import BASIC_PROFILE_CODE, OPTION_CODES, PIXEL_OPTIONS, Settings

CODE_MEANING = {value: meaning for value, _scheme, meaning in cid7050.CODES}
# A fixed UID of this implementation (2.25 form, derived once from the name "py_deid").
IMPLEMENTATION_CLASS_UID = "2.25.71168346427746817002000737528715788693"
IMPLEMENTATION_VERSION = ("PY_DEID_" + __version__.replace(".", "_"))[:16]
TOOL = f"py_deid {__version__}"


def method_codes(settings: Settings, *, pixels_cleaned: bool) -> list[str]:
    return list(_method_codes(settings.options, pixels_cleaned))


@lru_cache(maxsize=64)
def _method_codes(options, pixels_cleaned: bool) -> tuple[str, ...]:
    # Options are frozen: the codes of one set are worked out once (Options.names walks the dataclass's fields).
    codes = [BASIC_PROFILE_CODE]
    for name in options.names:
        if name in PIXEL_OPTIONS:
            continue
        codes.append(OPTION_CODES[name])
    if pixels_cleaned:
        codes.append(OPTION_CODES["clean_pixel_data"])
    return tuple(sorted(set(codes)))


def method_text(settings: Settings) -> str:
    """De-identification Method (LO: one value of at most 64 characters): the tool and the profile's edition.
    The options applied are in De-identification Method Code Sequence, as CID 7050 codes."""
    return f"{TOOL}; PS3.15 E.1-1 {table_e1_1.EDITION}+{table_e1_1.LATER_EDITIONS}"[:64]


def _put(ds: Dataset, tag: int, vr: str, value) -> None:
    # Our own valid values: set without pydicom's keyword lookup and value validation, which cost more per
    # file than the rest of marking (made_element: the same DataElement without the value setter); and
    # straight into the dataset's dict (keyed by BaseTag, as pydicom keys it): Dataset.__setitem__'s checks
    # are for private elements, pixel data and raw sequences, none of which this module sets (a new element
    # goes last, a replaced one keeps its place, as there).
    ds._dict[BaseTag(tag)] = made_element(tag, vr, value)


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
    """New File Meta Information (E.1.1: the original's AE titles and private data must not survive).

    Its elements are raw, as pydicom reads group 0002 of a file (explicit VR little endian; converted only if
    looked at): the bytes encode_file_meta writes, made once. Six DataElements, their UIDs (UID() validates,
    which only warns unless pydicom is set to raise) and reading them back by keyword cost more per file than
    the rest of the markers."""
    meta = FileMetaDataset()
    sop_class = plain_value(ds, 0x00080016)  # read without converting it where it is plain
    instance = ds._dict.get(BaseTag(0x00080018))  # set by the header step: its value as ds.SOPInstanceUID gives it
    uids = (str(ds.SOPClassUID) if sop_class is None else sop_class,
            str(instance.value if type(instance) is DataElement else ds.SOPInstanceUID), transfer_syntax)
    if config.settings.reading_validation_mode == config.RAISE or \
            not all(uid.isascii() and "\\" not in uid for uid in uids):
        # pydicom's elements as before: UID() validates (raising here), and a value that is not one UID
        # (conform's check let none through) is written (or fails) in encode_file_meta as before
        _put(meta, 0x00020001, "OB", b"\x00\x01")
        for tag, uid in zip((0x00020002, 0x00020003, 0x00020010), uids):
            _put(meta, tag, "UI", UID(uid))
        _put(meta, 0x00020012, "UI", UID(IMPLEMENTATION_CLASS_UID))
        _put(meta, 0x00020013, "SH", IMPLEMENTATION_VERSION)
        return meta
    elements = meta._dict
    for tag, vr, data in ((0x00020001, "OB", b"\x00\x01"),  # File Meta Information Version
                          (0x00020002, "UI", _uid_bytes(uids[0].strip())),  # Media Storage SOP Class UID
                          (0x00020003, "UI", _uid_bytes(uids[1].strip())),  # Media Storage SOP Instance UID
                          (0x00020010, "UI", _uid_bytes(uids[2].strip())),  # Transfer Syntax UID
                          (0x00020012, "UI", _IMPLEMENTATION_CLASS),  # Implementation Class UID
                          (0x00020013, "SH", _IMPLEMENTATION_VERSION)):  # Implementation Version Name
        elements[BaseTag(tag)] = RawDataElement(BaseTag(tag), vr, len(data), data, 0, False, True)
    return meta


def encode_file_meta(meta: FileMetaDataset) -> bytes:
    """Group 0002 in explicit VR little endian, with its group length (PS3.10 7.1). Written by hand: it is
    six short elements, and pydicom's general writer costs more than the rest of a small file. A raw element
    (file_meta's) is written as it is; a converted one from its value."""
    elements = meta._dict
    parts = []
    for tag, vr, encode in _META:
        elem = elements[BaseTag(tag)]
        if type(elem) is RawDataElement and elem.VR == vr.decode() and not elem.is_implicit_VR and \
                elem.is_little_endian and type(elem.value) is bytes:
            parts.append(_element(tag, vr, elem.value))  # file_meta's: these bytes
        else:
            parts.append(_element(tag, vr, encode(meta[tag].value)))
    body = b"".join(parts)
    return _element(0x00020000, b"UL", len(body).to_bytes(4, "little")) + body


def transfer_syntax(meta: FileMetaDataset) -> str:
    """The Transfer Syntax UID of a file meta, as pydicom converts it, without converting a raw element."""
    elem = meta._dict.get(BaseTag(0x00020010))
    if type(elem) is RawDataElement and type(elem.value) is bytes and elem.value.isascii():
        return str(UID(elem.value.decode("ascii").rstrip("\0 ")))
    return str(meta.TransferSyntaxUID)


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


# Group 0002 as written: (tag, VR, the bytes of a converted element's value).
_META = ((0x00020001, b"OB", bytes), (0x00020002, b"UI", _uid_bytes), (0x00020003, b"UI", _uid_bytes),
         (0x00020010, b"UI", _uid_bytes), (0x00020012, b"UI", _uid_bytes), (0x00020013, b"SH", _text_bytes))
_IMPLEMENTATION_CLASS = _uid_bytes(UID(IMPLEMENTATION_CLASS_UID))
_IMPLEMENTATION_VERSION = _text_bytes(IMPLEMENTATION_VERSION)
