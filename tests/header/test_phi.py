"""PHI terms from a header, and matching them in free text and in OCR output."""

import datetime as dt

from pydicom.dataset import Dataset

from py_deid.phi import PhiTerms, fold_ocr, phi_patterns_in
from py_deid.pixels.phi_text import PhiMatcher, within_edits


def _ds():
    ds = Dataset()
    ds.PatientName = "DOE^JOHN^Q"
    ds.PatientID = "00079241539"
    ds.AccessionNumber = "ACC12345"
    ds.PatientBirthDate = "19510829"
    ds.StudyDate = "20200414"
    ds.InstitutionName = "BAPTIST MED CTR"
    ds.ReferringPhysicianName = "SMITH^ANNA"
    ds.PatientTelephoneNumbers = "(555) 123-4567"
    return ds


def test_terms_collected():
    t = PhiTerms.from_dataset(_ds())
    assert {"DOE", "JOHN", "SMITH", "ANNA"} <= t.names and "Q" not in t.names
    assert {"00079241539", "ACC12345"} <= t.ids
    assert dt.date(1951, 8, 29) in t.dates and t.birth_dates == {dt.date(1951, 8, 29)}
    assert "BAPTIST MED CTR" in t.places
    assert t.patient_names == {"DOE", "JOHN"}


def test_scrub_keeps_clinical_words():
    t = PhiTerms.from_dataset(_ds())
    text, n = t.scrub("Knee MRI for John Doe (DOB 08/29/1951), ref. Dr. Smith, call 555-987-6543, a@b.org")
    assert n >= 5
    for gone in ("John", "Doe", "08/29/1951", "Smith", "555-987-6543", "a@b.org"):
        assert gone not in text
    assert text.startswith("Knee MRI for")
    assert t.scrub("CHEST PA AND LATERAL")[0] == "CHEST PA AND LATERAL"


def test_dates_in_written_forms():
    t = PhiTerms.from_dataset(_ds())
    for form in ("29-AUG-1951", "08/29/1951", "1951-08-29", "29.08.1951", "19510829", "29 AUG 51"):
        assert t.scrub(f"born {form} x")[1] == 1, form


def test_ocr_matching_tolerates_ocr_errors():
    m = PhiMatcher(PhiTerms.from_dataset(_ds()))
    assert m.matches('DOE" JOHN')
    assert m.matches("D0E")
    assert m.matches("0OO79241539")  # O/0
    assert m.matches("DOEJOHN")  # missing space
    assert m.matches("BAPTlST")  # l/I in a place name word
    assert m.matches("29-AUG-1951") and m.matches("8/29/51")
    assert not m.matches("cm")
    assert not m.matches("5.0MHz")
    assert fold_ocr("l0O") == fold_ocr("100")
    assert within_edits("JOHNSON", "JOHNS0N", 1) and not within_edits("ABCDEF", "ABXYEF", 1)


def test_patterns_without_a_header():
    assert phi_patterns_in("seen 03/04/2019 by tel +1 555 123 4567")
    assert not phi_patterns_in("12.5 cm 3.5 MHz 0.9 MI")
