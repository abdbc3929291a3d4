"""The key file a browser exports from its site key (web/src/site-key.js): `--key-file` reads it.

The browser keeps one pseudonym key per site and endpoint; exported, it is sealed under a passphrase (PBKDF2-SHA256,
AES-256-GCM, JSON). Opened here, the same key gives the CLI byte-identical outputs to the browser's. Any other
key file is the raw secret, as before (pseudonyms.load_key).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import sys
from pathlib import Path

from .pseudonyms import KeyError_, load_key

FORMAT = "py-deid-site-key"
VERSION = 1
AAD = f"{FORMAT}/{VERSION}".encode()
MAX_ITERATIONS = 10_000_000  # a file cannot make us spin for hours


def sealed_document(data: bytes) -> dict | None:
    """The parsed key file if `data` is a sealed site key file, else None (a raw key)."""
    if not data.lstrip().startswith(b"{"):
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def open_sealed(doc: dict, passphrase: str) -> bytes:
    """The key in a sealed key file; KeyError_ on a wrong passphrase or a damaged file (never says which part)."""
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise KeyError_("opening a sealed key file needs the 'cryptography' package (pip install py_deid[native])") from None
    try:
        kdf, cipher = doc["kdf"], doc["cipher"]
        if (doc.get("version") != VERSION or kdf["name"] != "PBKDF2-SHA256" or cipher["name"] != "AES-256-GCM"
                or not isinstance(kdf["iterations"], int) or not 0 < kdf["iterations"] <= MAX_ITERATIONS):
            raise ValueError
        salt, iv, sealed = (base64.b64decode(v, validate=True) for v in (kdf["salt"], cipher["iv"], doc["sealed"]))
    except (KeyError, TypeError, ValueError):
        raise KeyError_("the key file is not a py_deid site key file this version reads") from None
    secret = hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), salt, kdf["iterations"], 32)
    try:
        key = AESGCM(secret).decrypt(iv, sealed, AAD)
    except (InvalidTag, ValueError):
        raise KeyError_("the passphrase is wrong or the key file is damaged") from None
    if len(key) < 16:
        raise KeyError_("the key must hold at least 16 bytes of secret")
    return key


def seal(key: bytes, passphrase: str, iterations: int = 600_000) -> bytes:
    """A sealed key file for `key`, as the web page exports it (a site's key made on a workstation can be
    imported into its browsers)."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, iv = os.urandom(16), os.urandom(12)
    secret = hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), salt, iterations, 32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    doc = {"format": FORMAT, "version": VERSION, "kdf": {"name": "PBKDF2-SHA256", "iterations": iterations,
           "salt": b64(salt)}, "cipher": {"name": "AES-256-GCM", "iv": b64(iv)},
           "sealed": b64(AESGCM(secret).encrypt(iv, key, AAD))}
    return (json.dumps(doc, indent=1) + "\n").encode()


def read_key(path: Path, passphrase_file: Path | None = None) -> bytes:
    """--key-file: a sealed site key file (asking for its passphrase, or reading --key-passphrase-file) or a raw key."""
    data = path.read_bytes()
    doc = sealed_document(data)
    if doc is None:
        return load_key(data)
    if passphrase_file is not None:
        passphrase = passphrase_file.read_text("utf-8").rstrip("\r\n")
    elif sys.stdin.isatty():
        passphrase = getpass.getpass(f"passphrase of {path.name}: ")
    else:
        raise KeyError_("the key file is sealed: give --key-passphrase-file, or run on a terminal to be asked")
    return open_sealed(doc, passphrase)
