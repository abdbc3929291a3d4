"""The batch on a Dask distributed cluster (py_deid.distributed): the same outputs, byte for byte, and the same
report as --jobs; every output named exactly once, also when a worker dies in the middle of the batch."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from py_deid import batch, distributed, report
from py_deid.options import Settings

pytest.importorskip("distributed")

KEY = b"a-test-key-0123456789"
HEAD = {"tool": "test"}
NAMES = ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "JPEG2000.dcm",
         "SC_rgb.dcm", "693_J2KI.dcm", "0051.dcm", "CTImageStorage.dcm", "MR_small_RLE.dcm"]


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as c:
        yield c


@pytest.fixture()
def client(cluster):
    from distributed import Client
    with Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture()
def folder(samples, tmp_path) -> Path:
    """Real files, a duplicate instance, a non-DICOM file, a truncated file and a missing one in a subfolder."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in NAMES:
        shutil.copy(samples.path(name), src / name)
    shutil.copy(samples.path("CT_small.dcm"), src / "sub" / "CT_small again.dcm")
    (src / "notes.txt").write_text("Patient John Doe")
    (src / "sub" / "truncated.dcm").write_bytes(samples.bytes("CT_small.dcm")[:700])
    (src / "sub" / "gone.dcm").symlink_to(tmp_path / "nowhere")
    return src


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _files(report_path: Path) -> tuple[list[dict], dict]:
    rep = json.loads(report_path.read_text())
    return rep["files"], rep["summary"]


def test_cli_dask_gives_the_outputs_and_report_of_jobs(cli, cluster, folder, tmp_path):
    runs = {"jobs1": [], "jobs2": ["--jobs", "2"], "dask": ["--dask", cluster.scheduler_address]}
    trees, reports = {}, {}
    for name, extra in runs.items():
        out, rep = tmp_path / name, tmp_path / f"{name}.json"
        p = cli("deidentify", folder, "-o", out, "--pixels", "off", "--key-file", cli.key, "--report", rep, *extra)
        assert p.returncode == 1, p.stderr  # the truncated and the missing file failed
        trees[name], reports[name] = _tree(out), _files(rep)
    assert trees["dask"] == trees["jobs1"] == trees["jobs2"]
    assert reports["dask"] == reports["jobs1"] == reports["jobs2"]  # entries in input order, same summary
    files, summary = reports["dask"]
    assert (summary["done"], summary["skipped"], summary["failed"]) == (9, 1, 4)  # 2 UID conflicts, 2 bad
    assert len(trees["dask"]) == len({e["output"] for e in files if e["status"] == "done"}) >= 6
    assert not [p for p in (tmp_path / "dask").iterdir() if p.name.startswith(".")]  # staging folder gone


def test_cli_dask_usage_errors(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "2s")  # Dask's own setting, as a user's
    assert cli("deidentify", tmp_path, "-o", tmp_path / "o", "--dask", "tcp://127.0.0.1:9", "--jobs", "2"
               ).returncode == 2
    p = cli("deidentify", tmp_path, "-o", tmp_path / "o", "--dask", "tcp://127.0.0.1:1")  # nothing listens there
    assert p.returncode == 2 and "cannot reach the Dask scheduler" in p.stderr


def _local(src: Path, out: Path, group: int) -> tuple[dict, list[dict]]:
    fh = io.StringIO()
    worker = batch._Worker(batch.Job(out, Settings(pixels="off"), KEY))
    summary = batch.run_groups(batch.iter_inputs([str(src)]), out, report.ReportWriter(fh, HEAD),
                               lambda items, staging: batch._Done(worker.handle(items, staging)),
                               window=1, size=group)
    return summary, json.loads(fh.getvalue())["files"]


def _many(samples, root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        shutil.copy(samples.path(NAMES[i % len(NAMES)]), root / f"{i:04d}.dcm")
    return root


def test_killing_a_worker_mid_batch_loses_and_duplicates_nothing(client, samples, tmp_path):
    src = _many(samples, tmp_path / "in", 150)  # 10 inputs, each 15 times: duplicates and conflicts in every group
    want_summary, want = _local(src, tmp_path / "want", 3)

    out = tmp_path / "out"
    out.mkdir()
    fh = io.StringIO()
    job = batch.Job(out, Settings(pixels="off"), KEY)
    pids = client.run(os.getpid)
    done: dict = {}
    runner = threading.Thread(target=lambda: done.update(summary=distributed.run(
        batch.iter_inputs([str(src)]), job, report.ReportWriter(fh, HEAD), client, group=3)))
    runner.start()
    deadline = time.monotonic() + 60
    while not any(out.glob("*/*/*.dcm")) and time.monotonic() < deadline:
        time.sleep(0.005)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)  # mid-batch: outputs exist, the batch goes on
    killed_while_running = runner.is_alive()
    runner.join(120)
    assert not runner.is_alive()
    assert killed_while_running, "the batch ended before a worker could be killed"

    got = json.loads(fh.getvalue())["files"]
    assert done["summary"]["summary"] == want_summary["summary"]
    assert got == want  # the same entries in the same order: warnings of duplicates included
    assert _tree(out) == _tree(tmp_path / "want")
    assert len(_tree(out)) == len({e["output"] for e in want if e["status"] == "done"}) >= 6
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no staging, no temporary file left
    assert victim not in client.run(os.getpid).values()  # the worker really died (its nanny started another)


def test_a_lost_attempt_is_never_named(samples, tmp_path):
    """A worker that dies after staging its outputs: its files are never named, the retry's are, once."""
    src = _many(samples, tmp_path / "in", 12)
    want_summary, want = _local(src, tmp_path / "want", 4)
    job = batch.Job(tmp_path / "out", Settings(pixels="off"), KEY)
    (tmp_path / "out").mkdir()
    attempts = []

    worker = batch._Worker(job)

    def submit(items, staging):
        worker.handle(items, staging)  # the lost attempt: staged and flushed, its result never arrives
        attempts.append(len(list(staging.iterdir())))
        return batch._Done(worker.handle(items, staging))

    fh = io.StringIO()
    summary = batch.run_groups(batch.iter_inputs([str(src)]), job.out, report.ReportWriter(fh, HEAD), submit,
                               window=2, size=4)
    assert all(a > 0 for a in attempts)
    assert summary["summary"] == want_summary["summary"]
    assert _tree(tmp_path / "out") == _tree(tmp_path / "want")
    assert [e["sha256"] for e in json.loads(fh.getvalue())["files"]] == [e["sha256"] for e in want]


def test_a_group_no_worker_can_finish_fails_its_files_and_the_batch_goes_on(samples, tmp_path):
    src = _many(samples, tmp_path / "in", 9)
    job = batch.Job(tmp_path / "out", Settings(pixels="off"), KEY)
    (tmp_path / "out").mkdir()
    calls = []
    worker = batch._Worker(job)

    class Lost:
        def result(self):
            raise RuntimeError("KilledWorker: /secret/path/Doe^John")

    def submit(items, staging):
        calls.append(items)
        return Lost() if len(calls) == 2 else batch._Done(worker.handle(items, staging))

    fh = io.StringIO()
    summary = batch.run_groups(batch.iter_inputs([str(src)]), job.out, report.ReportWriter(fh, HEAD), submit,
                               window=2, size=3)
    files = json.loads(fh.getvalue())["files"]
    lost = [e["error"]["code"] if e["error"] else None for e in files]
    assert lost[3:6] == ["worker-lost"] * 3 and "worker-lost" not in lost[:3] + lost[6:]
    assert [e["status"] for e in files[3:6]] == ["failed"] * 3
    assert "Doe" not in json.dumps(files) and "secret" not in json.dumps(files)
    assert summary["summary"]["done"] >= 4
    assert not list((tmp_path / "out").glob(".*"))


def test_python_api_writes_the_report_of_the_cli(cli, client, folder, tmp_path):
    cli("deidentify", folder, "-o", tmp_path / "cli", "--pixels", "off", "--key-file", cli.key, "--report",
        tmp_path / "cli.json")
    # A scheduler file as `dask scheduler --scheduler-file` writes it (its address is what a client reads).
    # (Client.write_scheduler_file dumps the whole scheduler_info, which some dask versions cannot encode.)
    (tmp_path / "scheduler.json").write_text(json.dumps({"type": "Scheduler", "address": client.scheduler.address}))
    summary = distributed.deidentify([folder], tmp_path / "api", scheduler=str(tmp_path / "scheduler.json"),
                                     key=cli.key.read_bytes().strip(), settings=Settings(pixels="off"),
                                     report=tmp_path / "api.json")
    assert _tree(tmp_path / "api") == _tree(tmp_path / "cli")
    assert _files(tmp_path / "api.json") == _files(tmp_path / "cli.json")
    assert summary["summary"] == _files(tmp_path / "cli.json")[1]


def test_a_worker_with_another_py_deid_does_nothing(samples, tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    items = list(batch.iter_inputs([str(samples.path("CT_small.dcm"))]))
    with pytest.raises(distributed.VersionMismatch):
        distributed._handle_on_worker(items, staging, batch.Job(tmp_path, Settings(pixels="off"), KEY), "0.0.0")
    assert list(staging.iterdir()) == []
