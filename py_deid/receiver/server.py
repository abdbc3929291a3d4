"""Running the app under uvicorn: TLS, header limits, a deadline for request headers, no access log of
uvicorn's own (ours holds no secrets), a socket bound before start so port 0 works."""

from __future__ import annotations

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


def guarded_protocol(header_timeout: float) -> type[H11Protocol]:
    """h11 with a deadline for each request's line and headers (uvicorn has none: a slow-loris client
    could hold a connection open forever by sending a header byte now and then)."""

    class GuardedH11Protocol(H11Protocol):
        _guard = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

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
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(app, sock: socket.socket, limits: Limits, *, certfile: Path | None, keyfile: Path | None,
          log_level: str = "info") -> None:
    config = uvicorn.Config(
        app,
        http=guarded_protocol(limits.header_timeout),
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        date_header=True,
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )
    uvicorn.Server(config).run(sockets=[sock])
