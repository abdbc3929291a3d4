"""The receiver's own access log (uvicorn's is switched off): method, path with UIDs masked, status, size,
time and the authenticated site. Never headers (the bearer token), never query strings."""

from __future__ import annotations

import logging
import re
import time

log = logging.getLogger("py_deid.receiver.access")
_UID_SEGMENT = re.compile(r"/(?:[0-9]+(?:\.[0-9]+)+|cert-[0-9a-f]{32})(?=/|$)")


def label(path: str) -> str:
    """The path as logged: UIDs (even de-identified ones) and certificate ids become placeholders."""
    masked = _UID_SEGMENT.sub("/{uid}", path)
    masked = "".join(c if 32 < ord(c) < 127 else "?" for c in masked)
    return masked[:200]


class AccessLogMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.monotonic()
        status = 0
        size = 0

        async def counting_send(message):
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            site = (scope.get("state") or {}).get("site", "-")
            log.info("%s %s %s %d %.0fms site=%s", scope["method"], label(scope["path"]), status or "-", size,
                     (time.monotonic() - start) * 1000, site)
