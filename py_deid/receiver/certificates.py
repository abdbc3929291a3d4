"""Certificates of de-identification: a batch's PHI-free JSON, stored with its study, checked against the store.

A certificate names its batch and every instance of it by SOP Instance UID and the sha256 of the bytes
that were uploaded: {"batch": "...", "instances": [{"sop_instance_uid": "...", "sha256": "..."}, ...], ...}.
Other members are kept as sent (the review step may sign the document). The receiver stores the exact
bytes, once per (study, batch), and `check` tells whether every instance arrived with the same hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field

from ..structure import valid_uid
from .storage import Store, fsync_dir

BATCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # fullmatch: "$" also matches before "\n"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
ID_RE = re.compile(r"cert-[0-9a-f]{32}")
CREATED, SAME, CONFLICT = "created", "same", "conflict"


class CertificateError(ValueError):
    """A certificate that is not acceptable; the message names the member, never its value."""


def parse(raw: bytes, study_uid: str, max_instances: int = 1_000_000) -> dict:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CertificateError("not a JSON document") from None
    if not isinstance(doc, dict):
        raise CertificateError("a certificate is a JSON object")
    batch = doc.get("batch")
    if not isinstance(batch, str) or not BATCH_RE.fullmatch(batch):
        raise CertificateError("batch must be 1-128 letters, digits or . _ : -")
    if "study_instance_uid" in doc and doc["study_instance_uid"] != study_uid:
        raise CertificateError("study_instance_uid differs from the study in the URL")
    instances = doc.get("instances")
    if not isinstance(instances, list) or not instances or len(instances) > max_instances:
        raise CertificateError("instances must be a non-empty list")
    seen = set()
    for item in instances:
        if not isinstance(item, dict):
            raise CertificateError("each instance is an object")
        uid, digest = item.get("sop_instance_uid"), item.get("sha256")
        if not valid_uid(uid):
            raise CertificateError("an instance has no valid sop_instance_uid")
        if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
            raise CertificateError("an instance has no valid sha256 (64 lower-case hex digits)")
        if uid in seen:
            raise CertificateError("an instance is listed twice")
        seen.add(uid)
    return doc


@dataclass
class Check:
    complete: bool
    instances: int
    present: int
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    other_study: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"complete": self.complete, "instances": self.instances, "present": self.present,
                "missing": self.missing, "mismatched": self.mismatched, "other_study": self.other_study}


def check(store: Store, study_uid: str, doc: dict) -> Check:
    """Whether every instance of the certificate's batch is stored, in this study, with the same sha256."""
    wanted = {i["sop_instance_uid"]: i["sha256"] for i in doc["instances"]}
    stored = store.ledger.instance_hashes(list(wanted))
    result = Check(complete=False, instances=len(wanted), present=0)
    for uid, digest in wanted.items():
        if uid not in stored:
            result.missing.append(uid)
        elif stored[uid][0] != digest:
            result.mismatched.append(uid)
        elif stored[uid][1] != study_uid:
            result.other_study.append(uid)
        else:
            result.present += 1
    result.complete = result.present == result.instances
    return result


def save(store: Store, study_uid: str, raw: bytes, doc: dict, site: str, signer=None) -> tuple[str, dict]:
    """Store a parsed certificate (and its signed receipt, given a signing.Signer); returns
    (created|same|conflict, ledger row)."""
    digest = hashlib.sha256(raw).hexdigest()
    with store.lock:
        return _save(store, study_uid, raw, doc, site, digest, signer)


def _write(store: Store, final, data: bytes) -> None:
    fd, tmp = store.temp_file(".json")
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)


def _save(store: Store, study_uid: str, raw: bytes, doc: dict, site: str, digest: str,
          signer) -> tuple[str, dict]:
    existing = store.ledger.certificate(study_uid, batch=doc["batch"])
    if existing is not None:
        return (SAME if existing["sha256"] == digest else CONFLICT), existing
    row = {"id": "cert-" + digest[:32], "study_uid": study_uid, "batch": doc["batch"], "site": site,
           "sha256": digest, "size": len(raw), "received": time.time()}
    folder = store.certificates_dir / study_uid
    folder.mkdir(parents=True, exist_ok=True)
    if signer is not None:  # before the certificate: a stored certificate always has its receipt
        _write(store, folder / f"{row['id']}.signed.json",
               signer.sign_certificate(doc, raw, study_uid, site, row["received"]))
    _write(store, folder / f"{row['id']}.json", raw)
    fsync_dir(folder)
    store.ledger.add_certificate(row)
    return CREATED, row


def load(store: Store, row: dict, signed: bool = False) -> bytes:
    """The certificate as sent, or (signed) its signed receipt."""
    if not valid_uid(row["study_uid"]) or not ID_RE.fullmatch(row["id"]):
        raise CertificateError("invalid certificate reference")
    suffix = ".signed.json" if signed else ".json"
    return (store.certificates_dir / row["study_uid"] / f"{row['id']}{suffix}").read_bytes()
