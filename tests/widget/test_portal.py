"""The example portal on one origin, the widget's assets on a second, the receiver on a third: a full upload under
the portal's strict CSP (exactly the documented one), the events the portal saw, the token provider, destroy()."""

from __future__ import annotations

import json
import shutil
from io import BytesIO

import pydicom
import pytest

from tests.browser import corpus

from .portal_page import PortalPage
from .servers import PSEUDONYM_KEY, WRONG_TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EVENT_KEYS = {
    "deid-file": {"index", "status", "code", "message", "modality", "sopUid"},
    "deid-uploaded": {"index", "sopUid", "status"},
    "deid-complete": {"counts", "skipped", "failed", "excluded", "seconds", "reviewSeconds", "inputBytes", "signoff",
                      "certificate"},
    "deid-error": {"name", "code", "message"},
}
STARTUP_KEYS = {"phase", "stage", "state", "ms"}
RUN_KEYS = {"phase", "state", "counts", "inputBytes", "totalBytes", "seconds", "reviewSeconds", "filesPerSecond",
            "bytesPerSecond"}
COUNT_KEYS = {"total", "processed", "uploaded", "alreadyUploaded", "deidentified", "awaitingReview", "excluded", "skipped",
              "failed"}
STATUS_ORDER = ["deidentifying", "uploading", "uploaded"]


def inputs(samples, tmp_path):
    """A CT with planted PHI (PHI in its file name too), an MR with private tags, the burned-in ultrasound, a note."""
    root = tmp_path / "cd"
    root.mkdir()
    files = [corpus.plant(samples.path("CT_small.dcm"), root / corpus.PLANTED_FILE_NAME),
             corpus.plant(samples.path("siemens_dwi_1000.dcm"), root / "ZQXPLANT_mr.dcm"),
             shutil.copyfile(samples.path("GREYSCALE_IMAGE.dcm"), root / "us_burned_in.dcm")]
    (root / "notes.txt").write_text("scanned at the clinic\n")
    return [*map(type(root), files), root / "notes.txt"]


def worker_targets(browser) -> list[str]:
    """Every worker target Chromium knows (dedicated workers, nested ones included), by CDP."""
    cdp = browser.new_browser_cdp_session()
    try:
        cdp.send("Target.setDiscoverTargets", {"discover": True})
        return [t["url"] for t in cdp.send("Target.getTargets")["targetInfos"] if t["type"] == "worker"]
    finally:
        cdp.detach()


def check_order(events: list[dict]) -> None:
    """The documented order: start-up progress, per file statuses in order, each upload followed by its
    deid-uploaded, a final run progress, deid-complete last."""
    types = [e["type"] for e in events]
    assert types[-1] == "deid-complete" and types.count("deid-complete") == 1
    assert types[-2] == "deid-progress" and events[-2]["detail"]["phase"] == "run"
    assert events[-2]["detail"]["counts"] == events[-1]["detail"]["counts"]
    first_file = types.index("deid-file")
    assert events[0]["type"] == "deid-progress" and events[0]["detail"]["phase"] == "startup"
    runtime_done = [i for i, e in enumerate(events) if e["type"] == "deid-progress"
                    and e["detail"].get("stage") == "packages" and e["detail"]["state"] == "done"]
    assert runtime_done and runtime_done[0] < types.index("deid-uploaded")
    per_file: dict[int, list[str]] = {}
    for i, e in enumerate(events):
        d = e["detail"]
        if e["type"] == "deid-file":
            per_file.setdefault(d["index"], []).append(d["status"])
            if d["status"] == "uploaded":
                nxt = events[i + 1]
                assert nxt["type"] == "deid-uploaded" and nxt["detail"] == {"index": d["index"], "sopUid": d["sopUid"],
                                                                           "status": "uploaded"}
        elif e["type"] == "deid-uploaded":
            assert events[i - 1]["type"] == "deid-file" and events[i - 1]["detail"]["index"] == d["index"]
    for index, statuses in per_file.items():
        if statuses[-1] in ("skipped", "failed"):
            assert statuses == [statuses[-1]] or statuses[:-1] == ["deidentifying"], (index, statuses)
        else:
            assert statuses == STATUS_ORDER, (index, statuses)
    assert first_file > 0


def check_payloads(events: list[dict]) -> None:
    for e in events:
        d = e["detail"]
        if e["type"] == "deid-progress":
            assert set(d) == (STARTUP_KEYS if d["phase"] == "startup" else RUN_KEYS), d
            if d["phase"] == "run":
                assert set(d["counts"]) == COUNT_KEYS
        elif e["type"] in EVENT_KEYS:
            assert set(d) - {"settings"} == EVENT_KEYS[e["type"]], (e["type"], d)
        if e["type"] == "deid-complete":
            assert set(d["counts"]) == COUNT_KEYS


def test_portal_upload_three_origins(context, browser, portal, assets, dicomweb, samples, tmp_path, artifacts):
    files = inputs(samples, tmp_path)
    portal.wrong_tokens = 1  # the portal's first token is stale: the receiver answers 401
    p = PortalPage(context, portal.origin + "/portal.html")
    p.ready()
    assert p.evaluate("() => window.SponsorPortal.events.length") > 0  # start-up progress reached the portal
    p.add_files(files)
    summary = p.wait_complete()
    p.page.screenshot(path=str(artifacts / "widget-portal.png"), full_page=True)

    # What arrived: the three images, de-identified under the portal's profile with its trial identifiers.
    c = summary["counts"]
    assert (c["total"], c["uploaded"], c["skipped"], c["failed"]) == (4, 3, 1, 0), summary
    assert list(summary["skipped"]) == ["not-dicom: not a DICOM file"]
    stored = dicomweb.stored()
    assert len(stored) == 3
    modalities = set()
    for sop, path in stored.items():
        data = path.read_bytes()
        ds = pydicom.dcmread(BytesIO(data))
        assert ds.SOPInstanceUID == sop and ds.PatientIdentityRemoved == "YES"
        assert (ds.ClinicalTrialSponsorName, ds.ClinicalTrialProtocolID, ds.ClinicalTrialSubjectID,
                ds.ClinicalTrialTimePointID) == ("ACME Pharma", "ACME-042", "017-0002", "W12")
        for planted in corpus.PLANTED_STRINGS:
            assert planted.encode() not in data, planted
        modalities.add(ds.Modality)
    assert modalities == {"CT", "MR", "US"}

    # The token provider: asked before the upload, asked again after the stale token was refused, then the upload
    # went through. (The exact reasons, ["upload", "unauthorized"], are checked in test_config with a small body:
    # a receiver that answers 401 before reading a large body can reach the browser as a reset connection, which
    # the uploader retries, asking the provider again with reason "upload".)
    assert portal.token_requests[0] == "upload" and len(portal.token_requests) >= 2, portal.token_requests
    assert set(portal.token_requests) <= {"upload", "unauthorized"}
    assert p.evaluate("() => window.SponsorPortal.tokenRequests") == len(portal.token_requests)

    # The events the portal listened to: documented order and payloads, no PHI, no error.
    events = p.events()
    check_order(events)
    check_payloads(events)
    assert not [e for e in events if e["type"] == "deid-error"], events
    text = json.dumps(events)
    for secret in [*corpus.PLANTED_STRINGS, *(f.name for f in files), WRONG_TOKEN, PSEUDONYM_KEY, "cd/"]:
        assert secret not in text, secret
    uploaded = {e["detail"]["sopUid"] for e in events if e["type"] == "deid-uploaded"}
    assert uploaded == set(stored)

    # The page under the documented CSP: nothing refused, every request to one of the three origins.
    assert not p.csp_violations(), p.console
    origins = {portal.origin, assets.url, dicomweb.url}
    strays = [u for u in p.requests if not u.startswith(("blob:", "data:")) and "/".join(u.split("/")[:3]) not in origins]
    assert not strays, strays
    assert p.evaluate("() => document.getElementById('submit-visit').disabled") is False
    assert p.evaluate("() => !window.SponsorPortal.submitted")  # the widget's buttons never submit the portal form

    # destroy(): every worker, the OCR workers inside them included, is gone.
    assert len(worker_targets(browser)) >= 2  # a de-identification worker and its OCR worker
    p.evaluate("() => document.getElementById('uploader').destroy()")
    p.page.wait_for_function("() => true")
    for _ in range(50):
        if not worker_targets(browser):
            break
        p.page.wait_for_timeout(100)
    assert worker_targets(browser) == []
    assert p.evaluate("() => document.getElementById('uploader').state") == "destroyed"
    err = p.evaluate("() => document.getElementById('uploader').addFiles([new File(['x'], 'a.dcm')]).then(() => null, (e) => e.name)")
    assert err == "Destroyed"
