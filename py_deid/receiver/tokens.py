"""Bearer tokens per site: only SHA-256 hashes are kept, compared in constant time, revocable.

The token file is JSON written atomically; the running server re-reads it when it changes, so a token
revoked with `py-deid serve --revoke-token` stops working at once. Tokens are never logged.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

# store: upload as its site; read: see what its own site uploaded; read-all: see every site's uploads
# (the sponsor's own kind of token, never combined with store).
SCOPES = ("store", "read", "read-all")
SITE_SCOPES = ("store", "read")
SITE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # fullmatch: "$" also matches before "\n"


@dataclass(frozen=True)
class Principal:
    site: str
    scopes: frozenset[str]
    token_id: str

    def may(self, scope: str) -> bool:
        return scope in self.scopes or (scope == "read" and "read-all" in self.scopes)

    @property
    def reads_site(self) -> str | None:
        """The site whose uploads this principal may read; None: every site's."""
        return None if "read-all" in self.scopes else self.site


def generate() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_file(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return []
    entries = data.get("tokens", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: not a token file")
    return entries


def _write_file(path: Path, entries: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"version": 1, "tokens": entries}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def add(path: Path, site: str, scopes: tuple[str, ...] = ("store",)) -> tuple[str, dict]:
    """Create a token for a site; returns (token, entry). Only the entry (with the hash) is stored."""
    if not SITE_RE.fullmatch(site):
        raise ValueError("site names are 1-64 letters, digits, '.', '_' or '-'")
    if not scopes or any(s not in SCOPES for s in scopes):
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}")
    if "read-all" in scopes and len(set(scopes)) > 1:
        raise ValueError("read-all is a token of its own (a sponsor's reader), not combined with other scopes")
    token = generate()
    entry = {"id": "tok-" + secrets.token_hex(6), "site": site, "sha256": digest(token),
             "scopes": sorted(set(scopes)), "created": _now(), "revoked": None}
    entries = read_file(path)
    entries.append(entry)
    _write_file(path, entries)
    return token, entry


def revoke(path: Path, ident: str) -> int:
    """Revoke by token id or by site (all its tokens); returns how many were revoked."""
    entries = read_file(path)
    count = 0
    for e in entries:
        if e.get("revoked") is None and ident in (e.get("id"), e.get("site")):
            e["revoked"] = _now()
            count += 1
    if count:
        _write_file(path, entries)
    return count


class TokenStore:
    """What the server checks a bearer token against: the token file (reloaded on change) + CLI tokens."""

    def __init__(self, path: Path, cli_tokens: tuple[tuple[str, str], ...] = ()) -> None:
        self.path = path
        self._cli = [(digest(t), Principal(site, frozenset(SITE_SCOPES), f"cli-{i}"))
                     for i, (site, t) in enumerate(cli_tokens)]
        self._file: list[tuple[str, Principal]] = []
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _reload(self) -> None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        with self._lock:
            entries = read_file(self.path) if stamp else []
            self._file = [(e["sha256"], Principal(e["site"], frozenset(e.get("scopes", ("store",))), e["id"]))
                          for e in entries if not e.get("revoked") and isinstance(e.get("sha256"), str)]
            self._stamp = stamp

    def active_count(self) -> int:
        self._reload()
        return len(self._file) + len(self._cli)

    def authenticate(self, token: str | None) -> Principal | None:
        if not token:
            return None
        self._reload()
        presented = digest(token)
        found = None
        # Every entry is compared (no early exit) so timing does not tell how many hashes matched a prefix.
        for stored, principal in self._cli + self._file:
            if hmac.compare_digest(stored, presented) and found is None:
                found = principal
        return found


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
