"""SR content items: dummies under the Basic Profile, cleaned text under clean_structured_content."""

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from py_deid.clean_text import allowlisted
from py_deid.options import Options

from .helpers import deid, encode, read


def _texts(ds):
    return [str(e.value) for e in ds.iterall() if e.keyword == "TextValue"]


def _sr(samples):
    ds = pydicom.dcmread(samples.path("reportsi.dcm"))
    ds.PatientName = "DOE^JOHN"
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121071", "DCM", "Finding"
    item.ConceptNameCodeSequence = Sequence([code])
    item.TextValue = "Mass in the left lobe, discussed with John Doe on 03/04/2019"
    ds.ContentSequence.append(item)
    # A second one a level down, inside the first container of the report's tree.
    nested = Dataset()
    nested.RelationshipType, nested.ValueType = "CONTAINS", "TEXT"
    nested.ConceptNameCodeSequence = Sequence([code])
    nested.TextValue = "Prior study reviewed by Dr Jane Roe, MRN 55512345"
    container = next(i for i in ds.ContentSequence if i.get("ValueType") == "CONTAINER")
    container.setdefault("ContentSequence", Sequence()).value.append(nested)
    return ds


def test_basic_profile_replaces_content_text_with_dummies(samples):
    out = read(deid(encode(_sr(samples))))
    texts = _texts(out)
    assert texts and all(t == "ANONYMIZED" for t in texts)
    assert all(str(e.value) in ("ANONYMIZED", "") for e in out.iterall() if e.keyword == "PersonName")


def test_clean_structured_content_keeps_clinical_words(samples):
    out = read(deid(encode(_sr(samples)), options=Options(clean_structured_content=True)))
    texts = _texts(out)
    assert len(texts) >= 2
    for text in texts:  # every text item of the tree, not only the first
        for phi in ("John", "Doe", "03/04/2019", "Jane", "Roe", "55512345"):
            assert phi not in text, (phi, text)
        assert allowlisted(text)[1] == 0, text  # what stays is known not to identify anyone
    assert any(t.startswith("Mass in the left lobe") for t in texts)
    assert any(t.startswith("Prior study reviewed by") for t in texts)
    # Codes are structure, not free text: untouched.
    assert any(str(e.value) == "121071" for e in out.iterall() if e.keyword == "CodeValue")
