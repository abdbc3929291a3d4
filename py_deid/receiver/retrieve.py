"""The QIDO-RS / WADO-RS subset that lets a sponsor (and a test) list and fetch what arrived:
search studies, series and instances (application/dicom+json), retrieve a study, series or instance as
multipart/related; type="application/dicom" (or one instance as plain application/dicom), as stored."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from . import dicomjson
from .storage import valid_uid

if TYPE_CHECKING:
    from .app import Receiver

DICOM = "application/dicom"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
CHUNK = 1 << 20
FILTERS = {
    "StudyInstanceUID": "study_uid", "0020000D": "study_uid",
    "SeriesInstanceUID": "series_uid", "0020000E": "series_uid",
    "SOPInstanceUID": "sop_uid", "00080018": "sop_uid",
    "Modality": "modality", "00080060": "modality",
}


def parse_accept(value: str) -> list[tuple[str, dict[str, str], float]]:
    """Media ranges of an Accept header, best first: (type, params, q)."""
    items, current, quoted = [], [], False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    out = []
    for n, item in enumerate(items):
        media, *raw = [p.strip() for p in item.split(";")]
        if not media:
            continue
        params = {}
        for p in raw:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        out.append((media.lower(), params, q, -n))
    out.sort(key=lambda t: (t[2], t[3]), reverse=True)
    return [(m, p, q) for m, p, q, _ in out if q > 0]


def _ts_ok(wanted: str | None, stored: set[str]) -> bool:
    if wanted == "*":
        return True
    # Without a transfer-syntax parameter PS3.18 means Explicit VR Little Endian; nothing is transcoded here.
    return stored == {wanted or EXPLICIT_LE}


def negotiate(accept: str | None, stored: set[str], single: bool) -> str | None:
    """'multipart' or 'single' (plain application/dicom), or None (406)."""
    if not accept:
        return "multipart"
    for media, params, _ in parse_accept(accept):
        if media in ("*/*", "multipart/*"):
            return "multipart"
        if media == "multipart/related" and params.get("type", DICOM).lower() in (DICOM, "*/*", "application/*"):
            if _ts_ok(params.get("transfer-syntax"), stored):
                return "multipart"
        if media == DICOM and single and _ts_ok(params.get("transfer-syntax"), stored):
            return "single"
    return None


def _part_head(boundary: bytes, ts: str) -> bytes:
    return b"--" + boundary + b"\r\nContent-Type: application/dicom; transfer-syntax=" + ts.encode() + b"\r\n\r\n"


class Handlers:
    def __init__(self, receiver: Receiver) -> None:
        self.rx = receiver

    def _auth(self, request: Request) -> Response | None:
        who = self.rx.principal(request, "read")
        return who if isinstance(who, Response) else None

    def _page(self, request: Request, rows: list[dict]) -> list[dict] | Response:
        q = request.query_params
        for key, column in FILTERS.items():
            if key in q:
                wanted = set(q[key].replace("\\", ",").split(","))
                rows = [r for r in rows if str(r.get(column, "")) in wanted]
        try:
            offset = int(q.get("offset", "0"))
            limit = int(q["limit"]) if "limit" in q else None
        except ValueError:
            return PlainTextResponse("limit and offset are integers", 400)
        if offset < 0 or (limit is not None and limit < 0):
            return PlainTextResponse("limit and offset are not negative", 400)
        return rows[offset:None if limit is None else offset + limit]

    def _answer(self, docs: list[dict]) -> Response:
        if not docs:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        from .app import dicom_json
        return dicom_json(docs)

    async def search_studies(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        base = self.rx.base_url(request)
        rows = self.rx.store.ledger.studies()
        page = self._page(request, rows)
        if isinstance(page, Response):
            return page
        return self._answer([dicomjson.study_result(r, f"{base}/studies/{r['study_uid']}") for r in page])

    async def search_series(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        study = request.path_params["study"]
        if not valid_uid(study):
            return PlainTextResponse("invalid UID", 400)
        base = self.rx.base_url(request)
        page = self._page(request, self.rx.store.ledger.series(study))
        if isinstance(page, Response):
            return page
        return self._answer([dicomjson.series_result(r, f"{base}/studies/{study}/series/{r['series_uid']}")
                             for r in page])

    async def search_instances(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        study, series = request.path_params["study"], request.path_params.get("series")
        if not valid_uid(study) or (series is not None and not valid_uid(series)):
            return PlainTextResponse("invalid UID", 400)
        base = self.rx.base_url(request)
        page = self._page(request, self.rx.store.ledger.instances(study, series))
        if isinstance(page, Response):
            return page
        return self._answer([dicomjson.instance_result(
            r, f"{base}/studies/{r['study_uid']}/series/{r['series_uid']}/instances/{r['sop_uid']}") for r in page])

    async def retrieve(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        p = request.path_params
        study, series, sop = p["study"], p.get("series"), p.get("sop")
        if not all(valid_uid(u) for u in (study, series, sop) if u is not None):
            return PlainTextResponse("invalid UID", 400)
        rows = self.rx.store.ledger.instances(study, series, sop)
        if not rows:
            return PlainTextResponse("not found", 404)
        kind = negotiate(request.headers.get("accept"), {r["transfer_syntax"] for r in rows}, sop is not None)
        if kind is None:
            return PlainTextResponse("only application/dicom as stored (transfer-syntax=* or the stored one)", 406)
        store = self.rx.store
        if kind == "single":
            row = rows[0]
            return StreamingResponse(_file_chunks(store, row), headers={
                "Content-Type": f"{DICOM}; transfer-syntax={row['transfer_syntax']}",
                "Content-Length": str(row["size"]), "Cache-Control": "no-store"})
        boundary = secrets.token_hex(16).encode()
        length = sum(len(_part_head(boundary, r["transfer_syntax"])) + r["size"] + 2 for r in rows)
        length += len(boundary) + 6

        def body():
            for r in rows:
                yield _part_head(boundary, r["transfer_syntax"])
                yield from _file_chunks(store, r)
                yield b"\r\n"
            yield b"--" + boundary + b"--\r\n"

        content_type = f'multipart/related; type="{DICOM}"; boundary={boundary.decode()}'
        return StreamingResponse(body(), headers={"Content-Type": content_type, "Content-Length": str(length),
                                                  "Cache-Control": "no-store"})


def _file_chunks(store, row):
    with store.open_instance(row) as f:
        while chunk := f.read(CHUNK):
            yield chunk
