"""No leak across files: the workers' Python object count and wasm memory stay flat over hundreds of files, and
over 5,000 with PY_DEID_FULL=1 (issue 15's figure) (PyProxies never handed to JS; outputs transferred, not copied;
inputs released)."""

from __future__ import annotations

import os

import pytest

from . import corpus

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _run(s, files, n):
    s.page.set_input_files("deid-uploader >> #files", [str(p) for p in files])
    summary = s.wait_complete(n, timeout=max(600, len(files) // 4))
    return s.page.evaluate("() => document.querySelector('deid-uploader').stats()"), summary


def test_memory_flat_over_many_files(receiver, session_factory, samples, tmp_path):
    more = 100 if os.environ.get("PY_DEID_BENCH_QUICK") == "1" else 300
    if os.environ.get("PY_DEID_FULL") == "1":
        more = 5000 - 60
    files = corpus.ct_series(samples, tmp_path, 60 + more)
    s = session_factory(receiver.url + "/")
    s.page.evaluate("() => document.querySelector('deid-uploader').removeAttribute('endpoint')")
    s.listen()
    warm, _ = _run(s, files[:60], 1)
    after, summary = _run(s, files[60:], 2)
    assert summary["counts"]["deidentified"] == 60 + more
    print(f"memory over {60 + more} files: " + "; ".join(
        f"worker {k}: wasm {w0['wasmBytes'] >> 20} -> {w1['wasmBytes'] >> 20} MiB, Python objects {w0['pythonObjects']}"
        f" -> {w1['pythonObjects']}" for k, (w0, w1) in enumerate(zip(warm, after))))
    for w0, w1 in zip(warm, after):
        assert w1["wasmBytes"] <= w0["wasmBytes"] * 1.05, (w0, w1)
        assert w1["pythonObjects"] - w0["pythonObjects"] < 0.5 * more, (w0, w1)  # not one object per file
    # Each worker's idle time between files, split (web/src/worker.js stats): the page had not sent the next file
    # yet (awaitMs), or it was there (dispatchMs); the pause between the two batches is the page's.
    work = [w["work"] for w in after]
    assert sum(w["files"] for w in work) == 60 + more, work
    for w in work:
        assert w["awaitMs"] >= 0 and w["dispatchMs"] >= 0, w
        assert w["awaitMs"] + w["dispatchMs"] <= w["idleMs"] + 2, w
    assert sum(w["awaitMs"] for w in work) >= 1, work
    heap = s.page.evaluate("() => performance.memory.usedJSHeapSize")
    assert heap < 64e6, heap  # the page keeps rows, not bytes
