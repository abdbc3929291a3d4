"""Store.commit's group commit and its rename before the files' flushes have finished: each call returns only
when its own instances are durable or failed, concurrent calls share one commit, and a flush that fails after
the rename leaves neither the file nor its row."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from py_deid.receiver import storage
from py_deid.receiver.storage import CONFLICT, STORED, Candidate, Flushes, Store

from . import receiver_support as rs

CT = "1.2.840.10008.5.1.4.1.1.2"


def _candidate(store: Store, part: bytes) -> Candidate:
    study, series, sop = rs.uids(part)
    fd, temp = store.temp_file(".dcm")
    with open(fd, "wb", closefd=True) as f:
        f.write(part)
    return Candidate(temp=temp, sop_uid=sop, study_uid=study, series_uid=series, sop_class_uid=CT, modality="CT",
                     transfer_syntax="1.2.840.10008.1.2.1", sha256=rs.sha256(part), size=len(part))


def test_concurrent_commits_are_grouped_and_each_returns_durable(tmp_path, instances, monkeypatch):
    store = Store(tmp_path / "store")
    base = instances.deid("CT_small.dcm")
    calls = [[rs.with_new_uids(base, 100 * k + i) for i in range(3)] for k in range(6)]
    calls[5].append(calls[0][0])  # the same instance in two calls: stored once, the later one a duplicate
    calls[5].append(rs.with_new_uids(base, 1))  # same SOP UID as calls[0][1] (uid 1), other bytes: conflict
    calls[5][-1] = calls[5][-1][:-2] + b"\x01\x02"
    flushed_commits = []
    real_transaction = store.ledger.transaction
    first_fsync = threading.Event()
    release = threading.Event()
    real_instance_file = store._instance_file  # noqa: SLF001

    def slow_instance_file(*uids):
        if not first_fsync.is_set():
            first_fsync.set()
            assert release.wait(30)  # the first commit holds the lock until every other call is queued
        return real_instance_file(*uids)

    def counting_transaction(flush=True):
        if flush:
            flushed_commits.append(threading.get_ident())
        return real_transaction(flush=flush)

    monkeypatch.setattr(store, "_instance_file", slow_instance_file)
    monkeypatch.setattr(store.ledger, "transaction", counting_transaction)
    results: dict[int, list[Candidate]] = {}
    errors = []

    def commit(k):
        cands = [_candidate(store, part) for part in calls[k]]
        flushes = store.syncer.start_missing([(c.temp, None) for c in cands])
        try:
            store.commit(cands, "site", forward=False, flushes=flushes)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        results[k] = cands

    first = threading.Thread(target=commit, args=(0,))
    first.start()
    assert first_fsync.wait(30)
    others = [threading.Thread(target=commit, args=(k,)) for k in range(1, 6)]
    for t in others:
        t.start()
    deadline = time.time() + 30
    while len(store._queued) < 5 and time.time() < deadline:  # noqa: SLF001
        time.sleep(0.005)
    assert len(store._queued) == 5  # noqa: SLF001
    release.set()
    for t in [first, *others]:
        t.join(60)
    assert not errors
    assert len(flushed_commits) == 2  # the first call alone, then the five queued ones together
    outcomes = [c.outcome for k in range(6) for c in results[k]]
    assert outcomes.count(STORED) == 18 and outcomes[-2:] == ["duplicate", CONFLICT]
    # Independent of the store's code: the ledger read with sqlite3 and the files read back.
    stored = [part for call in calls[:5] for part in call] + calls[5][:3]
    rows = rs.ledger_rows(store.root)
    assert sorted(r["sop_uid"] for r in rows) == sorted(rs.uids(p)[2] for p in stored)
    assert all(r["state"] == "stored" for r in rows)
    files = {f.name[:-4]: f for f in rs.stored_files(store.root)}
    assert len(files) == len(stored)
    for part in stored:
        assert files[rs.uids(part)[2]].read_bytes() == part
    assert not list(store.tmp_dir.iterdir())
    store.close()


def test_an_instance_sent_again_while_its_first_commit_flushes_waits_for_its_outcome(tmp_path, instances,
                                                                                     monkeypatch):
    """The first commit fails in its flushes (after the rename, outside the lock); the same instance, sent
    again meanwhile, must not be answered 'duplicate' of it: it is stored by the second commit."""
    store = Store(tmp_path / "store")
    part = rs.with_new_uids(instances.deid("CT_small.dcm"), 30)
    in_fsync = threading.Event()
    release = threading.Event()
    real_fsync_dir = storage.fsync_dir

    def held_fsync_dir(path):
        # the instance's folder once the file is renamed into it (not the new folders' parents under the lock)
        if not in_fsync.is_set() and os.path.exists(os.path.join(path, rs.uids(part)[2] + ".dcm")):
            in_fsync.set()
            assert release.wait(30)
        real_fsync_dir(path)

    monkeypatch.setattr(storage, "fsync_dir", held_fsync_dir)
    first, second = _candidate(store, part), _candidate(store, part)
    failing = Flushes(1)
    failing._finished(OSError(errno.EIO, "injected"))  # noqa: SLF001
    errors = []

    def commit_first():
        try:
            store.commit([first], "site", forward=False, flushes=[failing])
        except OSError as e:
            errors.append(e)

    t1 = threading.Thread(target=commit_first)
    t1.start()
    assert in_fsync.wait(30)  # the first is past its rename, in its flushes, the lock free
    t2 = threading.Thread(target=store.commit, args=([second], "site"), kwargs={"forward": False})
    t2.start()
    time.sleep(0.3)
    assert second.outcome == ""  # still waiting for the first's outcome
    release.set()
    t1.join(30)
    t2.join(30)
    assert [e.errno for e in errors] == [errno.EIO] and first.outcome == ""
    assert second.outcome == STORED
    rows = rs.ledger_rows(store.root)
    assert [(r["sop_uid"], r["state"]) for r in rows] == [(rs.uids(part)[2], "stored")]
    assert [f.read_bytes() for f in rs.stored_files(store.root)] == [part]
    store.close()


def test_a_flush_failing_after_the_rename_leaves_neither_file_nor_row(tmp_path, instances):
    store = Store(tmp_path / "store")
    base = instances.deid("CT_small.dcm")
    good = [_candidate(store, rs.with_new_uids(base, 10 + i)) for i in range(2)]
    store.commit(good, "site", forward=False, flushes=store.syncer.start_missing([(c.temp, None) for c in good]))
    cands = [_candidate(store, rs.with_new_uids(base, 20 + i)) for i in range(3)]
    failing = Flushes(1)
    failing._finished(OSError(errno.EIO, "injected"))  # noqa: SLF001
    with pytest.raises(OSError) as raised:
        store.commit(cands, "site", forward=False,
                     flushes=[*store.syncer.start_missing([(c.temp, None) for c in cands]), failing])
    assert raised.value.errno == errno.EIO
    rows = rs.ledger_rows(store.root)
    assert sorted(r["sop_uid"] for r in rows) == sorted(c.sop_uid for c in good)
    assert sorted(f.name[:-4] for f in rs.stored_files(store.root)) == sorted(c.sop_uid for c in good)
    assert not list(store.tmp_dir.iterdir())
    store.close()


def test_a_file_renamed_while_its_flush_is_queued_is_still_flushed(tmp_path, monkeypatch):
    """The Syncer flushes through a descriptor opened when the flush was queued, not by the temp name."""
    syncer = storage.Syncer(threads=1)
    block = threading.Event()
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"x")
    real_fsync = os.fsync
    seen = []

    def fsync(fd):
        seen.append(fd)
        if len(seen) == 1:
            assert block.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    try:
        first = syncer.start_group([blocker])  # holds the only thread
        path = tmp_path / "a.tmp"
        path.write_bytes(b"data")
        second = syncer.start_group([path])
        path.rename(tmp_path / "a.dcm")  # before its flush ran
        block.set()
        first.result()
        second.result()  # no error: flushed by descriptor
        assert len(seen) == 2
    finally:
        block.set()
        syncer.close()
