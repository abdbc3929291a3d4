"""Reading a request body from the ASGI channel onto disk, with the limits that keep a server alive: a
size cap, a timeout on every read and a minimum average rate (slow-loris senders are cut off).

A STOW-RS body is split while it streams (_Splitter). A small part is held in memory and
goes to its check as bytes (the worker whose check passes it writes it under a temp name the server
chose; the server's Syncer flushes it): no temp file is created and written from the server's event loop
for it, nor read back by the worker. A part that grows past SMALL_PART_BYTES, or would take the parts
held in memory by all requests together past MEMORY_BYTES (bytes waiting for their check's answer), goes
into a temp file of its own in the store's tmp/ folder as it arrives, so memory stays bounded whatever
the bodies' sizes and number. Nothing is stored unless the whole message turns out well-formed (the
caller commits only after the closing boundary).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from .config import Limits
from .storage import Store


_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-zA-Z]+")  # a header name (RFC 9110 token)


MAX_PREAMBLE = 64 * 1024  # bytes before the first boundary (RFC 2046 allows a preamble)
SMALL_PART_BYTES = 1024 * 1024  # a larger part goes into a temp file as it arrives
MEMORY_BYTES = 64 * 1024 * 1024  # all requests together: small parts held until their check has answered


class MemoryBudget:
    """Bytes of small parts held in memory, shared by the requests that take from it (any thread)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    def room(self, n: int) -> bool:
        return self.held + n <= self.limit

    def take(self, n: int) -> None:
        with self._lock:
            self.held += n

    def give(self, n: int) -> None:
        with self._lock:
            self.held -= n


BUDGET = MemoryBudget(MEMORY_BYTES)  # the server's


class MultipartError(ValueError):
    """A body that is not a well-formed multipart message. `kind` is one of: syntax, truncated,
    too-many-parts, headers-too-large, part-too-large. Messages never quote the body."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class BodyError(Exception):
    """The body could not be read whole; `status` is the HTTP answer (the connection is then closed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TrackedReceive:
    """An ASGI receive channel that remembers whether the body was read to its end, so that a refusal
    knows whether anything is left to drain."""

    def __init__(self, receive) -> None:
        self._receive = receive
        self.finished = False

    async def __call__(self):
        message = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.finished = True
        return message


def body_expected(headers) -> int | None:
    """Bytes of body the request announces: its Content-Length, None for a chunked body of unknown size."""
    length = headers.get("content-length")
    if length is not None:
        return int(length) if length.isdigit() else 0
    return None if "chunked" in headers.get("transfer-encoding", "").lower() else 0


async def drain(receive: TrackedReceive, headers, limits: Limits) -> None:
    """Read and drop what is left of a refused request's body, up to limits.drain_bytes and within the
    read timeouts ("lingering close"). Closing a connection with unread data makes the kernel send a
    reset, and clients (Python's and browsers') then report that instead of the status they were sent."""
    if receive.finished or "100-continue" in headers.get("expect", "").lower():
        return  # (a client that waits for 100 Continue sends no body unless asked; reading would ask)
    expected = body_expected(headers)
    if expected == 0 or (expected is not None and expected > limits.drain_bytes):
        return
    total = 0
    deadline = time.monotonic() + max(limits.read_timeout, 1.0)
    while not receive.finished and total <= limits.drain_bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), timeout=left)
        except asyncio.TimeoutError:
            return
        total += len(message.get("body", b""))


async def chunks(receive, limits: Limits, max_bytes: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive. Raises BodyError."""
    total = 0
    start = time.monotonic()
    timeout = limits.read_timeout
    while True:
        try:
            # (a deadline on this task, not wait_for's task and waiter around every chunk: ~10 us a chunk
            # less of the event loop, a dozen chunks a request)
            async with asyncio.timeout(timeout):
                message = await receive()
        except TimeoutError:
            raise BodyError(408, "request body stalled") from None
        if message["type"] == "http.disconnect":
            raise BodyError(400, "client disconnected before the body was complete")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > max_bytes:
            raise BodyError(413, "request body exceeds the limit")
        elapsed = time.monotonic() - start
        if elapsed > limits.min_rate_grace and total / elapsed < limits.min_rate:
            raise BodyError(408, "request body arrives too slowly")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def spool(receive, fd: int, limits: Limits, max_bytes: int) -> int:
    """Write the whole body to fd; returns its length."""
    total = 0
    pending = bytearray()
    async for chunk in chunks(receive, limits, max_bytes):
        total += len(chunk)
        pending += chunk
        if len(pending) >= 1 << 20:  # ~1 MiB writes, not one system call per network read
            _write_all(fd, pending)
            pending.clear()
    _write_all(fd, pending)
    return total


@dataclass
class SpooledPart:
    index: int
    headers: dict[str, str]
    path: Path | None  # its temp file: written by the server as the part arrived, or (in_memory) by its
    #                    check; None for an in-memory part of a pack (its bytes go to the pack or nowhere)
    size: int = 0
    check: object = None  # what on_part started for it (the verification already under way)
    synced: object = None  # its fsync, started once the check passed (storage.Flushes), else None
    settled: bool = False  # its temp file is committed or removed (process() did it): nothing to discard
    data: bytes | None = None  # an in-memory part's bytes until they are submitted to its check
    in_memory: bool = False  # held in memory: `path` is only a reserved name, which the worker that passes
    #                          the part writes (without a pack)
    pack: object = None  # an in-memory part's request's pack (storage.Pack): if it passes, its bytes are
    #                      appended there (pack_offset), not written to `path`
    pack_offset: int | None = None
    pack_error: OSError | None = None  # its append failed
    packed: object = None  # a threading.Event set once its group's append is over (or will never come)

    def remove(self) -> None:
        """Remove its temp file, also if the check that may write it is still running."""
        if (self.in_memory and self.pack is not None) or self.path is None:
            return  # its bytes go to the pack or nowhere: no file is ever created for it
        self.path.unlink(missing_ok=True)
        future = getattr(self.check, "future", None)
        if self.in_memory and future is not None and not future.done():
            path = self.path
            future.add_done_callback(lambda _: path.unlink(missing_ok=True))


@dataclass
class SpooledBody:
    parts: list[SpooledPart] = field(default_factory=list)
    budget: MemoryBudget = field(default_factory=lambda: BUDGET)
    pack: object = None  # storage.Pack of its small parts (made by the splitter)
    _holding: set = field(default_factory=set, repr=False)  # indexes of its parts counted in the budget
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def held(self) -> int:
        """Bytes of its in-memory parts whose check has not answered yet."""
        return sum(self.parts[i].size for i in list(self._holding))

    def hold(self, part: SpooledPart) -> None:
        with self._lock:
            self._holding.add(part.index)
            self.budget.take(part.size)

    def release(self, parts: list[SpooledPart]) -> None:
        """Its parts' bytes are no longer held (their check answered, or the request is over); any thread,
        once per part whoever calls."""
        with self._lock:
            n = 0
            for part in parts:
                if part.index in self._holding:
                    self._holding.discard(part.index)
                    n += part.size
            self.budget.give(n)

    def discard(self) -> None:
        for p in self.parts:
            if p.settled:
                continue
            if p.check is not None:
                p.check.cancel()
            p.remove()
        self.release(self.parts)  # also parts never submitted (not application/dicom)
        if self.pack is not None:
            self.pack.finish(keep=False)  # (no effect once process() has finished it)


async def spool_parts(receive, store: Store, boundary: str, limits: Limits, into: SpooledBody,
                      on_part=None) -> None:
    """Split a multipart body into temp files as it arrives (appending to `into`, which the caller
    discards whatever happens); `on_part(part)` is called as each part is complete, so its check can
    start while the rest of the body arrives. Raises BodyError or MultipartError."""
    splitter = _Splitter(boundary, store, limits, into, on_part)
    try:
        async for chunk in chunks(receive, limits, limits.max_request_bytes):
            splitter.feed(chunk)
        splitter.finish()
    finally:
        splitter.close()


class _Splitter:
    """A streaming multipart/related splitter (RFC 2046) under the receiver's limits (parts per request, header
    bytes per part, bytes per part): each part's body is found with one bytes.find() of the delimiter per
    part and chunk, not by a callback per header and data segment (python-multipart, which this replaced,
    cost ~0.05 ms of the event loop per small instance). A preamble before the first boundary is skipped, the
    epilogue after the closing one ignored. Strict: the delimiter followed by anything but the close mark or
    CRLF is malformed (RFC 2046: it must not occur in a part; transport padding is refused, as python-multipart
    did), as is a header line without a colon or with a name that is not a token, or a folded one."""

    _FIRST, _AFTER, _HEADERS, _BODY, _EPILOGUE = range(5)

    def __init__(self, boundary: str, store: Store, limits: Limits, into: SpooledBody, on_part=None) -> None:
        self.store, self.limits, self.into, self.on_part = store, limits, into, on_part
        self.delimiter = b"--" + boundary.encode("latin-1")
        self.body_delimiter = b"\r\n" + self.delimiter  # ends a part's body
        self.preamble: bytearray | None = bytearray()
        self.state = self._FIRST
        self.rest = b""  # bytes not consumed yet (a partial delimiter, header block or padding)
        self.scanned = 0  # bytes of the current header block searched for its end so far
        self.fd = -1
        self.buf = bytearray()
        self.ended = False
        self.last_block: bytes | None = None  # the last part head parsed, and its headers (_headers)
        self.last_headers: dict[str, str] = {}

    def feed(self, chunk: bytes) -> None:
        if self.preamble is not None:
            self.preamble += chunk
            buf = self.preamble
            if buf.startswith(self.delimiter):
                i = 0
            else:
                i = buf.find(b"\r\n" + self.delimiter)
                if i < 0:
                    if len(buf) > MAX_PREAMBLE:
                        raise MultipartError("syntax", "no multipart boundary found in the body")
                    return
                i += 2
            chunk = bytes(buf[i:])
            self.preamble = None
        if self.state == self._EPILOGUE:
            return
        start = 0
        if self.rest:
            # What was left (mostly a few bytes that may start a delimiter) is parsed with the chunk's first
            # bytes, not prepended to the whole chunk (a copy of every chunk).
            rest, self.rest = self.rest, b""
            seam = len(self.body_delimiter) + 2
            data = rest + chunk[:seam] if len(chunk) > seam else rest + chunk
            i = self._parse(data)
            if len(data) == len(rest) + len(chunk) or i < len(rest):
                data = data[i:] + chunk[len(data) - len(rest):]
                i = self._parse(data)
                if i < len(data):
                    self.rest = data[i:]
                return
            start = i - len(rest)
        i = self._parse(chunk, start)
        if i < len(chunk):
            self.rest = chunk[i:]

    def _parse(self, data: bytes, i: int = 0) -> int:
        """Consume what it can of data from index i; returns the index of the first byte left for later."""
        n = len(data)
        while i < n:
            state = self.state
            if state == self._BODY:
                j = data.find(self.body_delimiter, i)
                if j < 0:  # all but what may be the start of a delimiter is this part's
                    keep = min(n - i, len(self.body_delimiter) - 1)
                    if n - keep > i:
                        self._data(data, i, n - keep)
                    return n - keep
                after = j + len(self.body_delimiter)
                if after + 2 > n:  # the delimiter's next two bytes decide: wait for them
                    if j > i:
                        self._data(data, i, j)
                    return j
                if self.fd < 0 and not self.buf and self._fits(j - i):
                    self._part_end(data[i:j])  # the whole part in this chunk: one copy
                else:
                    if j > i:
                        self._data(data, i, j)
                    self._part_end(None)
                i, self.state = after, self._AFTER
            elif state == self._FIRST:
                if n - i < len(self.delimiter):
                    return i
                if data[i:i + len(self.delimiter)] != self.delimiter:
                    raise MultipartError("syntax", "malformed multipart body")
                i, self.state = i + len(self.delimiter), self._AFTER
            elif state == self._AFTER:
                if n - i < 2:
                    return i
                if data[i:i + 2] == b"--":
                    self.ended, self.state = True, self._EPILOGUE
                    return n
                if data[i:i + 2] != b"\r\n":
                    raise MultipartError("syntax", "malformed multipart body")
                k = i
                self._part_begin()
                i, self.state = k + 2, self._HEADERS
            elif state == self._HEADERS:
                if n - i < 2:
                    return i
                if data[i:i + 2] == b"\r\n":  # no headers
                    k, block = i, b""
                else:
                    # (from where the last search ended: a head sent a byte at a time is not scanned again)
                    k = data.find(b"\r\n\r\n", i + max(0, self.scanned - 3))
                    if k < 0:
                        if n - i > self.limits.max_part_header_bytes:
                            raise MultipartError("headers-too-large", "part headers exceed the limit")
                        self.scanned = n - i
                        return i
                    block = data[i:k]
                    k += 2
                self.scanned = 0
                if len(block) > self.limits.max_part_header_bytes:
                    raise MultipartError("headers-too-large", "part headers exceed the limit")
                self._headers(block)
                i, self.state = k + 2, self._BODY
            else:  # epilogue
                return n
        return i

    def finish(self) -> None:
        if self.preamble is not None:
            raise MultipartError("syntax", "no multipart boundary found in the body")
        if not self.ended:
            raise MultipartError("truncated", "the body ends inside a part (no closing boundary)")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _part_begin(self) -> None:
        if len(self.into.parts) >= self.limits.max_instances:
            raise MultipartError("too-many-parts", f"more than {self.limits.max_instances} parts")

    def _headers(self, block: bytes) -> None:
        # A client sends every part with the same head (mostly "Content-Type: application/dicom"): the
        # last one parsed is reused when the next block is the same bytes (a copy: parts never share one).
        if block == self.last_block:
            headers = dict(self.last_headers)
        else:
            headers = _parse_headers(block)
            self.last_block, self.last_headers = block, headers
            headers = dict(headers)
        self.buf = bytearray()
        if self.into.pack is None:
            self.into.pack = self.store.new_pack()
        # (no temp name yet: an in-memory part that goes to the pack never has a file; _data names one if
        # the part spills)
        self.into.parts.append(SpooledPart(len(self.into.parts), headers, None, in_memory=True,
                                           pack=self.into.pack))

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self.into.parts[-1]
        part.size += end - start
        if part.size > self.limits.max_instance_bytes:
            raise MultipartError("part-too-large", "a part exceeds the size limit")
        if self.fd < 0:
            with memoryview(data) as view:
                self.buf += view[start:end]
            if len(self.buf) <= SMALL_PART_BYTES and self.into.budget.room(len(self.buf)):
                return
            part.path = self.store.temp_name(".part")
            self.fd = self.store.open_temp(part.path)  # too large to hold: into its temp file from here on
            part.in_memory = False
            _write_all(self.fd, self.buf)
            self.buf = bytearray()
            return
        with memoryview(data) as view:
            _write_all(self.fd, view[start:end])

    def _fits(self, size: int) -> bool:
        """A part of this size may be held in memory (else _data() spills it, or refuses it past the limit)."""
        return size <= SMALL_PART_BYTES and size <= self.limits.max_instance_bytes and self.into.budget.room(size)

    def _part_end(self, whole: bytes | None) -> None:
        """The current part is complete; `whole`: all its bytes, when they came in one chunk."""
        self.close()
        part = self.into.parts[-1]
        if whole is not None:
            part.size = len(whole)
            part.data = whole
            self.into.hold(part)
        elif part.in_memory:
            part.data = bytes(self.buf)
            self.into.hold(part)
        self.buf = bytearray()
        if self.on_part is not None:
            self.on_part(part)


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    if block:
        for line in block.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            key = name.decode("latin-1").strip().lower()
            if not colon or line[:1] in (b" ", b"\t") or _TOKEN_RE.fullmatch(key) is None:  # (no folding)
                raise MultipartError("syntax", "malformed part header")
            headers[key] = value.decode("latin-1").strip()
    return headers


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    finally:
        view.release()
