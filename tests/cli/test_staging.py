"""Where the temporary files are made (py_deid.batch._Outputs, _files_folder, _spread_below): in a folder inside
the run's staging folder, which is marked as the top of a hierarchy (Linux's FS_TOPDIR_FL) so that ext4 places
the folders made in it apart from OUT's neighbourhood, the one of three where a file was created with the least
CPU; where the flag cannot be set, one folder, and the run is the same."""

from __future__ import annotations

import array
import errno
import fcntl
import hashlib
import io
import json
import os
import sys

import pytest

from py_deid import batch, report
from py_deid.options import Settings

from .mixed_folder import mixed_folder
from .test_commit import NAMES

KEY = b"a-test-key-0123456789"


def _flags(path) -> int | None:
    """The folder's inode flags, or None where the file system does not give them."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, batch._GETFLAGS, flags, True)
        return flags[0]
    except OSError:
        return None
    finally:
        os.close(fd)


def _run(src, out, jobs):
    fh = io.StringIO()
    batch.run(batch.iter_inputs([str(src)]), batch.Job(out, Settings(pixels="off"), KEY, jobs),
              report.ReportWriter(fh, {"tool": "test"}))
    return [{k: v for k, v in e.items() if k != "seconds"} for e in json.loads(fh.getvalue())["files"]]


def _tree(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file()}


@pytest.mark.skipif(sys.platform != "linux", reason="FS_TOPDIR_FL is Linux's")
def test_files_are_made_below_a_folder_marked_top_of_a_hierarchy(tmp_path):
    if not _flags_settable(tmp_path):
        pytest.skip("this file system does not take FS_TOPDIR_FL")
    outputs = batch._Outputs(tmp_path / "out")
    try:
        assert outputs.staging.parent == outputs.root and outputs.root.parent == tmp_path / "out"
        assert outputs.root.name.startswith(".py-deid-staging-") and outputs.staging.is_dir()
        assert _flags(outputs.root) & batch._TOPDIR
        assert not _flags(tmp_path / "out") & batch._TOPDIR  # OUT itself is never marked
        assert not _flags(outputs.staging) & batch._TOPDIR
    finally:
        outputs.close()
    assert not outputs.root.exists() and os.listdir(tmp_path / "out") == []


def _flags_settable(folder) -> bool:
    """Whether FS_TOPDIR_FL can be set on a folder made in `folder` (read back to be sure)."""
    probe = folder / "settable"
    probe.mkdir()
    fd = os.open(probe, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, batch._GETFLAGS, flags, True)
        flags[0] |= batch._TOPDIR
        fcntl.ioctl(fd, batch._SETFLAGS, flags, True)
    except OSError:
        return False
    finally:
        os.close(fd)
    return bool((_flags(probe) or 0) & batch._TOPDIR)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_file_system_without_the_flag_gives_the_same_run(samples, tmp_path, monkeypatch, jobs):
    src = mixed_folder(samples, tmp_path / "in", NAMES)
    expected = _run(src, tmp_path / "marked", jobs)

    def refuse(fd, request, *args):
        if request == batch._SETFLAGS:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        return real(fd, request, *args)

    real = fcntl.ioctl
    monkeypatch.setattr(fcntl, "ioctl", refuse)
    assert batch._spread_below(tmp_path) is False or sys.platform != "linux"
    assert _run(src, tmp_path / "plain", jobs) == expected
    assert _tree(tmp_path / "plain") == _tree(tmp_path / "marked")
    assert not [p for p in (tmp_path / "plain").rglob("*") if p.name.startswith(".py-deid-staging")]


def test_of_the_folders_spread_apart_the_one_that_created_fastest_is_taken(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setattr(batch, "_spread_below", lambda folder: True)
    clock = iter([0, 700_000, 1_000_000, 1_030_000, 2_000_000, 2_400_000])  # the probes: 0.7 ms, 0.03, 0.4
    monkeypatch.setattr(batch.time, "thread_time_ns", lambda: next(clock))
    assert batch._files_folder(root) == root / "files1"
    assert sorted(os.listdir(root)) == [f"files{i}" for i in range(batch.SPREAD_CHOICES)]
    assert all(os.listdir(root / f"files{i}") == ["probe.part"] for i in range(batch.SPREAD_CHOICES))


def test_where_folders_are_not_spread_one_folder_is_made(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setattr(batch, "_spread_below", lambda folder: False)
    assert batch._files_folder(root) == root / "files" and os.listdir(root) == ["files"]
    assert os.listdir(root / "files") == []
