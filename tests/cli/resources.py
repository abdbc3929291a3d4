"""Wall time, CPU time and peak resident memory of a command and the processes it waits for.

The command runs under a small launcher process: Linux carries a process's peak RSS across fork and exec,
so a command started straight from the (large) test process would report the test process's peak as its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

LAUNCHER = """
import json, os, subprocess, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
t = time.perf_counter()
proc = subprocess.Popen(cmd)
_, status, usage = os.wait4(proc.pid, 0)
with open(report, "w") as fh:
    json.dump({"seconds": time.perf_counter() - t, "cpu": usage.ru_utime + usage.ru_stime,
               "user_cpu": usage.ru_utime, "sys_cpu": usage.ru_stime,
               "max_rss_mb": usage.ru_maxrss / 1024, "returncode": os.waitstatus_to_exitcode(status)}, fh)
"""


def measure(cmd: list[str], *, log: Path | None = None, env: dict | None = None) -> dict:
    """Run `cmd`; returns seconds (wall), cpu (user + system; also apart: user_cpu, sys_cpu), max_rss_mb (the
    largest of the command's processes), returncode and stdout (bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "usage.json"
        with open(log or Path(tmp) / "stderr", "wb") as err:
            proc = subprocess.run([sys.executable, "-c", LAUNCHER, str(report), *map(str, cmd)],
                                  stdout=subprocess.PIPE, stderr=err, env=env, check=True)
        result = json.loads(report.read_text())
    result["stdout"] = proc.stdout
    return result
