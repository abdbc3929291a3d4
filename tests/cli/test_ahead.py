"""Temporary files created ahead (py_deid.batch._Ahead: the in-process header path, and each worker process of
the header path with --jobs N): outputs are the same bytes as without them, nothing of them is left after a run,
and a run killed mid-batch leaves only whole outputs under their final names (the files created ahead stay
unnamed `.part` files of the staging folder)."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import time

import pytest

from py_deid import batch, report
from py_deid.options import Settings

from .mixed_folder import mixed_folder
from .test_commit import NAMES

KEY = b"a-test-key-0123456789"


@pytest.fixture()
def folder(samples, tmp_path):
    return mixed_folder(samples, tmp_path / "in", NAMES)


def _run(src, out, jobs=1):
    fh = io.StringIO()
    job = batch.Job(out, Settings(pixels="off"), KEY, jobs)
    batch.run(batch.iter_inputs([str(src)]), job, report.ReportWriter(fh, {"tool": "test"}))
    return json.loads(fh.getvalue())["files"]


def _outputs(out) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*")
            if p.is_file()}


def test_take_never_waits_and_close_removes_what_is_left(tmp_path):
    with cf.ThreadPoolExecutor(2) as pool:
        ahead = batch._Ahead(tmp_path, pool, 4)
        first = ahead.take()  # asks for files; the first may not be there yet: None, never a wait
        ahead.filling.result(timeout=120)
        path, fd = ahead.take()
        assert os.path.dirname(path) == str(tmp_path) and path.endswith(".part") and os.path.getsize(path) == 0
        os.write(fd, b"x")
        os.close(fd)
        ahead.close()
        assert ahead.take() is None
    taken = {os.path.basename(path)} | ({os.path.basename(first[0])} if first else set())
    assert set(os.listdir(tmp_path)) == taken  # the files not taken are gone
    if first:
        os.close(first[1])


@pytest.mark.parametrize("group", [1, 3, 32])
def test_the_same_outputs_and_report_without_files_ahead(folder, tmp_path, monkeypatch, group):
    monkeypatch.setattr(batch._Commit, "FILES", group)
    taken = []
    real = batch._Ahead.take

    def counting(self):
        made = real(self)
        taken.append(made is not None)
        return made

    monkeypatch.setattr(batch._Ahead, "take", counting)
    with_ahead = _run(folder, tmp_path / "a")
    assert any(taken)  # outputs were written to files created ahead
    monkeypatch.setattr(batch._Ahead, "take", lambda self: None)
    without = _run(folder, tmp_path / "b")
    assert with_ahead == without
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "b")
    assert not [p for p in (tmp_path / "a").rglob("*") if p.name.endswith(".part") or "staging" in p.name]


@pytest.mark.parametrize("group", [1, 3, 32])
def test_workers_of_jobs_2_write_to_files_created_ahead(folder, tmp_path, monkeypatch, group):
    """--jobs 2's worker processes (forked: they keep this process's patches) write their outputs to files
    their own thread created ahead; the outputs and the report are those of --jobs 1 and of workers without."""
    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the workers are forked from this process only where the platform forks")
    monkeypatch.setattr(batch._Commit, "FILES", group)
    staged = []
    real = batch._Outputs._name

    def naming(self, entry, s):
        staged.append(s.tmp)
        return real(self, entry, s)

    monkeypatch.setattr(batch._Outputs, "_name", naming)
    two = _run(folder, tmp_path / "two", jobs=2)
    assert any("-ahead-" in name for name in staged)  # written by a worker to a file created ahead
    one = _run(folder, tmp_path / "one", jobs=1)
    staged.clear()
    monkeypatch.setattr(batch._Ahead, "take", lambda self: None)
    without = _run(folder, tmp_path / "without", jobs=2)
    assert not any("-ahead-" in name for name in staged)
    assert two == one == without
    assert _outputs(tmp_path / "two") == _outputs(tmp_path / "one") == _outputs(tmp_path / "without")
    assert not [p for p in (tmp_path / "two").rglob("*") if p.name.endswith(".part") or "staging" in p.name]


def test_a_worker_creates_nothing_once_its_group_is_handed_back(folder, tmp_path, monkeypatch):
    """The batch process names outputs and at its end removes the staging folder while the workers live on: a
    worker's group is handed back only once no creation of its files ahead is running, and without them (its
    thread and files are its own)."""
    staging = tmp_path / "staging"
    staging.mkdir()
    job = batch.Job(tmp_path, Settings(pixels="off"), KEY, 2)
    monkeypatch.setattr(batch, "_PROCESS_WORKER", batch._Worker(job))
    monkeypatch.setattr(batch, "_WORKER_AHEAD", {})
    real = batch._Ahead._fill

    def slow(self, n):
        time.sleep(0.3)
        real(self, n)

    monkeypatch.setattr(batch._Ahead, "_fill", slow)
    items = [i for i in batch.iter_inputs([str(folder)]) if i.path.suffix == ".dcm"]
    for _ in range(3):
        commit = batch._stage_in_process(items, staging)
        ahead = batch._WORKER_AHEAD[str(staging)]
        assert ahead.filling is not None and ahead.filling.done()  # nothing still creating
        assert commit.ahead is None
        pickle.dumps(commit)  # what goes back to the batch process
        batch._flush(commit)
    ahead.close()


CRASH = """
import os, signal, sys
from py_deid import batch, report
from py_deid.options import Settings
batch._Commit.FILES = 2
real, calls = batch._sync, [0]
def sync(fd):
    calls[0] += 1
    if calls[0] == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # a crash while a group is being flushed
    real(fd)
batch._sync = sync
job = batch.Job(__import__("pathlib").Path(sys.argv[2]), Settings(pixels="off"), sys.argv[4].encode(), 1)
batch.run(batch.iter_inputs([sys.argv[1]]), job, report.ReportWriter(open(os.devnull, "w"), {"tool": "test"}))
"""


@pytest.mark.parametrize("at", [1, 3, 5])
def test_a_run_killed_mid_batch_leaves_whole_outputs_only(folder, tmp_path, at):
    _run(folder, tmp_path / "whole")
    whole = _outputs(tmp_path / "whole")
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", CRASH, str(folder), str(out), str(at), KEY.decode()],
                          capture_output=True, timeout=300)
    assert proc.returncode == -9
    named = {k: v for k, v in _outputs(out).items() if not k.startswith(".py-deid-staging-")}
    assert all(whole.get(k) == v for k, v in named.items())  # a final name is only ever a whole output
    staged = [k for k in _outputs(out) if k.startswith(".py-deid-staging-")]
    assert staged and all(k.endswith(".part") for k in staged)  # killed before the end: staging is left
    assert at == 1 or any("-ahead-" in k for k in staged)  # with files created ahead among them (the 2nd group on)
    assert len(named) < len(whole)
