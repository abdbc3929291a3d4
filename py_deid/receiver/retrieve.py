"""The QIDO-RS / WADO-RS subset that lets a sponsor (and a test) list and fetch what arrived:
search studies, series and instances (application/dicom+json), retrieve a study, series or instance as
multipart/related; type="application/dicom" (or one instance as plain application/dicom), as stored."""

from __future__ import annotations

import re
import secrets

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from . import dicomjson
from .responses import dicom_json
from ..structure import valid_uid
from .storage import Store
from .tokens import Principal

DICOM = "application/dicom"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
CHUNK = 1 << 20
FILTERS = {
    "StudyInstanceUID": "study_uid", "0020000D": "study_uid",
    "SeriesInstanceUID": "series_uid", "0020000E": "series_uid",
    "SOPInstanceUID": "sop_uid", "00080018": "sop_uid",
    "Modality": "modality", "00080060": "modality",
}
MODALITY_RE = re.compile(r"[A-Z0-9_ ]{1,16}")  # CS
COUNT_RE = re.compile(r"[0-9]{1,9}")


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
    """The read routes. `principal(request, scope)` authenticates (a Response when refused); a principal
    whose token reads one site sees only the instances that site uploaded."""

    def __init__(self, store: Store, principal, base_url) -> None:
        self.store = store
        self.principal = principal
        self.base_url = base_url

    def _page(self, request: Request, rows: list[dict]) -> list[dict] | Response:
        q = request.query_params
        for key, column in FILTERS.items():
            if key in q:
                wanted = set(q[key].replace("\\", ",").split(","))
                check = (lambda v: MODALITY_RE.fullmatch(v) is not None) if column == "modality" else valid_uid
                if not all(check(v) for v in wanted):
                    return PlainTextResponse(f"invalid {key} in the query", 400)
                rows = [r for r in rows if str(r.get(column, "")) in wanted]
        offset, limit = q.get("offset", "0"), q.get("limit")
        if not COUNT_RE.fullmatch(offset) or (limit is not None and not COUNT_RE.fullmatch(limit)):
            return PlainTextResponse("limit and offset are non-negative integers", 400)
        start = int(offset)
        return rows[start:None if limit is None else start + int(limit)]

    @staticmethod
    def _answer(docs: list[dict]) -> Response:
        if not docs:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        return dicom_json(docs)

    async def search_studies(self, request: Request) -> Response:
        who = await self.principal(request, "read")
        if not isinstance(who, Principal):
            return who
        base = self.base_url(request)
        rows = self.store.ledger.studies(who.reads_site)
        page = self._page(request, rows)
        if isinstance(page, Response):
            return page
        return self._answer([dicomjson.study_result(r, f"{base}/studies/{r['study_uid']}") for r in page])

    async def search_series(self, request: Request) -> Response:
        who = await self.principal(request, "read")
        if not isinstance(who, Principal):
            return who
        study = request.path_params["study"]
        if not valid_uid(study):
            return PlainTextResponse("invalid UID", 400)
        base = self.base_url(request)
        page = self._page(request, self.store.ledger.series(study, who.reads_site))
        if isinstance(page, Response):
            return page
        return self._answer([dicomjson.series_result(r, f"{base}/studies/{study}/series/{r['series_uid']}")
                             for r in page])

    async def search_instances(self, request: Request) -> Response:
        who = await self.principal(request, "read")
        if not isinstance(who, Principal):
            return who
        study, series = request.path_params["study"], request.path_params.get("series")
        if not valid_uid(study) or (series is not None and not valid_uid(series)):
            return PlainTextResponse("invalid UID", 400)
        base = self.base_url(request)
        page = self._page(request, self.store.ledger.instances(study, series, site=who.reads_site))
        if isinstance(page, Response):
            return page
        return self._answer([dicomjson.instance_result(
            r, f"{base}/studies/{r['study_uid']}/series/{r['series_uid']}/instances/{r['sop_uid']}") for r in page])

    async def retrieve(self, request: Request) -> Response:
        who = await self.principal(request, "read")
        if not isinstance(who, Principal):
            return who
        p = request.path_params
        study, series, sop = p["study"], p.get("series"), p.get("sop")
        if not all(valid_uid(u) for u in (study, series, sop) if u is not None):
            return PlainTextResponse("invalid UID", 400)
        rows = self.store.ledger.instances(study, series, sop, site=who.reads_site)
        if not rows:
            return PlainTextResponse("not found", 404)
        kind = negotiate(request.headers.get("accept"), {r["transfer_syntax"] for r in rows}, sop is not None)
        if kind is None:
            return PlainTextResponse("only application/dicom as stored (transfer-syntax=* or the stored one)", 406)
        store = self.store
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
