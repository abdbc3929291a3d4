"""Keyed, deterministic pseudonyms: the same key and the same input give the same output on every machine.

Every value is an HMAC-SHA256 of a labelled input under the site's secret, so a pseudonym reveals nothing
without the key (no dictionary attack on hashed IDs, the risk PS3.15 E.1.1 warns about), and a second upload
of the same patient lines up with the first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field


# What patient_id() returns: "PAT" and 13 characters of base32 (what verify accepts as a pseudonym).
PATIENT_PSEUDONYM = re.compile(r"PAT[A-Z2-7]{13}")
# Date shifts are whole days, backwards, between one and ten years: intervals and times of day stay exact.
MIN_SHIFT_DAYS = 365
MAX_SHIFT_DAYS = 3650


class KeyError_(ValueError):
    """The pseudonym key is unusable."""


def load_key(material: bytes) -> bytes:
    """A key file's contents -> the key. Surrounding whitespace is ignored so that `echo secret > f` works."""
    key = material.strip()
    if len(key) < 16:
        raise KeyError_("the key must hold at least 16 bytes of secret")
    return key


def random_key() -> bytes:
    return secrets.token_hex(32).encode()


def _sha256(data: bytes = b""):
    return hashlib.sha256(data)  # hmac hashes a key longer than the block with it


@dataclass(frozen=True)
class Pseudonyms:
    key: bytes
    # HMAC-SHA256 keyed with `key`, before any message, copied for each MAC. The digest is given as a Python
    # callable, so the standard library's hmac keeps the inner and outer hashes (RFC 2104) and copies them;
    # a copy of OpenSSL's own HMAC state costs more than the whole one-shot call.
    _keyed: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", hmac.new(self.key, digestmod=_sha256))

    def __reduce__(self):
        return (Pseudonyms, (self.key,))  # hash states do not pickle: made again from the key

    def _mac(self, label: str, value: str) -> bytes:
        # The same bytes as hmac.digest(key, msg, "sha256") (tests/header/test_pseudonyms.py), from the keyed
        # state made once (_keyed): the one-shot call looks the digest up by name in OpenSSL every time
        # (~10 us against ~3-4 us here, several MACs a file).
        mac = self._keyed.copy()
        mac.update(label.encode() + b"\0" + value.encode("utf-8", "surrogatepass"))
        return mac.digest()

    def uid(self, original: str) -> str:
        """A 2.25 UID (PS3.5 B.2): 128 bits of the keyed hash as a decimal integer."""
        original = original.strip("\0 ")
        return "2.25." + str(int.from_bytes(self._mac("uid", original)[:16], "big"))

    def identifier(self, label: str, original: str, length: int = 12) -> str:
        """A short uppercase identifier, e.g. for Patient ID when no Subject ID is given."""
        text = base64.b32encode(self._mac(label, original.strip())).decode().rstrip("=")
        return text[:length]

    def patient_id(self, original: str) -> str:
        return "PAT" + self.identifier("patient-id", original, 13)

    def ae_title(self, original: str) -> str:
        return "AE" + self.identifier("ae", original, 14)

    def date_shift_days(self, patient: str) -> int:
        """Days to subtract from every date of this patient (the same for all of their instances)."""
        n = int.from_bytes(self._mac("date-shift", patient)[:8], "big")
        return MIN_SHIFT_DAYS + n % (MAX_SHIFT_DAYS - MIN_SHIFT_DAYS + 1)
