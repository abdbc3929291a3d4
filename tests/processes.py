"""Servers the tests start as real processes: wait until one answers, stop it whatever state it is in."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable


def wait_until_up(proc: subprocess.Popen, answers: Callable[[], bool], what: str, log: Callable[[], str],
                  timeout: float = 60) -> None:
    """Poll `answers` until it is true; fail at once, with the end of the log, if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start in {timeout:.0f} s")


def stop(proc: subprocess.Popen | None, grace: float = 15, sig: int = signal.SIGTERM) -> None:
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
