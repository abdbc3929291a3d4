"""Crashes: kill -9 the server in the middle of a large request, restart, resend. The store must hold each
instance exactly once, no partial file and no ledger row without its file."""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest

from py_deid import stow
from py_deid.receiver.storage import Store

from . import receiver_support as rs
from .conftest import SITE1


def test_recover_settles_every_crash_state(tmp_path, instances):
    """The states a crash can leave between the steps of a commit, made by hand, then recover()."""
    store = Store(tmp_path / "store")
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 700 + i) for i in range(4)]

    def row(part, state):
        study, series, sop = rs.uids(part)
        with store.ledger.transaction() as db:
            db.execute("INSERT INTO instances (sop_uid, study_uid, series_uid, sop_class_uid, modality, "
                       "transfer_syntax, sha256, size, site, received, state) VALUES "
                       "(?, ?, ?, '1.2.840.10008.5.1.4.1.1.2', 'CT', "
                       "'1.2.840.10008.1.2.1', ?, ?, 'site', 0, ?)",
                       (sop, study, series, rs.sha256(part), len(part), state))
        return store.instance_path(study, series, sop)

    done = row(parts[0], "stored")  # committed before the crash
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_bytes(parts[0])
    renamed = row(parts[1], "pending")  # crashed after the rename, before the row was marked stored
    renamed.write_bytes(parts[1])
    row(parts[2], "pending")  # crashed before the rename: no file
    torn = row(parts[3], "pending")  # a file that is not what the row says (cannot come from a rename)
    torn.write_bytes(parts[3][:1000])
    (store.tmp_dir / "abc.dcm").write_bytes(parts[2][:500])  # a temp copy and a spooled body
    (store.tmp_dir / "def.body").write_bytes(b"--b\r\n")
    report = store.recover()
    assert report == {"temp_removed": 2, "pending_kept": 1, "pending_dropped": 2, "packs_removed": 0,
                      "pack_rows_restored": 0}
    rows = {r["sop_uid"]: r["state"] for r in rs.ledger_rows(store.root)}
    assert rows == {rs.uids(parts[0])[2]: "stored", rs.uids(parts[1])[2]: "stored"}
    assert rs.stored_files(store.root) == sorted([done, renamed])
    assert not list(store.tmp_dir.iterdir())
    store.close()


def _consistent(store_dir, parts=None) -> None:
    rows = rs.ledger_rows(store_dir)
    assert all(r["state"] == "stored" for r in rows)
    stored = rs.stored_bytes(store_dir)  # no file or pack without a row, no row without its bytes
    assert sorted(stored) == sorted(r["sop_uid"] for r in rows)
    for r in rows:
        assert rs.sha256(stored[r["sop_uid"]]) == r["sha256"]  # no partial instance
    assert not list((store_dir / "tmp").iterdir())
    if parts is not None:
        assert sorted(r["sop_uid"] for r in rows) == sorted(rs.uids(p)[2] for p in parts)
        assert {r["sha256"] for r in rows} == {rs.sha256(p) for p in parts}


@pytest.fixture()
def large_request(instances):
    # 30 real ultrasound instances (de-identified, ~0.9 MB each): a ~28 MB request
    base = instances.deid("US1_UNCR.dcm")
    parts = [rs.with_new_uids(base, 800 + i) for i in range(30)]
    return parts, stow.encode(parts)


def _send(srv, ctype, body, pace: float = 0.0):
    def chunks():
        for i in range(0, len(body), 256 * 1024):
            time.sleep(pace)
            yield body[i:i + 256 * 1024]
    try:
        with srv.client(SITE1) as c:
            return c.post("/dicomweb/studies", content=chunks(), headers={"Content-Type": ctype})
    except httpx.HTTPError:
        return None  # the server was killed under us


def _spooled(tmp) -> int:
    total = 0
    for p in tmp.iterdir():
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


def _wait_for(predicate, timeout=60.0, step=0.002):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.mark.slow
def test_kill_during_upload_restart_resend(tmp_path, large_request):
    parts, (ctype, body) = large_request
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", log_name="fault1").start()
    tmp, packs = srv.store / "tmp", srv.store / "packs"
    sender = threading.Thread(target=_send, args=(srv, ctype, body, 0.01))
    sender.start()
    # (parts under 1 MiB: held in memory, and in the request's pack once they passed)
    assert _wait_for(lambda: _spooled(tmp) + _spooled(packs) > 8 * 2**20)
    srv.kill9()
    sender.join()
    assert any(tmp.iterdir()) or rs.pack_files(srv.store)  # the crash left parts of the body behind ...
    srv.start()
    _consistent(srv.store)  # ... which the restart removed; nothing was stored
    assert not any(packs.iterdir())
    assert rs.ledger_rows(srv.store) == []
    r = _send(srv, ctype, body)
    assert r is not None and r.status_code == 200
    _consistent(srv.store, parts)
    srv.stop()


@pytest.mark.slow
def test_kill_while_storing_restart_resend(tmp_path, instances):
    # 5 real MR volumes of 23 MB (de-identified): verifying them takes the workers about a second.
    base = instances.deid("philips_mprage.dcm")
    parts = [rs.with_new_uids(base, 850 + i) for i in range(5)]
    ctype, body = stow.encode(parts)
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", log_name="fault2").start()
    tmp = srv.store / "tmp"
    sender = threading.Thread(target=_send, args=(srv, ctype, body))
    sender.start()
    # The whole body has arrived (every part in tmp/) and is being verified and stored: kill now.
    assert _wait_for(lambda: _spooled(tmp) >= sum(map(len, parts)))
    srv.kill9()
    sender.join()
    srv.start()
    _consistent(srv.store)
    stored_before = len(rs.ledger_rows(srv.store))
    r = _send(srv, ctype, body)
    assert r is not None and r.status_code == 200
    assert len(rs.seq(rs.dicom_json(r), "00081199")) == len(parts)
    _consistent(srv.store, parts)
    assert stored_before < len(parts)
    srv.stop()


def test_an_unflushed_ledger_transaction_leaves_the_ledger_flushing(tmp_path):
    # The pending rows of a commit are not flushed (the stored rows' flushed commit covers them); the
    # connection goes back to synchronous=FULL after it, also when it fails.
    from py_deid.receiver.ledger import Ledger

    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        with ledger.transaction(flush=False) as db:
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        with pytest.raises(RuntimeError):
            with ledger.transaction(flush=False):
                raise RuntimeError("x")
        assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        ledger.close()


def test_transactions_switch_no_pragma_and_see_each_other(tmp_path):
    # The unflushed transactions run on a connection kept at synchronous=NORMAL, not by switching the shared
    # one back and forth (two PRAGMA statements a request); what they commit is read by the other at once.
    from py_deid.receiver.ledger import Ledger

    ledger = Ledger(tmp_path / "ledger.sqlite")
    statements: list[str] = []
    try:
        for connection in {id(c): c for c in (ledger._db, getattr(ledger, "_unflushed", ledger._db))}.values():
            connection.set_trace_callback(statements.append)
        row = ("1.2.3", "1.2", "1.2.4", "1.2.5", "CT", "1.2.840.10008.1.2.1", "ab" * 32, 10, "s", 0.0)
        with ledger.transaction(flush=False) as db:
            db.execute("INSERT INTO instances (sop_uid, study_uid, series_uid, sop_class_uid, modality, "
                       "transfer_syntax, sha256, size, site, received, state) VALUES "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')", row)
        assert ledger.hashes(["1.2.3"]) == {"1.2.3": "ab" * 32}
        ledger.mark_stored("1.2.3", forward=False)  # a flushed transaction after it
        assert ledger.stored_count() == 1
        assert not [s for s in statements if s.upper().startswith("PRAGMA")]
    finally:
        ledger.close()


def test_kill_with_packs_created_ahead_restart_resend(tmp_path, instances):
    # The server creates packs ahead of its requests (empty files of packs/, their entries flushed). Killed
    # with some waiting and some just written into: every acknowledged instance survives, the empty and the
    # unacknowledged packs are removed at the restart (no row names them), and a resend stores each
    # instance exactly once.
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 1_200 + i) for i in range(12)]
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", log_name="fault3").start()
    with srv.client(SITE1) as c:
        for i in range(0, 8, 4):
            ctype, body = stow.encode(parts[i:i + 4])
            assert c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype}).status_code == 200
    assert _wait_for(lambda: len(rs.spare_packs(srv.store)) >= 8)  # (16 made after the first request)
    acknowledged = rs.stored_bytes(srv.store)
    assert len(acknowledged) == 8 and len(rs.pack_files(srv.store)) == 2
    spares = len(rs.spare_packs(srv.store))
    ctype, body = stow.encode(parts[8:])
    sender = threading.Thread(target=_send, args=(srv, ctype, body))
    sender.start()
    _wait_for(lambda: len(rs.pack_files(srv.store)) > 2, timeout=10, step=0.0005)  # its pack written into
    srv.kill9()
    sender.join()
    assert rs.spare_packs(srv.store)  # the crash left empty packs behind
    srv.start()
    with srv.client(SITE1) as c:
        recovered = c.get("/receiver/status").json()["recovered"]
    assert recovered["packs_removed"] >= spares - 1  # the empty ones (and the killed request's, if written)
    assert rs.spare_packs(srv.store) == []
    _consistent(srv.store)
    stored = rs.stored_bytes(srv.store)
    assert all(stored[uid] == data for uid, data in acknowledged.items())  # nothing acknowledged is lost
    r = _send(srv, *stow.encode(parts))
    assert r is not None and r.status_code == 200
    _consistent(srv.store, parts)
    srv.stop()
    assert rs.spare_packs(srv.store) == []  # a clean stop removes what was created ahead


HOOK = '''
import os, signal
from py_deid.receiver import storage

_seal = storage.Pack.seal


def seal(self, rows, flush=True):
    _seal(self, rows, flush)
    os.kill(os.getpid(), signal.SIGKILL)  # the record flushed, the ledger's transaction not run


storage.Pack.seal = seal
'''


def test_kill_after_the_pack_s_record_before_the_ledger_restart_resend(tmp_path, instances):
    # The server kills itself (kill -9) right after a request's pack and its record are flushed and before the
    # ledger's transaction that inserts their rows: the client gets no answer, and no row names the pack. At
    # the restart recover() inserts the rows from the record (each range checked against its hash), the
    # instances read back whole, and the resend is stored once (all duplicates). The hook is loaded into the
    # server through sitecustomize, not a switch of the server's own.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 1_300 + i) for i in range(5)]
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", log_name="fault4",
                    env={"PYTHONPATH": f"{hook}{os.pathsep}{rs.REPO}"}).start()
    assert _send(srv, *stow.encode(parts)) is None  # killed before its answer
    srv.proc.wait(timeout=30)
    assert rs.ledger_rows(srv.store) == [] and len(rs.pack_files(srv.store)) == 1
    srv.env = {}
    srv.start()
    with srv.client(SITE1) as c:
        recovered = c.get("/receiver/status").json()["recovered"]
    assert recovered["pack_rows_restored"] == len(parts)
    _consistent(srv.store, parts)
    r = _send(srv, *stow.encode(parts))
    assert r is not None and r.status_code == 200 and len(r.json()["00081199"]["Value"]) == len(parts)
    _consistent(srv.store, parts)
    srv.stop()
