"""Running the app under uvicorn: TLS with a handshake deadline, header limits, a deadline for request
headers, connection caps that idle connections cannot exhaust, no access log of uvicorn's own (ours holds
no secrets), a socket bound before start so port 0 works."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
import sys
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import Limits


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_BUSY_TEXT = b"too many open connections"
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
         b"Retry-After: 5\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_TEXT), _BUSY_TEXT))
LINGER = 2.0  # seconds a refused connection is read (and dropped) before it is closed


class GuardedLoop(asyncio.SelectorEventLoop):
    """asyncio's loop with a deadline on TLS handshakes (uvicorn passes none, and asyncio's default of 60 s
    lets connections that never finish a handshake pile up)."""

    def __init__(self, handshake_timeout: float) -> None:
        super().__init__()
        self._handshake_timeout = handshake_timeout

    async def create_server(self, *args, **kw):
        if kw.get("ssl") is not None:
            kw.setdefault("ssl_handshake_timeout", self._handshake_timeout)
            kw.setdefault("ssl_shutdown_timeout", min(self._handshake_timeout, 10.0))
        return await super().create_server(*args, **kw)


def guarded_protocol(limits: Limits) -> type[H11Protocol]:
    """h11 with a deadline for each request's line and headers (uvicorn has none: a slow-loris client
    could hold a connection open forever by sending a header byte now and then), and caps on connections
    in total and per client address. At a cap the oldest idle connection (no request under way) makes
    room, so idle connections can never lock out a client that has a request to send; only when every
    connection is busy is the newcomer refused with 503."""
    header_timeout = limits.header_timeout

    class GuardedH11Protocol(H11Protocol):
        _guard = None
        _opened = 0.0
        _refused = False

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._opened = self.loop.time()
            if not self._make_room():
                # Answered at once, then read and dropped for a moment: closed with the client's request
                # unread, the kernel would reset the connection and the client might never see the 503.
                self._refused = True
                transport.write(_BUSY)
                self.loop.call_later(LINGER, transport.close)
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            if not self._refused:
                super().data_received(data)

        def _idle(self) -> bool:
            busy = self.cycle is not None and not self.cycle.response_complete
            return not busy and not self._refused and not self.transport.is_closing()

        def _make_room(self) -> bool:
            peer = self.client[0] if self.client else None
            mine = [c for c in self.connections if c.client and c.client[0] == peer]  # self included
            caps = ((mine, limits.max_connections_per_client), (list(self.connections), limits.max_connections))
            for group, cap in caps:
                while len([c for c in group if not c.transport.is_closing() and not c._refused]) > cap:
                    idle = [c for c in group if c is not self and isinstance(c, GuardedH11Protocol) and c._idle()]
                    if not idle:
                        return False
                    oldest = min(idle, key=lambda c: c._opened)
                    oldest.transport.abort()
                    group.remove(oldest)
            return True

        def _arm(self) -> None:
            if self._guard is not None:
                self._guard.cancel()
            cycle = self.cycle

            def expire() -> None:
                if self.cycle is cycle and not self.transport.is_closing():
                    self.transport.close()  # no complete request head arrived in time

            self._guard = self.loop.call_later(header_timeout, expire)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def shutdown(self) -> None:
            if self.cycle is None or self.cycle.response_complete:
                # An idle keep-alive connection: a TLS close would wait for the client's close_notify.
                self.transport.abort()
                return
            super().shutdown()

        def connection_lost(self, exc) -> None:
            if self._guard is not None:
                self._guard.cancel()
            super().connection_lost(exc)

    return GuardedH11Protocol


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("py_deid", "uvicorn"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("pydicom").propagate = False  # its messages quote values from files
    logging.getLogger("httpx").setLevel("WARNING")  # its INFO lines name upstream URLs with queries


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio switches Nagle's algorithm off (TCP_NODELAY) only on sockets that say they
    # are TCP, and accepted connections inherit the listening socket's protocol number. With Nagle on, a
    # response's body waits behind its header segment for the client's delayed ACK: 40 ms per response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(app, sock: socket.socket, limits: Limits, *, certfile: Path | None, keyfile: Path | None,
          log_level: str = "info") -> None:
    config = uvicorn.Config(
        app,
        loop=functools.partial(GuardedLoop, limits.handshake_timeout),
        http=guarded_protocol(limits),
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        date_header=True,
        limit_concurrency=None,  # the protocol's own caps: uvicorn's counts idle connections against everyone
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )
    uvicorn.Server(config).run(sockets=[sock])
