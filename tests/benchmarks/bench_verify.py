"""The shared verifier (py_deid.verify: `py-deid verify`, the receiver's check) in milliseconds per file: the
lazy walk against the eager one it replaced (`check_dataset(convert_all=True)`, every element converted by
pydicom first), on the same parsed bytes in the same run, rounds interleaved, best of each. Files: the
de-identified real CT the receiver benchmark uploads, and the de-identified output of every sample file up to
3 MB. The parse (dcmread) is timed apart, as the part neither walk changes. Ratios, never timed assertions;
the findings of both walks must be equal. Printed and written to test-artifacts/bench_verify.json."""

from __future__ import annotations

import json
import os
import time
import warnings
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from py_deid import verify
from py_deid.options import Options

from ..header.helpers import deid

pytestmark = pytest.mark.benchmark
QUICK = os.environ.get("PY_DEID_BENCH_QUICK") == "1"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
MAX_SIZE = 3_000_000


def _ms_per_file(datas: list[bytes], what: str) -> float:
    """Milliseconds per file of the parse alone ("parse"), or of the check of a fresh parse ("eager", "lazy")."""
    total = 0.0
    for data in datas:
        t = time.perf_counter()
        ds = pydicom.dcmread(BytesIO(data), force=True)
        parsed = time.perf_counter()
        if what == "parse":
            total += parsed - t
            continue
        verify.check_received(ds, Options(), data=data, convert_all=(what == "eager"))
        total += time.perf_counter() - parsed
    return total / len(datas) * 1000


def _outputs(samples) -> tuple[bytes, list[bytes]]:
    """The de-identified CT, and the de-identified outputs of the sample files (60 of them in the quick form)."""
    ct = deid(samples.bytes("CT_small.dcm")).output
    outputs = []
    for s in sorted(samples.all, key=lambda s: s.relpath)[: 60 if QUICK else None]:
        path = samples.root / s.relpath
        if path.stat().st_size <= MAX_SIZE and (result := deid(path.read_bytes())).status == "done":
            outputs.append(result.output)
    return ct, outputs


def test_verifier_ms_per_file(samples):
    rounds = 2 if QUICK else 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ct, outputs = _outputs(samples)
        for data in [ct, *outputs]:  # the same verdicts, or the speed of a different check is measured
            assert verify.check_bytes(data, Options()) == verify.check_bytes(data, Options(), convert_all=True)
        sets = {"ct_small": [ct] * (20 if QUICK else 100), "all_outputs": outputs}
        best: dict = {name: {w: float("inf") for w in ("parse", "eager", "lazy")} for name in sets}
        for _ in range(rounds):
            for name, datas in sets.items():
                for what in ("parse", "eager", "lazy"):
                    best[name][what] = min(best[name][what], _ms_per_file(datas, what))
    results = {"files": {name: len(d) for name, d in sets.items()}, "rounds": rounds,
               "load_average": [round(x, 1) for x in os.getloadavg()]}
    for name, b in best.items():
        results[name] = {f"{w}_ms_per_file": round(v, 3) for w, v in b.items()}
        results[name]["lazy_vs_eager_speedup"] = round(b["eager"] / b["lazy"], 2)
    print("\nverifier benchmark:", json.dumps(results, indent=1))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench_verify.json").write_text(json.dumps(results, indent=1))


def _receiver_ms_per_file(datas: list[bytes], fast: bool) -> float:
    """Milliseconds per file of the receiver's check of one part (verification.inspect: parse, structure,
    UIDs, check_received), with its fast accept path (py_deid.verify_fast) first or off."""
    from py_deid.receiver import verification

    saved, verification.FAST = verification.FAST, fast
    try:
        t = time.perf_counter()
        for data in datas:
            verification.inspect(data, Options())
        return (time.perf_counter() - t) / len(datas) * 1000
    finally:
        verification.FAST = saved


def test_receiver_check_ms_per_file(samples):
    """The receiver's check with and without the fast accept path, same files, rounds interleaved, best of
    each; and how many de-identified outputs the fast path accepts (each one the full check accepts too:
    tests/receiver/test_fast_accept.py)."""
    from py_deid import verify_fast

    rounds = 2 if QUICK else 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ct, outputs = _outputs(samples)
        accepted = sum(verify_fast.accept(d, Options()) is not None for d in outputs)
        sets = {"ct_small": [ct] * (50 if QUICK else 300), "all_outputs": outputs}
        best: dict = {name: {"full": float("inf"), "fast": float("inf")} for name in sets}
        for _ in range(rounds):
            for name, datas in sets.items():
                for mode in ("full", "fast"):
                    best[name][mode] = min(best[name][mode], _receiver_ms_per_file(datas, mode == "fast"))
    results = {"files": {name: len(d) for name, d in sets.items()}, "rounds": rounds,
               "fast_accepted_outputs": accepted, "load_average": [round(x, 1) for x in os.getloadavg()]}
    for name, b in best.items():
        results[name] = {f"{m}_ms_per_file": round(v, 3) for m, v in b.items()}
        results[name]["fast_vs_full_speedup"] = round(b["full"] / b["fast"], 2)
    print("\nreceiver check benchmark:", json.dumps(results, indent=1))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench_receiver_check.json").write_text(json.dumps(results, indent=1))
