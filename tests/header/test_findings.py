"""The findings of the outside privacy evaluation, each reproduced as a test (they all leaked before)."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence

from py_deid import codes
from py_deid.options import Options
from py_deid.verify import check_bytes

from . import mutate
from .helpers import deid, encode, read

NAME, PID, INSTITUTION = "ZQXNAMEMARK^ONE", "ZQXID4471", "ZQX INSTITUTE MARK"
MARKERS = (b"ZQXNAMEMARK", b"ZQXID4471", b"ZQX INSTITUTE")


def _planted(ct) -> Dataset:
    ct.PatientName = NAME
    ct.PatientID = PID
    ct.InstitutionName = INSTITUTION
    return ct


def _leaks(output: bytes) -> list[bytes]:
    return [m for m in MARKERS if m in output]


# 1. Length swallow -------------------------------------------------------------------------------------------

def test_1_a_kept_element_stretched_over_the_patient_module_leaks_nothing(ct):
    data = encode(_planted(ct))
    modality = mutate.find(data, 0x00080060)
    after_id = mutate.find(data, 0x00100020)
    mutant = mutate.stretch(data, modality, after_id.offset + after_id.header + after_id.length)
    assert b"ZQXNAMEMARK" in mutant[modality.offset:modality.offset + 400]  # the name is inside Modality now
    result = deid(mutant)
    if result.status == "done":
        assert _leaks(result.output) == []
    else:
        assert result.problem.code == "malformed-value", result.problem
        assert "ZQX" not in result.problem.message


def test_1_verify_flags_a_swallowed_value_in_a_kept_element(ct):
    out = read(deid(encode(ct)))
    out.Modality = "CT"
    out.add_new(0x00081090, "LO", "MODEL")  # Manufacturer's Model Name: kept by the profile
    data = encode(out)
    model = mutate.find(data, 0x00081090)
    # Forge the old leak: Modality's value runs over a Patient's Name element with a real name in it.
    forged = (struct.pack("<HH", 0x0010, 0x0010) + b"PN" + struct.pack("<H", 10) + b"DOE^JOHN  ")
    modality = mutate.find(data, 0x00080060)
    start = modality.offset + modality.header
    data = data[:start] + b"CT" + forged + data[start + 2:]
    data = mutate.set_length(data, modality, 2 + len(forged))
    assert mutate.find(data, 0x00081090).offset == model.offset + len(forged)
    findings = check_bytes(data, Options())
    assert any(f.code == "value-not-valid" and "(0008,0060)" in f.where for f in findings), findings


# 2. Unknown even-group attributes -------------------------------------------------------------------------------

@pytest.mark.parametrize("syntax", ["implicit", "explicit-little", "explicit-big"])
def test_2_an_attribute_unknown_to_the_dictionary_is_removed(ct, syntax):
    ct.add_new(0x00700999, "LO", "ZQXUNKNOWNVALUE")
    ct.add_new(0x00089999, "SH", "ZQXUNKNOWN2")
    if syntax == "explicit-big":
        data = _encode_big_endian(ct)
    else:
        data = encode(ct, implicit=syntax == "implicit")
    result = deid(data)
    out = read(result)
    assert 0x00700999 not in out and 0x00089999 not in out
    assert b"ZQXUNKNOWN" not in result.output


def _encode_big_endian(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.write(b"\0" * 128 + b"DICM")
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    write_file_meta_info(fp, ds.file_meta)
    fp.is_little_endian, fp.is_implicit_VR = False, False
    write_dataset(fp, ds)
    return fp.getvalue()


# 3. Code sequences with D/Z -------------------------------------------------------------------------------------

def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def test_3_a_private_code_in_a_d_sequence_becomes_the_dummy_code(ct):
    ct.PersonIdentificationCodeSequence = Sequence([_code("EMP7788", "99HOSP", "Dr John Smith")])
    result = deid(encode(ct))
    out = read(result)
    for marker in (b"EMP7788", b"99HOSP", b"John", b"Smith"):
        assert marker not in result.output
    item = out.PersonIdentificationCodeSequence[0]
    assert (item.CodeValue, item.CodingSchemeDesignator) == ("REMOVED", "99PYDEID")


def test_3_content_keeps_standard_codes_with_the_standards_meaning_and_no_text(samples):
    ds = pydicom.dcmread(samples.path("test-SR.dcm"))
    content = ds.ContentSequence
    content[0].ConceptNameCodeSequence = Sequence([_code("T-D3000", "SRT", "my chest, says Dr Smith")])
    content.append(Dataset())
    content[-1].RelationshipType, content[-1].ValueType = "CONTAINS", "CODE"
    content[-1].ConceptNameCodeSequence = Sequence([_code("ZQX1", "99LOCAL", "Jane Roe's finding")])
    content[-1].ConceptCodeSequence = Sequence([_code("121071", "DCM", "Finding of Jane Roe")])
    data = BytesIO()
    ds.save_as(data)
    result = deid(data.getvalue())
    out = read(result)
    for marker in (b"Smith", b"ZQX1", b"99LOCAL", b"Roe"):
        assert marker not in result.output
    kept = out.ContentSequence[0].ConceptNameCodeSequence[0]
    assert (kept.CodeValue, kept.CodingSchemeDesignator) == ("T-D3000", "SRT")
    assert kept.CodeMeaning == codes.standard_meaning("SRT", "T-D3000") == "Thoracic structure (body structure)"
    standard = out.ContentSequence[-1].ConceptCodeSequence[0]
    assert (standard.CodeValue, standard.CodeMeaning) == ("121071", "Finding")
    texts = [item.TextValue for item in out.ContentSequence if "TextValue" in item]
    assert texts and set(texts) <= {"ANONYMIZED"}


# 4. Clean is an allowlist ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, kept, gone", [
    ("PHILO79XQ chest", "chest", "PHILO79XQ"),
    ("CT HEAD W/O CONTRAST Maria Gonzalez", "CT HEAD W/O CONTRAST", "Gonzalez"),
    ("MR knee left, call 555 0199 234", "MR knee left", "0199"),
    ("Chest AP ref A7734521", "Chest AP ref", "A7734521"),
])
def test_4_clean_keeps_known_words_only(ct, text, kept, gone):
    ct.StudyDescription = text
    out = read(deid(encode(ct), options=Options(clean_descriptors=True)))
    assert gone not in out.StudyDescription
    for word in kept.split():
        assert word in out.StudyDescription


def test_4_the_patients_own_terms_go_first_even_when_they_are_clinical_words(ct):
    ct.PatientName = "CHEST^ANNA"
    ct.StudyDescription = "CHEST PA"
    out = read(deid(encode(ct), options=Options(clean_descriptors=True)))
    assert "CHEST" not in out.StudyDescription and "PA" in out.StudyDescription


# 5. Truncation at an element boundary ---------------------------------------------------------------------------

def test_5_an_image_cut_before_its_pixel_data_is_never_a_silent_done(samples):
    data = samples.bytes("rtdose.dcm")
    pixels = mutate.find(data, 0x7FE00010)
    result = deid(data[:pixels.offset])
    assert result.status != "done" or any(w.startswith("no-pixel-data") for w in result.warnings), result


# 6. verify checks CS values, the preamble, the file meta and the top-level identity ------------------------------

@pytest.fixture()
def clean_output(ct) -> bytes:
    result = deid(encode(ct))
    assert check_bytes(result.output, Options()) == [], check_bytes(result.output, Options())
    return result.output


def _findings(data: bytes) -> set[str]:
    return {f.code for f in check_bytes(data, Options())}


def test_6_verify_flags_a_cs_value_that_is_not_a_code_string(clean_output):
    ds = pydicom.dcmread(BytesIO(clean_output))
    ds.BodyPartExamined = "John Doe"
    assert "value-not-valid" in _findings(encode(ds))


def test_6_verify_flags_text_in_the_preamble(clean_output):
    assert "preamble" in _findings(b"JOHN DOE 1953".ljust(128, b"\0") + clean_output[128:])


def test_6_verify_flags_identifying_file_meta(clean_output):
    ds = pydicom.dcmread(BytesIO(clean_output))
    ds.file_meta.ImplementationVersionName = "JOHNDOE"
    ds.file_meta.SourceApplicationEntityTitle = "ST-JOHN"
    assert "file-meta" in _findings(encode(ds))


def test_6_verify_flags_a_real_name_as_patients_name(clean_output):
    ds = pydicom.dcmread(BytesIO(clean_output))
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "MRN123456"
    codes = [f for f in check_bytes(encode(ds), Options()) if f.code == "identity-not-pseudonymous"]
    assert {f.where for f in codes} == {"(0010,0010)", "(0010,0020)"}


def test_6_the_configured_subject_id_is_accepted(ct):
    from py_deid.options import Trial

    result = deid(encode(ct), trial=Trial(subject_id="S01-0007"))
    assert check_bytes(result.output, Options(), subject_ids={"S01-0007"}) == []
    assert "identity-not-pseudonymous" in {f.code for f in check_bytes(result.output, Options())}


# 7. Deflate bombs -----------------------------------------------------------------------------------------------

def test_7_a_deflate_bomb_fails_closed_without_inflating_it(ct):
    plain = encode(ct)
    meta_end = mutate.meta_end(plain)
    fp = DicomBytesIO()
    fp.write(b"\0" * 128 + b"DICM")
    ct.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    write_file_meta_info(fp, ct.file_meta)
    meta = fp.getvalue()
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = [packer.compress(plain[meta_end:])]
    big = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 600 << 20)  # 600 MB of zero pixels
    body.append(packer.compress(big))
    zeros = b"\0" * (8 << 20)
    for _ in range(75):
        body.append(packer.compress(zeros))
    body.append(packer.flush())
    deflated = b"".join(body)
    assert len(deflated) < 1 << 20
    result = deid(meta + deflated)
    assert result.status == "failed" and result.problem.code == "inflate-limit", result.problem


def test_7_an_ordinary_deflated_instance_still_de_identifies(samples):
    result = deid(samples.bytes("image_dfl.dcm"))
    assert result.status == "done", result.problem
    assert result.transfer_syntax == "1.2.840.10008.1.2.1.99"


# 8. SR evidence references --------------------------------------------------------------------------------------

@pytest.mark.skipif(__import__("shutil").which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
@pytest.mark.parametrize("name", ["test-SR.dcm", "reportsi.dcm"])
@pytest.mark.parametrize("options", [Options(), Options(clean_structured_content=True)], ids=["basic", "clean"])
def test_8_sr_outputs_gain_no_dciodvfy_error(samples, tmp_path, name, options):
    from .dciodvfy import new_errors

    src = samples.path(name)
    result = deid(src.read_bytes(), options=options)
    out = tmp_path / "out.dcm"
    out.write_bytes(read(result) and result.output)
    assert new_errors(src, out) == []


# X means removed: a conditional attribute stays (emptied) only where its condition holds --------------------------

def test_x_removes_a_responsible_person_of_a_human_patient(ct):
    ct.ResponsiblePerson = "ZQXPARENT^MARK"
    ct.ResponsibleOrganization = "ZQX ORG"
    out = read(deid(encode(ct)))
    assert "ResponsiblePerson" not in out and "ResponsibleOrganization" not in out


def test_x_empties_a_responsible_person_of_an_animal(ct):
    ct.PatientSpeciesDescription = "Canis lupus familiaris"
    ct.ResponsiblePerson = "ZQXOWNER^MARK"
    result = deid(encode(ct))
    out = read(result)
    assert "ResponsiblePerson" in out and not out.ResponsiblePerson
    assert b"ZQXOWNER" not in result.output


def test_the_conditions_cover_every_conditional_attribute_the_profile_removes():
    from py_deid._standard import iod_types, table_e1_1
    from py_deid.iod import CONDITIONS

    removed = {row[2] for row in table_e1_1.ROWS if row[4] in ("X", "Z")}
    conditional = {path for types in iod_types.TYPE_SETS for path, t in types.items()
                   if ">" not in path and path in removed and t in ("1C", "2C")}
    assert conditional == set(CONDITIONS)
