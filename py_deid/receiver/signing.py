"""Signed certificates: the receiver's Ed25519 key and the signed form of a stored certificate.

The key is made on the first start and kept in the store (mode 0600); its public half is served at
WELL_KNOWN and printed at start. Each stored certificate gets a signed receipt beside it:

    {"format": FORMAT, "key_id": "...", "public_key": "<base64 raw>", "payload": "<base64>", "signature": "<base64>"}

where the payload is the UTF-8 JSON of {"certificate": <the document as sent>, "certificate_sha256",
"study_instance_uid", "site", "received"}. The signature covers the payload bytes exactly, so no JSON
canonical form is needed to check it. Like the certificate, the receipt holds no PHI.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "py-deid signed certificate 1"
WELL_KNOWN = "/.well-known/py-deid/signing-key.pem"


class SignatureError(ValueError):
    """A signed certificate that is malformed, signed by another key, or altered."""


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise SignatureError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("not an Ed25519 public key")
    return key


class Signer:
    """The store's signing key, made on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created = False
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            pem = self._create()
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 key")
        self._key = key
        self.public = key.public_key()
        self.key_id = key_id(self.public)
        self.public_pem = public_pem(self.public)

    def _create(self) -> bytes:
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another start made it in between
            return self.path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        self.created = True
        return pem

    def sign_certificate(self, doc: dict, raw: bytes, study_uid: str, site: str, received: float) -> bytes:
        """The signed receipt of a stored certificate (bytes of a JSON document)."""
        payload = json.dumps({
            "certificate": doc,
            "certificate_sha256": hashlib.sha256(raw).hexdigest(),
            "study_instance_uid": study_uid,
            "site": site,
            "received": _dt.datetime.fromtimestamp(received, _dt.timezone.utc).isoformat(timespec="seconds"),
        }, separators=(",", ":"), sort_keys=True).encode("utf-8")
        envelope = {"format": FORMAT, "key_id": self.key_id, "public_key": _b64(_raw(self.public)),
                    "payload": _b64(payload), "signature": _b64(self._key.sign(payload))}
        return json.dumps(envelope, indent=1).encode("utf-8")


def open_signed(data: bytes, trusted: Ed25519PublicKey | None = None) -> tuple[dict, str]:
    """(receipt, key id) of a signed certificate whose signature holds; SignatureError otherwise. Without
    `trusted` the key named in the document is used (which proves integrity, not who signed)."""
    try:
        env = json.loads(data.decode("utf-8"))
        if not isinstance(env, dict) or env.get("format") != FORMAT:
            raise SignatureError("not a py-deid signed certificate")
        payload = base64.b64decode(env["payload"], validate=True)
        signature = base64.b64decode(env["signature"], validate=True)
        embedded = Ed25519PublicKey.from_public_bytes(base64.b64decode(env["public_key"], validate=True))
    except SignatureError:
        raise
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error):
        raise SignatureError("not a py-deid signed certificate") from None
    key = trusted or embedded
    if trusted is not None and _raw(trusted) != _raw(embedded):
        raise SignatureError("signed with another key than the one given")
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise SignatureError("signature does not match: the certificate was altered") from None
    try:
        receipt = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SignatureError("signed payload is not JSON") from None
    if not isinstance(receipt, dict) or not isinstance(receipt.get("certificate"), dict):
        raise SignatureError("signed payload holds no certificate")
    return receipt, key_id(key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
