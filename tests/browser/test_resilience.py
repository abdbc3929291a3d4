"""Faults: the receiver goes away mid-upload and comes back; a reload and re-drop; a worker that dies mid-file."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from . import corpus
from .conftest import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KEY = bytes(range(7, 39))


def _wait_event(s, kind: str, count: int = 1, timeout: float = 120) -> None:
    s.page.wait_for_function(f"() => window.__events.filter(e => e.type === '{kind}').length >= {count}",
                             timeout=timeout * 1000)


def test_receiver_down_mid_upload_everything_arrives_exactly_once(receiver, session_factory, samples, tmp_path):
    files = corpus.ct_series(samples, tmp_path, 80)
    s = session_factory(receiver.url + "/")
    s.uploader(token=TOKEN)
    s.set_key(KEY)
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(p) for p in files])
    _wait_event(s, "deid-uploaded")
    receiver.stop()  # the network fails mid-upload
    time.sleep(3)
    receiver.start()  # same port, same store
    summary = s.wait_complete()
    assert summary["counts"]["uploaded"] == 80 and summary["counts"]["failed"] == 0, summary
    stored = receiver.stored()
    assert len(stored) == 80
    assert any(f.startswith("POST ") for f in s.failed), "the outage did not hit an upload"
    log = receiver.received_log()
    if log is not None:  # the stub logs every part it was sent
        assert {e["sop"] for e in log} == set(stored)
        assert all(e["same"] for e in log if e["duplicate"])  # a resend (lost ack) is the same bytes
    posts_before = sum(r.method == "POST" for r in s.requests)

    # A reload, then the same files again: the page knows what was acknowledged and sends nothing twice.
    s.page.reload()
    s.uploader(token=TOKEN)
    s.set_key(KEY)
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(p) for p in files])
    summary = s.wait_complete()
    assert summary["counts"]["alreadyUploaded"] == 80, summary
    assert sum(r.method == "POST" for r in s.requests) == posts_before
    assert len(receiver.stored()) == 80
    # What the page keeps across reloads carries no PHI: only output UIDs and hashes.
    kept = s.page.evaluate("""() => new Promise((resolve) => {
        const req = indexedDB.open('py-deid-uploads');
        req.onsuccess = () => {
            const all = req.result.transaction('acknowledged').objectStore('acknowledged').getAll();
            all.onsuccess = () => resolve(all.result);
        };
    })""")
    assert len(kept) == 80 and set(kept[0]) == {"id", "sha256", "at"}
    assert all(k["id"].split("|")[1] in stored for k in kept)
    # each hash is the sha256 of the bytes stored (the page digests the outputs: web/src/pool.js sha256Hex)
    assert all(k["sha256"] == hashlib.sha256(stored[k["id"].split("|")[1]].read_bytes()).hexdigest() for k in kept)


def test_worker_crash_fails_that_file_and_the_batch_goes_on(receiver_hooks, session_factory, samples, tmp_path):
    good = corpus.ct_series(samples, tmp_path, 4)
    files = [good[0], corpus.crash_file(tmp_path, "HANG"), good[1], corpus.crash_file(tmp_path, "EXIT"), good[2], good[3]]
    s = session_factory(receiver_hooks.url + "/")
    s.uploader(token=TOKEN, **{"file-timeout": "6000"})
    s.set_key(KEY)
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(p) for p in files])
    summary = s.wait_complete(timeout=180)
    rows = {r["name"]: r for r in s.rows()}
    for mode in ("hang", "exit"):
        row = rows[f"crash_{mode}.dcm"]
        assert row["status"] == "failed" and "worker" in row["detail"], row
    assert summary["counts"]["uploaded"] == 4, summary
    assert len(receiver_hooks.stored()) == 4


def test_production_build_has_no_test_hooks(dist, dist_hooks):
    assert json.loads((dist / "manifest.json").read_text())["test_hooks"] is False
    assert '"testHooks": false' in (dist / "app" / "build-info.js").read_text()
    assert '"testHooks": true' in (dist_hooks / "app" / "build-info.js").read_text()
