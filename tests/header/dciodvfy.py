"""dciodvfy (Debian dicom3tools) as an oracle: the errors an output has that its input did not."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pydicom

DEFLATED = "1.2.840.10008.1.2.1.99"


def inflated(path: Path, tmp: Path) -> Path:
    """dciodvfy does not read deflated files: hand it the same dataset in explicit VR little endian."""
    ds = pydicom.dcmread(path, force=True)
    if getattr(ds, "file_meta", None) is None or ds.file_meta.get("TransferSyntaxUID") != DEFLATED:
        return Path(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    out = tmp / ("inflated-" + Path(path).name)
    ds.save_as(out, enforce_file_format=True)
    return out


def errors(path: Path) -> Counter:
    """The errors by place and kind, each as often as it occurs. Values differ before and after (that is the
    point), so what dciodvfy quotes of a value is dropped; the attribute path is kept."""
    p = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, errors="replace")
    lines = [line for line in (p.stdout + p.stderr).splitlines() if line.startswith("Error")]
    return Counter(re.sub(r"\s*=\s*<.*$|\s*\[[^\]]*\]\s*|\s*\"[^\"]*\"", "", line) for line in lines)


def new_errors(src: Path, out: Path, tmp: Path | None = None) -> list[str]:
    tmp = tmp or Path(out).parent
    added = errors(inflated(out, tmp)) - errors(inflated(src, tmp))
    return sorted(added.elements())
