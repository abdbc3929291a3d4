"""Limits over real TLS sockets: sizes, part counts, header sizes, stalled and slow-loris senders."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from py_deid import stow

from . import receiver_support as rs

TOKEN = "limits-token-0f9e8d7c6b5a4"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    srv = rs.Server(root / "store", "--token", f"lim:{TOKEN}", "--max-request-size", "2M",
                    "--max-instance-size", "1M", "--max-instances", "3", "--max-header-size", "8K",
                    "--read-timeout", "1.5", "--header-timeout", "1.5", "--min-rate", "200K",
                    "--min-rate-grace", "2", "--verify-workers", "0", log_name="limits").start()
    yield srv
    srv.stop()


def _connect(srv) -> ssl.SSLSocket:
    port = int(srv.origin.rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=srv.ca)
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20), server_hostname="localhost")
    return sock


def _head(boundary: str, extra: str = "", length: int | None = None) -> bytes:
    lines = ["POST /dicomweb/studies HTTP/1.1", "Host: localhost", f"Authorization: Bearer {TOKEN}",
             f"Content-Type: {stow.content_type(boundary)}"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def _exchange(srv, head: bytes, chunks=(), pause: float = 0.0) -> tuple[bytes, float]:
    """Send a request piece by piece; return what the server answered before closing, and when it closed."""
    sock = _connect(srv)
    start = time.monotonic()
    try:
        sock.sendall(head)
        for chunk in chunks:
            time.sleep(pause)
            sock.sendall(chunk)
    except OSError:
        pass  # the server may answer and close while we are still sending: that is the point
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except OSError:
        pass
    sock.close()
    return answer, time.monotonic() - start


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_declared_length_over_the_limit_is_413_before_any_body(small):
    answer, _ = _exchange(small, _head("b", length=10 * 1024 * 1024))
    assert _status(answer) == 413 and b"connection: close" in answer.lower()


def test_chunked_body_over_the_limit_is_cut_at_the_limit(small):
    _, body = stow.encode([b"x" * 900_000] * 3, boundary="b")  # 2.7 MB: parts and count within limits

    def chunks():
        for i in range(0, len(body), 65536):
            piece = body[i:i + 65536]
            yield b"%x\r\n" % len(piece) + piece + b"\r\n"
        yield b"0\r\n\r\n"
    answer, _ = _exchange(small, _head("b"), chunks())
    assert _status(answer) == 413
    assert not list((small.store / "tmp").iterdir())  # the spooled part is gone


def test_too_many_parts_and_too_large_a_part_are_413(small, instances):
    part = rs.with_new_uids(instances.deid("JPEG2000.dcm"), 1)
    with small.client(TOKEN) as c:
        ctype, body = stow.encode([part] * 4)
        assert c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype}).status_code == 413
        ctype, body = stow.encode([b"\0" * (1024 * 1024 + 1)])
        assert c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype}).status_code == 413
        ctype, body = stow.encode([part] * 3)
        assert c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype}).status_code == 200


def test_oversized_request_headers_are_refused(small):
    answer, _ = _exchange(small, _head("b", extra="X-Big: " + "a" * 20000 + "\r\n", length=0))
    assert _status(answer) in (400, 431)


def test_a_stalled_body_is_cut_off_after_the_read_timeout(small):
    answer, took = _exchange(small, _head("b", length=100000), [b"--b\r\n"])
    assert _status(answer) == 408
    assert took < 10


def test_a_slow_loris_body_is_cut_off_by_the_minimum_rate(small):
    # 1 KB every 0.5 s never stalls for the 1.5 s read timeout, but averages far below 200 KB/s.
    answer, took = _exchange(small, _head("b", length=10 ** 6), [b"y" * 1024] * 40, pause=0.5)
    assert _status(answer) == 408
    assert took < 15


def test_slow_request_headers_are_cut_off(small):
    sock = _connect(small)
    start = time.monotonic()
    sock.sendall(b"POST /dicomweb/studies HTTP/1.1\r\nHost: localhost\r\n")
    closed = False
    try:
        for _ in range(20):
            time.sleep(0.5)
            sock.sendall(b"X-Drip: 1\r\n")  # a header line now and then, never the blank line
    except OSError:
        closed = True
    if not closed:
        sock.settimeout(5)
        try:
            closed = sock.recv(1024) == b""
        except OSError:
            closed = True
    sock.close()
    assert closed and time.monotonic() - start < 10
    with small.client(TOKEN) as c:  # and the server still serves others
        assert c.get("/dicomweb/studies").status_code in (200, 204)


def test_bound_socket_is_tcp_so_nagle_is_switched_off():
    from py_deid.receiver.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        # asyncio sets TCP_NODELAY only on sockets whose protocol number says TCP; accepted ones inherit it.
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_a_response_is_not_held_back_for_the_clients_delayed_ack(small):
    # With Nagle's algorithm on, a response's body waits behind its header segment until the client's
    # delayed ACK (40 ms or more on Linux): every request then takes >= 40 ms, whatever the server does.
    sock = _connect(small)
    request = (f"GET /receiver/status HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
               ).encode()
    took = []
    try:
        for _ in range(7):
            start = time.perf_counter()
            sock.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(65536)
            head, _, body = answer.partition(b"\r\n\r\n")
            length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            while len(body) < length:
                body += sock.recv(65536)
            took.append(time.perf_counter() - start)
    finally:
        sock.close()
    assert min(took) < 0.030, took  # the best of seven: a loaded machine may delay some
