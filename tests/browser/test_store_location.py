"""`py-deid serve` without --store keeps its data in a per-user data folder (printed at start), never in the
current directory; the folder, the TLS private key and the token file are the owner's only."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest

from tests import processes

from .conftest import ROOT


@pytest.mark.slow
def test_default_store_is_per_user_and_private(tmp_path):
    home, data, cwd = tmp_path / "home", tmp_path / "data", tmp_path / "checkout"
    for d in (home, cwd):
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PY_DEID_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(data), PYTHONPATH=str(ROOT))
    out = tmp_path / "serve.out"
    proc = subprocess.Popen([sys.executable, "-m", "py_deid", "serve", "--port", "0", "--no-site", "--verify-workers", "0"],
                            cwd=cwd, env=env, stdout=open(out, "wb"), stderr=subprocess.STDOUT)
    try:
        processes.wait_until_up(proc, lambda: "token:" in out.read_text(), "serve", out.read_text, 60)
    finally:
        processes.stop(proc)
    text = out.read_text()
    store = data / "py-deid" / "store"
    assert re.search(rf"store:\s+{re.escape(str(store))}$", text, re.M), text
    assert list(cwd.iterdir()) == []  # nothing written where it was started
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(store) == 0o700
    assert mode(store / "tokens.json") == 0o600
    keys = [p for p in (store / "tls").rglob("*") if p.is_file() and "key" in p.name]
    assert keys and all(mode(k) == 0o600 for k in keys)
