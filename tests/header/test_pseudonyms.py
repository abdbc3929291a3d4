"""Keyed pseudonyms: same key + same input = same output, in every file, run and machine."""

import copy
import datetime as dt

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from py_deid import dates
from py_deid.options import Options, Trial
from py_deid.pseudonyms import Pseudonyms

from .helpers import KEY, deid, encode, read


def test_uid_is_a_keyed_2_25_uid_stable_across_machines():
    p = Pseudonyms(b"0123456789abcdef0123")
    # A fixed expectation: the mapping must never change between versions, or uploads stop lining up.
    assert p.uid("1.2.3.4") == "2.25.216073839227195980843358674669937386176"
    assert p.uid("1.2.3.4") == Pseudonyms(b"0123456789abcdef0123").uid("1.2.3.4 ")
    assert p.uid("1.2.3.4") != Pseudonyms(b"another-key-0123456789").uid("1.2.3.4")
    assert len(p.uid("9" * 64)) <= 64


def test_references_follow_across_instances(ct):
    first = copy.deepcopy(ct)
    second = copy.deepcopy(ct)
    second.SOPInstanceUID = ct.SOPInstanceUID + ".2"
    ref = Dataset()
    ref.ReferencedSOPClassUID = ct.SOPClassUID
    ref.ReferencedSOPInstanceUID = first.SOPInstanceUID
    second.ReferencedImageSequence = Sequence([ref])  # X/Z/U*: Type 3 in CT removes it...
    src = Dataset()
    src.ReferencedSOPClassUID = ct.SOPClassUID
    src.ReferencedSOPInstanceUID = first.SOPInstanceUID
    second.SourceImageSequence = Sequence([src])
    a, b = read(deid(encode(first))), read(deid(encode(second)))
    assert a.StudyInstanceUID == b.StudyInstanceUID != ct.StudyInstanceUID
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    # ...but with retain_uids off and the reference kept, it must point at the other file's new UID.
    kept = read(deid(encode(second), options=Options(clean_descriptors=True)))
    for seq in ("ReferencedImageSequence", "SourceImageSequence"):
        if seq in kept and kept[seq].value:
            assert kept[seq][0].ReferencedSOPInstanceUID == a.SOPInstanceUID


def test_same_output_twice_and_different_with_another_key(ct):
    data = encode(ct)
    assert deid(data).output == deid(data).output
    assert deid(data).output != deid(data, key=b"some-other-key-0123456789").output


def test_patient_identity_from_subject_or_keyed_pseudonym(ct):
    out = read(deid(encode(ct)))
    assert out.PatientID == Pseudonyms(KEY).patient_id("id:ID-4711")
    assert str(out.PatientName) == out.PatientID
    out = read(deid(encode(ct), trial=Trial(subject_id="SUBJ-1")))
    assert out.PatientID == "SUBJ-1"


def test_modified_dates_shift_every_date_of_the_patient_by_one_offset(ct):
    ct.StudyDate, ct.SeriesDate, ct.AcquisitionDate, ct.ContentDate = "20110525", "20110525", "20110526", "20110527"
    ct.StudyTime = "143000"
    ct.AcquisitionDateTime = "20110526101500.123456+0200"
    ct.PatientBirthDate = "19510829"
    ct.PatientAge = "059Y"
    opts = Options(retain_long_modified_dates=True, retain_patient_characteristics=True)
    out = read(deid(encode(ct), options=opts))
    days = Pseudonyms(KEY).date_shift_days("id:ID-4711")
    assert 365 <= days <= 3650
    assert out.StudyDate == dates.shift_da("20110525", days)
    d0 = dt.datetime.strptime(out.StudyDate, "%Y%m%d")
    d2 = dt.datetime.strptime(out.ContentDate, "%Y%m%d")
    assert (d2 - d0).days == 2  # intervals preserved
    assert out.StudyTime == "143000"  # whole-day shift keeps the time of day
    assert out.AcquisitionDateTime.endswith("101500.123456+0200")  # time and UTC offset as written
    assert out.PatientAge == "059Y"
    # Another instance of the same patient gets the same shift.
    other = copy.deepcopy(ct)
    other.SOPInstanceUID += ".9"
    other.StudyDate = "20120101"
    assert read(deid(encode(other), options=opts)).StudyDate == dates.shift_da("20120101", days)


def test_patient_age_is_added_from_birth_and_study_date_when_missing(ct):
    ct.PatientBirthDate = "19510829"
    ct.StudyDate = "20110525"
    if "PatientAge" in ct:
        del ct.PatientAge
    out = read(deid(encode(ct), options=Options(retain_patient_characteristics=True)))
    assert out.PatientAge == "059Y"
    assert "PatientBirthDate" not in out or not out.PatientBirthDate


def test_shifting_dt_and_da_edge_cases():
    assert dates.shift_da("20000301", 1) == "20000229"
    assert dates.shift_dt("2011", 365) == "2010"
    assert dates.shift_dt("201105", 30) == "201104"
    assert dates.shift_dt("20110525-0500", 1) == "20110524-0500"
    assert dates.shift_da("20110101-20110131", 1) == "20101231-20110130"
    for bad in ("2011", "20111301", "abcd"):
        try:
            dates.shift_da(bad, 1)
        except dates.DateValueError as e:
            assert bad not in str(e)
        else:
            raise AssertionError("invalid DA accepted")


def test_invalid_date_under_modified_dates_becomes_a_dummy(ct):
    ct.StudyDate = "20111301"
    result = deid(encode(ct), options=Options(retain_long_modified_dates=True))
    assert read(result).StudyDate == "19000101"
    assert any("invalid date" in w for w in result.warnings)


def test_mac_is_the_one_shot_hmac_sha256():
    """The keyed state made once per Pseudonyms gives hmac.digest's bytes, for any key length (a key longer
    than SHA-256's block is hashed first) and message, also after a copy or a pickle."""
    import hmac
    import pickle

    for key in (b"0123456789abcdef", b"k" * 64, b"k" * 65, b"\xff" * 200):
        p = Pseudonyms(key)
        for label, value in (("uid", "1.2.3.4"), ("patient-id", ""), ("ae", "\u00e9\udcff"), ("date-shift", "x" * 500)):
            expected = hmac.digest(key, label.encode() + b"\0" + value.encode("utf-8", "surrogatepass"), "sha256")
            assert p._mac(label, value) == expected
            assert copy.deepcopy(p)._mac(label, value) == expected
            assert pickle.loads(pickle.dumps(p))._mac(label, value) == expected
        assert p._mac("uid", "a") == p._mac("uid", "a")  # the kept state is never updated itself
