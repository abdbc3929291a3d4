"""Certificates of de-identification: accepted with the study, listed, fetched, checked against the store."""

from __future__ import annotations

import json

import pytest

from py_deid import stow
from py_deid.receiver import certificates
from py_deid.receiver.storage import Store

from . import receiver_support as rs
from .conftest import SITE1


@pytest.fixture(scope="module")
def batch(server, instances):
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 900 + i) for i in range(3)]
    with server.client(SITE1) as c:
        ctype, body = stow.encode(parts)
        assert c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype}).status_code == 200
    return rs.uids(parts[0])[0], parts


def certificate(batch_id: str, parts, **extra) -> dict:
    return {"batch": batch_id, "tool": "py_deid", "profile": ["113100"],
            "instances": [{"sop_instance_uid": rs.uids(p)[2], "sha256": rs.sha256(p)} for p in parts], **extra}


def post(client, study, doc, **headers):
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return client.post(f"/dicomweb/studies/{study}/certificates", content=raw,
                       headers={"Content-Type": "application/json", **headers})


def test_complete_certificate_is_stored_and_checked(server, client, batch):
    study, parts = batch
    doc = certificate("batch-001", parts, study_instance_uid=study)
    r = post(client, study, doc)
    assert r.status_code == 201
    body = r.json()
    assert body["check"] == {"complete": True, "instances": 3, "present": 3, "missing": [], "mismatched": [],
                             "other_study": []}
    assert r.headers["location"] == body["url"]
    raw = json.dumps(doc).encode()
    assert client.get(body["url"]).content == raw  # the exact bytes, as a later signature needs
    assert post(client, study, doc).status_code == 200  # the same again: idempotent
    listing = client.get(f"/dicomweb/studies/{study}/certificates").json()
    assert [(c["batch"], c["site"], c["sha256"]) for c in listing] == [("batch-001", "site1", rs.sha256(raw))]
    assert client.get(body["url"] + "/check").json()["complete"] is True
    changed = certificate("batch-001", parts[:2])
    assert post(client, study, changed).status_code == 409  # another document under the same batch id


def test_incomplete_certificate_says_what_is_missing_or_different(client, batch, instances):
    study, parts = batch
    never_sent = rs.with_new_uids(instances.deid("CT_small.dcm"), 999)
    doc = certificate("batch-002", parts[:2] + [never_sent])
    doc["instances"][0]["sha256"] = "0" * 64
    r = post(client, study, doc)
    assert r.status_code == 201
    check = r.json()["check"]
    assert check["complete"] is False and check["present"] == 1
    assert check["missing"] == [rs.uids(never_sent)[2]] and check["mismatched"] == [rs.uids(parts[0])[2]]
    other = certificate("batch-003", parts)
    r = post(client, "1.2.3.4.5", other)  # right instances, wrong study
    assert r.status_code == 201 and r.json()["check"]["other_study"] == [rs.uids(p)[2] for p in parts]


@pytest.mark.parametrize("raw, status", [
    (b"{not json", 400),
    (b"[1, 2]", 400),
    (json.dumps({"batch": "x", "instances": []}).encode(), 400),
    (json.dumps({"batch": "../x", "instances": [{"sop_instance_uid": "1.2", "sha256": "0" * 64}]}).encode(), 400),
    (json.dumps({"batch": "x", "instances": [{"sop_instance_uid": "1.2.x", "sha256": "0" * 64}]}).encode(), 400),
    (json.dumps({"batch": "x", "instances": [{"sop_instance_uid": "1.2", "sha256": "abc"}]}).encode(), 400),
    (b"[" * 100000 + b"]" * 100000, 400),
    (json.dumps({"batch": "x", "pad": "a" * (5 * 1024 * 1024)}).encode(), 413),
])
def test_bad_certificates_are_refused(client, batch, raw, status):
    assert post(client, batch[0], raw).status_code == status


def test_certificate_endpoints_need_the_right_token_and_type(server, client, batch):
    study, parts = batch
    doc = certificate("batch-004", parts)
    assert client.post(f"/dicomweb/studies/{study}/certificates", content=json.dumps(doc),
                       headers={"Content-Type": "text/plain"}).status_code == 415
    with server.client() as anonymous:
        assert post(anonymous, study, doc).status_code == 401
        assert anonymous.get(f"/dicomweb/studies/{study}/certificates").status_code == 401
    assert client.get(f"/dicomweb/studies/{study}/certificates/cert-{'0' * 32}").status_code == 404


def test_check_function_on_a_store(tmp_path, instances):
    """The completeness check against a store, with a handmade certificate and no server."""
    store = Store(tmp_path / "store")
    try:
        part = instances.deid("CT_small.dcm")
        study, series, sop = rs.uids(part)
        import time
        with store.ledger.transaction() as db:
            db.execute("INSERT INTO instances (sop_uid, study_uid, series_uid, sop_class_uid, modality, "
                       "transfer_syntax, sha256, size, site, received, state) VALUES "
                       "(?, ?, ?, '1.2.840.10008.5.1.4.1.1.2', 'CT', "
                       "'1.2.840.10008.1.2.1', ?, ?, 'site', ?, 'stored')",
                       (sop, study, series, rs.sha256(part), len(part), time.time()))
        doc = certificates.parse(json.dumps(certificate("b", [part])).encode(), study)
        assert certificates.check(store, study, doc).complete
        doc["instances"].append({"sop_instance_uid": "1.2.3", "sha256": "1" * 64})
        result = certificates.check(store, study, doc)
        assert not result.complete and result.missing == ["1.2.3"] and result.present == 1
    finally:
        store.close()
