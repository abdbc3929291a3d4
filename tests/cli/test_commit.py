"""Outputs are committed in groups (py_deid.batch._Commit): written, flushed together, then named. Whatever
the group boundaries, every input is reported once, every output is whole, and a flush that fails leaves no
file behind."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import multiprocessing
import os

import pytest

from py_deid import batch, report
from py_deid.options import Settings

from .mixed_folder import mixed_folder

NAMES = ["CT_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm", "JPEG2000.dcm", "SC_rgb.dcm", "693_J2KI.dcm", "0051.dcm"]


@pytest.fixture()
def folder(samples, tmp_path):
    return mixed_folder(samples, tmp_path / "in", NAMES)


def _run(src, out, jobs=1):
    fh = io.StringIO()
    writer = report.ReportWriter(fh, {"tool": "test"})
    job = batch.Job(out, Settings(pixels="off"), b"a-test-key-0123456789", jobs)
    summary = batch.run(batch.iter_inputs([str(src)]), job, writer)
    return summary["summary"], json.loads(fh.getvalue())["files"]


@pytest.mark.parametrize("group", [1, 3, 32])
def test_every_input_reported_once_and_outputs_whole(folder, tmp_path, monkeypatch, group):
    monkeypatch.setattr(batch._Commit, "FILES", group)
    out = tmp_path / "out"
    summary, files = _run(folder, out)
    assert sorted(e["input"].rsplit("/", 1)[-1] for e in files) == sorted(p.name for p in folder.iterdir())
    assert summary["done"] == len(NAMES) + 1 and summary["skipped"] + summary["failed"] == 1
    twice = [e for e in files if e["input"].endswith(("CT_small.dcm", "CT_small copy.dcm"))]
    assert twice[0]["output"] == twice[1]["output"]
    assert any("already written" in w for e in twice for w in e["warnings"])
    for e in files:
        if e["status"] == "done":
            assert hashlib.sha256((out / e["output"]).read_bytes()).hexdigest() == e["sha256"]
    assert len(list(out.rglob("*.dcm"))) == len(NAMES)
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_a_failed_flush_leaves_no_file_and_the_rest_goes_on(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(batch._Commit, "FILES", 4)
    calls = {"n": 0}
    real = batch._sync

    def flaky(fd):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(batch, "_sync", flaky)
    out = tmp_path / "out"
    summary, files = _run(folder, out)
    failed = [e for e in files if e["status"] == "failed" and e["error"]["code"] == "output-not-written"]
    assert len(failed) == 1 and failed[0]["output"] is None and "Input/output error" in failed[0]["error"]["message"]
    written = {e["output"] for e in files if e["status"] == "done"}
    assert {str(p.relative_to(out)) for p in out.rglob("*.dcm")} == written
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_groups_across_processes(folder, tmp_path, monkeypatch):
    out1, out2 = tmp_path / "one", tmp_path / "two"
    _, one = _run(folder, out1, jobs=1)
    _, two = _run(folder, out2, jobs=2)
    key = lambda files: sorted((e["input"], e["status"], e["sha256"]) for e in files)  # noqa: E731
    assert key(one) == key(two)


@pytest.mark.parametrize("workers", [0, 1, 2, 4])
@pytest.mark.parametrize("n", [0, 1, 5, 31, 32, 33, 100, 1000])
def test_groups_keep_every_item_in_order_and_cut_the_tail_smaller(n, workers):
    items = [batch.Item(str(i), None) for i in range(n)]
    cut = [len(g) for g in batch.groups(iter(items), 32, workers)]
    assert [item for g in batch.groups(iter(items), 32, workers) for item in g] == items
    assert all(0 < size <= 32 for size in cut)
    if workers == 0:
        assert cut == [32] * (n // 32) + ([n % 32] if n % 32 else [])
        return
    ahead = 2 * workers * 32  # the batch's end is seen this many items ahead
    assert all(size == 32 for size in cut[:max(0, (n - ahead) // 32)])
    assert cut == sorted(cut, reverse=True)
    if n > batch.SMALLEST:
        assert cut[-1] <= batch.SMALLEST
    assert [len(g) for g in batch.groups(iter(items), 1, workers)] == [1] * n


def test_timeline_of_jobs_2_has_times_and_counts_only(folder, tmp_path, monkeypatch):
    timeline = tmp_path / "timeline.json"
    monkeypatch.setattr(batch, "TIMELINE", str(timeline))
    _, files = _run(folder, tmp_path / "out", jobs=2)
    text = timeline.read_text()
    for name in [*NAMES, "notes.txt", str(folder)]:
        assert name not in text  # never a name: input paths can be PHI
    record = json.loads(text)
    groups = record["groups"]
    assert sum(g["files"] for g in groups) == len(files)
    assert len({g["pid"] for g in groups}) >= 1 and all(g["start"] <= g["end"] <= g["flush_end"] for g in groups)
    # The header path's workers were forked with the batch process's worker already built (where they fork).
    firsts = [g for g in groups if "init_start" in g]
    forked = multiprocessing.get_start_method() == "fork"
    assert firsts and all(g["inherited"] is forked for g in firsts)


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 32, 33])
@pytest.mark.parametrize("shared", [False, True])
def test_sync_all_gives_each_file_its_own_error_in_order(tmp_path, n, shared):
    paths = []
    for i in range(n):
        path = tmp_path / f"{i}.part"
        if i % 3 != 1:  # every third file is missing: its open fails
            path.write_bytes(b"x" * i)
        paths.append(str(path))
    pool = batch._sync_pool() if shared else None
    try:
        errors = batch._sync_all(paths, pool)
    finally:
        if pool is not None:
            pool.shutdown()
    assert len(errors) == n
    assert [e is None for e in errors] == [i % 3 != 1 for i in range(n)]
    assert all(isinstance(e, FileNotFoundError) for i, e in enumerate(errors) if i % 3 == 1)


@pytest.mark.parametrize("jobs", [1, 2])
def test_one_run_keeps_one_set_of_sync_threads(folder, tmp_path, monkeypatch, jobs):
    monkeypatch.setattr(batch._Commit, "FILES", 2)  # several groups
    pools = []
    real = batch._sync_all

    def recording(paths, pool=None):
        pools.append(pool)
        return real(paths, pool)

    monkeypatch.setattr(batch, "_sync_all", recording)  # groups are flushed in this process with --jobs N too
    summary, files = _run(folder, tmp_path / "out", jobs=jobs)
    assert summary["done"] == len(NAMES) + 1
    assert len(pools) >= 3 and pools[0] is not None and all(p is pools[0] for p in pools)
    assert pools[0]._shutdown  # and stopped when the run ends


def test_exists_is_path_exists(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for name in ("file", "missing", "file/under", "loop", ""):
        path = tmp_path / name
        assert batch._exists(str(path)) == path.exists()


def test_the_report_writes_entries_as_json_dumps_does(tmp_path):
    entries = [{"input": "b\u00e9\u4e2d\n\"q\"", "status": "done", "actions": {"Z": 1, "D": 2}, "warnings": [],
                "error": None, "n": 1.5, "output": "x/y.dcm"},
               {"status": "failed", "input": "a", "error": {"message": "m", "code": "c"}, "actions": {}}]
    fh = io.StringIO()
    writer = report.ReportWriter(fh, {"tool": "test"})
    for e in entries:
        writer.add(e)
    writer.close()
    text = fh.getvalue()
    for e in entries:
        assert "  " + json.dumps(e, sort_keys=True) in text
    assert json.loads(text)["files"] == entries


def test_jobs_2_makes_groups_in_the_batch_process_and_one_worker(folder, tmp_path, monkeypatch):
    """--jobs 2 on the header path: the batch process is one of the two lanes (it makes groups itself, as --jobs 1
    does) and forks one worker process, not two; the outputs and report are --jobs 1's."""
    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the worker inherits this test's patches only where the platform forks")
    monkeypatch.setattr(batch._Commit, "FILES", 1)
    timeline = tmp_path / "timeline.json"
    monkeypatch.setattr(batch, "TIMELINE", str(timeline))
    _, two = _run(folder, tmp_path / "two", jobs=2)
    record = json.loads(timeline.read_text())
    pids = {g["pid"] for g in record["groups"]}
    assert record["pid"] in pids and len(pids) == 2  # this process and one forked worker
    _, one = _run(folder, tmp_path / "one", jobs=1)
    key = lambda files: [(e["input"], e["status"], e["output"], e["sha256"]) for e in files]  # noqa: E731
    assert key(two) == key(one)


def test_jobs_2_goes_on_in_the_batch_process_when_its_worker_dies(folder, tmp_path, monkeypatch):
    """A forked worker that dies fails the groups it held (worker-lost: none of their files is named); the batch
    process makes the rest, every input is reported once, and every named output is --jobs 1's."""
    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the worker inherits this test's patches only where the platform forks")
    monkeypatch.setattr(batch._Commit, "FILES", 1)
    parent, made, real = os.getpid(), [0], batch._Worker.stage

    def stage(self, items, staging, *args, **kwargs):
        if os.getpid() != parent:
            made[0] += 1  # this worker process's own count (forked: a copy)
            if made[0] == 2:
                os._exit(3)  # dies in its second group
        return real(self, items, staging, *args, **kwargs)

    monkeypatch.setattr(batch._Worker, "stage", stage)
    out = tmp_path / "two"
    summary, two = _run(folder, out, jobs=2)
    monkeypatch.setattr(batch._Worker, "stage", real)
    _, one = _run(folder, tmp_path / "one", jobs=1)
    assert [e["input"] for e in two] == [e["input"] for e in one]  # each once, in input order
    lost = [e for e in two if (e["error"] or {}).get("code") == "worker-lost"]
    assert 1 <= len(lost) <= 2 and all(e["output"] is None for e in lost)
    kept = {e["input"]: e for e in one}
    for e in two:
        if e not in lost:
            assert (e["status"], e["output"], e["sha256"]) == (kept[e["input"]]["status"],
                                                                kept[e["input"]]["output"],
                                                                kept[e["input"]]["sha256"])
    named = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert named == {e["output"] for e in two if e["status"] == "done"}
    assert summary["failed"] == len(lost) + sum(e["status"] == "failed" for e in one)
