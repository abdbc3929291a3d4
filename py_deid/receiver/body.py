"""Reading a request body from the ASGI channel onto disk, with the limits that keep a server alive: a
size cap, a timeout on every read and a minimum average rate (slow-loris senders are cut off).

A STOW-RS body is split while it streams: each part goes straight into its own temp file in the store's
tmp/ folder, so the body is never held in memory and written to disk once; nothing is stored unless the
whole message turns out well-formed (the caller commits only after the closing boundary).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import stow
from .config import Limits
from .storage import Store


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
    if receive.finished:
        return
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
    path: Path
    size: int = 0


@dataclass
class SpooledBody:
    parts: list[SpooledPart] = field(default_factory=list)

    def discard(self) -> None:
        for p in self.parts:
            p.path.unlink(missing_ok=True)


async def spool_parts(receive, store: Store, boundary: str, limits: Limits, into: SpooledBody) -> None:
    """Split a multipart body into temp files as it arrives (appending to `into`, which the caller
    discards whatever happens). Raises BodyError or stow.MultipartError."""
    parser = stow.MultipartParser(boundary, max_parts=limits.max_instances,
                                  max_header_bytes=limits.max_part_header_bytes,
                                  max_part_bytes=limits.max_instance_bytes)
    fd = -1
    try:
        async for chunk in chunks(receive, limits, limits.max_request_bytes):
            for event in parser.feed(chunk):
                fd = _apply(event, store, into, fd)
        for event in parser.finish():
            fd = _apply(event, store, into, fd)
    finally:
        if fd >= 0:
            os.close(fd)


def _apply(event, store: Store, into: SpooledBody, fd: int) -> int:
    if isinstance(event, stow.PartStart):
        fd, path = store.temp_file(".part")
        into.parts.append(SpooledPart(event.index, event.headers, path))
    elif isinstance(event, stow.PartData):
        _write_all(fd, event.data)
        into.parts[-1].size += len(event.data)
    elif isinstance(event, stow.PartEnd):
        os.close(fd)
        fd = -1
    return fd


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    finally:
        view.release()
