"""The terms of a sequence still as read come from its bytes (phi._scan_sequence) only where that gives what
pydicom's parsed items give, in the same order; any other sequence is parsed by pydicom as before."""

from io import BytesIO

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from py_deid import phi
from py_deid.phi import PhiTerms

_FIELDS = ("names", "patient_names", "full_names", "ids", "places", "phones", "dates", "birth_dates")


def _item(name: str, date: str, **more) -> Dataset:
    item = Dataset()
    item.PersonName = name
    item.StudyDate = date
    item.InstitutionName = "MERCY GENERAL"
    item.CodeValue = "T-04000"  # no term
    for keyword, value in more.items():
        setattr(item, keyword, value)
    return item


def _file(ds: Dataset, syntax=ExplicitVRLittleEndian) -> bytes:
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", "2.25.1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _nested() -> Dataset:
    inner = Sequence([_item("INNER^ONE", "19800102"), _item("INNER^TWO", "19800103", OtherPatientIDs="ID-445566")])
    outer = _item("OUTER^PERSON", "20010203")
    outer.ReferencedStudySequence = inner
    ds = Dataset()
    ds.PatientName = "DOE^JANE"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.RequestAttributesSequence = Sequence([outer, _item("SECOND^ITEM", "20020304")])
    ds.OtherPatientIDsSequence = Sequence([Dataset()])  # an empty item
    ds.PerformedProtocolCodeSequence = Sequence()  # no items
    ds.PatientInsurancePlanCodeSequence = Sequence([_item("GÜNTHER^MÜLLER", "19700101")])
    return ds


def _terms(data: bytes, scan: bool, monkeypatch) -> tuple[list, int]:
    used = []
    real = PhiTerms._collect_raw_sequence

    def counted(self, ds, raw):
        done = real(self, ds, raw) if scan else False
        used.append(done)
        return done

    monkeypatch.setattr(PhiTerms, "_collect_raw_sequence", counted)
    terms = PhiTerms.from_dataset(pydicom.dcmread(BytesIO(data), force=True))
    return [list(getattr(terms, f)) for f in _FIELDS], sum(used)


def _same(data: bytes, monkeypatch) -> int:
    """The terms with and without the scan (lists: the same order too); how many sequences it read."""
    scanned, used = _terms(data, True, monkeypatch)
    parsed, _ = _terms(data, False, monkeypatch)
    assert scanned == parsed
    return used


def test_plain_sequences_are_read_from_their_bytes(monkeypatch):
    used = _same(_file(_nested()), monkeypatch)
    assert used == 4  # the four top-level sequences; the nested one is read with its parent's bytes
    terms, _ = _terms(_file(_nested()), True, monkeypatch)
    names = set(terms[0])
    assert {"INNER", "ONE", "TWO", "OUTER", "PERSON", "SECOND", "GÜNTHER", "MÜLLER"} <= names
    assert "ID-445566" in terms[3] and "MERCY GENERAL" in terms[4]


def test_undefined_lengths_inside(monkeypatch):
    ds = _nested()
    ds.RequestAttributesSequence[0]["ReferencedStudySequence"].is_undefined_length = True
    for item in ds.RequestAttributesSequence[0].ReferencedStudySequence:
        item.is_undefined_length_sequence_item = True
    ds.RequestAttributesSequence[1].is_undefined_length_sequence_item = True
    assert _same(_file(ds), monkeypatch) == 4


@pytest.mark.parametrize("case", ["own character set", "implicit", "UN", "order", "truncated", "delimiter"])
def test_other_sequences_parsed_by_pydicom(case, monkeypatch):
    ds = _nested()
    syntax = ExplicitVRLittleEndian
    if case == "own character set":
        ds.RequestAttributesSequence[1].SpecificCharacterSet = "ISO_IR 192"
    elif case == "implicit":
        syntax = ImplicitVRLittleEndian
    data = _file(ds, syntax)
    if case in ("UN", "order", "truncated", "delimiter"):
        parsed = pydicom.dcmread(BytesIO(data), force=True)
        raw = parsed._dict[0x00400275]
        value = bytearray(raw.value)
        if case == "UN":  # a VR this reading leaves to pydicom (which may read a UN value as a sequence)
            at = value.find(b"PN")
            value[at:at + 2] = b"UN"
        elif case == "order":  # the item's first two elements swapped
            item = value.find(b"\xfe\xff\x00\xe0")
            value[item + 8:item + 10], value[item + 10:item + 12] = b"\x40\x00", b"\x08\x00"
        elif case == "truncated":
            value = value[:-3]
        else:  # an item delimiter inside a defined-length item
            item = value.find(b"\xfe\xff\x00\xe0")
            value[item + 8:item + 8] = b"\xfe\xff\x0d\xe0\0\0\0\0"
        parsed._dict[0x00400275] = RawDataElement(raw.tag, raw.VR, len(value), bytes(value), raw.value_tell,
                                                  raw.is_implicit_VR, raw.is_little_endian)
        found = []
        with pytest.raises(phi._NotPlain):
            if phi._scan_sequence(bytes(value), 0, len(value), False, found) != len(value):
                raise phi._NotPlain
        return
    used = _same(data, monkeypatch)
    # With an item's own character set, that sequence is parsed by pydicom; the one nested in its first item
    # is then read from its bytes, with the other three.
    assert used == (4 if case == "own character set" else 0)
