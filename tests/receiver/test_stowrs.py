"""STOW-RS against a running `py-deid serve` over real HTTPS: statuses, verification, idempotency, bad bodies."""

from __future__ import annotations

import hashlib
import io
import time

import pydicom
import pytest

from py_deid import stow
from py_deid.receiver import reasons

from . import receiver_support as rs
from .conftest import SITE1

RAW_PHI = "CT_small.dcm"  # a real file as written by a scanner: name, IDs, dates, private data


def post(client, parts, *, path="/dicomweb/studies", boundary=None, part_type="application/dicom"):
    ctype, body = stow.encode(parts, boundary, part_type)
    return client.post(path, content=body, headers={"Content-Type": ctype, "Accept": "application/dicom+json"})


def fresh(instances, n, name="CT_small.dcm"):
    """Distinct de-identified instances (new SOP Instance UIDs) so that tests do not see each other."""
    return rs.with_new_uids(instances.deid(name), n)


def test_store_all_200_with_retrieve_urls(server, client, instances):
    parts = [fresh(instances, 1), rs.with_new_uids(instances.deid("JPEG2000.dcm"), 1)]
    r = post(client, parts)
    assert r.status_code == 200
    doc = rs.dicom_json(r)
    refs = rs.seq(doc, "00081199")
    assert [rs.value(i, "00081155") for i in refs] == [rs.uids(p)[2] for p in parts]
    assert "00081198" not in doc and "0008119A" not in doc
    stored = rs.stored_bytes(server.store)  # (in the request's pack: both are small)
    for item, part in zip(refs, parts):
        study, series, sop = rs.uids(part)
        assert rs.value(item, "00081190") == f"{server.base}/studies/{study}/series/{series}/instances/{sop}"
        assert stored[sop] == part
    rows = {r["sop_uid"]: r for r in rs.ledger_rows(server.store)}
    for part in parts:
        row = rows[rs.uids(part)[2]]
        assert row["state"] == "stored" and row["site"] == "site1" and row["sha256"] == rs.sha256(part)
        assert row["size"] == len(part)


def test_same_instance_twice_is_stored_once_and_succeeds(server, client, instances):
    part = fresh(instances, 2)
    assert post(client, [part]).status_code == 200
    before = rs.stored_files(server.store), rs.pack_files(server.store)
    r = post(client, [part, part])  # again, and twice within one request
    assert r.status_code == 200
    assert len(rs.seq(rs.dicom_json(r), "00081199")) == 2
    assert (rs.stored_files(server.store), rs.pack_files(server.store)) == before  # (its pack went too)
    assert sum(1 for row in rs.ledger_rows(server.store) if row["sop_uid"] == rs.uids(part)[2]) == 1


def test_different_bytes_under_a_stored_uid_are_refused_not_overwritten(server, client, instances):
    part = fresh(instances, 3)
    assert post(client, [part]).status_code == 200
    changed = rs.edit(part, lambda ds: setattr(ds, "InstanceNumber", 999))
    assert rs.uids(changed) == rs.uids(part) and changed != part
    r = post(client, [changed])
    assert r.status_code == 409
    (item,) = rs.seq(rs.dicom_json(r), "00081198")
    assert rs.value(item, "00081197") == reasons.DUPLICATE_CONFLICT
    assert rs.stored_bytes(server.store)[rs.uids(part)[2]] == part


def _values_of(raw: bytes) -> list[str]:
    ds = pydicom.dcmread(io.BytesIO(raw))
    return [str(ds.PatientName), str(ds.PatientID), str(ds.get("InstitutionName", "")), str(ds.StudyDate)]


def test_phi_bearing_instance_is_refused_and_nothing_of_it_is_kept(server, client, instances):
    raw = instances.raw(RAW_PHI)
    r = post(client, [raw])
    assert r.status_code == 409
    doc = rs.dicom_json(r)
    (item,) = rs.seq(doc, "00081198")
    assert rs.value(item, "00081197") == reasons.IDENTITY_NOT_REMOVED
    assert rs.value(item, "00000902") == "Patient Identity Removed is not YES"
    assert "00080020" in item["00000901"]["Value"]  # the offending tags (here Study Date) are named ...
    # ... their values never are. (The instance is referenced by its own SOP Instance UID, as PS3.18
    # requires, so that the uploader can tell which one failed; this file's UID happens to embed a date.)
    answer = r.text.replace(rs.uids(raw)[2], "")
    for v in _values_of(raw):
        assert v and v not in answer and v not in server.logs()
    sop = rs.uids(raw)[2]
    assert all(row["sop_uid"] != sop for row in rs.ledger_rows(server.store))
    assert not any(sop in p.name for p in server.store.rglob("*"))
    assert not any((server.store / "tmp").iterdir())


def test_some_good_some_bad_is_202(server, client, instances):
    good = fresh(instances, 4)
    r = post(client, [good, instances.raw(RAW_PHI)])
    assert r.status_code == 202
    doc = rs.dicom_json(r)
    assert [rs.value(i, "00081155") for i in rs.seq(doc, "00081199")] == [rs.uids(good)[2]]
    assert [rs.value(i, "00081155") for i in rs.seq(doc, "00081198")] == [rs.uids(instances.raw(RAW_PHI))[2]]


def test_an_image_cut_short_where_an_element_starts_is_refused(server, client, instances):
    """Issue 14: the soak's 'malformed' part (a valid instance cut short) was stored when the cut fell where an
    element starts, between the UIDs and the Pixel Data: it reads as a whole data set without pixels."""
    good, whole = fresh(instances, 5), fresh(instances, 6)
    cut = whole[:whole.find(bytes.fromhex("2800100055530200"))]  # right before Rows (US, 2 bytes)
    r = post(client, [good, cut])
    assert r.status_code == 202
    doc = rs.dicom_json(r)
    assert [rs.value(i, "00081155") for i in rs.seq(doc, "00081199")] == [rs.uids(good)[2]]
    (item,) = rs.seq(doc, "00081198")
    assert rs.value(item, "00081197") == reasons.CANNOT_UNDERSTAND and item["00000901"]["Value"] == ["7FE00010"]
    assert all(row["sha256"] != rs.sha256(cut) for row in rs.ledger_rows(server.store))


@pytest.mark.parametrize("change, reason, tag", [
    (lambda ds: setattr(ds, "InstitutionName", "St Elsewhere"), reasons.ATTRIBUTE_NOT_ALLOWED, "00080080"),
    (lambda ds: setattr(ds, "BurnedInAnnotation", "YES"), reasons.BURNED_IN_ANNOTATION, "00280301"),
    (lambda ds: ds.add_new(0x00331010, "LO", "x") or ds.add_new(0x00330010, "LO", "ACME 1"),
     reasons.PRIVATE_NOT_SAFE, "00331010"),
    (lambda ds: setattr(ds, "PatientIdentityRemoved", "NO"), reasons.IDENTITY_NOT_REMOVED, "00120062"),
])
def test_each_class_of_finding_has_its_reason(server, client, instances, change, reason, tag):
    part = rs.edit(fresh(instances, 10 + reason), change)
    r = post(client, [part])
    assert r.status_code == 409
    (item,) = rs.seq(rs.dicom_json(r), "00081198")
    assert rs.value(item, "00081197") == reason
    assert tag in item["00000901"]["Value"]
    assert "St Elsewhere" not in r.text and "ACME" not in r.text


def test_real_cine_with_burned_in_annotation_is_refused(client, instances):
    # GREYSCALE_CINE says Burned In Annotation = YES; de-identified without pixel cleaning it stays so.
    r = post(client, [instances.deid("GREYSCALE_CINE.dcm")])
    assert r.status_code == 409
    (item,) = rs.seq(rs.dicom_json(r), "00081198")
    assert rs.value(item, "00081197") == reasons.BURNED_IN_ANNOTATION


def test_study_in_url_must_match(server, client, instances):
    part = fresh(instances, 20)
    study = rs.uids(part)[0]
    assert post(client, [part], path=f"/dicomweb/studies/{study}").status_code == 200
    other = fresh(instances, 21)
    r = post(client, [other], path="/dicomweb/studies/1.2.3.4")
    assert r.status_code == 409
    (item,) = rs.seq(rs.dicom_json(r), "00081198")
    assert rs.value(item, "00081197") == reasons.STUDY_MISMATCH
    assert post(client, [other], path="/dicomweb/studies/1.2.x").status_code == 400


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_uids_that_could_climb_out_of_the_store_are_refused(server, client, instances):
    evil = rs.edit(fresh(instances, 22), lambda ds: setattr(ds, "SeriesInstanceUID", "../../../../outside/x"))
    r = post(client, [evil])
    assert r.status_code == 409
    doc = rs.dicom_json(r)
    (item,) = rs.seq(doc, "00081198")
    assert rs.value(item, "00081197") == reasons.CANNOT_UNDERSTAND
    assert not any(".." in str(p) or p.name == "x" for p in server.store.rglob("*"))
    assert not (server.store.parent / "outside").exists()
    assert "outside" not in server.logs()  # pydicom's warning about the value must not reach the log


def test_non_dicom_and_wrong_type_parts_among_good_ones(server, client, instances):
    good1, good2 = fresh(instances, 30), fresh(instances, 31)
    boundary = stow.new_boundary()
    body = b"".join([
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), good1, b"\r\n",
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), b"just some text, not DICOM", b"\r\n",
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n".encode(), b"hello", b"\r\n",
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), good2, b"\r\n",
        f"--{boundary}--\r\n".encode()])
    r = client.post("/dicomweb/studies", content=body,
                    headers={"Content-Type": stow.content_type(boundary)})
    assert r.status_code == 202
    doc = rs.dicom_json(r)
    assert [rs.value(i, "00081155") for i in rs.seq(doc, "00081199")] == [rs.uids(good1)[2], rs.uids(good2)[2]]
    other = rs.seq(doc, "0008119A")
    assert [rs.value(i, "00081197") for i in other] == [reasons.CANNOT_UNDERSTAND] * 2
    assert [rs.value(i, "00000902") for i in other] == ["part is not a DICOM PS3.10 file",
                                                         "part is not application/dicom"]


def test_truncated_and_malformed_bodies_are_400_and_store_nothing(server, client, instances):
    part = fresh(instances, 40)
    ctype, body = stow.encode([part, fresh(instances, 41)])
    for broken in (body[:-10], body[: len(body) // 2], b"garbage without any boundary"):
        r = client.post("/dicomweb/studies", content=broken, headers={"Content-Type": ctype})
        assert r.status_code == 400, r.text
    assert all(row["sop_uid"] != rs.uids(part)[2] for row in rs.ledger_rows(server.store))
    no_boundary = client.post("/dicomweb/studies", content=body,
                              headers={"Content-Type": 'multipart/related; type="application/dicom"'})
    assert no_boundary.status_code == 400
    empty = client.post("/dicomweb/studies", content=b"--b--\r\n",
                        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'})
    assert empty.status_code == 400


@pytest.mark.parametrize("ctype", [
    "application/dicom",
    'multipart/related; type="application/dicom+json"; boundary=x',
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
])
def test_wrong_media_type_is_415(client, ctype, instances):
    r = client.post("/dicomweb/studies", content=instances.deid("CT_small.dcm"), headers={"Content-Type": ctype})
    assert r.status_code == 415


def test_tokens(server, instances):
    part = fresh(instances, 50)
    ctype, body = stow.encode([part])
    headers = {"Content-Type": ctype}
    with server.client() as anonymous:
        r = anonymous.post("/dicomweb/studies", content=body, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.get("/dicomweb/studies").status_code == 401
    for bad in ("wrong", SITE1 + "x", SITE1[:-1], "Basic " + SITE1):
        with server.client() as c:
            r = c.post("/dicomweb/studies", content=body, headers={**headers, "Authorization": f"Bearer {bad}"})
            assert r.status_code == 401
    # a store-only site token, created and then revoked with the CLI while the server runs
    site2 = rs.new_token(server.store, "site2")
    with server.client(site2) as c:
        assert c.post("/dicomweb/studies", content=body, headers=headers).status_code == 200
        assert c.get("/dicomweb/studies").status_code == 403
        assert rs.cli(server.store, "--revoke-token", "site2").returncode == 0
        assert c.post("/dicomweb/studies", content=body, headers=headers).status_code == 401
    assert [r["site"] for r in rs.ledger_rows(server.store) if r["sop_uid"] == rs.uids(part)[2]] == ["site2"]
    reader = rs.new_token(server.store, "sponsor", "read-all")  # the sponsor-wide reader
    with server.client(reader) as c:
        assert c.get("/dicomweb/studies").status_code == 200
        assert c.post("/dicomweb/studies", content=body, headers=headers).status_code == 403
    listing = rs.cli(server.store, "--list-tokens").stdout
    assert "site2" in listing and "revoked" in listing and site2 not in listing and reader not in listing
    stored = (server.store / "tokens.json").read_text()
    assert site2 not in stored and reader not in stored and hashlib.sha256(site2.encode()).hexdigest() in stored


def test_secrets_and_phi_never_reach_the_logs(server, client):
    client.get("/dicomweb/studies?token=query-secret-123&PatientName=Doe")
    logs = server.logs()
    assert SITE1 not in logs and "query-secret-123" not in logs and "Doe" not in logs and "Bearer" not in logs
    assert "GET /dicomweb/studies 200" in logs or "GET /dicomweb/studies 204" in logs


def test_the_trial_profile_decides_what_is_allowed(server, client, tmp_path, instances):
    from py_deid.instance import deidentify_bytes
    from py_deid.options import Options, Settings

    settings = Settings(pixels="off", options=Options(retain_device_identity=True))
    kept = deidentify_bytes(instances.raw("CT_small.dcm"), settings, key=rs.KEY).output  # keeps Station Name
    kept = rs.with_new_uids(kept, 60)
    r = post(client, [kept])  # this server runs the Basic Profile with no option
    assert r.status_code == 409
    (item,) = rs.seq(rs.dicom_json(r), "00081198")
    # It declares Retain Device Identity (CID 7050 113109), which this trial does not allow.
    assert rs.value(item, "00081197") == reasons.OPTION_NOT_ALLOWED
    trial = rs.Server(tmp_path / "store", "--token", f"t:{SITE1}", "--option", "retain_device_identity",
                      "--verify-workers", "1", log_name="trial").start()
    try:
        with trial.client(SITE1) as c:
            assert post(c, [kept]).status_code == 200
    finally:
        trial.stop()


def test_verify_judges_declared_options_within_the_trials(samples):
    """The front door checks an instance under the options it declares, and refuses options the trial does not
    allow; trial identifiers written from the configuration are never counted as leftovers."""
    import pydicom
    from io import BytesIO

    from py_deid.instance import deidentify_bytes
    from py_deid.options import Options, Settings, Trial
    from py_deid.verify import check_received

    key = b"declared-options-key-0123456789"
    trial = Trial(sponsor_name="ACME", protocol_id="P1", site_id="S01", site_name="Site", subject_id="S01-7")
    data = samples.bytes("CT_small.dcm")
    kept = deidentify_bytes(data, Settings(options=Options(retain_device_identity=True), trial=trial,
                                           pixels="off"), key)
    ds = pydicom.dcmread(BytesIO(kept.output))
    assert ds.ClinicalTrialSiteID == "S01"
    assert check_received(ds, Options(retain_device_identity=True, retain_safe_private=True)) == []
    refused = check_received(ds, Options())
    assert [f.code for f in refused] == ["option-not-allowed"]
    basic = pydicom.dcmread(BytesIO(deidentify_bytes(data, Settings(trial=trial, pixels="off"), key).output))
    assert check_received(basic, Options(retain_device_identity=True)) == []


def test_only_a_part_that_passed_its_check_is_flushed_early(tmp_path, instances):
    # The fsync of a part starts as soon as its check has passed (overlapping the next checks); a refused
    # part, PHI and all, is never flushed, and process() still makes every stored file durable.
    from py_deid.receiver.storage import Flushes

    from py_deid.options import Options
    from py_deid.receiver.body import SpooledPart
    from py_deid.receiver.config import ReceiverConfig
    from py_deid.receiver.stowrs import process, start
    from py_deid.receiver.storage import Store
    from py_deid.receiver.workers import VerifierPool

    store = Store(tmp_path / "store")
    verifier = VerifierPool(Options(), 0)
    try:
        good, phi = instances.deid("CT_small.dcm"), instances.raw("CT_small.dcm")
        parts = []
        for i, data in enumerate((good, phi)):
            fd, path = store.temp_file(".part")
            with open(fd, "wb") as f:
                f.write(data)
            parts.append(SpooledPart(i, {}, path, len(data)))
        for part in parts:
            start(verifier, part, None, store.syncer)
        assert isinstance(parts[0].synced, Flushes) and parts[1].synced is None
        parts[0].synced.result()
        outcome = process(store, ReceiverConfig(store.root), verifier, parts, site="s", expected_study=None,
                          base_url="https://x/dicomweb")
        assert (outcome.stored, outcome.failed, outcome.status) == (1, 1, 202)
        assert not list(store.tmp_dir.iterdir())
    finally:
        verifier.close()
        store.close()


def test_grouped_checks_judge_each_part_alone(tmp_path, instances):
    # A request's parts are checked in groups by a real worker process: in one group a clean instance, the
    # raw PHI-bearing original, a part that is not DICOM, a part whose temp file is gone (its check raises)
    # and another clean instance. Each part gets its own verdict, in request order; only the clean ones are
    # stored (with the hashes of their own bytes) and only they were flushed early.
    from py_deid.receiver.storage import Flushes

    from py_deid.options import Options
    from py_deid.receiver.body import SpooledPart
    from py_deid.receiver.config import ReceiverConfig
    from py_deid.receiver.stowrs import Batcher, process
    from py_deid.receiver.storage import Store
    from py_deid.receiver.workers import VerifierPool

    store = Store(tmp_path / "store")
    verifier = VerifierPool(Options(), 1)
    try:
        good1, good2 = fresh(instances, 31), fresh(instances, 32)
        datas = [good1, instances.raw(RAW_PHI), b"not a DICOM file", fresh(instances, 33), good2]
        headers = [{}, {"content-type": "application/dicom"}, {"content-type": "text/plain"}, {}, {}]
        parts = []
        for i, (data, h) in enumerate(zip(datas, headers)):
            fd, path = store.temp_file(".part")
            with open(fd, "wb") as f:
                f.write(data)
            parts.append(SpooledPart(i, h, path, len(data)))
        parts[3].path.unlink()  # the check of part 3 finds no file: it fails alone
        batcher = Batcher(verifier, None, store.syncer)
        batcher.EARLY_PARTS = len(parts) + 1  # (all in one group: none goes early to the idle worker)
        for part in parts:
            batcher.add(part)
        batcher.finish()
        assert parts[2].check is None  # not application/dicom: never submitted
        assert len({id(p.check.job) for p in parts if p.check is not None}) == 1  # one group, one worker
        parts[0].check.future.result()
        outcome = process(store, ReceiverConfig(store.root), verifier, parts, site="s", expected_study=None,
                          base_url="https://x/dicomweb")
        assert isinstance(parts[0].synced, Flushes) and isinstance(parts[4].synced, Flushes)
        assert parts[1].synced is None and parts[3].synced is None
        assert (outcome.stored, outcome.failed, outcome.status) == (2, 3, 202)
        refs = rs.seq(outcome.document, "00081199")
        assert [rs.value(i, "00081155") for i in refs] == [rs.uids(good1)[2], rs.uids(good2)[2]]
        assert sorted(outcome.failure_codes) == sorted([reasons.CANNOT_UNDERSTAND, reasons.PROCESSING_FAILURE,
                                                        _phi_reason(verifier, instances)])
        rows = {r["sop_uid"]: r["sha256"] for r in rs.ledger_rows(store.root)}
        assert rows == {rs.uids(good1)[2]: rs.sha256(good1), rs.uids(good2)[2]: rs.sha256(good2)}
        assert not list(store.tmp_dir.iterdir())
    finally:
        verifier.close()
        store.close()


def _phi_reason(verifier, instances) -> int:
    """The reason the verifier gives the raw original when checked alone (the oracle for the grouped check)."""
    from py_deid.options import Options
    from py_deid.receiver.verification import inspect

    _, failure = inspect(instances.raw(RAW_PHI), Options())
    assert failure is not None
    return failure.reason


def test_batches_split_by_size_while_arriving_and_over_the_workers_at_the_end(tmp_path):
    # Grouping only (no checks run): a large part is submitted as soon as it is complete, small ones wait
    # and are spread over the workers when the body is complete.
    from py_deid.receiver.body import SpooledPart
    from py_deid.receiver.stowrs import Batcher

    class Recorder:
        workers = 2

        def __init__(self):
            self.groups = []
            self.busy = 0

        def idle(self):
            return max(1, self.workers - self.busy)

        def free(self):
            return max(0, self.workers - self.busy)

        def submit_batch(self, items, expected_study):
            self.groups.append([path for path, _, _, _ in items])
            return [type("C", (), {"future": None, "cancel": lambda self: None})() for _ in items]

    rec = Recorder()
    batcher = Batcher(rec, None, None)
    big = SpooledPart(0, {}, tmp_path / "big", Batcher.BATCH_BYTES)
    batcher.add(big)
    assert rec.groups == [[str(big.path)]]
    rec.busy = 2  # (every worker busy: small parts wait for the body's end)
    small = [SpooledPart(i, {}, tmp_path / f"s{i}", 1000) for i in range(1, 6)]
    for part in small:
        batcher.add(part)
    assert len(rec.groups) == 1
    rec.busy = 0
    batcher.finish()
    assert rec.groups[1:] == [[str(p.path) for p in small[:3]], [str(p.path) for p in small[3:]]]
    # With every worker busy, what waits goes as one group.
    rec.busy = 2
    for part in small:
        batcher.add(part)
    batcher.finish()
    assert rec.groups[3:] == [[str(p.path) for p in small]]
    # A worker with nothing to do takes EARLY_PARTS as soon as they have arrived (its check overlaps the
    # rest of the body); the rest wait while every worker has a job.
    rec.busy = 1
    early = [SpooledPart(10 + i, {}, tmp_path / f"e{i}", 1000) for i in range(Batcher.EARLY_PARTS + 3)]
    for part in early:
        if len(rec.groups) == 5:
            rec.busy = 2  # (the early group took the free worker)
        batcher.add(part)
        if part is early[Batcher.EARLY_PARTS - 2]:
            assert len(rec.groups) == 4  # one part short: nothing yet
    assert rec.groups[4:] == [[str(p.path) for p in early[:Batcher.EARLY_PARTS]]]
    rec.busy = 0
    batcher.finish()
    assert rec.groups[5:] == [[str(p.path) for p in early[Batcher.EARLY_PARTS:][:2]],
                              [str(p.path) for p in early[Batcher.EARLY_PARTS:][2:]]]


def _spool_in_memory(store, datas, headers=None):
    from py_deid.receiver.body import SpooledBody, SpooledPart

    body = SpooledBody()
    for i, data in enumerate(datas):
        part = SpooledPart(i, (headers or {}), store.temp_name(".part"), len(data), data=data, in_memory=True)
        body.parts.append(part)
        body.hold(part)
    return body


def test_parts_held_in_memory_are_written_only_when_they_pass(tmp_path, instances):
    # In-memory parts travel to a real worker as bytes: the one that passes is written under its temp
    # name (and flushed early by the server), the PHI-bearing original is never written anywhere; the
    # request's held bytes are released once the check answers; the stored file is the part's bytes.
    from py_deid.receiver.storage import Flushes

    from py_deid.options import Options
    from py_deid.receiver.config import ReceiverConfig
    from py_deid.receiver.stowrs import Batcher, process
    from py_deid.receiver.storage import Store
    from py_deid.receiver.workers import VerifierPool

    store = Store(tmp_path / "store")
    verifier = VerifierPool(Options(), 1)
    try:
        good, phi = fresh(instances, 41), instances.raw(RAW_PHI)
        body = _spool_in_memory(store, [good, phi])
        batcher = Batcher(verifier, None, store.syncer, body)
        for part in body.parts:
            batcher.add(part)
        batcher.finish()
        assert all(p.data is None for p in body.parts)  # handed to the job
        body.parts[0].check.future.result()
        deadline = time.monotonic() + 10  # the answer's callbacks run just after result() returns
        while body.parts[0].synced is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert body.held == 0
        assert body.parts[0].path.read_bytes() == good
        assert not body.parts[1].path.exists()
        assert isinstance(body.parts[0].synced, Flushes) and body.parts[1].synced is None
        outcome = process(store, ReceiverConfig(store.root), verifier, body.parts, site="s", expected_study=None,
                          base_url="https://x/dicomweb")
        assert (outcome.stored, outcome.failed, outcome.status) == (1, 1, 202)
        study, series, sop = rs.uids(good)
        assert store.instance_path(study, series, sop).read_bytes() == good
        assert not list(store.tmp_dir.iterdir())
        stored = [p for p in store.instances_dir.rglob("*") if p.is_file()]
        assert stored == [store.instance_path(study, series, sop)]
    finally:
        verifier.close()
        store.close()


def test_a_discarded_request_leaves_no_file_behind_a_running_check(tmp_path, instances):
    # A refused body is discarded while its parts' check may still run in a worker: whatever that worker
    # writes afterwards is removed when it answers.
    from py_deid.options import Options
    from py_deid.receiver.stowrs import start_batch
    from py_deid.receiver.storage import Store
    from py_deid.receiver.workers import VerifierPool

    store = Store(tmp_path / "store")
    verifier = VerifierPool(Options(), 1)
    try:
        body = _spool_in_memory(store, [fresh(instances, 50 + i) for i in range(30)])
        checks = start_batch(verifier, body.parts, None, store.syncer, body)
        body.discard()
        running = not checks[0].future.done()
        try:
            checks[0].future.result()
        except BaseException:  # noqa: BLE001 - cancelled before it ran: nothing written either
            pass
        store.syncer.close()  # flushes started by the answer have finished
        # result() returns as soon as the answer is set; the future's callbacks (the removal among them) run
        # right after, in the pool's thread: give them a moment
        deadline = time.monotonic() + 30
        while list(store.tmp_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not list(store.tmp_dir.iterdir()), f"files left (check was running: {running})"
    finally:
        verifier.close()
        store.close()


def test_a_part_that_passes_but_cannot_be_written_fails_alone(tmp_path, instances):
    # The worker writes an in-memory part only when its check passes; a write that fails (here: its folder
    # is gone) fails that part with a reason, named by its UIDs, and the others keep their verdicts.
    from py_deid.inflate import DEFAULT_LIMITS
    from py_deid.options import Options
    from py_deid.receiver.workers import run_batch

    good, phi, other = fresh(instances, 61), instances.raw(RAW_PHI), fresh(instances, 62)
    targets = [tmp_path / "gone" / "a.part", tmp_path / "b.part", tmp_path / "c.part"]
    out = run_batch([(d, 0, len(d), str(t)) for d, t in zip((good, phi, other), targets)], None, Options(),
                    DEFAULT_LIMITS)
    (ident0, failure0, _, _), (_, failure1, _, _), (_, failure2, digest2, _) = out
    assert failure0 is not None and failure0.reason == reasons.PROCESSING_FAILURE
    assert ident0.sop_uid == rs.uids(good)[2]
    assert failure1 is not None and not targets[1].exists()  # refused: never written
    assert failure2 is None and targets[2].read_bytes() == other and digest2 == rs.sha256(other)
