"""Pixel work runs in worker processes that are replaced when their resident size after a file passes a limit
(py_deid.batch._Lanes, Job.worker_limit_mb). A worker that stops mid-group and leaves, or dies, loses,
duplicates and tears nothing: the outputs and the report are those of a run where no worker left."""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest

from py_deid import batch, report
from py_deid.options import Settings

from .mixed_folder import mixed_folder

# Pixel files (native, RGB, JPEG 2000, an MR with text), a header-only object, the same instance twice, and a
# file that is not DICOM: every kind of entry.
NAMES = ["CT_small.dcm", "SC_rgb.dcm", "JPEG2000.dcm", "0051.dcm", "rtplan.dcm", "MR_small_implicit.dcm"]
KEY = b"a-test-key-0123456789"


@pytest.fixture()
def folder(samples, tmp_path):
    return mixed_folder(samples, tmp_path / "in", NAMES)


def _run(src, out, jobs: int, limit_mb: int) -> tuple[str, dict[str, str]]:
    """The report (without its two times) and the sha256 of every output file."""
    fh = io.StringIO()
    writer = report.ReportWriter(fh, {"tool": "test"})
    job = batch.Job(out, Settings(pixels="auto"), KEY, jobs, worker_limit_mb=limit_mb)
    batch.run(batch.iter_inputs([str(src)]), job, writer)
    doc = json.loads(fh.getvalue())
    doc.pop("finished")
    hashes = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*")
              if p.is_file()}
    return json.dumps(doc, sort_keys=True), hashes


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("group", [3, 32])
def test_a_worker_retired_after_every_file_loses_duplicates_and_tears_nothing(folder, tmp_path, monkeypatch, jobs,
                                                                               group):
    monkeypatch.setattr(batch._Commit, "FILES", group)
    normal = _run(folder, tmp_path / "normal", jobs, 0)
    replaced = []
    real = batch._Lanes._replace

    def counted(self, lane):
        replaced.append(lane)
        return real(self, lane)

    monkeypatch.setattr(batch._Lanes, "_replace", counted)
    retired = _run(folder, tmp_path / "retired", jobs, 1)  # 1 MB: every file leaves its worker above it
    files = len(NAMES) + 2
    assert len(replaced) == files  # each file, mid-group or last, ended its worker
    assert retired == normal
    assert len(normal[1]) == len(NAMES)  # each instance once (the copy is the same output), none staged left
    assert json.loads(normal[0])["summary"]["done"] == files - 1


def test_a_worker_that_dies_loses_its_group_only_and_is_replaced(folder, tmp_path, monkeypatch):
    """A worker killed mid-group (here it exits at one file): that group's files fail as worker-lost and nothing
    of it is named; the next groups go to a fresh worker."""
    monkeypatch.setattr(batch._Commit, "FILES", 2)
    real = batch._Worker._one

    def dies_at_rtplan(self, item, commit):
        if item.name.endswith("rtplan.dcm"):
            os._exit(9)
        return real(self, item, commit)

    monkeypatch.setattr(batch._Worker, "_one", dies_at_rtplan)
    out = tmp_path / "out"
    fh = io.StringIO()
    job = batch.Job(out, Settings(pixels="auto"), KEY, 1)
    batch.run(batch.iter_inputs([str(folder)]), job, report.ReportWriter(fh, {"tool": "test"}))
    files = json.loads(fh.getvalue())["files"]
    lost = [e["input"].rsplit("/", 1)[-1] for e in files if (e["error"] or {}).get("code") == "worker-lost"]
    assert "rtplan.dcm" in lost and len(lost) == 2  # its group of two
    done = [e for e in files if e["status"] == "done"]
    assert len(done) == len(files) - 2 - ("notes.txt" not in lost)  # all but the lost group and the text file
    assert {str(p.relative_to(out)) for p in out.rglob("*.dcm")} == {e["output"] for e in done}
    assert not [p for p in out.rglob("*") if p.name.endswith(".part") or p.name.startswith(".py-deid-staging")]


def test_the_limit_is_a_job_option_with_a_default():
    assert batch.Job(None, Settings(), KEY).worker_limit_mb == batch.WORKER_LIMIT_MB > 0
