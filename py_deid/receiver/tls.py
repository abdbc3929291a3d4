"""The local HTTPS certificate, made with `cryptography` on first start.

A one-off certification authority signs the server certificate and its private key is thrown away at
once: trusting ca.crt (a browser, `httpx.Client(verify=...)`) can then never let anyone mint another
certificate, and the CA is also name-constrained to the names it signed. Kept under <store>/tls/.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
SERVER_DAYS = 397
RENEW_DAYS = 30


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    ca: Path
    created: bool


def _general_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def _constraints(names: tuple[str, ...]) -> x509.NameConstraints:
    permitted: list[x509.GeneralName] = []
    for n in names:
        try:
            ip = ipaddress.ip_address(n)
            permitted.append(x509.IPAddress(ipaddress.ip_network(f"{ip}/{ip.max_prefixlen}")))
        except ValueError:
            permitted.append(x509.DNSName(n))
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)


def _current(cert_path: Path, key_path: Path, names: tuple[str, ...]) -> bool:
    """Whether the stored certificate covers these names for a while yet and matches the stored key."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            != cert.public_key().public_bytes(serialization.Encoding.DER, spki)):
        return False
    have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    wanted = {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in names}
    left = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
    return wanted <= have and left > dt.timedelta(days=RENEW_DAYS)


def _is_ip(n: str) -> bool:
    try:
        ipaddress.ip_address(n)
        return True
    except ValueError:
        return False


def ensure(folder: Path, extra_names: tuple[str, ...] = ()) -> Certificate:
    names = tuple(dict.fromkeys(DEFAULT_NAMES + tuple(extra_names)))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path, ca_path = folder / "server.crt", folder / "server.key", folder / "ca.crt"
    if ca_path.is_file() and _current(cert_path, key_path, names):
        return Certificate(cert_path, key_path, ca_path, created=False)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "py-deid local receiver CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "py_deid")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=SERVER_DAYS + 1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(_constraints(names), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                           crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
              .sign(ca_key, hashes.SHA256()))
    del ca_key  # never written: nothing can sign another certificate this CA vouches for
    _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _write(cert_path, server.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM),
           0o644)
    _write(ca_path, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    return Certificate(cert_path, key_path, ca_path, created=True)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
