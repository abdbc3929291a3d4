"""Start-up of the command line: `py-deid --help` and a header-only `deidentify` load no pixel, OCR or server
library (numpy, Pillow, tesserocr, starlette...), and a header-only run writes the same bytes as a run with
them loaded."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

HEAVY = ["numpy", "PIL", "tesserocr", "starlette", "uvicorn", "httpx", "cryptography", "pylibjpeg", "openjpeg",
         "requests", "distributed"]

PROBE = """
import json, sys
from py_deid.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if sys.modules.get(m) is not None)))
"""


def _loaded(*args: str, first: str = "") -> list[str]:
    code = first + PROBE.format(heavy=HEAVY)
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_help_loads_no_heavy_library():
    assert _loaded("--help") == []
    assert _loaded("deidentify", "--help") == []


def test_header_only_run_loads_no_pixel_library_and_writes_the_same_bytes(samples, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ["CT_small.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm", "SC_rgb.dcm", "rtplan.dcm"]:
        (src / name).write_bytes(samples.bytes(name))
    key = tmp_path / "site.key"
    key.write_text("a-site-secret-for-the-tests-0123456789\n")
    args = ["deidentify", src, "-o", tmp_path / "lean", "--pixels", "off", "--key-file", key]
    assert _loaded(*args) == []
    # The same run with numpy and Pillow loaded first (pydicom then uses them): the same outputs.
    args[3] = tmp_path / "full"
    assert {"numpy", "PIL"} <= set(_loaded(*args, first="import numpy, PIL.Image, pydicom\n"))
    lean, full = ({str(p.relative_to(tmp_path / d)): hashlib.sha256(p.read_bytes()).hexdigest()
                   for p in (tmp_path / d).rglob("*.dcm")} for d in ("lean", "full"))
    assert lean == full and len(lean) == 5
