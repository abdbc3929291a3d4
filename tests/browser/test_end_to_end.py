"""Drop real files into the page; check what the receiver stored and every request the browser made."""

from __future__ import annotations

from io import BytesIO

import pydicom
import pytest

from . import corpus, native
from .conftest import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KEY = bytes(range(100, 132))
# site_id left out: the receiver's residual check rejects a filled Clinical Trial Site ID (0012,0030), see the report.
TRIAL = {"sponsor_name": "ACME Trials", "protocol_id": "PROT-7", "subject_id": "SUBJ-001"}
TRIAL_ATTRS = {k.replace("_", "-"): v for k, v in TRIAL.items()}


def _all_files(*roots):
    out = []
    for root in roots:
        out += [p for p in sorted(root.rglob("*")) if p.is_file()] if root.is_dir() else [root]
    return out


def test_drop_files_and_cd_folder_end_to_end(receiver, session_factory, samples, tmp_path, artifacts):
    cd = corpus.cd_layout(samples, tmp_path)
    loose = corpus.loose_files(samples, tmp_path)
    s = session_factory(receiver.url + "/")
    s.uploader(token=TOKEN, **TRIAL_ATTRS)
    s.set_key(KEY)
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(p) for p in loose])
    s.wait_complete(1)
    s.page.set_input_files("deid-uploader >> #folder", str(cd))
    summary = s.wait_complete(2)
    s.page.screenshot(path=str(artifacts / "browser-end-to-end.png"), full_page=True)

    inputs = _all_files(*loose, cd)
    expected = native.deidentify(inputs, native.settings(**TRIAL), KEY)
    rows = {r["name"].split("/")[-1]: r for r in s.rows()}
    assert len(rows) == len(inputs)
    for path, result in expected.items():
        row = rows[path.name]
        want = {"done": {"uploaded", "already-uploaded"}, "skipped": {"skipped"}, "failed": {"failed"}}[result.status]
        assert row["status"] in want, (path.name, row, result.problem)
        if result.status != "done":
            assert row["detail"] == result.problem.message  # the same reason as the CLI gives
    for name in ("DICOMDIR", "VIEWER.EXE", "AUTORUN.INF", "notes.txt"):
        assert rows[name]["status"] == "skipped" and rows[name]["detail"], rows[name]
    assert "DICOMDIR" in rows["DICOMDIR"]["detail"]
    assert rows["VIEWER.EXE"]["detail"] == "not a DICOM file"

    # The receiver holds exactly the instances the native core produces, byte for byte (same core, same key).
    stored = receiver.stored()
    done = {r.sop_uid: r for r in expected.values() if r.status == "done"}
    sources = {r.sop_uid: p for p, r in expected.items() if r.status == "done"}
    source = {sop: p.name for sop, p in sources.items()}
    assert set(stored) == set(done)
    assert len(done) >= 10
    for sop, path in stored.items():
        data = path.read_bytes()
        ds = pydicom.dcmread(BytesIO(data))
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.ClinicalTrialSubjectID == "SUBJ-001" and ds.ClinicalTrialProtocolID == "PROT-7"
        for planted in corpus.PLANTED_STRINGS:
            assert planted.encode() not in data, (sop, planted)
        diff = native.differences(data, done[sop].output)
        if diff == ["(7FE0,0010)"] and done[sop].pixels and done[sop].pixels.get("cleaned"):
            # Burned-in text masked: the header is identical; the masks must cover at least what native masked.
            missing, extra = native.masks(sources[sop].read_bytes(), data, done[sop].output)
            assert missing == 0, f"{source[sop]}: the browser left {missing} pixels native masked"
            print(f"{source[sop]}: browser masked {extra} pixels beyond native (OCR engines differ)")
            continue
        assert diff == [], f"browser output differs from the native core ({source[sop]})"
        assert data == done[sop].output  # and byte for byte

    counts = summary["counts"]
    assert counts["uploaded"] == len(done) and counts["failed"] == sum(r.status == "failed" for r in expected.values())
    assert all(corpus.PLANTED_FILE_NAME not in str(e) for e in s.events())  # events never carry file names

    # Every request went to the page's own origin; none carried a planted value or a file name.
    assert s.requests, "no request recorded"
    for req in s.requests:
        assert req.url.startswith(receiver.url + "/"), req.url
        blob = (req.url + repr(req.headers)).encode() + req.body
        for planted in corpus.PLANTED_STRINGS + [corpus.PLANTED_FILE_NAME]:
            assert planted.encode() not in blob, (req.url, planted)
    posts = [r for r in s.requests if r.method == "POST"]
    assert posts and all(r.url == receiver.url + "/dicomweb/studies" for r in posts)
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in posts)
    for line in s.console:
        assert not any(p in line for p in corpus.PLANTED_STRINGS + [corpus.PLANTED_FILE_NAME]), line
