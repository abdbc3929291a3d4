"""Answers shared by the routes: DICOM JSON, and refusals that the client can read (the rest of the body
is drained first) and after which the connection is not reused."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from .body import TrackedReceive, drain
from .config import Limits

DICOM_JSON = "application/dicom+json"


def dicom_json(doc, status: int = 200) -> Response:
    """A DICOM JSON answer; `doc` a document, or one encoded already by json_bytes() (off the event loop)."""
    content = doc if isinstance(doc, bytes) else json_bytes(doc)
    return Response(content, status, media_type=DICOM_JSON, headers={"Cache-Control": "no-store"})


def json_bytes(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def closing(status: int, text: str, **headers) -> Response:
    return PlainTextResponse(text, status, headers={"Connection": "close", "Cache-Control": "no-store", **headers})


async def refuse(request: Request, limits: Limits, status: int, text: str, **headers) -> Response:
    """An answer to a request whose body was not read whole: drain the rest (up to a cap), then close."""
    receive = request.receive if isinstance(request.receive, TrackedReceive) else TrackedReceive(request.receive)
    await drain(receive, request.headers, limits)
    return closing(status, text, **headers)


class HeaderLimit:
    """Refuses (431) a request whose line and headers exceed max_bytes as sent, whatever the network's
    chunking (h11's own limit applies only to a head that arrives in pieces)."""

    def __init__(self, app, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and head_size(scope) > self.limits.max_header_bytes:
            request = Request(scope, receive)
            response = await refuse(request, self.limits, 431, "request headers exceed the limit")
            return await response(scope, receive, send)
        scope_receive = TrackedReceive(receive) if scope["type"] == "http" else receive
        await self.app(scope, scope_receive, send)


def head_size(scope) -> int:
    """Bytes of the request line and header lines (CRLFs and the blank line included)."""
    target = len(scope.get("raw_path") or scope["path"].encode()) + (
        1 + len(scope["query_string"]) if scope.get("query_string") else 0)
    line = len(scope["method"]) + 1 + target + len(" HTTP/") + len(scope.get("http_version", "1.1")) + 2
    return line + sum(len(k) + 2 + len(v) + 2 for k, v in scope["headers"]) + 2
