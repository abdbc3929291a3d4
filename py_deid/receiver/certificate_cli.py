"""`py-deid certificate verify FILE [--public-key K] [--instances DIR]`: check a certificate the receiver
signed (its signature, and given the instances, that each one listed is there with the same sha256).

Exit status: 0 the signature holds (and every listed instance was found unchanged), 1 it does not,
2 usage error (a file that cannot be read). Output names SOP Instance UIDs and paths, never values.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="certificate_command", required=True)
    v = sub.add_parser("verify", help="check a signed certificate and, given them, its instances")
    v.add_argument("file", type=Path, metavar="FILE", help="the signed certificate (GET .../certificates/ID/signed)")
    v.add_argument("--public-key", type=Path, metavar="K",
                   help="the receiver's public key (PEM, from /.well-known/py-deid/signing-key.pem)")
    v.add_argument("--instances", type=Path, metavar="DIR", help="folder of the instances to check (recursive)")


def _sop_uid(path: Path) -> str | None:
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            return str(ds.get("SOPInstanceUID", "") or "").strip("\0 ") or None
        except Exception:  # noqa: BLE001 - not a DICOM file: not one of the instances
            return None


def check_instances(listed: dict[str, str], folder: Path) -> tuple[list[str], list[str]]:
    """(missing, altered) SOP Instance UIDs of `listed` (uid -> sha256) among the files under folder."""
    found: dict[str, set[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        uid = _sop_uid(path)
        if uid in listed:
            found.setdefault(uid, set()).add(hashlib.sha256(path.read_bytes()).hexdigest())
    missing = [u for u in listed if u not in found]
    altered = [u for u in listed if u in found and listed[u] not in found[u]]
    return missing, altered


def run(args) -> int:
    from .signing import SignatureError, load_public_key, open_signed

    try:
        data = args.file.read_bytes()
        trusted = load_public_key(args.public_key.read_bytes()) if args.public_key else None
    except OSError as e:
        print(f"py-deid certificate: cannot read {e.filename} ({e.strerror})", file=sys.stderr)
        return EXIT_USAGE
    except SignatureError as e:
        print(f"py-deid certificate: {args.public_key}: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        receipt, kid = open_signed(data, trusted)
    except SignatureError as e:
        print(f"FAILED: {e}")
        return EXIT_FAIL
    cert = receipt["certificate"]
    items = cert.get("instances") if isinstance(cert.get("instances"), list) else []
    listed = {i.get("sop_instance_uid"): i.get("sha256") for i in items if isinstance(i, dict)}
    print(f"signature: valid (key {kid}{'' if trusted else ', not checked against a known key: use --public-key'})")
    print(f"study {receipt.get('study_instance_uid')}, batch {cert.get('batch')}, site {receipt.get('site')}, "
          f"received {receipt.get('received')}, {len(listed)} instance(s)")
    if args.instances is None:
        return EXIT_OK
    if not args.instances.is_dir():
        print(f"py-deid certificate: {args.instances} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    missing, altered = check_instances(listed, args.instances)
    for uid in missing:
        print(f"missing: {uid}")
    for uid in altered:
        print(f"altered: {uid} (sha256 differs from the certificate)")
    ok = not missing and not altered
    print(f"instances: {len(listed) - len(missing) - len(altered)} of {len(listed)} found unchanged")
    return EXIT_OK if ok else EXIT_FAIL
