"""Header de-identification throughput: py-deid against a plain pydicom read+write of the same files in the
same run, and against dicognito when it is installed. Ratios, never timed assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from py_deid.instance import Deidentifier, run_sync
from py_deid.options import Settings

from .corpus import build

QUICK = os.environ.get("PY_DEID_BENCH_QUICK") == "1"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


def _plain(paths):
    """The baseline: what any tool must do at least, read each file and write it back (in memory)."""
    for p in paths:
        ds = pydicom.dcmread(BytesIO(p.read_bytes()))
        ds.save_as(BytesIO())


def _plain_files(paths, out: Path):
    """The same, writing each file to disk: the baseline for the command line."""
    out.mkdir(exist_ok=True)
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.save_as(out / p.name)


def _core(paths):
    deid = Deidentifier(Settings(pixels="off"), b"benchmark-key-0123456789")
    for p in paths:
        result = run_sync(deid.process(p.read_bytes()), None)
        assert result.status == "done", result.problem


def _dicognito(paths):
    from dicognito.anonymizer import Anonymizer
    anonymizer = Anonymizer()
    for p in paths:
        ds = pydicom.dcmread(p)
        anonymizer.anonymize(ds)
        ds.save_as(BytesIO())


def _best(fn, *args, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def _dicognito_cli(corpus: Path, out: Path) -> float:
    """dicognito's own command line on the same folder: the like-for-like baseline of `py-deid deidentify`."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dicognito", str(corpus), "--output-directory", str(out), "--quiet"],
                   check=True, capture_output=True)
    return time.perf_counter() - t


def _cli(corpus: Path, out: Path, jobs: int) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "py_deid", "deidentify", str(corpus), "-o", str(out), "--pixels", "off",
                    "--jobs", str(jobs)], check=True, capture_output=True)
    return time.perf_counter() - t


@pytest.mark.benchmark
def test_header_throughput(samples, tmp_path):
    n = 100 if QUICK else 1000
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paths, tokens = build(samples, corpus, n)
    mb = sum(p.stat().st_size for p in paths) / 1e6
    repeat = 1 if QUICK else 3
    _plain(paths[:20])  # warm caches and imports
    _core(paths[:20])
    plain = _best(_plain, paths, repeat=repeat)
    core = _best(_core, paths, repeat=repeat)
    results = {"files": n, "MB": round(mb, 1),
               "plain_read_write_files_per_s": round(n / plain, 1), "core_files_per_s": round(n / core, 1),
               "core_MB_per_s": round(mb / core, 1), "core_vs_plain": round(plain / core, 2)}
    try:
        import dicognito  # noqa: F401
        dic = _best(_dicognito, paths, repeat=repeat)
        results["dicognito_files_per_s"] = round(n / dic, 1)
        results["core_vs_dicognito"] = round(dic / core, 2)
    except ImportError:
        results["dicognito"] = "not installed"
    if "dicognito_files_per_s" in results:
        dic_cli = _dicognito_cli(corpus, tmp_path / "dicognito-out")
        results["dicognito_cli_files_per_s"] = round(n / dic_cli, 1)
    plain_files = _best(_plain_files, paths, tmp_path / "plain", repeat=repeat)
    cli1 = _cli(corpus, tmp_path / "o1", 1)
    cli2 = _cli(corpus, tmp_path / "o2", 2)
    results.update({"plain_read_write_to_disk_files_per_s": round(n / plain_files, 1),
                    "cli_jobs1_files_per_s": round(n / cli1, 1), "cli_jobs1_MB_per_s": round(mb / cli1, 1),
                    "cli_jobs2_files_per_s": round(n / cli2, 1), "cli_jobs2_vs_jobs1": round(cli1 / cli2, 2),
                    "cli_jobs1_vs_plain_to_disk": round(plain_files / cli1, 2)})
    if "dicognito_cli_files_per_s" in results:
        results["cli_jobs1_vs_dicognito_cli"] = round(dic_cli / cli1, 2)
    # Zero planted PHI in any output byte.
    leaked = 0
    outputs = list((tmp_path / "o1").rglob("*.dcm"))
    assert len(outputs) == n
    for o in outputs:
        data = o.read_bytes()
        leaked += sum(1 for t in tokens if t in data)
    results["planted_phi_values_left"] = leaked
    print("\nheader benchmark:", json.dumps(results, indent=1))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench_header.json").write_text(json.dumps(results, indent=1))
    assert leaked == 0
