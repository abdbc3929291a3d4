"""The ASGI application: DICOMweb under /dicomweb (STOW-RS, a QIDO-RS/WADO-RS subset, certificates), the
static web app everywhere else, CORS for the portal origins and an access log that holds no secrets."""

from __future__ import annotations

import contextlib
import json
import logging
import os

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import stow
from . import certificates as certs
from . import retrieve
from .accesslog import AccessLogMiddleware
from .body import BodyError, SpooledBody, spool, spool_parts
from .config import ReceiverConfig
from .cors import CorsMiddleware
from .forwarding import Forwarder
from .static import Site
from .storage import Store, valid_uid
from .stowrs import process
from .tokens import Principal, TokenStore, bearer
from .workers import VerifierPool

BASE = "/dicomweb"
DICOM_JSON = "application/dicom+json"
log = logging.getLogger("py_deid.receiver")


def _close(status: int, text: str, **headers) -> Response:
    """An early answer to a request whose body was not read: the connection must not be reused."""
    return PlainTextResponse(text, status, headers={"Connection": "close", "Cache-Control": "no-store", **headers})


def dicom_json(doc, status: int = 200) -> Response:
    return Response(json.dumps(doc, separators=(",", ":")), status, media_type=DICOM_JSON,
                    headers={"Cache-Control": "no-store"})


class Receiver:
    def __init__(self, cfg: ReceiverConfig) -> None:
        self.cfg = cfg
        self.store = Store(cfg.store)
        self.tokens = TokenStore(cfg.tokens_path, cfg.cli_tokens)
        self.forwarder = Forwarder(self.store, cfg.forwarding) if cfg.forwarding else None
        self.site = Site(cfg.site_dir, page={"review": cfg.review}) if cfg.site_dir else None
        self.verifier = VerifierPool(cfg.options, cfg.verify_workers)
        # Requests processed at once (each keeps its parts' checks in the verifier's queue).
        self.workers = anyio.CapacityLimiter(max(2, cfg.verify_workers))
        self.recovered = self.store.recover(forward=cfg.forwarding is not None)
        if self.forwarder is not None:
            self.store.ledger.enqueue_unforwarded()

    # helpers
    def base_url(self, request: Request) -> str:
        root = self.cfg.public_url or f"{request.url.scheme}://{request.url.netloc}"
        return root.rstrip("/") + BASE

    def principal(self, request: Request, scope: str) -> Principal | Response:
        who = self.tokens.authenticate(bearer(request.headers.get("authorization")))
        if who is None:
            return _close(401, "a valid bearer token is required",
                          **{"WWW-Authenticate": 'Bearer realm="py-deid"'})
        request.state.site = who.site
        if scope not in who.scopes:
            return _close(403, f"this token may not {scope}")
        return who

    # STOW-RS
    async def store_instances(self, request: Request) -> Response:
        who = self.principal(request, "store")
        if isinstance(who, Response):
            return who
        study = request.path_params.get("study")
        if study is not None and not valid_uid(study):
            return _close(400, "invalid Study Instance UID in the URL")
        try:
            media, params = stow.parse_content_type(request.headers.get("content-type", ""))
        except ValueError:
            return _close(415, 'expected multipart/related; type="application/dicom"')
        part_type = params.get("type", stow.DICOM).lower()
        if media != "multipart/related" or part_type != stow.DICOM:
            return _close(415, 'expected multipart/related; type="application/dicom"')
        boundary = params.get("boundary")
        if not boundary or not stow.valid_boundary(boundary):
            return _close(400, "multipart boundary missing or invalid")
        limits = self.cfg.limits
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limits.max_request_bytes):
            return _close(413, "request body exceeds the limit")
        if self.store.free_bytes() < limits.min_free_bytes + int(length or 0):
            return _close(503, "receiver is low on storage space", **{"Retry-After": "600"})
        body = SpooledBody()
        try:
            try:
                await spool_parts(request.receive, self.store, boundary, limits, body)
            except BodyError as e:
                return _close(e.status, e.message)
            except stow.MultipartError as e:
                return _close(413 if e.kind in ("too-many-parts", "part-too-large") else 400, str(e))
            except OSError as e:
                log.error("spooling an upload failed (%s)", os.strerror(e.errno) if e.errno else type(e).__name__)
                return _close(503, "receiver cannot store the upload now", **{"Retry-After": "600"})
            if not body.parts:
                return PlainTextResponse("the multipart body has no parts", 400)
            async with self.workers:
                outcome = await anyio.to_thread.run_sync(self._process, body, who.site, study, self.base_url(request))
        finally:
            body.discard()
        if outcome.stored and self.forwarder is not None:
            self.forwarder.wake()
        if outcome.failure_codes:
            log.info("refused %d instance(s): %s", outcome.failed,
                     ", ".join(sorted({f"0x{c:04X}" for c in outcome.failure_codes})))
        return dicom_json(outcome.document, outcome.status)

    def _process(self, body: SpooledBody, site: str, study: str | None, base_url: str):
        return process(self.store, self.cfg, self.verifier, body.parts, site=site, expected_study=study,
                       base_url=base_url)

    # certificates
    async def post_certificate(self, request: Request) -> Response:
        who = self.principal(request, "store")
        if isinstance(who, Response):
            return who
        study = request.path_params["study"]
        if not valid_uid(study):
            return _close(400, "invalid Study Instance UID in the URL")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return _close(415, "a certificate is application/json")
        limit = self.cfg.limits.max_certificate_bytes
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _close(413, "certificate exceeds the size limit")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                return _close(413, "certificate exceeds the size limit")
        try:
            doc = certs.parse(bytes(raw), study)
        except certs.CertificateError as e:
            return PlainTextResponse(str(e), 400)
        state, row = await anyio.to_thread.run_sync(certs.save, self.store, study, bytes(raw), doc, who.site)
        if state == certs.CONFLICT:
            return PlainTextResponse("another certificate with this batch id is stored for this study", 409)
        check = await anyio.to_thread.run_sync(certs.check, self.store, study, doc)
        url = f"{self.base_url(request)}/studies/{study}/certificates/{row['id']}"
        body = {"id": row["id"], "batch": row["batch"], "sha256": row["sha256"], "url": url, "check": check.as_dict()}
        return JSONResponse(body, 201 if state == certs.CREATED else 200, headers={"Location": url})

    async def list_certificates(self, request: Request) -> Response:
        who = self.principal(request, "read")
        if isinstance(who, Response):
            return who
        study = request.path_params["study"]
        if not valid_uid(study):
            return PlainTextResponse("invalid Study Instance UID", 400)
        rows = self.store.ledger.certificates(study)
        base = f"{self.base_url(request)}/studies/{study}/certificates"
        return JSONResponse([{"id": r["id"], "batch": r["batch"], "site": r["site"], "sha256": r["sha256"],
                              "received": r["received"], "url": f"{base}/{r['id']}"} for r in rows])

    async def check_certificate(self, request: Request) -> Response:
        return await self.get_certificate(request, check=True)

    async def get_certificate(self, request: Request, check: bool = False) -> Response:
        who = self.principal(request, "read")
        if isinstance(who, Response):
            return who
        study, cert_id = request.path_params["study"], request.path_params["cert"]
        row = self.store.ledger.certificate(study, cert_id=cert_id) if valid_uid(study) else None
        if row is None:
            return PlainTextResponse("no such certificate", 404)
        raw = certs.load(self.store, row)
        if check:
            result = await anyio.to_thread.run_sync(certs.check, self.store, study, json.loads(raw))
            return JSONResponse(result.as_dict())
        return Response(raw, media_type="application/json")

    # benchmark baseline: the same stack (TLS, auth, body spooled to disk) without DICOM
    async def sink(self, request: Request) -> Response:
        who = self.principal(request, "store")
        if isinstance(who, Response):
            return who
        fd, path = self.store.temp_file(".sink")
        try:
            try:
                n = await spool(request.receive, fd, self.cfg.limits, self.cfg.limits.max_request_bytes)
                os.fsync(fd)
            except BodyError as e:
                return _close(e.status, e.message)
            finally:
                os.close(fd)
        finally:
            path.unlink(missing_ok=True)
        return JSONResponse({"bytes": n})

    async def status(self, request: Request) -> Response:
        who = self.principal(request, "read")
        if isinstance(who, Response):
            return who
        return JSONResponse({"stored": self.store.ledger.stored_count(),
                             "forwarding": self.store.ledger.forward_counts() if self.forwarder else None,
                             "recovered": self.recovered})

    async def not_found(self, request: Request) -> Response:
        return PlainTextResponse("not found", 404)

    def build(self) -> Starlette:
        r = retrieve.Handlers(self)
        routes = [
            Route(f"{BASE}/studies", self.store_instances, methods=["POST"]),
            Route(f"{BASE}/studies", r.search_studies, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}", self.store_instances, methods=["POST"]),
            Route(f"{BASE}/studies/{{study}}", r.retrieve, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/certificates", self.post_certificate, methods=["POST"]),
            Route(f"{BASE}/studies/{{study}}/certificates", self.list_certificates, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/certificates/{{cert}}", self.get_certificate, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/certificates/{{cert}}/check", self.check_certificate, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/series", r.search_series, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/instances", r.search_instances, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/series/{{series}}", r.retrieve, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/series/{{series}}/instances", r.search_instances, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/series/{{series}}/instances/{{sop}}", r.retrieve,
                  methods=["GET"]),
            Route(f"{BASE}/{{rest:path}}", self.not_found),
            Route("/receiver/status", self.status, methods=["GET"]),
        ]
        if self.cfg.benchmark_sink:
            routes.append(Route("/bench/sink", self.sink, methods=["POST"]))
        if self.site is not None:
            routes.append(Route("/{path:path}", self.site.serve, methods=["GET", "HEAD"]))

        @contextlib.asynccontextmanager
        async def lifespan(app):
            if self.forwarder is not None:
                self.forwarder.start()
            try:
                yield
            finally:
                if self.forwarder is not None:
                    self.forwarder.stop()
                self.verifier.close()
                self.store.close()

        app = Starlette(routes=routes, lifespan=lifespan)
        return AccessLogMiddleware(CorsMiddleware(app, self.cfg.cors_origins))
