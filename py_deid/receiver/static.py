"""The built web app, served from a folder on the receiver's origin with explicit MIME types and the
response headers the build wrote to headers.json ({"/*": {...}, "/path": {...}}; the most specific wins)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response

MIME = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".data": "application/octet-stream",
    # Served as the file it is, never with Content-Encoding: tesseract.js and Pyodide unpack .gz themselves.
    ".gz": "application/gzip",
    ".zip": "application/zip",
    ".whl": "application/zip",
    ".tar": "application/x-tar",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".py": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".woff2": "font/woff2",
}
HEADERS_FILE = "headers.json"
PAGE_SETTINGS = "/page-settings.json"  # what `serve` tells its page (web/src/main.js applies it)


class SiteError(ValueError):
    pass


def load_headers(site: Path) -> dict[str, dict[str, str]]:
    path = site / HEADERS_FILE
    if not path.is_file():
        return {}
    try:
        rules = json.loads(path.read_text("utf-8"))
    except ValueError as e:
        raise SiteError(f"{path}: not JSON ({e})") from None
    ok = isinstance(rules, dict) and all(
        isinstance(k, str) and k.startswith("/") and isinstance(v, dict)
        and all(isinstance(n, str) and isinstance(x, str) and "\n" not in x and "\r" not in x for n, x in v.items())
        for k, v in rules.items())
    if not ok:
        raise SiteError(f'{path}: expected {{"/pattern": {{"Header": "value"}}}}')
    return rules


def headers_for(rules: dict[str, dict[str, str]], path: str) -> dict[str, str]:
    """Merge the rules matching path, least specific first (an exact path beats any prefix)."""
    matches = []
    for pattern, headers in rules.items():
        if pattern.endswith("*"):
            prefix = pattern[:-1]
            if path.startswith(prefix):
                matches.append(((0, len(prefix)), headers))
        elif pattern == path:
            matches.append(((1, len(pattern)), headers))
    merged: dict[str, str] = {}
    for _, headers in sorted(matches, key=lambda m: m[0]):
        lowered = {k.lower(): k for k in merged}
        for name, value in headers.items():
            merged.pop(lowered.get(name.lower(), name), None)
            merged[name] = value
    return merged


def resolve(site: Path, url_path: str) -> Path | None:
    """The file a URL path names inside the site folder, or None; no segment may climb or hide."""
    parts = []
    for seg in unquote(url_path).split("/"):
        if not seg:
            continue
        if seg in (".", "..") or seg.startswith(".") or "\\" in seg or "\0" in seg:
            return None
        parts.append(seg)
    if parts == [HEADERS_FILE]:
        return None
    path = site.joinpath(*parts)
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


class Site:
    def __init__(self, folder: Path, page: dict | None = None) -> None:
        self.folder = folder
        self.rules = load_headers(folder)
        self.page = page

    async def serve(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return PlainTextResponse("method not allowed", 405, headers={"Allow": "GET, HEAD"})
        url_path = request.url.path
        if url_path == PAGE_SETTINGS and self.page is not None:
            return JSONResponse(self.page, headers={**headers_for(self.rules, url_path), "Cache-Control": "no-store",
                                                    "X-Content-Type-Options": "nosniff"})
        file = resolve(self.folder, url_path)
        if file is None:
            return PlainTextResponse("not found", 404)
        media = MIME.get(file.suffix.lower(), "application/octet-stream")
        headers = headers_for(self.rules, url_path)
        if not any(k.lower() == "x-content-type-options" for k in headers):
            headers["X-Content-Type-Options"] = "nosniff"
        return FileResponse(file, media_type=media, headers=headers)
