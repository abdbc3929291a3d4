"""The certificate core: built from real de-identified instances, PHI-free, printable."""

from __future__ import annotations

import hashlib
import json

import pydicom
import pytest

from py_deid import certificate
from py_deid.instance import deidentify_bytes
from py_deid.options import Options, Settings, Trial
from py_deid.phi import PhiTerms

KEY = b"certificate-test-key-0123456789"


def _entries(samples, names, settings):
    entries, forbidden = [], []
    for name in names:
        data = samples.bytes(name)
        ds = pydicom.dcmread(samples.path(name))
        terms = PhiTerms.from_dataset(ds)
        forbidden += sorted(terms.names | terms.ids) + [str(ds.SOPInstanceUID), str(ds.StudyInstanceUID),
                                                         str(samples.path(name))]
        r = deidentify_bytes(data, settings, KEY)
        assert r.status == "done"
        boxes = {int(k): [tuple(b) for b in v] for k, v in ((r.pixels or {}).get("boxes") or {}).items()}
        entries.append(certificate.InstanceEntry(r.sop_uid, r.study_uid, r.series_uid,
                                                 hashlib.sha256(r.output).hexdigest(), r.modality, r.sop_class_uid,
                                                 masked=boxes))
    return entries, forbidden


def test_certificate_from_real_instances_has_no_phi(samples):
    settings = Settings(options=Options(clean_descriptors=True), trial=Trial(sponsor_name="ACME", protocol_id="P1",
                                                                              subject_id="S-001"), pixels="off")
    entries, forbidden = _entries(samples, ["CT_small.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm"], settings)
    entries[0].added = {0: [(10, 10, 40, 12)]}
    cert = certificate.build(settings, entries, signature=certificate.Signature("Dr. A. Reviewer", "radiologist"),
                             excluded=[{"reason": "duplicate", "instances": 2}], failed=1, skipped=3)
    text = certificate.dumps(cert)
    assert certificate.leaks(cert, forbidden) == []
    doc = json.loads(text)
    assert doc["counts"] == {"instances": 3, "by_modality": {"CT": 1, "MR": 1, "NM": 1}, "pixels_cleaned": 0,
                             "reviewer_edited": 1, "excluded": 2, "failed": 1, "skipped": 3}
    assert [m["code_value"] for m in doc["methods"]] == ["113100", "113105"]
    assert doc["review"]["reviewer"] == "Dr. A. Reviewer" and doc["review"]["signed_at"]
    assert doc["instances"][0]["reviewer_added"] == {"0": [[10, 10, 40, 12]]}
    page = certificate.render_html(cert)
    assert "<script" not in page and "Dr. A. Reviewer" in page and entries[0].sop_instance_uid in page


def test_leaks_finds_planted_values(samples):
    settings = Settings(pixels="off")
    entries, _ = _entries(samples, ["CT_small.dcm"], settings)
    cert = certificate.build(settings, entries, signature=None, review_required=False)
    cert["trial"]["note"] = "patient DOE JOHN"
    assert certificate.leaks(cert, ["doe john"]) == ["$.trial.note"]


def test_certificate_rejects_what_could_carry_phi(samples):
    settings = Settings(pixels="off")
    entries, _ = _entries(samples, ["CT_small.dcm"], settings)
    with pytest.raises(certificate.CertificateError):
        certificate.build(settings, entries, signature=None)  # review required, not signed
    with pytest.raises(certificate.CertificateError):
        certificate.build(settings, entries, signature=None, review_required=False,
                          excluded=[{"reason": "Patient John Doe asked"}])
    bad = certificate.InstanceEntry("1.2.3", "1.2", "1.2.3.4", "not-a-hash")
    with pytest.raises(certificate.CertificateError):
        certificate.build(settings, [bad], signature=None, review_required=False)
