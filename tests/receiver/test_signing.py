"""Signed certificates: the receiver's Ed25519 key, the signed receipt of each stored certificate, and
`py-deid certificate verify` with its public key and the instances (the CLI as a user runs it)."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys

import pytest

from py_deid import stow
from py_deid.receiver.signing import WELL_KNOWN

from . import receiver_support as rs
from .conftest import SITE1


def verify(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "py_deid.cli", "certificate", "verify", *map(str, args)],
                          capture_output=True, text=True, timeout=60, cwd=rs.REPO)


@pytest.fixture(scope="module")
def signed(server, instances, tmp_path_factory):
    """A batch uploaded and certified; its signed receipt, the public key and the instances on disk."""
    folder = tmp_path_factory.mktemp("signed")
    parts = [rs.with_new_uids(instances.deid("CT_small.dcm"), 1200 + i) for i in range(3)]
    study = rs.uids(parts[0])[0]
    doc = {"batch": "signed-1", "instances": [{"sop_instance_uid": rs.uids(p)[2], "sha256": rs.sha256(p)}
                                              for p in parts]}
    with server.client(SITE1) as c:
        ctype, body = stow.encode(parts)
        assert c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype}).status_code == 200
        r = c.post(f"/dicomweb/studies/{study}/certificates", json=doc)
        assert r.status_code == 201
        receipt = c.get(r.json()["signed"])
        assert receipt.status_code == 200
    with server.client() as anonymous:  # the public key needs no token
        key = anonymous.get(WELL_KNOWN)
    assert key.status_code == 200 and key.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    (folder / "cert.json").write_bytes(receipt.content)
    (folder / "key.pem").write_bytes(key.content)
    instances_dir = folder / "instances"
    instances_dir.mkdir()
    for i, p in enumerate(parts):
        (instances_dir / f"{i}.dcm").write_bytes(p)
    return folder, doc


def test_the_key_is_made_once_private_and_printed(server):
    key = server.store / "signing" / "ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    out = server.out.read_text()
    assert "signing:" in out and WELL_KNOWN in out and "PRIVATE" not in out


def test_a_signed_certificate_and_its_instances_verify(signed):
    folder, doc = signed
    receipt = json.loads((folder / "cert.json").read_text())
    payload = json.loads(base64.b64decode(receipt["payload"]))
    assert payload["certificate"] == doc and payload["site"] == "site1"
    done = verify(folder / "cert.json", "--public-key", folder / "key.pem", "--instances", folder / "instances")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signature: valid" in done.stdout and "3 of 3 found unchanged" in done.stdout


def test_a_tampered_certificate_fails(signed, tmp_path):
    folder, doc = signed
    receipt = json.loads((folder / "cert.json").read_text())
    payload = json.loads(base64.b64decode(receipt["payload"]))
    payload["certificate"]["instances"][0]["sha256"] = "0" * 64  # claim another instance
    receipt["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    (tmp_path / "forged.json").write_text(json.dumps(receipt))
    done = verify(tmp_path / "forged.json", "--public-key", folder / "key.pem")
    assert done.returncode == 1 and "altered" in done.stdout


def test_a_certificate_signed_by_another_key_fails(signed, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from py_deid.receiver.signing import public_pem

    folder, _ = signed
    (tmp_path / "other.pem").write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    done = verify(folder / "cert.json", "--public-key", tmp_path / "other.pem")
    assert done.returncode == 1 and "another key" in done.stdout


def test_a_tampered_or_missing_instance_fails(signed, tmp_path):
    folder, doc = signed
    changed = tmp_path / "instances"
    changed.mkdir()
    files = sorted((folder / "instances").iterdir())
    data = bytearray(files[0].read_bytes())
    data[-1] ^= 1  # one bit of pixel data
    (changed / "0.dcm").write_bytes(bytes(data))
    (changed / "1.dcm").write_bytes(files[1].read_bytes())  # and the third is not there
    done = verify(folder / "cert.json", "--public-key", folder / "key.pem", "--instances", changed)
    assert done.returncode == 1
    assert f"altered: {doc['instances'][0]['sop_instance_uid']}" in done.stdout
    assert f"missing: {doc['instances'][2]['sop_instance_uid']}" in done.stdout


def test_the_key_survives_a_restart(tmp_path, instances):
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", "--verify-workers", "0",
                    log_name="sig").start()
    try:
        with srv.client() as c:
            first = c.get(WELL_KNOWN).content
        srv.stop()
        srv.start()
        with srv.client() as c:
            assert c.get(WELL_KNOWN).content == first
        assert "kept in" in srv.out.read_text()
    finally:
        srv.stop()
