"""Header de-identification throughput (`--pixels off`), everything measured in one run on the same generated
corpus, rounds interleaved, medians: the py-deid CLI with --jobs 1 and 2 against a plain pydicom read+write,
dicognito's command line and dcmanon's Python API (when installed), and the Dask path with 1 and 2 local
workers against --jobs 2. Per tool: files/s, MB/s, CPU seconds, the maximum resident memory of its processes,
and how many planted PHI values its outputs still hold. Ratios, never timed assertions.

For the CLI, where its wall time went (the batch's PY_DEID_TIMELINE): start-up (interpreter, imports, options,
key), the batch, and exit; within the batch, per process, how long it was busy and how long it waited, the first
group and the last flush. On a shared machine the wall ratios are noisy: the CPU seconds and these timelines say
what two free cores would do.

py_deid is compiled to bytecode first, as an installed package is: a checkout run with PYTHONDONTWRITEBYTECODE
(as in this project's sessions) would otherwise compile every module of it again in every CLI process (about
0.2 s of CPU each).

The quick form (PY_DEID_BENCH_QUICK=1) takes the same 1,000 files: the targets are stated on 1,000 files, and
on fewer the start-up (about 0.27 s of CPU for the CLI, serial before --jobs 2's workers) weighs more: on 400
files --jobs 2 could not reach 1.8x --jobs 1 even on two free cores (estimate 1.72x); on 100, start-up was
about half of each run. The other tools run one round there, the targets' three (plain pydicom, --jobs 1 and
--jobs 2: 3 rounds, 5 in the full form), and the targets' ratios are the medians of the ratios taken within
each round, printed with every round's (one round's ratio moved from 1.22 to 1.87 on unchanged code in CI).
Before each run the disk is synced (not timed): plain pydicom and dicognito leave their outputs unflushed, and
the next run's fdatasync calls would otherwise wait for them. The order of the tools turns by one each round.
No run's outputs are removed before the last run has been measured: on ext4 (without a journal, as on this
project's machines) a new file skips every inode of its block group freed in the last minute, so a run made
right after the last run's 1,000 outputs were deleted paid 0.2-1.2 s more system CPU than one that was not
(plain pydicom 0.29-1.57 s of system CPU a run on unchanged code), whichever tool it was.

CPU seconds are not a fixed cost of the work on a shared machine: plain pydicom's own moved from 4.3 s to 6-7 s
with the load on unchanged code (contended cores and caches), and the CLI's with it; so every ratio is taken
within a round (two tools that ran seconds apart) and the median of the rounds given, never a ratio of two
medians (which pairs different rounds). By CPU three ways: all of it; user CPU alone (the file system's costs
left out); and the files' CPU alone, without either side's start-up or exit (plain pydicom's imports take numpy,
0.3-0.65 s of CPU, where the CLI's header path takes 0.13-0.25 s; plain's interpreter teardown another ~0.1 s,
where the CLI ends with os._exit): plain's CPU from its first file to after its last, against the CLI's batch
(the timeline's batch process, all its threads, from the first group to the report written)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from py_deid.instance import Deidentifier, run_sync
from py_deid.options import Settings

from ..cli.resources import measure
from .corpus import build

QUICK = os.environ.get("PY_DEID_BENCH_QUICK") == "1"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
KEY = "benchmark-key-0123456789abcdef"

# Prints the CPU its start-up took (interpreter and imports: pydicom loads numpy where it is installed, which
# the CLI's header path hides) and the CPU when the last file was written, so that the ratio can also be taken
# on the files alone, without either side's start-up or exit.
PLAIN = """
import sys, time, pydicom
from pathlib import Path
start_cpu = time.process_time()
src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir()
for p in sorted(src.iterdir()):
    pydicom.dcmread(p).save_as(out / p.name)
print('{"start_cpu": %.4f, "end_cpu": %.4f}' % (start_cpu, time.process_time()))
"""

DCMANON = """
import sys
from pathlib import Path
from dcmanon import Anonymizer
src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir()
anonymizer = Anonymizer()
for p in sorted(src.iterdir()):
    (out / p.name).write_bytes(anonymizer.anonymize(str(p)))
"""

# Dask: the cluster is started first and not timed (a cluster is started once and serves many batches).
DASK = """
import json, sys, time
from distributed import Client, LocalCluster
from py_deid import distributed
from py_deid.options import Settings
if __name__ == "__main__":
    src, out, workers, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        client.run(lambda: __import__("py_deid.batch"))  # workers warm, as in a cluster that is already up
        t = time.perf_counter()
        distributed.deidentify([src], out, scheduler=client, key=key, settings=Settings(pixels="off"))
        print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def _measure(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    m = measure(cmd, log=log, env=env)
    if m["returncode"] not in (0, 1):
        raise AssertionError(f"{cmd[:4]} exited {m['returncode']}: {log.read_text()[-2000:]}")
    return m


def _leftovers(out: Path, tokens: list[bytes]) -> int:
    """Planted PHI values still in the outputs (each value counted once per file it is in)."""
    return sum(sum(1 for t in tokens if t in p.read_bytes()) for p in out.rglob("*") if p.is_file())


def _have(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def _core(paths):
    deid = Deidentifier(Settings(pixels="off"), KEY.encode())
    for p in paths:
        result = run_sync(deid.process(p.read_bytes()), None)
        assert result.status == "done", result.problem


def _plain_in_memory(paths):
    for p in paths:
        pydicom.dcmread(BytesIO(p.read_bytes())).save_as(BytesIO())


def _best(fn, *args, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


@pytest.mark.benchmark
def test_header_throughput(samples, tmp_path):
    n = 1000
    rounds = 1 if QUICK else 3
    # The targets' tools run more rounds than the others: one round's ratio on a shared machine (CI) moved from
    # 1.22 to 1.87 on unchanged code; the median of rounds, each ratio taken within its round, moves less.
    target_rounds = 3 if QUICK else 5
    import compileall
    import py_deid
    compileall.compile_dir(Path(py_deid.__file__).parent, quiet=1)  # see the module doc
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paths, tokens = build(samples, corpus, n)
    mb = sum(p.stat().st_size for p in paths) / 1e6
    key_file = tmp_path / "site.key"
    key_file.write_text(KEY)
    py = sys.executable

    def cli(jobs):
        return lambda out: [py, "-m", "py_deid", "deidentify", str(corpus), "-o", str(out), "--pixels", "off",
                            "--key-file", str(key_file), "--jobs", str(jobs)]

    tools = {
        "plain_read_write": lambda out: [py, "-c", PLAIN, str(corpus), str(out)],
        "cli_jobs1": cli(1),
        "cli_jobs2": cli(2),
    }
    if _have("dicognito"):
        tools["dicognito_cli"] = lambda out: [py, "-m", "dicognito", str(corpus), "--output-directory", str(out),
                                              "--quiet"]
    if _have("dcmanon"):
        tools["dcmanon_api"] = lambda out: [py, "-c", DCMANON, str(corpus), str(out)]
    if _have("distributed"):
        for w in (1, 2):
            tools[f"dask_{w}_workers"] = (lambda w: lambda out: [py, "-c", DASK, str(corpus), str(out), str(w),
                                                                 KEY])(w)

    runs: dict[str, list[dict]] = {name: [] for name in tools}
    leftovers: dict[str, int] = {}
    timelines: dict[str, list[dict]] = {name: [] for name in tools if name.startswith("cli_")}
    for r in range(max(rounds, target_rounds)):  # interleaved: a slow minute of the machine hits every tool alike
        # The order turns by one each round: no tool always runs first (after the last round's teardown) or
        # always right after the same tool.
        names = [name for name in tools if r < rounds or name in TARGET_TOOLS]
        for name in names[r % len(names):] + names[:r % len(names)]:
            command = tools[name]
            # The last run's outputs (plain pydicom's and dicognito's are not flushed) go to disk now, not
            # while the next run flushes its own: else a run's fdatasync calls wait for the tool before it.
            os.sync()
            out = tmp_path / f"{name}-{r}"
            timeline = tmp_path / f"{name}-{r}.timeline.json"
            env = {**os.environ, "PY_DEID_TIMELINE": str(timeline)} if name in timelines else None
            m = _measure(command(out), tmp_path / f"{name}.log", env)
            if name in timelines:
                timelines[name].append(_timeline(json.loads(timeline.read_text()), m["seconds"]))
            if name.startswith("dask"):
                m["seconds"] = json.loads(m["stdout"])["seconds"]  # the batch only, not the cluster's start
                m["cpu"] = m["max_rss_mb"] = None  # the workers are not this process's children to measure
            if name == "plain_read_write":
                printed = json.loads(m["stdout"])
                m["start_cpu"], m["files_cpu"] = printed["start_cpu"], printed["end_cpu"] - printed["start_cpu"]
            elif name in timelines:
                m["start_cpu"] = timelines[name][-1]["start_up_cpu_s"]
                m["files_cpu"] = timelines[name][-1]["batch_process_cpu_s"]  # --jobs 1: the whole batch
            runs[name].append(m)
            if r == 0 and name != "plain_read_write":
                leftovers[name] = _leftovers(out, tokens)
            # Kept until every run is measured (see the module doc): a deletion here would make the next run's
            # files dearer to create.

    for name, ms in runs.items():  # every run measured: the outputs of rounds after the first can go
        for r in range(1, len(ms)):
            shutil.rmtree(tmp_path / f"{name}-{r}", ignore_errors=True)

    results: dict = {"files": n, "MB": round(mb, 1), "rounds": rounds, "target_rounds": target_rounds}
    for name, ms in runs.items():
        wall = statistics.median(m["seconds"] for m in ms)
        row = {"files_per_s": round(n / wall, 1), "MB_per_s": round(mb / wall, 1)}
        if ms[0]["cpu"] is not None:
            row["cpu_s"] = round(statistics.median(m["cpu"] for m in ms), 2)
            row["user_cpu_s"] = round(statistics.median(m["user_cpu"] for m in ms), 2)
            row["sys_cpu_s"] = round(statistics.median(m["sys_cpu"] for m in ms), 2)
            row["max_rss_mb"] = round(max(m["max_rss_mb"] for m in ms), 1)
        if name in leftovers:
            row["planted_phi_values_left"] = leftovers[name]
        if name in timelines:  # the round of median wall time
            row["timeline"] = sorted(timelines[name], key=lambda t: t["wall_s"])[len(ms) // 2]
        results[name] = row

    def ratio(a: str, b: str, what: str = "files_per_s") -> float | None:
        if a in results and b in results and results[b].get(what):
            return round(results[a][what] / results[b][what], 2)
        return None

    def cpu_ratio(a: str, b: str, what: str = "cpu") -> float | None:
        """b's CPU over a's, the median of the ratios within each round they share."""
        if a in runs and b in runs and runs[a][0]["cpu"] is not None and runs[b][0]["cpu"] is not None:
            return statistics.median(cpu_by_round(a, b, what))
        return None

    def by_round(a: str, b: str) -> list[float]:
        """b's wall time over a's, each within one round (the two ran a few seconds apart)."""
        return sorted(round(mb["seconds"] / ma["seconds"], 2) for ma, mb in zip(runs[a], runs[b]))

    def within(a: str, b: str) -> float | None:
        return statistics.median(by_round(a, b)) if a in runs and b in runs else None

    def cpu_by_round(a: str, b: str, what: str = "cpu") -> list[float]:
        """b's CPU seconds over a's within each round (`what`: cpu, user_cpu, or files_cpu, the files alone
        without start-up and exit): the machine's load changes the CPU a file costs (contended caches and cores:
        plain pydicom's own moved from 4.3 s to 6-7 s with the load on unchanged code), alike for tools that
        run seconds apart."""
        return sorted(round(mb[what] / ma[what], 2) for ma, mb in zip(runs[a], runs[b]))

    def per_round(name: str) -> list[dict]:
        """Each round's own figures, in the order of the rounds (so that a ratio can be traced to its round)."""
        return [{k: round(m[k], 3) for k in ("seconds", "cpu", "user_cpu", "sys_cpu", "start_cpu", "files_cpu")
                 if m.get(k) is not None} for m in runs[name]]

    results["ratios"] = {k: v for k, v in {
        # The targets: medians of the ratios within each round, and their spread (lowest, highest).
        "cli_jobs1_vs_plain": within("cli_jobs1", "plain_read_write"),
        "cli_jobs1_vs_plain_rounds": by_round("cli_jobs1", "plain_read_write"),
        "cli_jobs1_vs_plain_cpu": cpu_ratio("cli_jobs1", "plain_read_write"),
        "cli_jobs1_vs_plain_cpu_rounds": cpu_by_round("cli_jobs1", "plain_read_write"),
        # User CPU alone: without the file system's work (creations, writes, flushes), which moves with what
        # other work did on the disk in the last minute.
        "cli_jobs1_vs_plain_user_cpu": cpu_ratio("cli_jobs1", "plain_read_write", "user_cpu"),
        "cli_jobs1_vs_plain_user_cpu_rounds": cpu_by_round("cli_jobs1", "plain_read_write", "user_cpu"),
        # The files alone: without either side's start-up (plain's imports include numpy, which the CLI's header
        # path leaves out) or exit (see the module doc).
        "cli_jobs1_vs_plain_cpu_after_start": cpu_ratio("cli_jobs1", "plain_read_write", "files_cpu"),
        "cli_jobs1_vs_plain_cpu_after_start_rounds": cpu_by_round("cli_jobs1", "plain_read_write", "files_cpu"),
        "plain_start_cpu_s": round(statistics.median(m["start_cpu"] for m in runs["plain_read_write"]), 3),
        "cli_jobs1_start_cpu_s": round(statistics.median(m["start_cpu"] for m in runs["cli_jobs1"]), 3),
        "plain_by_round": per_round("plain_read_write"),
        "cli_jobs1_by_round": per_round("cli_jobs1"),
        # Against the tools of one round, within the rounds they share (the first).
        "cli_jobs1_vs_dicognito_cli": within("cli_jobs1", "dicognito_cli"),
        "cli_jobs1_vs_dicognito_cli_cpu": cpu_ratio("cli_jobs1", "dicognito_cli"),
        "cli_jobs1_vs_dcmanon": within("cli_jobs1", "dcmanon_api"),
        "cli_jobs2_vs_jobs1": within("cli_jobs2", "cli_jobs1"),
        "cli_jobs2_vs_jobs1_rounds": by_round("cli_jobs2", "cli_jobs1"),
        # CPU of --jobs 1 over CPU of --jobs 2 (parent and workers): 1.0 when the second process costs nothing
        # extra, so that on two idle cores the wall ratio can approach twice this (less the serial start-up).
        "cli_jobs2_vs_jobs1_cpu": cpu_ratio("cli_jobs2", "cli_jobs1"),
        # From each run's timeline (see _timeline): what two free cores would give, whatever else shared them.
        "cli_jobs2_vs_jobs1_two_free_cores_estimate": round(
            results["cli_jobs1"]["timeline"]["two_free_cores_estimate_s"]
            / results["cli_jobs2"]["timeline"]["two_free_cores_estimate_s"], 2),
        "dask_1_workers_vs_cli_jobs2": within("dask_1_workers", "cli_jobs2"),
        "dask_2_workers_vs_cli_jobs2": within("dask_2_workers", "cli_jobs2"),
        "dask_2_vs_1_workers": ratio("dask_2_workers", "dask_1_workers"),
    }.items() if v is not None}

    # The core in this process, without interpreter start or files written: where the CLI's time goes.
    _plain_in_memory(paths[:20])
    _core(paths[:20])
    plain = _best(_plain_in_memory, paths, repeat=rounds)
    core = _best(_core, paths, repeat=rounds)
    results["in_process"] = {"plain_read_write_files_per_s": round(n / plain, 1),
                             "core_files_per_s": round(n / core, 1), "core_vs_plain": round(plain / core, 2)}
    results["load_average"] = [round(x, 1) for x in os.getloadavg()]

    print("\nheader benchmark:", json.dumps(results, indent=1))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench_header.json").write_text(json.dumps(results, indent=1))
    assert leftovers["cli_jobs1"] == leftovers["cli_jobs2"] == 0  # zero planted PHI in any output byte
    assert len(list((tmp_path / "cli_jobs1-0").rglob("*.dcm"))) == n
    for name in ("dask_1_workers", "dask_2_workers"):
        if name in leftovers:
            assert leftovers[name] == 0 and _tree(tmp_path / f"{name}-0") == _tree(tmp_path / "cli_jobs1-0")


TARGET_TOOLS = ("plain_read_write", "cli_jobs1", "cli_jobs2")  # run target_rounds times


def _timeline(t: dict, wall: float) -> dict:
    """Where one CLI run's wall time went, from the batch's timeline (seconds). Per process that made groups
    (`workers`, in the order they started; with --jobs N the batch process is one of them): busy (making
    groups), idle (the rest of the batch's time), its CPU seconds, when it began its first group and ended its
    last; the batch process's own CPU seconds (all of it, its groups included) and how long it waited for
    results; the start-up before the batch and the exit after it."""
    p0, start, end, groups = t["process_start"] or t["run_start"], t["run_start"], t["run_end"], t["groups"]
    span = end - start
    workers: dict = {}
    for g in groups:
        w = workers.setdefault(g["pid"], {"busy": 0.0, "cpu": 0.0, "groups": 0, "files": 0,
                                          "first": g["start"], "last": g["end"]})
        w["busy"] += g["end"] - g["start"]
        w["cpu"] += g["cpu"]
        w["groups"] += 1
        w["files"] += g["files"]
        w["first"], w["last"] = min(w["first"], g["start"]), max(w["last"], g["end"])
        if "init_start" in g:
            w["init"] = g["init_end"] - g["init_start"]
    rows = [{"files": w["files"], "groups": w["groups"], "busy_s": round(w["busy"], 3),
             "idle_s": round(span - w["busy"], 3), "cpu_s": round(w["cpu"], 3),
             "first_group_start_s": round(w["first"] - start, 3), "last_group_end_s": round(w["last"] - start, 3),
             **({"init_s": round(w["init"], 3)} if "init" in w else {})}
            for w in sorted(workers.values(), key=lambda w: w["first"])]
    last = max(groups, key=lambda g: g["flush_end"]) if groups else None
    first = min(groups, key=lambda g: g["end"]) if groups else None
    return {
        "wall_s": round(wall, 3),
        "start_up_s": round(start - p0, 3),  # interpreter, imports, options, key: before the first group
        "start_up_cpu_s": round(t["start_cpu"], 3),
        # What two free cores would take: the start-up (one process), then the batch's CPU (the batch process's
        # and its workers') spread over two cores, or on one where the batch is one process (--jobs 1: its
        # flush thread waits on the disk). The flushes' waits and the last group's tail are left out.
        "two_free_cores_estimate_s": round(t["start_cpu"] + (
            t["parent_cpu"] if not rows_elsewhere(t) else
            (t["parent_cpu"] + sum(w["cpu"] for pid, w in workers.items() if pid != t.get("pid"))) / 2), 3),
        "batch_s": round(span, 3),
        "first_group_done_s": round(first["end"] - start, 3) if first else None,
        "last_flush_s": round(last["flush_end"] - last["flush_start"], 3) if last else None,
        "after_last_flush_s": round(end - last["flush_end"], 3) if last else None,  # naming, report, clean-up
        "exit_s": round(wall - (end - p0), 3),
        "batch_process_cpu_s": round(t["parent_cpu"], 3), "batch_process_waited_s": round(t["parent_waited"], 3),
        "workers": rows,
    }


def rows_elsewhere(t: dict) -> bool:
    """Whether the groups were made in processes other than the batch process (--jobs N)."""
    return any(g["pid"] != t.get("pid") for g in t["groups"])


def _tree(root: Path) -> dict[str, bytes]:
    import hashlib
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).digest() for p in sorted(root.rglob("*.dcm"))}
