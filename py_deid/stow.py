"""DICOMweb STOW-RS bodies: multipart/related encoding and an incremental parser (RFC 2046, RFC 2387, PS3.18).

Pure Python and free of I/O, so it runs unchanged in Pyodide: the encoder yields bytes (the browser can
build an upload with it), and the parser is fed bytes and reports each part with its offsets in the stream,
so the receiver can parse a body spooled on disk chunk by chunk and never hold it whole.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

DICOM = "application/dicom"
CRLF = b"\r\n"
# RFC 2046 5.1.1: boundary characters; at most 70, the last one not a space.
_BCHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
MAX_PREAMBLE = 64 * 1024


class MultipartError(ValueError):
    """A body that is not a well-formed multipart message. `kind` is one of: syntax, truncated,
    too-many-parts, headers-too-large, part-too-large. Messages never quote the body."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


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


@dataclass(frozen=True)
class PartStart:
    index: int
    headers: dict[str, str]  # names lower-cased
    offset: int  # stream offset of the part's first body byte


@dataclass(frozen=True)
class PartData:
    index: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class PartEnd:
    index: int
    offset: int  # stream offset just past the part's last body byte


Event = PartStart | PartData | PartEnd
_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _BODY, _EPILOGUE = range(5)


class MultipartParser:
    """Incremental multipart parser: feed() bytes, get events; finish() at the end of the stream.

    With keep_data=False no PartData is produced (only offsets), which is what a caller that can
    re-read the stream wants: it costs one scan of the bytes and no copies of part bodies."""

    def __init__(self, boundary: str, *, max_parts: int | None = None, max_header_bytes: int = 16384,
                 max_part_bytes: int | None = None, keep_data: bool = True) -> None:
        if not valid_boundary(boundary):
            raise MultipartError("syntax", "invalid multipart boundary")
        # A virtual CRLF in front lets the first boundary (at offset 0) match like the others.
        self._delimiter = CRLF + b"--" + boundary.encode("ascii")
        self._buf = bytearray(CRLF)
        self._base = -2  # stream offset of _buf[0]
        self._state = _PREAMBLE
        self._index = -1
        self._part_start = 0
        self.max_parts = max_parts
        self.max_header_bytes = max_header_bytes
        self.max_part_bytes = max_part_bytes
        self.keep_data = keep_data

    @property
    def parts(self) -> int:
        return self._index + 1

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        pos = 0
        while True:
            advanced = self._step(pos, events)
            if advanced is None:
                break
            pos = advanced
        if pos:
            del self._buf[:pos]
            self._base += pos
        return events

    def finish(self) -> list[Event]:
        events = self.feed(b"")
        if self._state == _PREAMBLE:
            raise MultipartError("syntax", "no multipart boundary found in the body")
        if self._state != _EPILOGUE:
            raise MultipartError("truncated", "the body ends inside a part (no closing boundary)")
        return events

    # One step of the state machine from buffer position pos; None when more bytes are needed.
    def _step(self, pos: int, events: list[Event]) -> int | None:
        buf, delim = self._buf, self._delimiter
        if self._state == _PREAMBLE:
            i = buf.find(delim, pos)
            if i < 0:
                if self._base + len(buf) > MAX_PREAMBLE:
                    raise MultipartError("syntax", "no multipart boundary found in the body")
                return None
            self._state = _AFTER_DELIMITER
            return i + len(delim)
        if self._state == _AFTER_DELIMITER:
            return self._after_delimiter(pos)
        if self._state == _HEADERS:
            return self._headers(pos, events)
        if self._state == _BODY:
            return self._body(pos, events)
        return len(buf) if pos < len(buf) else None  # epilogue: ignored

    def _after_delimiter(self, pos: int) -> int | None:
        buf = self._buf
        if len(buf) - pos < 2:
            return None
        if buf[pos:pos + 2] == b"--":
            self._state = _EPILOGUE
            return pos + 2
        j = pos
        while j < len(buf) and buf[j] in b" \t":  # transport padding
            j += 1
        if len(buf) - j < 2:
            if j - pos > 1024:
                raise MultipartError("syntax", "malformed boundary line")
            return None
        if buf[j:j + 2] != CRLF:
            raise MultipartError("syntax", "boundary not followed by CRLF")
        self._state = _HEADERS
        return j + 2

    def _headers(self, pos: int, events: list[Event]) -> int | None:
        buf = self._buf
        if buf[pos:pos + 2] == CRLF:
            end, block = pos + 2, b""
        elif len(buf) - pos < 2:
            return None
        else:
            i = buf.find(CRLF + CRLF, pos, pos + self.max_header_bytes + 4)
            if i < 0:
                if len(buf) - pos > self.max_header_bytes:
                    raise MultipartError("headers-too-large", "part headers exceed the limit")
                return None
            end, block = i + 4, bytes(buf[pos:i])
        self._index += 1
        if self.max_parts is not None and self._index >= self.max_parts:
            raise MultipartError("too-many-parts", f"more than {self.max_parts} parts")
        self._part_start = self._base + end
        events.append(PartStart(self._index, _parse_headers(block), self._part_start))
        self._state = _BODY
        return end

    def _body(self, pos: int, events: list[Event]) -> int | None:
        buf, delim = self._buf, self._delimiter
        i = buf.find(delim, pos)
        stop = i if i >= 0 else max(pos, len(buf) - len(delim) + 1)
        if stop > pos:
            if self.max_part_bytes is not None and self._base + stop - self._part_start > self.max_part_bytes:
                raise MultipartError("part-too-large", "a part exceeds the size limit")
            if self.keep_data:
                events.append(PartData(self._index, self._base + pos, bytes(buf[pos:stop])))
        if i < 0:
            return stop if stop > pos else None
        events.append(PartEnd(self._index, self._base + i))
        self._state = _AFTER_DELIMITER
        return i + len(delim)


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = None
    for line in block.split(CRLF) if block else ():
        if line[:1] in (b" ", b"\t") and last is not None:  # obsolete line folding
            headers[last] += " " + line.strip().decode("latin-1")
            continue
        name, colon, value = line.partition(b":")
        name_text = name.decode("latin-1")
        if not colon or not name_text or not all(c in _TOKEN for c in name_text):
            raise MultipartError("syntax", "malformed part header")
        last = name_text.lower()
        headers[last] = value.strip().decode("latin-1")
    return headers


def split(body: bytes, boundary: str, **limits) -> list[tuple[dict[str, str], bytes]]:
    """All parts of a complete body held in memory, as (headers, content) pairs (small bodies, tests)."""
    parser = MultipartParser(boundary, **limits)
    parts: list[tuple[dict[str, str], bytearray]] = []
    for event in parser.feed(body) + parser.finish():
        if isinstance(event, PartStart):
            parts.append((event.headers, bytearray()))
        elif isinstance(event, PartData):
            parts[-1][1].extend(event.data)
    return [(h, bytes(b)) for h, b in parts]
