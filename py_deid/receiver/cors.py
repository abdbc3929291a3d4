"""CORS for the configured portal origins only (a sponsor's portal embedding the widget), by Starlette's
CORSMiddleware. Requests from any other origin never reach it: they get no CORS header at all (Starlette
would still add its expose and method lists), and their preflights a bare 403, so browsers keep them from
reading anything."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware

ALLOW_METHODS = ("GET", "HEAD", "POST", "OPTIONS")
ALLOW_HEADERS = ("Authorization", "Content-Type", "Accept")
EXPOSE_HEADERS = ("Content-Length", "Location")
MAX_AGE = 600


def normalize_origin(origin: str) -> str:
    origin = origin.strip().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
        raise ValueError("an origin is scheme://host[:port], e.g. https://portal.example.org")
    return f"{scheme}://{rest.lower()}"


class PortalCors:
    def __init__(self, app, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(normalize_origin(o) for o in origins)
        self.cors = CORSMiddleware(app, allow_origins=sorted(self.origins), allow_methods=ALLOW_METHODS,
                                   allow_headers=ALLOW_HEADERS, expose_headers=EXPOSE_HEADERS, max_age=MAX_AGE)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if headers.get(b"origin", b"").decode("latin-1") in self.origins:
            return await self.cors(scope, receive, send)
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"vary", b"Origin"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)
