"""Start-up of the command line: `py-deid --help` and a header-only `deidentify` load no pixel, OCR or server
library (numpy, Pillow, tesserocr, starlette...), and a header-only run writes the same bytes as a run with
them loaded."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HEAVY = ["numpy", "PIL", "tesserocr", "starlette", "uvicorn", "httpx", "cryptography", "pylibjpeg", "openjpeg",
         "requests", "distributed", "libjpeg", "rle", "jpeg_ls"]

# What the command's process loaded, and each process that de-identified a group (pixel work runs in worker
# processes forked from it: py_deid.batch._Lanes), recorded after each group through a hook set once the
# command has loaded pydicom its own way (importing py_deid.batch earlier would load it with everything).
PROBE = """
import json, sys
import py_deid.cli as cli
from py_deid.cli import main

def loaded():
    return sorted(m for m in {heavy} if sys.modules.get(m) is not None)

load = cli._load_without_pixel_libraries

def hooked(*args, **kwargs):
    load(*args, **kwargs)
    from py_deid import batch
    stage = batch._Worker.stage

    def recorded(self, *a, **k):
        commit = stage(self, *a, **k)
        with open({record!r}, "a") as fh:
            fh.write(json.dumps(loaded()) + "\\n")
        return commit
    batch._Worker.stage = recorded

cli._load_without_pixel_libraries = hooked
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(loaded()))
print(json.dumps(sorted(m for m in sys.modules if m.startswith("py_deid.pixels."))))
"""
# What a header-only run may load of the pixel package: the outcome it reports, what `off` does (dropping a
# compressed frame's codestream extras: encapsulation, and info for its errors), the hand-off type.
PIXELS_OFF_MODULES = {"py_deid.pixels." + m for m in ("outcome", "off", "hand_off", "encapsulation", "info", "palette")}


def _loaded(*args: str, first: str = "") -> list[str]:
    return _probe(*args, first=first)[0]


def _probe(*args: str, first: str = "") -> tuple[list[str], list[str]]:
    """(the heavy libraries loaded by the command's process or a worker process, the pixel modules loaded by the
    command's process) of a CLI run in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "workers"
        code = first + PROBE.format(heavy=HEAVY, record=str(record))
        p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                           check=True)
        lines = p.stdout.strip().splitlines()
        found = set(json.loads(lines[-2]))
        if record.exists():
            found.update(m for line in record.read_text().splitlines() for m in json.loads(line))
    return sorted(found), json.loads(lines[-1])


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
    heavy, pixel_modules = _probe(*args)
    assert heavy == []
    # Nor the pixel step (OCR, screening, templates, the frame store: ~60 ms of start-up), which it never calls.
    assert "py_deid.pixels.off" in pixel_modules and set(pixel_modules) <= PIXELS_OFF_MODULES, pixel_modules
    # The same run with numpy and Pillow loaded first (pydicom then uses them): the same outputs.
    args[3] = tmp_path / "full"
    assert {"numpy", "PIL"} <= set(_loaded(*args, first="import numpy, PIL.Image, pydicom\n"))
    lean, full = ({str(p.relative_to(tmp_path / d)): hashlib.sha256(p.read_bytes()).hexdigest()
                   for p in (tmp_path / d).rglob("*.dcm")} for d in ("lean", "full"))
    assert lean == full and len(lean) == 5


PLUGIN_PACKAGES = ["PIL", "pylibjpeg", "openjpeg", "libjpeg", "rle", "jpeg_ls"]
REGISTRY = """
import json, sys
{first}
from pydicom.pixels.decoders.base import _PIXEL_DATA_DECODERS
from pydicom.pixels.encoders.base import _PIXEL_DATA_ENCODERS
out = {{}}
for kind, table in (("decoder", _PIXEL_DATA_DECODERS), ("encoder", _PIXEL_DATA_ENCODERS)):
    for uid, (coder, _) in table.items():
        out[kind + " " + uid] = [[k, f.__module__ + "." + f.__name__] for k, f in coder._available.items()] + [
            [k, list(v)] for k, v in coder._unavailable.items()]
import pydicom.pixels.processing as processing
out["processing"] = processing.HAVE_PIL
print(json.dumps(out))
"""


def test_pydicom_plugins_registered_late_are_those_of_a_normal_import():
    """`--pixels auto` loads pydicom with Pillow and the codec packages hidden (py_deid.hosts.native_plugins);
    the codec service registers them before its first question: the same plugins, in the same order, with
    the same requirements for the missing ones, as pydicom's normal import gives."""
    late = ("from py_deid import cli\nfrom py_deid.hosts import native_plugins\n"
            "cli._load_without_pixel_libraries(('requests', 'tqdm') + native_plugins.DEFERRED)\n"
            "assert not any(m in sys.modules for m in native_plugins.DEFERRED)\n"
            "from py_deid.hosts.native_codecs import NativeCodecs\n"
            "NativeCodecs().can_decode('1.2.840.10008.1.2.4.90')\n")
    runs = []
    for first in (late, "import pydicom\n"):
        p = subprocess.run([sys.executable, "-c", REGISTRY.format(first=first)], capture_output=True, text=True,
                           check=True)
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    assert any(len(v) > 1 for k, v in runs[1].items() if k.startswith("decoder"))  # plugins were compared


def test_textless_native_run_loads_no_codec_package_and_compressed_runs_write_the_same(samples, tmp_path):
    """A `--pixels auto` run over native frames imports numpy but neither Pillow nor a codec package; over
    compressed ones (every codec family) it writes the same bytes and report as a process that loaded them
    all before pydicom."""
    native = tmp_path / "native"
    native.mkdir()
    (native / "brain_001.dcm").write_bytes(samples.bytes("brain_001.dcm"))
    key = tmp_path / "site.key"
    key.write_text("a-site-secret-for-the-tests-0123456789\n")
    loaded = _loaded("deidentify", native, "-o", tmp_path / "native-out", "--pixels", "auto", "--key-file", key)
    assert "numpy" in loaded and not set(loaded) & set(PLUGIN_PACKAGES)
    src = tmp_path / "in"
    src.mkdir()
    for name in ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR2_J2KR.dcm", "JPEG2000.dcm", "JPEG-LL.dcm",
                 "JPEG-lossy.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm"]:
        (src / name).write_bytes(samples.bytes(name))
    outs = []
    for d, first in (("late", ""), ("full", "import PIL.Image, pylibjpeg, openjpeg, libjpeg, rle, jpeg_ls, pydicom\n")):
        report = tmp_path / f"{d}.json"
        got = _loaded("deidentify", src, "-o", tmp_path / d, "--pixels", "auto", "--key-file", key, "--report",
                      report, first=first)
        assert set(PLUGIN_PACKAGES) <= set(got)
        entries = json.loads(report.read_text())
        files = {str(p.relative_to(tmp_path / d)): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in (tmp_path / d).rglob("*.dcm")}
        outs.append((files, _without_times(entries)))
    assert outs[0] == outs[1] and len(outs[0][0]) >= 6  # (one of them is refused alike by both)


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if "time" not in k and "second" not in k
                and k not in ("started", "finished", "elapsed")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value
