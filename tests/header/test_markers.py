"""What a de-identified instance says about itself (PS3.15 E.1.1, E.3) and the clinical-trial attributes."""

import pytest

from py_deid.options import Options, Trial

from .helpers import deid, encode, read

ALL_HEADER_OPTIONS = ["retain_safe_private", "retain_uids", "retain_device_identity", "retain_institution_identity",
                      "retain_patient_characteristics", "retain_long_modified_dates", "clean_descriptors",
                      "clean_structured_content", "clean_graphics"]


def _codes(ds):
    return sorted(item.CodeValue for item in ds.DeidentificationMethodCodeSequence)


def test_basic_profile_markers(ct):
    out = read(deid(encode(ct)))
    assert out.PatientIdentityRemoved == "YES"
    assert _codes(out) == ["113100"]
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    assert out.DeidentificationMethod.startswith("py_deid ") and len(out.DeidentificationMethod) <= 64
    item = out.DeidentificationMethodCodeSequence[0]
    assert item.CodingSchemeDesignator == "DCM" and item.CodeMeaning == "Basic Application Confidentiality Profile"


@pytest.mark.parametrize("option,code", [
    ("retain_safe_private", "113111"), ("retain_uids", "113110"), ("retain_device_identity", "113109"),
    ("retain_institution_identity", "113112"), ("retain_patient_characteristics", "113108"),
    ("retain_long_full_dates", "113106"), ("retain_long_modified_dates", "113107"), ("clean_descriptors", "113105"),
    ("clean_structured_content", "113104"), ("clean_graphics", "113103")])
def test_each_option_adds_its_cid_7050_code(ct, option, code):
    out = read(deid(encode(ct), options=Options(**{option: True})))
    assert _codes(out) == sorted(["113100", code])
    assert len(out.DeidentificationMethod) <= 64 and "\\" not in out.DeidentificationMethod


@pytest.mark.parametrize("option,value", [("retain_long_full_dates", "UNMODIFIED"),
                                          ("retain_long_modified_dates", "MODIFIED")])
def test_longitudinal_temporal_information_modified(ct, option, value):
    assert read(deid(encode(ct), options=Options(**{option: True}))).LongitudinalTemporalInformationModified == value


def test_pixel_options_never_claimed_without_pixel_cleaning(ct):
    out = read(deid(encode(ct), options=Options(clean_pixel_data=True, clean_recognizable_visual_features=True)))
    assert _codes(out) == ["113100"]
    assert "RecognizableVisualFeatures" not in out or out.RecognizableVisualFeatures != "NO"


def test_trial_attributes_as_whole_modules(ct):
    trial = Trial(sponsor_name="ACME Pharma", protocol_id="ACME-001", protocol_name="Knee study", site_id="S01",
                  site_name="Site one", subject_id="S01-0007", time_point_id="BASELINE",
                  time_point_description="Before treatment", coordinating_center_name="Core lab")
    out = read(deid(encode(ct), trial=trial))
    assert out.ClinicalTrialSponsorName == "ACME Pharma" and out.ClinicalTrialProtocolID == "ACME-001"
    assert out.ClinicalTrialSubjectID == "S01-0007" == out.PatientID == str(out.PatientName)
    assert out.ClinicalTrialTimePointID == "BASELINE" and out.ClinicalTrialCoordinatingCenterName == "Core lab"


def test_subject_id_alone_does_not_make_a_half_module(ct):
    out = read(deid(encode(ct), trial=Trial(subject_id="S01-0007")))
    assert out.PatientID == "S01-0007" and str(out.PatientName) == "S01-0007"
    assert "ClinicalTrialSubjectID" not in out and "ClinicalTrialSponsorName" not in out


def test_trial_values_are_checked():
    with pytest.raises(ValueError):
        Trial(subject_id="a\\b")
    with pytest.raises(ValueError):
        Trial(site_name="x" * 65)


def test_all_options_together(ct):
    out = read(deid(encode(ct), options=Options.from_names(ALL_HEADER_OPTIONS)))
    assert len(_codes(out)) == 1 + len(ALL_HEADER_OPTIONS)
    with pytest.raises(ValueError):
        Options(retain_long_full_dates=True, retain_long_modified_dates=True)
