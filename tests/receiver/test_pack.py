"""Packs: a request's small instances in one durable file of packs/ (storage.Pack). A committed row always
points at flushed bytes; a pack no row points to is removed; a torn pack is never served in part; a store
written before packs (one file per instance) opens and serves unchanged."""

from __future__ import annotations

import sqlite3
import time

import pytest

from py_deid import stow
from py_deid.receiver.storage import Pack, Store, StoreError

from . import receiver_support as rs
from .conftest import SITE1

ACCEPT_ONE = {"Accept": "application/dicom; transfer-syntax=*"}
ACCEPT_ALL = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}


def _post(client, parts):
    ctype, body = stow.encode(parts)
    return client.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype})


def _process(store, parts, monkeypatch=None):
    """Run a request's in-memory parts through the real verifier and process(), as the app does."""
    from py_deid.options import Options
    from py_deid.receiver.body import SpooledBody, SpooledPart
    from py_deid.receiver.config import ReceiverConfig
    from py_deid.receiver.stowrs import Batcher, process
    from py_deid.receiver.workers import VerifierPool

    verifier = VerifierPool(Options(), 1)
    body = SpooledBody(pack=store.new_pack())
    for i, data in enumerate(parts):
        part = SpooledPart(i, {}, store.temp_name(".part"), len(data), data=data, in_memory=True, pack=body.pack)
        body.parts.append(part)
        body.hold(part)
    try:
        batcher = Batcher(verifier, None, store.syncer, body)
        for part in body.parts:
            batcher.add(part)
        batcher.finish()
        return body, process(store, ReceiverConfig(store.root), verifier, body.parts, site="s", expected_study=None,
                             base_url="https://x/dicomweb")
    finally:
        verifier.close()


def test_a_request_s_instances_share_one_pack_and_read_back_whole(tmp_path, instances):
    store = Store(tmp_path / "store")
    try:
        parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 900 + i) for i in range(5)]
        phi = instances.raw("CT_small.dcm")
        body, outcome = _process(store, [*parts, phi])
        assert (outcome.stored, outcome.failed) == (5, 1)
        rows = rs.ledger_rows(store.root)
        assert {r["pack"] for r in rows} == {body.pack.name}  # one file for the request
        assert rs.pack_files(store.root) == [store.packs_dir / body.pack.name]
        assert rs.stored_files(store.root) == [] and not list(store.tmp_dir.iterdir())
        # The instances one after the other (the refused one not in it), then the pack's record.
        assert max(r["pack_offset"] + r["size"] for r in rows) == sum(map(len, parts))
        assert store._recorded_rows(body.pack.path) == []  # (its rows are all in the ledger)
        assert (store.packs_dir / body.pack.name).stat().st_size > sum(map(len, parts))
        for part, row in zip(parts, sorted(rows, key=lambda r: r["pack_offset"])):
            assert row["sop_uid"] == rs.uids(part)[2] and row["state"] == "stored"
            assert store.has_file(row)
            with store.open_instance(row) as f:
                assert f.read(1000) + f.read() == part  # (read in pieces too)
            assert rs.sha256(part) == row["sha256"]
        # Sent again: all duplicates, so the second request's pack holds no row and is gone at its end.
        body2, outcome = _process(store, parts[:2])
        assert outcome.stored == 2 and not (store.packs_dir / body2.pack.name).exists()
        assert rs.pack_files(store.root) == [store.packs_dir / body.pack.name]
    finally:
        store.close()


@pytest.mark.parametrize("where", ["before the record", "after the record", "a torn record"])
def test_a_crash_before_the_ledger_commit(tmp_path, instances, monkeypatch, where):
    # The process dies before its request's ledger transaction. Before the pack's record was written (or
    # with a record cut short: a power loss during its flush), no row and no whole record: recover() at the
    # next start removes the pack and the client, unanswered, sends again (stored once). After the record
    # was written and flushed: recover() inserts its rows, each checked against its bytes' hash, and the
    # resend is a duplicate (stored once).
    store = Store(tmp_path / "store")
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 920 + i) for i in range(3)]
    _process(store, parts[:1])  # an earlier request, committed: its pack stays
    kept = rs.pack_files(store.root)

    class Killed(BaseException):
        pass

    def dies(*args, **kwargs):
        raise Killed()

    if where == "before the record":
        monkeypatch.setattr(Pack, "seal", dies)
    else:
        monkeypatch.setattr(store.ledger, "transaction", dies)
    monkeypatch.setattr(Pack, "finish", lambda self, keep: None)  # a killed process cleans nothing up
    with pytest.raises(Killed):
        _process(store, parts[1:])
    monkeypatch.undo()
    [orphan] = [p for p in rs.pack_files(store.root) if p not in kept]
    if where == "before the record":
        assert orphan.stat().st_size == sum(map(len, parts[1:]))
    else:
        assert orphan.stat().st_size > sum(map(len, parts[1:]))
    if where == "a torn record":
        with open(orphan, "r+b") as f:
            f.truncate(orphan.stat().st_size - 5)
    store.close()
    store = Store(tmp_path / "store")
    try:
        report = store.recover()
        if where == "after the record":
            assert (report["packs_removed"], report["pack_rows_restored"]) == (0, 2)
            assert sorted(rs.stored_bytes(store.root).values()) == sorted(parts)
            assert all(r["state"] == "stored" for r in rs.ledger_rows(store.root))
        else:
            assert (report["packs_removed"], report["pack_rows_restored"]) == (1, 0)
            assert rs.pack_files(store.root) == kept
            assert sorted(rs.stored_bytes(store.root).values()) == [parts[0]]
        _, outcome = _process(store, parts[1:])  # sent again: stored once
        assert outcome.stored == 2 and len(rs.ledger_rows(store.root)) == 3
        assert sorted(rs.stored_bytes(store.root).values()) == sorted(parts)
    finally:
        store.close()


def test_a_failed_ledger_commit_takes_the_record_back(tmp_path, instances, monkeypatch):
    # The ledger's transaction fails (an error, not a kill): the request fails, and the pack's record is cut
    # before the outcome is known, so a later request may store the same instances and no two records ever
    # name one (recover() would otherwise insert the failed request's rows: here the pack is left as a kill
    # right after the failure would leave it).
    store = Store(tmp_path / "store")
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 1040 + i) for i in range(3)]
    real = store.ledger.transaction

    def failing(flush=True):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store.ledger, "transaction", failing)
    monkeypatch.setattr(Pack, "finish", lambda self, keep: None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            _process(store, parts)
        monkeypatch.setattr(store.ledger, "transaction", real)
        [pack] = rs.pack_files(store.root)
        assert pack.stat().st_size == sum(map(len, parts))  # the instances, no record
        assert store._recorded_rows(pack) == []
        monkeypatch.undo()
        assert store.recover()["packs_removed"] == 1 and rs.ledger_rows(store.root) == []
        _, outcome = _process(store, parts)
        assert outcome.stored == 3
    finally:
        monkeypatch.undo()
        store.close()


def test_a_power_loss_that_takes_the_ledger_s_last_transactions_is_settled_by_the_records(tmp_path, instances):
    # A group of packs alone commits its rows without flushing the ledger: a power loss can take that
    # transaction (and those after it) while the packs, flushed with their records before it, stay. Made by
    # deleting the rows: recover() inserts them again from the records, only rows whose bytes hash right,
    # never a second row for an instance that has one, and with their forwarding entries.
    store = Store(tmp_path / "store")
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 960 + i) for i in range(6)]
    first, _ = _process(store, parts[:3])
    second, _ = _process(store, parts[3:])
    before = rs.ledger_rows(store.root)
    store.close()
    with sqlite3.connect(store.root / "ledger.sqlite") as db:
        db.execute("DELETE FROM instances WHERE pack = ?", (first.pack.name,))
        db.execute("DELETE FROM instances WHERE pack = ? AND pack_offset > 0", (second.pack.name,))
    # The second pack is still named by its first row: recover() leaves it as it is (a transaction is
    # all or nothing: this cannot come from a crash). The first's last instance is damaged: not restored.
    with open(first.pack.path, "r+b") as f:
        f.seek(len(parts[0]) + len(parts[1]) + 500)
        f.write(b"\xff")
    store = Store(tmp_path / "store")
    try:
        report = store.recover(forward=True)
        assert (report["packs_removed"], report["pack_rows_restored"]) == (0, 2)
        rows = {r["sop_uid"]: r for r in rs.ledger_rows(store.root)}
        assert set(rows) == {r["sop_uid"] for r in before if r["pack"] == first.pack.name
                             and r["pack_offset"] < len(parts[0]) + len(parts[1])} | {rs.uids(parts[3])[2]}
        for r in before:
            if r["sop_uid"] in rows:
                assert {k: rows[r["sop_uid"]][k] for k in r} == r
        assert store.ledger.forward_counts() == {"queued": 2}
        assert store.recover()["pack_rows_restored"] == 0  # (once)
    finally:
        store.close()


def test_a_torn_pack_is_never_served_in_part(tmp_path, instances):
    store = Store(tmp_path / "store")
    try:
        parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 940 + i) for i in range(3)]
        body, _ = _process(store, parts)
        rows = sorted(rs.ledger_rows(store.root), key=lambda r: r["pack_offset"])
        path = store.packs_dir / body.pack.name
        # A pack cut short under its rows (what no commit leaves: its bytes are flushed before the rows):
        # the rows whose range is whole still read; the last one is refused, not served in part.
        with open(path, "r+b") as f:
            f.truncate(rows[2]["pack_offset"] + 100)
        assert store.has_file(rows[1]) and not store.has_file(rows[2])
        with store.open_instance(rows[1]) as f:
            assert f.read() == parts[1]
        with pytest.raises(StoreError):
            store.open_instance(rows[2])
        # A torn pack without rows (a request killed while appending): removed by recover().
        torn = store.packs_dir / f"{'ab' * 12}.pack"
        torn.write_bytes(parts[0][:777])
        assert store.recover()["packs_removed"] == 1 and not torn.exists() and path.exists()
        with pytest.raises(StoreError):  # a row's pack name is only ever a pack's name
            store.open_instance({**rows[0], "pack": "../ledger.sqlite"})
    finally:
        store.close()


def test_retrieval_and_forwarding_columns_read_from_the_pack(server, client, instances):
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 960 + i) for i in range(4)]
    assert _post(client, parts).status_code == 200
    rows = {r["sop_uid"]: r for r in rs.ledger_rows(server.store)}
    assert all(rows[rs.uids(p)[2]]["pack"] for p in parts)
    assert len({rows[rs.uids(p)[2]]["pack"] for p in parts}) == 1
    study = rs.uids(parts[0])[0]
    for part in parts:
        _, series, sop = rs.uids(part)
        url = f"/dicomweb/studies/{study}/series/{series}/instances/{sop}"
        assert client.get(url, headers=ACCEPT_ONE).content == part
    whole = client.get(f"/dicomweb/studies/{study}", headers=ACCEPT_ALL)
    assert whole.status_code == 200
    boundary = whole.headers["content-type"].split("boundary=")[1]
    got = [data for _, data in rs.split_multipart(whole.content, boundary)]
    assert sorted(got) == sorted(parts)


OLD_SCHEMA = """
CREATE TABLE instances (
    sop_uid TEXT PRIMARY KEY, study_uid TEXT NOT NULL, series_uid TEXT NOT NULL, sop_class_uid TEXT NOT NULL,
    modality TEXT NOT NULL DEFAULT '', transfer_syntax TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, site TEXT NOT NULL, received REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'stored'))
);
CREATE INDEX instances_study ON instances (study_uid, series_uid);
CREATE TABLE forward_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sop_uid TEXT NOT NULL UNIQUE REFERENCES instances (sop_uid),
    state TEXT NOT NULL CHECK (state IN ('queued', 'done', 'rejected')), attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, last_error TEXT NOT NULL DEFAULT '', updated REAL NOT NULL
);
CREATE TABLE certificates (
    id TEXT PRIMARY KEY, study_uid TEXT NOT NULL, batch TEXT NOT NULL, site TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, received REAL NOT NULL, UNIQUE (study_uid, batch)
);
"""


def test_a_store_written_before_packs_opens_and_serves(tmp_path, instances):
    # The layout of before: no packs/ folder, a ledger without the pack columns, a file per instance.
    root = tmp_path / "store"
    old = rs.with_new_uids(instances.deid("CT_small.dcm"), 980)
    study, series, sop = rs.uids(old)
    (root / "instances" / study / series).mkdir(parents=True)
    (root / "instances" / study / series / f"{sop}.dcm").write_bytes(old)
    (root / "tmp").mkdir()
    db = sqlite3.connect(root / "ledger.sqlite")
    db.executescript(OLD_SCHEMA)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("INSERT INTO instances VALUES (?, ?, ?, '1.2.840.10008.5.1.4.1.1.2', 'CT', '1.2.840.10008.1.2.1', "
               "?, ?, 'site1', ?, 'stored')", (sop, study, series, rs.sha256(old), len(old), time.time()))
    db.commit()
    db.close()
    srv = rs.Server(root, "--token", f"site1:{SITE1}").start()
    try:
        with srv.client(SITE1) as client:
            url = f"/dicomweb/studies/{study}/series/{series}/instances/{sop}"
            assert client.get(url, headers=ACCEPT_ONE).content == old
            new = rs.with_new_uids(instances.deid("CT_small.dcm"), 981)
            assert _post(client, [new, old]).status_code == 200  # the old one: a duplicate
            _, series2, sop2 = rs.uids(new)
            assert client.get(f"/dicomweb/studies/{study}/series/{series2}/instances/{sop2}",
                              headers=ACCEPT_ONE).content == new
            rows = {r["sop_uid"]: r for r in rs.ledger_rows(root)}
            assert rows[sop]["pack"] is None and rows[sop2]["pack"]
        assert rs.stored_bytes(root) == {sop: old, sop2: new}
    finally:
        srv.stop()


def test_a_discarded_request_leaves_no_pack_behind_a_running_check(tmp_path, instances):
    # A refused body is discarded while its parts' check may still run: an answer that comes afterwards
    # finds its pack finished and writes nothing.
    from py_deid.options import Options
    from py_deid.receiver.body import SpooledBody, SpooledPart
    from py_deid.receiver.stowrs import start_batch
    from py_deid.receiver.workers import VerifierPool

    store = Store(tmp_path / "store")
    verifier = VerifierPool(Options(), 1)
    try:
        body = SpooledBody(pack=store.new_pack())
        for i in range(30):
            data = rs.with_new_uids(instances.deid("CT_small.dcm"), 990 + i)
            part = SpooledPart(i, {}, store.temp_name(".part"), len(data), data=data, in_memory=True, pack=body.pack)
            body.parts.append(part)
            body.hold(part)
        checks = start_batch(verifier, body.parts, None, store.syncer, body)
        body.discard()
        try:
            checks[0].future.result()
        except BaseException:  # noqa: BLE001 - cancelled before it ran: nothing written either
            pass
        assert body.parts[0].packed.wait(30)  # the answer's append ran (or will never come)
        assert rs.pack_files(store.root) == [] and not list(store.tmp_dir.iterdir())
        deadline = time.monotonic() + 10  # (released just after the append, in the same callback)
        while body.held and time.monotonic() < deadline:
            time.sleep(0.01)
        assert body.held == 0
    finally:
        verifier.close()
        store.close()


def test_a_request_s_rows_are_written_once_as_stored_after_its_pack_is_flushed(tmp_path, instances, monkeypatch):
    # One ledger transaction per request: the pack's fsync (its instances and its record, in the request's own
    # thread) returns before any row names the pack, and the rows are then inserted once, directly as
    # 'stored' (no 'pending' row, no second transaction, no fsync handed to another thread).
    import os
    import threading

    store = Store(tmp_path / "store")
    real_fsync = os.fsync
    seen = []

    def rows_of(pack_name):
        return [r for r in rs.ledger_rows(store.root) if r["pack"] == pack_name]

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith(".pack"):
            name = os.path.basename(target)
            seen.append(("pack fsync", len(rows_of(name)), threading.get_ident()))
        return real_fsync(fd)

    transactions = []
    real_transaction = store.ledger.transaction

    def recording_transaction(flush=True):
        transactions.append((flush, threading.get_ident()))
        return real_transaction(flush)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(store.ledger, "transaction", recording_transaction)
    try:
        parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 1000 + i) for i in range(3)]
        body, outcome = _process(store, parts)
        assert outcome.stored == 3
        [(_, rows_then, fsync_thread)] = seen
        assert rows_then == 0  # nothing named the pack while it was flushed
        # One transaction, in the thread that flushed, not flushed itself: the pack's record holds its rows.
        assert transactions == [(False, fsync_thread)]
        assert [r["state"] for r in rows_of(body.pack.name)] == ["stored"] * 3
        monkeypatch.undo()
        assert sorted(rs.stored_bytes(store.root).values()) == sorted(parts)
    finally:
        monkeypatch.undo()
        store.close()


def test_a_failed_pack_flush_stores_nothing_and_the_resend_is_stored(tmp_path, instances, monkeypatch):
    # The pack's fsync fails (EIO): no row is written, every part of the request fails with a processing
    # failure, the pack goes at the end of the request, and the same parts sent again are stored once.
    import errno
    import os

    store = Store(tmp_path / "store")
    real_fsync = os.fsync

    def failing_fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".pack"):
            raise OSError(errno.EIO, "injected")
        return real_fsync(fd)

    try:
        parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 1030 + i) for i in range(3)]
        monkeypatch.setattr(os, "fsync", failing_fsync)
        body, outcome = _process(store, parts)
        monkeypatch.undo()
        assert outcome.stored == 0 and outcome.failed == 3
        assert rs.ledger_rows(store.root) == [] and not body.pack.path.exists()
        _, outcome = _process(store, parts)
        assert outcome.stored == 3
        assert sorted(rs.stored_bytes(store.root).values()) == sorted(parts)
    finally:
        monkeypatch.undo()
        store.close()


@pytest.mark.parametrize("torn", [False, True])
def test_pending_pack_rows_of_an_earlier_version_are_settled_by_the_pack_s_bytes(tmp_path, instances, torn):
    # This version writes a pack's rows once, as 'stored'. The version before wrote them 'pending' (flushed)
    # and then 'stored': one killed in between left 'pending' rows of a pack. recover() still keeps each such
    # row whose range of the pack is whole with its hash (the client's resend is then a duplicate), and drops
    # the rows otherwise (a pack torn by a power loss: the resend stores them again).
    store = Store(tmp_path / "store")
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 1010 + i + (10 if torn else 0)) for i in range(3)]
    _process(store, parts)
    store.close()
    with sqlite3.connect(store.root / "ledger.sqlite") as db:
        db.execute("UPDATE instances SET state = 'pending'")
    rows = rs.ledger_rows(store.root)
    assert sorted(r["state"] for r in rows) == ["pending"] * 3
    [pack] = rs.pack_files(store.root)
    if torn:
        with open(pack, "r+b") as f:
            f.truncate(sum(map(len, parts)) - 10)
    store = Store(tmp_path / "store")
    try:
        report = store.recover()
        if torn:  # the last row's range is cut: it goes; the first two are whole and kept
            assert (report["pending_kept"], report["pending_dropped"]) == (2, 1)
            assert sorted(rs.stored_bytes(store.root).values()) == sorted(parts[:2])
        else:
            assert (report["pending_kept"], report["pending_dropped"], report["packs_removed"]) == (3, 0, 0)
            assert sorted(rs.stored_bytes(store.root).values()) == sorted(parts)
        assert all(r["state"] == "stored" for r in rs.ledger_rows(store.root))
        _, outcome = _process(store, parts)  # sent again: each stored once
        assert outcome.stored == 3 and len(rs.ledger_rows(store.root)) == 3
        assert sorted(rs.stored_bytes(store.root).values()) == sorted(parts)
    finally:
        store.close()


def test_packs_created_ahead_are_flushed_before_use_and_spare_the_commit_a_folder_flush(tmp_path, instances,
                                                                                         monkeypatch):
    # A request's pack comes from the files created ahead once there are some: their entries in packs/ were
    # flushed before any was handed out, so the commit flushes the pack and not packs/. The first request
    # (none created yet) makes its own pack, and its commit flushes packs/ as before.
    import os
    import threading

    from py_deid.receiver import storage

    store = Store(tmp_path / "store")
    flushed_listings = []  # what packs/ held each time the "packs" thread flushed it
    real_fsync_dir = storage.fsync_dir

    def recording_fsync_dir(path):
        if str(path) == str(store.packs_dir):
            flushed_listings.append({p.name for p in store.packs_dir.iterdir()})
        real_fsync_dir(path)

    monkeypatch.setattr(storage, "fsync_dir", recording_fsync_dir)
    started = []  # what the requests' commits flushed (the pack in its request's thread, packs/ if new)
    real_fsync = os.fsync

    def recording_fsync(fd):
        if threading.current_thread().name != "packs":
            started.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    try:
        parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 1_100 + i) for i in range(6)]
        body, outcome = _process(store, parts[:3])
        assert outcome.stored == 3 and not body.pack.entry_durable
        assert str(store.packs_dir) in started  # its own new entry: packs/ flushed by its commit
        deadline = time.monotonic() + 30
        while len(rs.spare_packs(store.root)) < Store.PACKS_AHEAD and time.monotonic() < deadline:
            time.sleep(0.01)
        spares = {p.name for p in rs.spare_packs(store.root)}
        assert len(spares) == Store.PACKS_AHEAD
        started.clear()
        body, outcome = _process(store, parts[3:])
        assert outcome.stored == 3
        assert body.pack.entry_durable and body.pack.name in spares
        assert any(body.pack.name in listing for listing in flushed_listings)  # flushed before it was used
        assert str(store.packs_dir) not in started and str(body.pack.path) in started  # the pack, not packs/
        rows = [r for r in rs.ledger_rows(store.root) if r["pack"] == body.pack.name]
        assert len(rows) == 3 and all(r["state"] == "stored" for r in rows)
        assert sorted(rs.stored_bytes(store.root).values()) == sorted(parts)
        # recover() of a running store leaves its packs created ahead alone; close() removes them.
        assert store.recover()["packs_removed"] == 0
        assert {p.name for p in rs.spare_packs(store.root)} == spares - {body.pack.name}
    finally:
        store.close()
    assert rs.spare_packs(store.root) == [] and len(rs.pack_files(store.root)) == 2
