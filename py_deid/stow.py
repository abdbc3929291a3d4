"""DICOMweb STOW-RS bodies: multipart/related encoding and the Content-Type grammar (RFC 2046, RFC 2387, PS3.18).

Pure Python and free of I/O, so it runs unchanged in Pyodide: the encoder yields bytes. The receiver splits
bodies as they stream with a splitter of its own (receiver/body.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator

DICOM = "application/dicom"
CRLF = b"\r\n"
# RFC 2046 5.1.1: boundary characters; at most 70, the last one not a space.
_BCHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def valid_boundary(boundary: str) -> bool:
    return 0 < len(boundary) <= 70 and not boundary.endswith(" ") and all(c in _BCHARS for c in boundary)


def new_boundary() -> str:
    return "py-deid-" + secrets.token_hex(16)


def content_type(boundary: str, part_type: str = DICOM) -> str:
    """The request's Content-Type for a STOW-RS body (PS3.18 10.5.1.2)."""
    return f'multipart/related; type="{part_type}"; boundary="{boundary}"'


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into its lower-cased media type and parameters (names lower-cased).

    Raises ValueError when the header does not follow RFC 9110's media-type grammar."""
    media, _, rest = value.partition(";")
    media = media.strip().lower()
    kind, slash, sub = media.partition("/")
    if not slash or not kind or not sub or not all(c in _TOKEN for c in kind + sub):
        raise ValueError("malformed media type")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise ValueError("media type parameter without a value")
        name = rest[i:eq].strip().lower()
        if not name or not all(c in _TOKEN for c in name):
            raise ValueError("malformed media type parameter")
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            chars = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            if i >= n:
                raise ValueError("unterminated quoted string in media type")
            i += 1
            param = "".join(chars)
        else:
            end = rest.find(";", i)
            end = n if end < 0 else end
            param = rest[i:end].strip()
            i = end
        params[name] = param
    return media, params


def part_header(part_type: str = DICOM) -> bytes:
    return b"Content-Type: " + part_type.encode("ascii") + CRLF + CRLF


def iter_encode(parts: Iterable[bytes | bytearray | memoryview], boundary: str,
                part_type: str = DICOM) -> Iterator[bytes | bytearray]:
    """The body of a multipart/related message, piece by piece (bytes and bytearrays are not copied)."""
    if not valid_boundary(boundary):
        raise ValueError("invalid multipart boundary")
    delimiter = b"--" + boundary.encode("ascii")
    head = part_header(part_type)
    for part in parts:
        if not isinstance(part, (bytes, bytearray)):
            part = bytes(part)  # a memoryview (e.g. from JS) cannot be searched
        if (CRLF + delimiter) in part or part.startswith(delimiter):
            raise ValueError("a part contains the multipart boundary; choose another boundary")
        yield delimiter + CRLF + head
        yield part
        yield CRLF
    yield delimiter + b"--" + CRLF


def encode(parts: Iterable[bytes | bytearray | memoryview], boundary: str | None = None,
           part_type: str = DICOM) -> tuple[str, bytes]:
    """(Content-Type header value, body) of a STOW-RS request carrying `parts`."""
    boundary = boundary or new_boundary()
    return content_type(boundary, part_type), b"".join(iter_encode(parts, boundary, part_type))


def encoded_length(part_sizes: Iterable[int], boundary: str, part_type: str = DICOM) -> int:
    """The exact length of iter_encode's output for parts of these sizes (for a Content-Length)."""
    delimiter = 2 + len(boundary.encode("ascii"))
    head = len(part_header(part_type))
    total = delimiter + 4
    for size in part_sizes:
        total += delimiter + 2 + head + size + 2
    return total
