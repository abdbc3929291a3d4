from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


class Cli:
    """Runs `python -m py_deid` as a user would, in a subprocess."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.key = tmp / "site.key"
        self.key.write_text("a-site-secret-for-the-tests-0123456789\n")

    def __call__(self, *args: str, prefix: list[str] | None = None, check: bool = False) -> subprocess.CompletedProcess:
        cmd = (prefix or []) + [sys.executable, "-m", "py_deid", *map(str, args)]
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p


@pytest.fixture()
def cli(tmp_path) -> Cli:
    return Cli(tmp_path)
