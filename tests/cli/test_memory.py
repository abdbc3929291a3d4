"""The CLI stays under 150 MB resident for any folder: its peak does not grow with the number of files.

Quick form in CI (a few hundred files); PY_DEID_FULL=1 runs a folder of 5,000."""

from __future__ import annotations

import json
import os
import sys

import pytest

from .resources import measure

FULL = os.environ.get("PY_DEID_FULL") == "1"
LIMIT_MB = 150
BASES = ["CT_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm", "CTImageStorage.dcm", "JPEG2000.dcm"]


def _sop_uid(data: bytes) -> bytes:
    import pydicom
    from io import BytesIO
    return str(pydicom.dcmread(BytesIO(data), stop_before_pixels=True).SOPInstanceUID).encode()


def _folder(samples, root, n: int):
    """n distinct instances in nested folders: real files whose SOP Instance UID (in the meta and the dataset)
    is rewritten in place with one of the same length."""
    bases = []
    for name in BASES:
        data = samples.bytes(name)
        bases.append((data, _sop_uid(data)))
    for i in range(n):
        data, uid = bases[i % len(bases)]
        new = uid[:-6] + b"%06d" % i
        folder = root / f"study{i % 7}" / f"series{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}.dcm").write_bytes(data.replace(uid, new))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_peak_memory_does_not_grow_with_the_folder(samples, tmp_path, jobs):
    n = 5000 if FULL else 400
    small, large = _folder(samples, tmp_path / "small", n // 10), _folder(samples, tmp_path / "large", n)
    peaks = {}
    for name, src in (("small", small), ("large", large)):
        report = tmp_path / f"{name}.json"
        m = measure([sys.executable, "-m", "py_deid", "deidentify", src, "-o", tmp_path / f"out-{name}",
                     "--pixels", "off", "--jobs", jobs, "--report", report], log=tmp_path / f"{name}.log")
        assert m["returncode"] == 0, (tmp_path / f"{name}.log").read_text()[-2000:]
        assert json.loads(report.read_text())["summary"]["done"] == (n // 10 if name == "small" else n)
        peaks[name] = m["max_rss_mb"]
    print(f"\npeak RSS with --jobs {jobs}: {peaks['small']:.1f} MB for {n // 10} files, "
          f"{peaks['large']:.1f} MB for {n}")
    assert peaks["large"] < LIMIT_MB
    assert peaks["large"] - peaks["small"] < 10  # bounded by the window of groups, not the folder


@pytest.mark.slow
def test_one_large_file_is_held_twice_at_most(samples, tmp_path):
    """A 43 MB multi-frame instance, header only: the input and the output are in memory together, pydicom's
    copy of Pixel Data is not (py_deid.instance shares the input's bytes with the encoder)."""
    src = samples.path("ultrasound-multiframe.dcm")
    size_mb = src.stat().st_size / 2**20
    m = measure([sys.executable, "-m", "py_deid", "deidentify", src, "-o", tmp_path / "out", "--pixels", "off"],
                log=tmp_path / "log")
    assert m["returncode"] == 0, (tmp_path / "log").read_text()[-2000:]
    print(f"\npeak RSS for one {size_mb:.0f} MB file: {m['max_rss_mb']:.1f} MB")
    assert m["max_rss_mb"] < LIMIT_MB
    assert m["max_rss_mb"] < 60 + 2.3 * size_mb  # interpreter and libraries, two copies; three before
