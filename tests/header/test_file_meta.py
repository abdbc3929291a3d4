"""File meta information and preamble are replaced (PS3.15 E.1.1)."""

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
