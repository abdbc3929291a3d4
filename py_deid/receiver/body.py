"""Reading a request body from the ASGI channel onto disk, with the limits that keep a server alive: a
size cap, a timeout on every read and a minimum average rate (slow-loris senders are cut off).

A STOW-RS body is split while it streams (python-multipart's parser). A small part is held in memory and
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
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParseError, MultipartParser

from .config import Limits
from .storage import Store


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")  # RFC 9110


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
    while True:
        try:
            message = await asyncio.wait_for(receive(), timeout=limits.read_timeout)
        except asyncio.TimeoutError:
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
    path: Path  # its temp file: written by the server as the part arrived, or (in_memory) by its check
    size: int = 0
    check: object = None  # what on_part started for it (the verification already under way)
    synced: object = None  # its fsync, started once the check passed (storage.Flushes), else None
    settled: bool = False  # its temp file is committed or removed (process() did it): nothing to discard
    data: bytes | None = None  # an in-memory part's bytes until they are submitted to its check
    in_memory: bool = False  # held in memory: `path` is only a reserved name, which the worker that passes
    #                          the part writes

    def remove(self) -> None:
        """Remove its temp file, also if the check that may write it is still running."""
        self.path.unlink(missing_ok=True)
        future = getattr(self.check, "future", None)
        if self.in_memory and future is not None and not future.done():
            path = self.path
            future.add_done_callback(lambda _: path.unlink(missing_ok=True))


@dataclass
class SpooledBody:
    parts: list[SpooledPart] = field(default_factory=list)
    budget: MemoryBudget = field(default_factory=lambda: BUDGET)
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
    """python-multipart's streaming parser, each part's body written into a temp file of its own, under
    the receiver's limits (parts per request, header bytes per part, bytes per part). A preamble before
    the first boundary (RFC 2046) is skipped here, as that parser expects the boundary first."""

    def __init__(self, boundary: str, store: Store, limits: Limits, into: SpooledBody, on_part=None) -> None:
        self.store, self.limits, self.into, self.on_part = store, limits, into, on_part
        self.delimiter = b"--" + boundary.encode("latin-1")
        self.parser = MultipartParser(boundary.encode("latin-1"), callbacks={
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_end": self._end,
        }, max_header_count=limits.max_part_header_bytes, max_header_size=limits.max_part_header_bytes)
        self.preamble: bytearray | None = bytearray()
        self.fd = -1
        self.buf = bytearray()
        self.ended = False
        self.headers: dict[str, str] = {}
        self.field = bytearray()
        self.value = bytearray()
        self.header_bytes = 0

    def feed(self, chunk: bytes) -> None:
        if self.preamble is not None:
            self.preamble += chunk
            buf = self.preamble
            i = 0 if buf.startswith(self.delimiter) else buf.find(b"\r\n" + self.delimiter)
            if i < 0:
                if len(buf) > MAX_PREAMBLE:
                    raise MultipartError("syntax", "no multipart boundary found in the body")
                return
            chunk = bytes(buf[i + 2 if i else 0:])
            self.preamble = None
        try:
            self.parser.write(chunk)
        except MultipartParseError:
            raise MultipartError("syntax", "malformed multipart body") from None

    def finish(self) -> None:
        if self.preamble is not None:
            raise MultipartError("syntax", "no multipart boundary found in the body")
        if not self.ended:
            raise MultipartError("truncated", "the body ends inside a part (no closing boundary)")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # parser callbacks
    def _part_begin(self) -> None:
        if len(self.into.parts) >= self.limits.max_instances:
            raise MultipartError("too-many-parts", f"more than {self.limits.max_instances} parts")
        self.headers, self.header_bytes = {}, 0

    def _count(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > self.limits.max_part_header_bytes:
            raise MultipartError("headers-too-large", "part headers exceed the limit")

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.value += data[start:end]

    def _header_end(self) -> None:
        name = self.field.decode("latin-1").strip().lower()
        if not name or not all(c in _TOKEN for c in name):
            raise MultipartError("syntax", "malformed part header")
        self.headers[name] = self.value.decode("latin-1").strip()
        self.field.clear()
        self.value.clear()

    def _headers_finished(self) -> None:
        self.buf = bytearray()
        self.into.parts.append(SpooledPart(len(self.into.parts), self.headers, self.store.temp_name(".part"),
                                           in_memory=True))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.into.parts[-1]
        part.size += end - start
        if part.size > self.limits.max_instance_bytes:
            raise MultipartError("part-too-large", "a part exceeds the size limit")
        if self.fd < 0:
            with memoryview(data) as view:
                self.buf += view[start:end]
            if len(self.buf) <= SMALL_PART_BYTES and self.into.budget.room(len(self.buf)):
                return
            self.fd = self.store.open_temp(part.path)  # too large to hold: into its temp file from here on
            part.in_memory = False
            _write_all(self.fd, self.buf)
            self.buf = bytearray()
            return
        with memoryview(data) as view:
            _write_all(self.fd, view[start:end])

    def _part_end(self) -> None:
        self.close()
        part = self.into.parts[-1]
        if part.in_memory:
            part.data = bytes(self.buf)
            self.into.hold(part)
        self.buf = bytearray()
        if self.on_part is not None:
            self.on_part(part)

    def _end(self) -> None:
        self.ended = True


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    finally:
        view.release()
