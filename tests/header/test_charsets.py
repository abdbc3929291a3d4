"""Specific Character Set is honoured: values are read, matched and written in the instance's own encoding."""

import pydicom
import pytest
from pydicom.dataelem import DataElement

from py_deid.options import Options
from py_deid.policy import Profile

from .helpers import deid, encode, read

CHARSET_FILES = ["chrArab.dcm", "chrFren.dcm", "chrFrenMulti.dcm", "chrGerm.dcm", "chrGreek.dcm", "chrH31.dcm",
                 "chrH32.dcm", "chrHbrw.dcm", "chrI2.dcm", "chrJapMulti.dcm", "chrJapMultiExplicitIR6.dcm",
                 "chrKoreanMulti.dcm", "chrRuss.dcm", "chrX1.dcm", "chrX2.dcm"]


@pytest.mark.parametrize("name", CHARSET_FILES)
def test_charset_files_pass_through(samples, name):
    src = pydicom.dcmread(samples.path(name))
    original_name = str(src.PatientName)
    out = read(deid(samples.bytes(name)))
    assert out.SpecificCharacterSet == src.SpecificCharacterSet
    assert str(out.PatientName) != original_name
    # Every text attribute the profile keeps decodes to exactly what it was.
    profile = Profile(Options())
    kept = 0
    for elem in src:
        if elem.tag.is_private:
            continue
        resolved = profile.for_standard(elem.tag, elem.VR)
        if elem.VR in ("LO", "SH", "ST", "LT", "UT", "CS", "PN") and (resolved is None or resolved.action == "K"):
            assert out[elem.tag].value == elem.value, elem.keyword
            kept += 1
    assert kept


@pytest.mark.parametrize("name", ["chrJapMulti.dcm", "chrKoreanMulti.dcm", "chrGerm.dcm", "chrRuss.dcm",
                                  "chrH32.dcm", "chrX2.dcm"])
def test_clean_descriptors_finds_names_in_any_script(samples, name):
    ds = pydicom.dcmread(samples.path(name))
    family = str(ds.PatientName).split("=")[-1 if "=" in str(ds.PatientName) else 0].split("^")[0]
    if len(family) < 2:
        family = str(ds.PatientName).split("^")[0]
    ds.add(DataElement(0x00081030, "LO", f"Knee {family} follow-up"))  # Study Description
    out = read(deid(encode(ds), options=Options(clean_descriptors=True)))
    text = str(out.StudyDescription)
    assert family not in text and "Knee" in text and "follow-up" in text
