"""Bad input: each case is a per-file error in the report, the batch goes on, nothing is half-written,
the input is never touched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest


def _hashes(root: Path) -> dict[str, tuple[str, float]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
    return out


def _run(cli, src: Path, out: Path, report: Path, prefix=None):
    p = cli("deidentify", src, "-o", out, "--pixels", "off", "--report", report, prefix=prefix)
    rep = json.loads(report.read_text()) if report.exists() else None
    return p, rep


def _by_name(rep) -> dict[str, dict]:
    return {Path(e["input"]).name: e for e in rep["files"]}


@pytest.fixture()
def bad_folder(samples, tmp_path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    good = samples.bytes("CT_small.dcm")
    (src / "good.dcm").write_bytes(good)
    (src / "notes.txt").write_text("Patient John Doe, see images\n")
    (src / "empty.dcm").write_bytes(b"")
    shutil.copy(samples.path("dicomdirtests/DICOMDIR"), src / "DICOMDIR")
    shutil.copy(samples.path("ExplVR_LitEndNoMeta.dcm"), src / "no_meta.dcm")
    (src / "truncated.dcm").write_bytes(good[: len(good) // 2])
    # A wrong element length: Patient's Name claims more bytes than the file has after it.
    data = bytearray(good)
    pos = data.find(b"\x10\x00\x10\x00PN")
    struct.pack_into("<H", data, pos + 6, 0xFFF0)
    (src / "wrong_length.dcm").write_bytes(bytes(data))
    # An unknown VR ("ZZ") on an element (of another instance, so that its output is its own).
    data = bytearray(samples.bytes("CTImageStorage.dcm"))
    pos = data.find(b"\x10\x00\x10\x00PN")
    data[pos + 4:pos + 6] = b"ZZ"
    (src / "unknown_vr.dcm").write_bytes(bytes(data))
    (src / "viewer.exe").write_bytes(b"MZ\x90\x00" + os.urandom(200))
    loop = src / "loop"
    loop.mkdir()
    (loop / "again").symlink_to(src, target_is_directory=True)
    (src / "dangling.dcm").symlink_to(tmp_path / "nowhere.dcm")
    return src


def test_each_bad_file_is_reported_and_the_batch_goes_on(cli, bad_folder, tmp_path):
    before = _hashes(bad_folder)
    p, rep = _run(cli, bad_folder, tmp_path / "out", tmp_path / "r.json")
    assert _hashes(bad_folder) == before
    files = _by_name(rep)
    assert files["good.dcm"]["status"] == "done"
    assert files["no_meta.dcm"]["status"] == "done"  # a dataset without preamble/meta is still DICOM
    expected = {
        "notes.txt": ("skipped", "not-dicom"), "empty.dcm": ("skipped", "empty"),
        "DICOMDIR": ("skipped", "dicomdir"), "viewer.exe": ("skipped", "not-dicom"),
        "truncated.dcm": ("failed", "truncated"), "wrong_length.dcm": ("failed", "truncated"),
        "dangling.dcm": ("failed", "broken-link"), "again": ("skipped", "link-loop"),
    }
    for name, (status, code) in expected.items():
        assert (files[name]["status"], files[name]["error"]["code"]) == (status, code), name
    # A VR that does not exist: its length may be two bytes or four, so the structure cannot be trusted.
    assert (files["unknown_vr.dcm"]["status"], files["unknown_vr.dcm"]["error"]["code"]) == ("failed", "header")
    assert p.returncode == 1  # some files failed
    outputs = list((tmp_path / "out").rglob("*"))
    assert not [o for o in outputs if o.name.endswith(".part")]
    written = {e["output"] for e in rep["files"] if e["status"] == "done"}
    assert len(written) == len([o for o in outputs if o.is_file()]) >= 2

    # Reasons name kinds, never values from the files.
    assert "Doe" not in json.dumps(rep) and "John" not in json.dumps(rep)


def _without_file_permission_bypass() -> list[str] | None:
    """A prefix under which file permissions bind: as root, drop the capabilities that bypass them."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if shutil.which("setpriv") else None


def test_unreadable_file_and_folder(cli, samples, tmp_path):
    prefix = _without_file_permission_bypass()
    if prefix is None:
        pytest.skip("cannot make file permissions bind here")
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.dcm").write_bytes(samples.bytes("CT_small.dcm"))
    secret = src / "secret.dcm"
    secret.write_bytes(samples.bytes("MR_small_implicit.dcm"))
    secret.chmod(0o000)
    closed = src / "closed"
    closed.mkdir()
    closed.chmod(0o000)
    try:
        p, rep = _run(cli, src, tmp_path / "out", tmp_path / "r.json", prefix=prefix)
    finally:
        secret.chmod(0o644)
        closed.chmod(0o755)
    files = _by_name(rep)
    assert files["good.dcm"]["status"] == "done"
    assert (files["secret.dcm"]["status"], files["secret.dcm"]["error"]["code"]) == ("failed", "unreadable")
    assert (files["closed"]["status"], files["closed"]["error"]["code"]) == ("failed", "unreadable")
    assert p.returncode == 1


def _in_small_fs(size: str, script: str) -> list[str] | None:
    """A command prefix that runs in a private mount namespace with a tiny tmpfs (no root needed)."""
    if not shutil.which("unshare"):
        return None
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]


@pytest.mark.parametrize("mode", ["full", "read-only"])
def test_output_on_a_full_or_read_only_disk(cli, samples, tmp_path, mode):
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(["CT_small.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm"]):
        (src / f"{i}.dcm").write_bytes(samples.bytes(name))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    size = "20k" if mode == "full" else "1m"
    remount = 'mount -o remount,ro "$0" && ' if mode == "read-only" else ""
    script = f'mount -t tmpfs -o size={size} tmpfs "$0" && {remount}exec "$@"'
    prefix = _in_small_fs(size, script)
    if prefix is None:
        pytest.skip("no user namespaces to mount a small file system in")
    prefix = prefix[:-1] + [str(mnt)]
    report = tmp_path / "r.json"
    p = cli("deidentify", src, "-o", mnt / "out", "--pixels", "off", "--report", report, prefix=prefix)
    if mode == "read-only":
        assert p.returncode != 0  # not even the output folder can be made
        assert "Read-only" in p.stderr or "read-only" in p.stderr.lower() or not report.exists()
        return
    assert report.exists(), p.stderr
    rep = json.loads(report.read_text())
    statuses = {e["status"] for e in rep["files"]}
    assert "failed" in statuses, rep
    failed = [e for e in rep["files"] if e["status"] == "failed"]
    assert all(e["error"]["code"] == "output-not-written" for e in failed)
    assert p.returncode == 1
