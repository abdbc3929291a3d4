"""The py-deid command line: deidentify, verify, explain, exit codes, reports, --jobs."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pydicom

README = Path(__file__).parents[2] / "docs" / "header.md"  # the explain table (linked from README.md)


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _ct_series(samples, tmp_path) -> Path:
    src = tmp_path / "in"
    shutil.copytree(samples.path("dicomdirtests/DICOMDIR").parent, src)
    return src


def test_deidentify_folder_layout_report_and_verify(cli, samples, tmp_path):
    src = _ct_series(samples, tmp_path)
    before = _tree_hashes(src)
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    p = cli("deidentify", src, "-o", out, "--pixels", "off", "--key-file", cli.key, "--report", report)
    assert p.returncode == 0, p.stderr
    assert _tree_hashes(src) == before  # the input is never modified
    rep = json.loads(report.read_text())
    assert rep["summary"]["failed"] == 0 and rep["summary"]["done"] == 81 and rep["summary"]["skipped"] == 8
    skipped = {e["error"]["code"] for e in rep["files"] if e["status"] == "skipped"}
    assert skipped == {"dicomdir"}
    for e in rep["files"]:
        if e["status"] == "done":
            path = out / e["output"]
            ds = pydicom.dcmread(path)
            assert path.parts[-3:] == (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID + ".dcm")
            assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"]
    assert not list(out.rglob("*.part"))
    v = cli("verify", out, "--against", src, "--no-ocr")
    assert v.returncode == 0, v.stdout
    # The raw input is not de-identified: verify says so and exits 1, naming tags, never values.
    raw = cli("verify", src, "--no-ocr")
    assert raw.returncode == 1 and "identity-not-removed" in raw.stdout
    said = "\n".join(line.split(": ", 1)[1] for line in raw.stdout.splitlines())  # without the local path
    assert "CompressedSamples" not in said and "77654033" not in said


def test_same_key_same_output_across_runs_and_jobs(cli, samples, tmp_path):
    src = _ct_series(samples, tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    cli("deidentify", src, "-o", a, "--pixels", "off", "--key-file", cli.key, check=True)
    cli("deidentify", src, "-o", b, "--pixels", "off", "--key-file", cli.key, "--jobs", "2", check=True)
    assert _tree_hashes(a) == _tree_hashes(b) and len(_tree_hashes(a)) == 81


def test_shareable_report_has_no_paths(cli, samples, tmp_path):
    from py_deid.report import shareable
    src = _ct_series(samples, tmp_path)
    report = tmp_path / "r.json"
    cli("deidentify", src, "-o", tmp_path / "o", "--pixels", "off", "--report", report, check=True)
    text = json.dumps(shareable(json.loads(report.read_text())))
    assert str(tmp_path) not in text and "input" not in text and "output" not in text


def test_usage_errors_exit_2(cli, tmp_path):
    assert cli("deidentify", tmp_path, "-o", tmp_path / "o", "--option", "no_such_option").returncode == 2
    assert cli("deidentify", tmp_path, "-o", tmp_path / "o", "--option", "retain_long_full_dates",
               "--option", "retain_long_modified_dates").returncode == 2
    short = tmp_path / "short.key"
    short.write_text("x")
    assert cli("deidentify", tmp_path, "-o", tmp_path / "o", "--key-file", short).returncode == 2
    assert cli("frobnicate").returncode == 2


def test_explain_prints_every_row_and_readme_copy_is_in_sync(cli):
    p = cli("explain", check=True)
    rows = [l for l in p.stdout.splitlines() if l.startswith("| (")]
    assert len(rows) == 656 + 9  # every row of the table, plus the rules this tool adds
    assert "| (0010,0010) | Patient's Name | Z | Z | basic profile |" in p.stdout
    dated = cli("explain", "--option", "retain_long_modified_dates", check=True).stdout
    assert "| (0008,0020) | Study Date | Z | C | option retain_long_modified_dates |" in dated
    text = README.read_text()
    block = re.search(r"<!-- explain:start -->\n```text\n(.*?)```\n<!-- explain:end -->", text, re.S)
    assert block, "docs/header.md lacks the explain block"
    assert block.group(1) == p.stdout, "docs/header.md's copy of `py-deid explain` is out of date: paste the new output"


def test_12_bit_jpeg_extended_with_pixels_all(cli, samples, tmp_path):
    """pydicom's JPEG-lossy.dcm (NM, 12-bit JPEG Extended; pydicom's plugins cannot decode it): read by OCR
    through our own JPEG decoder, masked in the DCT domain (the transfer syntax stays), the masks at 0."""
    import numpy as np
    from pydicom.encaps import generate_frames

    from py_deid.pixels import jpeg_decode

    out, report = tmp_path / "out", tmp_path / "report.json"
    p = cli("deidentify", samples.path("JPEG-lossy.dcm"), "-o", out, "--pixels", "all", "--key-file", cli.key,
            "--report", report)
    assert p.returncode == 0, p.stderr
    (entry,) = json.loads(report.read_text())["files"]
    assert entry["error"] is None and entry["pixels"]["cleaned"] and entry["pixels"]["counts"]["ocr_frames"] == 1
    (written,) = out.rglob("*.dcm")
    ds = pydicom.dcmread(written)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.51" and ds.LossyImageCompression == "01"
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    pixels = jpeg_decode.decode(frame, numpy=np).samples.reshape(ds.Rows, ds.Columns)
    for x, y, w, h in entry["pixels"]["boxes"].get("0", []):
        assert (pixels[y:y + h, x:x + w] == 0).all()


def test_ocr_threads_give_the_same_outputs(cli, samples, tmp_path):
    """--ocr-threads 2 reads an image's independent readings on two engines at once: the outputs and the
    report's pixel figures are those of one engine, byte for byte (a real burned-in ultrasound file and a cine);
    a value out of range is a usage error."""
    import json

    inputs = [samples.path("RGB_IMAGE.dcm"), samples.path("GREYSCALE_IMAGE.dcm")]
    runs = {}
    for threads in ("1", "2"):
        out, report = tmp_path / f"out{threads}", tmp_path / f"report{threads}.json"
        cli("deidentify", *inputs, "-o", out, "--pixels", "all", "--key-file", cli.key, "--ocr-threads", threads,
            "--report", report, check=True)
        files = sorted(p for p in out.rglob("*.dcm"))
        runs[threads] = ([p.relative_to(out) for p in files], [p.read_bytes() for p in files],
                         [e.get("pixels") for e in json.loads(report.read_text())["files"]])
    assert len(runs["1"][0]) == 2
    assert runs["2"] == runs["1"]
    bad = cli("deidentify", inputs[0], "-o", tmp_path / "bad", "--ocr-threads", "0", "--key-file", cli.key)
    assert bad.returncode == 2 and "--ocr-threads" in bad.stderr


EXIT_PROBE = """
import atexit, runpy, sys
atexit.register(lambda: print("torn down", file=sys.stderr, flush=True))
sys.argv = ["py_deid", *sys.argv[1:]]
runpy.run_module("py_deid", run_name="__main__")
"""


def test_a_finished_deidentify_run_skips_the_teardown_and_nothing_else_does(samples, tmp_path):
    """After a deidentify run that ended, the program exits at once (py_deid.cli.run_and_exit): the interpreter's
    teardown (here an exit handler) does not run, yet the outputs, the report, the summary line and the exit
    status are all there. A usage error, and any other command, exit as usual."""
    import os
    import subprocess
    import sys

    src = _ct_series(samples, tmp_path)
    key = tmp_path / "k"
    key.write_text("a-site-secret-for-the-tests-0123456789\n")

    def run(*args):
        return subprocess.run([sys.executable, "-c", EXIT_PROBE, *map(str, args)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})

    for jobs in ("1", "2"):
        out, report = tmp_path / f"out{jobs}", tmp_path / f"report{jobs}.json"
        p = run("deidentify", src, "-o", out, "--pixels", "off", "--key-file", key, "--jobs", jobs, "--report", report)
        assert p.returncode == 0 and "torn down" not in p.stderr, p.stderr
        assert "py-deid: 81 done, 8 skipped, 0 failed" in p.stderr
        rep = json.loads(report.read_text())
        assert rep["summary"]["done"] == 81
        assert {e["output"] for e in rep["files"] if e["output"]} == {
            str(p.relative_to(out)) for p in out.rglob("*.dcm")}
    assert _tree_hashes(tmp_path / "out1") == _tree_hashes(tmp_path / "out2")
    bad = run("deidentify", src, "-o", tmp_path / "o", "--option", "no_such_option")
    assert bad.returncode == 2 and "torn down" in bad.stderr
    assert "torn down" in run("explain").stderr
