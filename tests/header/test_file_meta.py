"""File meta information and preamble are replaced (PS3.15 E.1.1)."""

import pytest
from pydicom import config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import BaseTag

from py_deid import markers
from py_deid.markers import IMPLEMENTATION_CLASS_UID

from .helpers import deid, encode, read


def test_file_meta_replaced(ct):
    ct.file_meta.SourceApplicationEntityTitle = "HOSPITAL_PACS"
    ct.file_meta.PrivateInformationCreatorUID = "1.2.3.4"
    ct.file_meta.PrivateInformation = b"DOE JOHN"
    data = encode(ct)
    result = deid(data)
    out = read(result)
    meta = out.file_meta
    assert "SourceApplicationEntityTitle" not in meta
    assert "PrivateInformation" not in meta and "PrivateInformationCreatorUID" not in meta
    assert meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID != ct.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == out.SOPClassUID
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert result.output[:128] == b"\0" * 128
    assert b"HOSPITAL_PACS" not in result.output and b"DOE JOHN" not in result.output


TRANSFER_SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
                     "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.201"]


def _with_uids(sop_class: str, sop_instance: str, raw_class: bool) -> Dataset:
    ds = Dataset()
    if raw_class:  # as read (plain_value reads it), odd length padded with a null
        data = sop_class.encode() + (b"\0" if len(sop_class) % 2 else b"")
        ds._dict[BaseTag(0x00080016)] = RawDataElement(BaseTag(0x00080016), "UI", len(data), data, 0, False, True)
    else:
        ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance  # set by the header step
    return ds


def _as_pydicom(ds: Dataset, ts: str) -> FileMetaDataset:
    """The file meta as markers made it before: pydicom's elements."""
    meta = FileMetaDataset()
    for tag, vr, value in ((0x00020001, "OB", b"\x00\x01"), (0x00020002, "UI", str(ds.SOPClassUID)),
                           (0x00020003, "UI", str(ds.SOPInstanceUID)), (0x00020010, "UI", ts),
                           (0x00020012, "UI", markers.IMPLEMENTATION_CLASS_UID),
                           (0x00020013, "SH", markers.IMPLEMENTATION_VERSION)):
        meta._dict[BaseTag(tag)] = DataElement(tag, vr, value)
    return meta


@pytest.mark.parametrize("ts", TRANSFER_SYNTAXES)
@pytest.mark.parametrize("raw_class", [True, False])
@pytest.mark.parametrize("uids", [("1.2.840.10008.5.1.4.1.1.2", "2.25.1234567"),  # odd and even lengths
                                  ("1.2.840.10008.5.1.4.1.1.7", "2.25.12345678")])
def test_file_meta_of_raw_elements_is_pydicoms(ts, raw_class, uids):
    """markers.file_meta makes raw elements (their bytes once, no DataElement): the same bytes as the
    DataElements it made before, whether encode_file_meta writes them or pydicom's file meta writer does, and
    the same values when pydicom converts them."""
    ds = _with_uids(*uids, raw_class)
    meta, before = markers.file_meta(ds, ts), _as_pydicom(ds, ts)
    assert all(type(elem) is RawDataElement for elem in meta._dict.values())
    assert markers.encode_file_meta(meta) == markers.encode_file_meta(before)
    assert markers.transfer_syntax(meta) == str(before.TransferSyntaxUID) == ts
    written = []
    for m in (meta, before):
        fp = DicomBytesIO()
        write_file_meta_info(fp, m, enforce_standard=False)
        written.append(fp.getvalue())
    assert written[0] == written[1]
    for tag in before.keys():
        assert meta[tag].value == before[tag].value and meta[tag].VR == before[tag].VR


def test_file_meta_keeps_pydicoms_elements_where_values_are_validated_strictly():
    """With pydicom set to raise on invalid values, file_meta makes pydicom's elements (UID() validates), and
    encode_file_meta writes them: the same bytes."""
    ds = _with_uids("1.2.840.10008.5.1.4.1.1.2", "2.25.1234567", True)
    old = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        meta = markers.file_meta(ds, "1.2.840.10008.1.2.1")
    finally:
        config.settings.reading_validation_mode = old
    assert all(type(elem) is DataElement for elem in meta._dict.values())
    assert markers.encode_file_meta(meta) == markers.encode_file_meta(_as_pydicom(ds, "1.2.840.10008.1.2.1"))
