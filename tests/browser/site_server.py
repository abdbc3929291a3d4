"""Test fixture: serves a built site folder (honouring its headers.json) and a STOW-RS endpoint on one origin.

Stands in for `py-deid serve` until py_deid/receiver lands (conftest switches to the real receiver when it exists).
It is a real HTTP server that parses PS3.18 multipart/related requests and stores what it receives; it keeps a
log of every instance it was sent so tests can check "exactly once".

    python site_server.py --site DIR --store DIR --port N --token T
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import re
import sys
from io import BytesIO
from pathlib import Path

import pydicom
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")


def split_multipart(body: bytes, boundary: bytes) -> list[tuple[dict, bytes]]:
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, _, payload = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, payload[:-2] if payload.endswith(b"\r\n") else payload))
    return parts


def make_app(site: Path, store: Path, tokens: set[str], review: str = "pixels") -> Starlette:
    headers_map = json.loads((site / "headers.json").read_text()) if (site / "headers.json").is_file() else {}
    store.mkdir(parents=True, exist_ok=True)
    log = store / "received.jsonl"

    def site_headers(path: str) -> dict:
        out = dict(headers_map.get("/*", {}))
        out.update(headers_map.get(path, {}))
        return out

    async def static(request: Request):
        rel = request.path_params.get("path", "") or "index.html"
        target = (site / rel).resolve()
        if site.resolve() not in target.parents and target != site.resolve() or not target.is_file():
            return Response("not found", 404)
        return FileResponse(target, headers=site_headers("/" + rel))

    async def stow(request: Request):
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in tokens:
            return Response(status_code=401)
        ctype = request.headers.get("content-type", "")
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        if not ctype.startswith("multipart/related") or 'type="application/dicom"' not in ctype or not m:
            return Response(status_code=415)
        body = await request.body()
        referenced, failed = [], []
        for headers, payload in split_multipart(body, m.group(1).encode()):
            try:
                ds = pydicom.dcmread(BytesIO(payload))
                sop, cls = str(ds.SOPInstanceUID), str(ds.SOPClassUID)
            except Exception:
                failed.append({"00081197": {"vr": "US", "Value": [0xC000]}})
                continue
            path = store / f"{sop}.dcm"
            duplicate = path.is_file()
            if not duplicate:
                path.write_bytes(payload)
            with log.open("a") as fh:
                fh.write(json.dumps({"sop": sop, "duplicate": duplicate, "same": duplicate and path.read_bytes() == payload}) + "\n")
            referenced.append({"00081150": {"vr": "UI", "Value": [cls]}, "00081155": {"vr": "UI", "Value": [sop]}})
        reply = {"00081199": {"vr": "SQ", "Value": referenced}}
        if failed:
            reply["00081198"] = {"vr": "SQ", "Value": failed}
        status = 200 if not failed else (202 if referenced else 409)
        return JSONResponse(reply, status_code=status, media_type="application/dicom+json")

    async def page_settings(request: Request):
        return JSONResponse({"review": review}, headers={"Cache-Control": "no-store"})

    return Starlette(routes=[
        Route("/dicomweb/studies", stow, methods=["POST"]),
        Route("/page-settings.json", page_settings),
        Route("/", static),
        Route("/{path:path}", static),
    ])


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--site", type=Path, required=True)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", action="append", default=[])
    p.add_argument("--review", default="pixels")
    a = p.parse_args(argv)
    uvicorn.run(make_app(a.site, a.store, set(a.token), a.review), host="127.0.0.1", port=a.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
