"""Benchmark of the receiving endpoint (`py-deid serve`) over HTTPS on loopback.

STOW-RS uploads (parse, verify with the core, atomic store, ledger) against the baseline of the same
request bodies posted to a raw-body sink on the same server stack (uvicorn + TLS + bearer token + body
spooled to disk and fsynced), in the same run, with 2 concurrent clients:
- 1,000 small instances (a real CT, de-identified; 10 per request), also with PY_DEID_BENCH_QUICK=1 (or
  PY_DEID_BENCH_SMALL of them): the first 20 warm the server up, and a phase of fewer (the quick form had 100)
  lasted ~0.1 s, too short for its ratio to mean anything;
- 50 large instances of ~23 MB (a real MR volume, de-identified; 1 per request), 4 with QUICK.
Reported as MB/s and instances/s and as ratios to the sink, and as CPU milliseconds per instance of the
server, its verification workers and the clients. Memory: peak RSS (VmHWM, reset before each
request) of the server process and of its verification workers for STOW bodies of growing size: it must
follow the largest instance, not the body. Printed and written to test-artifacts/bench_receiver.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.receiver import receiver_support as rs  # noqa: E402

from py_deid import stow  # noqa: E402

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]
QUICK = os.environ.get("PY_DEID_BENCH_QUICK") == "1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "bench-token-5e6f7a8b9c0d1e2f3a4b"
SMALL, SMALL_PER_REQUEST = 1000, 10  # also quick: ~2 s of STOW at rest, a few seconds more of CI
SMALL = int(os.environ.get("PY_DEID_BENCH_SMALL", SMALL))  # more for steadier rates on a loaded machine
LARGE = 4 if QUICK else 50
SWEEP = (2, 3, 4) if QUICK else (2, 4, 16)  # from 2: both workers busy in every row
CLIENTS = 2
# PY_DEID_BENCH_FULL_CHECK=1: the server with its fast accept path off (every part meets the full check), the
# baseline of py_deid.verify_fast; run alternately with the default to compare in one session.
FULL_CHECK = os.environ.get("PY_DEID_BENCH_FULL_CHECK") == "1"
# PY_DEID_BENCH_TIMELINE=1: the server records each STOW request's steps (PY_DEID_RECEIVER_TIMELINE; one file
# append per request, so off for the rates), and the small phase prints the median time of each step.
TIMELINE = os.environ.get("PY_DEID_BENCH_TIMELINE") == "1"
# PY_DEID_BENCH_STORE=DIR: the server's store (and so the tmp/ folder where every STOW instance's file and each
# sink body's file is created) in a new folder under DIR instead of pytest's tmp_path. Creating a file costs
# 20 us to over 1 ms of CPU on one ext4 by the folder it is in (see create_file_us), and STOW creates ten
# times as many as the sink: this separates that from the receiver's own work. The store is left there: on an
# ext4 without a journal the kernel skips inodes freed in the last 60-360 s (recently_deleted) on every create,
# so removing a run's ~1,000 files would slow the next run's creates in that folder's block group; the caller
# removes the stores after a series of runs.
STORE_BASE = os.environ.get("PY_DEID_BENCH_STORE")
STEPS = ("body", "thread", "checks", "flushed", "pending_rows", "renamed", "folder_fsync", "ledger_commit",
         "committed", "answer")


def _write_body(path: Path, parts: list[bytes]) -> tuple[Path, str, int]:
    ctype, body = stow.encode(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path, ctype, len(parts)


def _write_bodies(folder: Path, parts_per_body: list[list[bytes]]) -> list[tuple[Path, str, int]]:
    return [_write_body(folder / f"{i:05d}.body", parts) for i, parts in enumerate(parts_per_body)]


def _large_bodies(folder: Path, base: bytes, count: int) -> list[tuple[Path, str, int]]:
    # One body at a time: 50 x 23 MB would not fit comfortably in this process's memory at once.
    return [_write_body(folder / f"{i:05d}.body", [rs.with_new_uids(base, 5000 + i)]) for i in range(count)]


def _copies(data: bytes, count: int) -> list[bytes]:
    """`count` copies of an instance, each under a SOP Instance UID of its own, as rs.with_new_uids makes them
    (which reads and writes every copy with pydicom: ~13 ms each, 12 s for 1,000 on a loaded machine). The
    UIDs all have one length, so each copy is one template with the UID's two occurrences (file meta, data
    set) replaced: no length changes."""
    base = 10**37  # 38 digits for every copy
    uid = f"2.25.{base}"

    def set_uid(ds) -> None:
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid

    template = rs.edit(data, set_uid)
    assert template.count(uid.encode("ascii")) == 2
    return [template.replace(uid.encode("ascii"), f"2.25.{base + i}".encode("ascii")) for i in range(count)]


def _stream(path: Path):
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def _run(srv, bodies, url: str, expect: int) -> dict:
    """Post every body, CLIENTS at a time; returns seconds, bytes, instances."""
    queues = [bodies[i::CLIENTS] for i in range(CLIENTS)]
    errors: list[str] = []

    def worker(items):
        with srv.client(TOKEN, timeout=600) as c:
            for path, ctype, _ in items:
                r = c.post(url, content=_stream(path), headers={
                    "Content-Type": ctype, "Content-Length": str(path.stat().st_size)})
                if r.status_code != expect:
                    errors.append(f"{r.status_code}: {r.text[:200]}")

    threads = [threading.Thread(target=worker, args=(q,)) for q in queues]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    assert not errors, errors[:3]
    size = sum(p.stat().st_size for p, _, _ in bodies)
    n = sum(k for _, _, k in bodies)
    return {"seconds": round(seconds, 3), "mb": round(size / 1e6, 1), "instances": n,
            "mb_per_s": round(size / seconds / 1e6, 1), "instances_per_s": round(n / seconds, 1)}


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def _children(pid: int) -> list[int]:
    """The server's verification worker processes."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sys_cpu(pid: int) -> float:
    """CPU seconds a process has spent in the kernel so far (creating, writing, flushing files among it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def _thread_cpu(pid: int, tid: int) -> float:
    """CPU seconds (user + system) one thread of a process has used so far."""
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _threads_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of a process so far, by thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = _thread_cpu(pid, int(task.name))
        except (OSError, ValueError):
            continue  # (a thread that ended meanwhile)
    return out


def _by_role(pid: int, startup: list[int], before: dict[int, float], after: dict[int, float],
             n: int) -> dict[str, float]:
    """The server's threads other than its event loop, CPU ms per instance, by role. Python 3.11 does not
    name a thread for the kernel, so the roles come from the order the server starts them in (`startup`:
    its threads before the first request, by rising id): the store's 8 fsync threads, then the verifier
    pool's thread, last; threads started later are the request threads (made at the first requests)."""
    early = [t for t in startup if t != pid]
    roles = {early[-1]: "pool", **{t: "fsync" for t in early[-9:-1]}} if len(early) >= 9 else {}
    out = {"fsync": 0.0, "pool": 0.0, "requests": 0.0, "other": 0.0}
    for t in after:
        if t != pid:
            role = roles.get(t, "other" if t in startup else "requests")
            out[role] += after[t] - before.get(t, 0.0)
    return {k: round(v / n * 1e3, 3) for k, v in out.items()}


def _cores_busy() -> tuple[int, int]:
    """(idle + iowait, all) jiffies of the machine's cores so far (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def _timeline(path: Path, n: int) -> dict:
    """Median ms from a request's start (its handler entered) to each step, over the last n STOW requests."""
    rows = [json.loads(line) for line in path.read_text().splitlines()[-n:]]
    out = {}
    for step in STEPS:
        values = sorted(r[step] for r in rows if step in r)
        if values:
            out[step] = values[len(values) // 2]
    return out


def _measured(srv, bodies, url: str) -> dict:
    """_run, with the CPU seconds per instance that the server, its verification workers and the clients
    (this process) used meanwhile: steadier than rates on a machine that others load. The server's share
    is also split: its event loop (the main thread: TLS, HTTP, the multipart split) and its other threads
    (the commit, the fsyncs, the process pool's threads)."""
    pid = srv.proc.pid
    workers = _children(pid)
    before = (_cpu(pid), sum(_cpu(w) for w in workers), time.process_time(), _thread_cpu(pid, pid),
              _sys_cpu(pid), sum(_sys_cpu(w) for w in workers))
    threads0 = _threads_cpu(pid)
    idle0 = _cores_busy()
    run = _run(srv, bodies, url, 200)
    idle1 = _cores_busy()
    threads1 = _threads_cpu(pid)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()]
    after = (_cpu(pid), sum(_cpu(w) for w in alive), time.process_time(), _thread_cpu(pid, pid),
             _sys_cpu(pid), sum(_sys_cpu(w) for w in alive))
    n = run["instances"]
    run["cpu_ms_per_instance"] = {k: round((a - b) / n * 1e3, 3) for k, a, b in zip(
        ("server", "workers", "clients", "server_loop", "server_kernel", "workers_kernel"), after, before)}
    run["server_threads_ms_per_instance"] = _by_role(pid, srv.startup_threads, threads0, threads1, n)
    # The machine's cores' idle share meanwhile (every process on it, not only these: others load it)
    run["idle_share"] = round((idle1[0] - idle0[0]) / max(1, idle1[1] - idle0[1]), 3)
    return run


def _create_cost_us(folder: Path, n: int = 200) -> float:
    """CPU microseconds to create (and close) an empty file in `folder`: a STOW instance creates one (a
    file per instance), the sink one per request. On ext4 this depends on the block group the folder
    landed in (15 to 500 us measured on one machine), so it is printed with the rates."""
    t0 = time.process_time()
    names = [folder / f"probe-{i}" for i in range(n)]
    for name in names:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    spent = time.process_time() - t0
    for name in names:
        name.unlink()
    return round(spent / n * 1e6, 1)


def _phase(srv, name: str, bodies, results: dict) -> None:
    stow_run = _measured(srv, bodies, "/dicomweb/studies")
    if TIMELINE and name == "small":
        stow_run["timeline_ms"] = _timeline(srv.timeline, len(bodies))
    sink_run = _measured(srv, bodies, "/bench/sink")
    cpu = [sum(run["cpu_ms_per_instance"][k] for k in ("server", "workers", "clients")) for run in (stow_run, sink_run)]
    results[name] = {"stow": stow_run, "sink": sink_run,
                     "ratio_mb_per_s": round(stow_run["mb_per_s"] / sink_run["mb_per_s"], 3),
                     # sink CPU / STOW CPU per instance (all processes): the rate ratio a CPU-bound machine
                     # would show, steadier than the measured one when others load it
                     "ratio_cpu": round(cpu[1] / cpu[0], 3) if cpu[0] else None}


def test_bench_receiver(tmp_path, samples):
    results: dict = {"quick": QUICK, "clients": CLIENTS, "transport": "HTTPS (TLS 1.3) on loopback",
                     "fast_accept": not FULL_CHECK}
    env = {"PY_DEID_RECEIVER_FAST": "0"} if FULL_CHECK else {}
    if TIMELINE:
        env["PY_DEID_RECEIVER_TIMELINE"] = str(tmp_path / "timeline.jsonl")
    store = Path(tempfile.mkdtemp(prefix="bench-store-", dir=STORE_BASE)) / "store" if STORE_BASE else tmp_path / "store"
    srv = rs.Server(store, "--token", f"bench:{TOKEN}", "--benchmark-sink",
                    "--max-request-size", "4G", log_name="bench", env=env or None).start()
    srv.timeline = tmp_path / "timeline.jsonl"
    srv.startup_threads = sorted(_threads_cpu(srv.proc.pid))  # before any request (_by_role)
    try:
        pid = srv.proc.pid
        bodies = tmp_path / "bodies"
        ct = rs.deidentify(samples.bytes("CT_small.dcm"))
        small = _copies(ct, SMALL)
        small_bodies = _write_bodies(bodies / "small", [small[i:i + SMALL_PER_REQUEST]
                                                        for i in range(0, SMALL, SMALL_PER_REQUEST)])
        del small
        _run(srv, small_bodies[:2], "/dicomweb/studies", 200)  # warm-up (imports, TLS, page cache)
        results["create_file_us"] = {"store tmp": _create_cost_us(store / "tmp")}
        results["store_base"] = STORE_BASE or "pytest tmp_path"
        results["rss_after_warmup"] = _status(pid)["VmRSS"]
        _phase(srv, "small", small_bodies[2:], results)
        results["small"]["instance_bytes"] = len(ct)

        mr = rs.deidentify(samples.bytes("philips_mprage.dcm"))
        workers = _children(pid)
        results["rss_before_large_mb"] = {"server": round(_status(pid)["VmRSS"] / 1e6, 1),
                                          "workers": round(sum(_status(w)["VmRSS"] for w in workers) / 1e6, 1)}
        # Memory against body size, before any other large instance has grown the processes: one request
        # each, peak RSS of the server and its workers while it is handled.
        sweep = []
        for k, count in enumerate(SWEEP):
            parts = [rs.with_new_uids(mr, 10_000 + 100 * k + j) for j in range(count)]
            path, ctype, n = _write_body(bodies / f"sweep{k}.body", parts)
            del parts
            row = {"instances": n, "body_mb": round(path.stat().st_size / 1e6, 1)}
            for label, url in (("stow", "/dicomweb/studies"), ("sink", "/bench/sink")):
                before = _status(pid)["VmRSS"]
                for p in [pid, *workers]:
                    _reset_peak(p)
                _run(srv, [(path, ctype, n)], url, 200)
                row[f"{label}_rss_before_mb"] = round(before / 1e6, 1)
                row[f"{label}_peak_rss_mb"] = round(_status(pid)["VmHWM"] / 1e6, 1)
                row[f"{label}_workers_peak_rss_mb"] = round(sum(_status(w)["VmHWM"] for w in workers) / 1e6, 1)
            sweep.append(row)
            path.unlink()
        results["memory_vs_body_size"] = sweep
        large_bodies = _large_bodies(bodies / "large", mr, LARGE)
        _phase(srv, "large", large_bodies, results)
        results["large"]["instance_bytes"] = len(mr)

        results["rss_end"] = _status(pid)["VmRSS"]
        with srv.client(TOKEN) as c:
            results["stored_instances"] = c.get("/receiver/status").json()["stored"]
    finally:
        srv.stop()

    peaks = [r["stow_peak_rss_mb"] + r["stow_workers_peak_rss_mb"] for r in sweep]
    growth = (peaks[-1] - peaks[0]) / max(1e-9, sweep[-1]["body_mb"] - sweep[0]["body_mb"])
    results["memory_growth_mb_per_body_mb"] = round(growth, 4)
    ARTIFACTS.mkdir(exist_ok=True)
    name = "bench_receiver_full_check.json" if FULL_CHECK else "bench_receiver.json"
    (ARTIFACTS / name).write_text(json.dumps(results, indent=2))
    print("\nreceiver benchmark (STOW-RS vs raw HTTPS sink, same bodies, 2 clients, fast accept "
          f"{'off' if FULL_CHECK else 'on'})")
    for name in ("small", "large"):
        s, b = results[name]["stow"], results[name]["sink"]
        print(f"  {name:5s}: STOW {s['mb_per_s']:7.1f} MB/s {s['instances_per_s']:7.1f} inst/s | "
              f"sink {b['mb_per_s']:7.1f} MB/s {b['instances_per_s']:7.1f} inst/s | "
              f"ratio {results[name]['ratio_mb_per_s']:.2f}")
        print(f"         CPU per instance, sink / STOW (all processes): {results[name]['ratio_cpu']}")
        for label in ("stow", "sink"):
            cpu = results[name][label]["cpu_ms_per_instance"]
            print(f"         {label} CPU ms/instance: server {cpu['server']:.2f} (event loop "
                  f"{cpu['server_loop']:.2f}, other threads {cpu['server'] - cpu['server_loop']:.2f}), "
                  f"workers {cpu['workers']:.2f}, clients {cpu['clients']:.2f}; in the kernel: server "
                  f"{cpu['server_kernel']:.2f}, workers {cpu['workers_kernel']:.2f}; cores idle "
                  f"{results[name][label]['idle_share']:.0%}")
            if label == "stow":
                print("         stow server's other threads, CPU ms/instance: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in results[name][label]["server_threads_ms_per_instance"].items()))
        if "timeline_ms" in results[name]["stow"]:
            print("         STOW request steps, median ms from its start: " + ", ".join(
                f"{k} {v:.2f}" for k, v in results[name]["stow"]["timeline_ms"].items()))
    for r in sweep:
        print(f"  body {r['body_mb']:7.1f} MB ({r['instances']:2d} inst): peak RSS STOW server "
              f"{r['stow_peak_rss_mb']:6.1f} MB + workers {r['stow_workers_peak_rss_mb']:6.1f} MB | "
              f"sink server {r['sink_peak_rss_mb']:6.1f} MB")
    print(f"  peak RSS (server + workers) growth per MB of body: {results['memory_growth_mb_per_body_mb']:.4f} MB")
    print(f"  CPU to create a file in the store's tmp/: {results['create_file_us']['store tmp']} us")
    assert results["stored_instances"] == SMALL + LARGE + sum(SWEEP)
    # Flat memory: the peak does not follow the body (16 instances of 23 MB in one body stay within one
    # instance's working set, about three copies of it).
    assert growth < 0.1
