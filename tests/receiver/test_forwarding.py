"""Forwarding to a real Orthanc (Debian orthanc + orthanc-dicomweb) by STOW-RS, through downtime of either side."""

from __future__ import annotations

import sqlite3
import time

import pytest

from py_deid import stow

from . import receiver_support as rs
from .conftest import SITE1

pytestmark = pytest.mark.slow
needs_orthanc = pytest.mark.skipif(not rs.Orthanc.available(), reason="Debian packages orthanc, orthanc-dicomweb")


def _queue(store) -> dict[str, int]:
    db = sqlite3.connect(store / "ledger.sqlite")
    try:
        return dict(db.execute("SELECT state, count(*) FROM forward_queue GROUP BY state").fetchall())
    finally:
        db.close()


def _attempts(store) -> int:
    """The fewest forwarding attempts among the instances still queued."""
    db = sqlite3.connect(store / "ledger.sqlite")
    try:
        return db.execute("SELECT min(attempts) FROM forward_queue WHERE state = 'queued'").fetchone()[0] or 0
    finally:
        db.close()


def _wait(predicate, timeout=60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _upload(srv, parts) -> None:
    with srv.client(SITE1) as c:
        ctype, body = stow.encode(parts)
        r = c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text


@needs_orthanc
def test_forwarding_through_downtime_of_both_sides(tmp_path, instances):
    orthanc = rs.Orthanc(tmp_path / "orthanc")  # not started yet: the upstream is down
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", "--forward-url", orthanc.dicomweb,
                    "--forward-backoff", "0.2", "--forward-backoff-max", "1", "--forward-batch", "2",
                    log_name="fwd").start()
    try:
        first = [rs.with_new_uids(instances.deid("CT_small.dcm"), 600 + i) for i in range(3)]
        first += [rs.with_new_uids(instances.deid("MR_small_RLE.dcm"), 600 + i) for i in range(2)]
        _upload(srv, first)
        assert _wait(lambda: _attempts(srv.store) >= 2)  # retried while Orthanc is down
        assert _queue(srv.store) == {"queued": 5}

        srv.kill9()  # the receiver goes down too; then Orthanc comes up while it is down
        orthanc.start()
        assert orthanc.instances() == []
        srv.start()  # the queue is in the ledger: forwarding resumes
        assert _wait(lambda: _queue(srv.store) == {"done": 5})
        assert sorted(orthanc.sop_uids()) == sorted(rs.uids(p)[2] for p in first)
        for p in first:  # the upstream received the very bytes that were verified and stored here
            assert orthanc.file_sha256(rs.uids(p)[2]) == rs.sha256(p)

        orthanc.stop()  # Orthanc down for a while: new instances wait ...
        second = [rs.with_new_uids(instances.deid("JPEG2000.dcm"), 650 + i) for i in range(3)]
        _upload(srv, second)
        assert _wait(lambda: _queue(srv.store).get("queued") == 3)
        assert _wait(lambda: _attempts(srv.store) >= 2)  # the forwarder tried them twice and failed ...
        assert _queue(srv.store) == {"done": 5, "queued": 3}  # ... and kept them queued
        orthanc.start()  # ... and go when it is back
        assert _wait(lambda: _queue(srv.store) == {"done": 8})
        assert sorted(orthanc.sop_uids()) == sorted(rs.uids(p)[2] for p in first + second)

        # A crash between Orthanc's answer and our commit means sending again: still stored once upstream.
        srv.stop()
        db = sqlite3.connect(srv.store / "ledger.sqlite")
        db.execute("UPDATE forward_queue SET state = 'queued' WHERE id IN (1, 2, 7)")
        db.commit()
        db.close()
        srv.start()
        assert _wait(lambda: _queue(srv.store) == {"done": 8})
        uids = orthanc.sop_uids()
        assert len(uids) == 8 and len(set(uids)) == 8

        # Duplicates sent to the receiver are not forwarded again: a new instance sent after them is
        # forwarded (the queue goes in order), and by then nothing else was.
        _upload(srv, first[:2])
        last = rs.with_new_uids(instances.deid("CT_small.dcm"), 699)
        _upload(srv, [last])
        assert _wait(lambda: _queue(srv.store) == {"done": 9})
        assert len(orthanc.instances()) == 9 and rs.uids(last)[2] in orthanc.sop_uids()
        with srv.client(SITE1) as c:
            status = c.get("/receiver/status").json()
        assert status["stored"] == 9 and status["forwarding"] == {"done": 9}
        assert SITE1 not in srv.logs()
    finally:
        srv.stop()
        orthanc.stop()


def test_forwarding_to_an_https_upstream_with_its_own_token(tmp_path, instances):
    """Upstream over HTTPS (another receiver: it verifies again), its CA and a token read from a file."""
    upstream = rs.Server(tmp_path / "up", "--token", "sponsor:upstream-token-77", "--verify-workers", "1",
                         log_name="up").start()
    token_file = tmp_path / "upstream.token"
    token_file.write_text("upstream-token-77\n")
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", "--verify-workers", "1",
                    "--forward-url", upstream.base, "--forward-ca", upstream.ca,
                    "--forward-token-file", str(token_file), log_name="down").start()
    try:
        parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 680 + i) for i in range(3)]
        _upload(srv, parts)
        assert _wait(lambda: _queue(srv.store) == {"done": 3})
        rows = rs.ledger_rows(upstream.store)
        assert sorted(r["sop_uid"] for r in rows) == sorted(rs.uids(p)[2] for p in parts)
        assert {r["site"] for r in rows} == {"sponsor"} and {r["sha256"] for r in rows} == {rs.sha256(p) for p in parts}
        assert "upstream-token-77" not in srv.logs() + upstream.logs()
    finally:
        srv.stop()
        upstream.stop()
