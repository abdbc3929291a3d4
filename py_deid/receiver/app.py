"""The ASGI application: DICOMweb under /dicomweb (STOW-RS, a QIDO-RS/WADO-RS subset, certificates), the
static web app everywhere else, CORS for the portal origins and an access log that holds no secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import stow
from ..structure import valid_uid
from . import certificates as certs
from .accesslog import AccessLogMiddleware
from .body import BodyError, MultipartError, SpooledBody, spool, spool_parts
from .config import ReceiverConfig
from .cors import PortalCors
from .forwarding import Forwarder
from .responses import HeaderLimit, closing, dicom_json, refuse
from .retrieve import Handlers
from .signing import WELL_KNOWN, Signer
from .static import Site
from .storage import Store
from .stowrs import Batcher, process
from .tokens import Principal, TokenStore, bearer
from .workers import VerifierPool, WorkersDown

BASE = "/dicomweb"
RETRY_AFTER_WORKERS = "10"  # seconds: a replaced verification pool is ready in about two
log = logging.getLogger("py_deid.receiver")
# PY_DEID_RECEIVER_TIMELINE=FILE: each STOW request appends one JSON line of its steps' times (ms from the
# handler's start: body received, checks answered, parts flushed, commit steps, answer): the benchmark's
# measurement of where a request waits. Holds step names and times only.
TIMELINE = os.environ.get("PY_DEID_RECEIVER_TIMELINE")


async def _in_thread(pool: ThreadPoolExecutor, fn, *args):
    """fn(*args) in one of the pool's threads. Cancelling the caller does not abandon it: the caller waits
    for it to end (as AnyIO's to_thread does by default), so whatever the thread holds (a request's body,
    its temp files) is never released under it; the cancellation is raised then."""
    future = asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            if future.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    return result


class Receiver:
    def __init__(self, cfg: ReceiverConfig) -> None:
        self.cfg = cfg
        self.store = Store(cfg.store)
        self.tokens = TokenStore(cfg.tokens_path, cfg.cli_tokens)
        self.signer = Signer(cfg.store / "signing" / "ed25519.pem")
        self.forwarder = Forwarder(self.store, cfg.forwarding) if cfg.forwarding else None
        self.site = Site(cfg.site_dir, page={"review": cfg.review}) if cfg.site_dir else None
        self.verifier = VerifierPool(cfg.options, cfg.verify_workers, cfg.limits.inflate, cfg.limits.worker_memory)
        # Requests processed at once (each keeps its parts' checks in the verifier's queue): the threads that
        # wait for a request's checks and commit it. A plain executor, not AnyIO's to_thread and a capacity
        # limiter: those cost the event loop ~25 us a request in cancel scopes and checkpoints.
        self.workers = ThreadPoolExecutor(max(2, cfg.verify_workers), thread_name_prefix="stow")
        self.recovered = self.store.recover(forward=cfg.forwarding is not None)
        if self.forwarder is not None:
            self.store.ledger.enqueue_unforwarded()

    # helpers
    def base_url(self, request: Request) -> str:
        root = self.cfg.public_url or f"{request.url.scheme}://{request.url.netloc}"
        return root.rstrip("/") + BASE

    async def principal(self, request: Request, scope: str) -> Principal | Response:
        who = self.tokens.authenticate(bearer(request.headers.get("authorization")))
        if who is None:
            return await self._refuse(request, 401, "a valid bearer token is required",
                                      **{"WWW-Authenticate": 'Bearer realm="py-deid"'})
        request.state.site = who.site
        if not who.may(scope):
            return await self._refuse(request, 403, f"this token may not {scope}")
        return who

    async def _refuse(self, request: Request, status: int, text: str, **headers) -> Response:
        return await refuse(request, self.cfg.limits, status, text, **headers)

    # STOW-RS
    async def store_instances(self, request: Request) -> Response:
        who = await self.principal(request, "store")
        if isinstance(who, Response):
            return who
        study = request.path_params.get("study")
        if study is not None and not valid_uid(study):
            return await self._refuse(request, 400, "invalid Study Instance UID in the URL")
        try:
            media, params = stow.parse_content_type(request.headers.get("content-type", ""))
        except ValueError:
            return await self._refuse(request, 415, 'expected multipart/related; type="application/dicom"')
        part_type = params.get("type", stow.DICOM).lower()
        if media != "multipart/related" or part_type != stow.DICOM:
            return await self._refuse(request, 415, 'expected multipart/related; type="application/dicom"')
        boundary = params.get("boundary")
        if not boundary or not stow.valid_boundary(boundary):
            return await self._refuse(request, 400, "multipart boundary missing or invalid")
        limits = self.cfg.limits
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limits.max_request_bytes):
            return await self._refuse(request, 413, "request body exceeds the limit")
        if self.store.free_bytes() < limits.min_free_bytes + int(length or 0):
            return await self._refuse(request, 503, "receiver is low on storage space", **{"Retry-After": "600"})
        marks = [("start", time.perf_counter())] if TIMELINE else None
        body = SpooledBody()
        try:
            try:
                # With worker processes, the parts' checks start while the body arrives, in groups (without
                # them a check would run here, on the event loop: then they all wait for process()).
                batcher = Batcher(self.verifier, study, self.store.syncer, body) if self.verifier.workers else None
                await spool_parts(request.receive, self.store, boundary, limits, body,
                                  on_part=batcher.add if batcher is not None else None)
                if batcher is not None:
                    batcher.finish()
            except BodyError as e:
                return await self._refuse(request, e.status, e.message)
            except MultipartError as e:
                status = 413 if e.kind in ("too-many-parts", "part-too-large") else 400
                return await self._refuse(request, status, str(e))
            except OSError as e:
                log.error("spooling an upload failed (%s)", os.strerror(e.errno) if e.errno else type(e).__name__)
                return await self._refuse(request, 503, "receiver cannot store the upload now",
                                          **{"Retry-After": "600"})
            if not body.parts:
                return PlainTextResponse("the multipart body has no parts", 400)
            if marks is not None:
                marks.append(("body", time.perf_counter()))
            outcome = await _in_thread(self.workers, self._process, body, who.site, study, self.base_url(request),
                                       marks)
        except WorkersDown:
            log.error("verification workers died twice under one request; answered 503")
            return closing(503, "verification is restarting; send again", **{"Retry-After": RETRY_AFTER_WORKERS})
        finally:
            body.discard()  # also what a refused body's parts started: their checks find no file
        if marks is not None:
            marks.append(("answer", time.perf_counter()))
            with open(TIMELINE, "a") as f:
                f.write(json.dumps({name: round((t - marks[0][1]) * 1000, 3) for name, t in marks}) + "\n")
        if outcome.stored and self.forwarder is not None:
            self.forwarder.wake()
        if outcome.failure_codes:
            log.info("refused %d instance(s): %s", outcome.failed,
                     ", ".join(sorted({f"0x{c:04X}" for c in outcome.failure_codes})))
        return dicom_json(outcome.body, outcome.status)

    def _process(self, body: SpooledBody, site: str, study: str | None, base_url: str, marks: list | None = None):
        return process(self.store, self.cfg, self.verifier, body.parts, site=site, expected_study=study,
                       base_url=base_url, marks=marks)

    # certificates
    async def post_certificate(self, request: Request) -> Response:
        who = await self.principal(request, "store")
        if isinstance(who, Response):
            return who
        study = request.path_params["study"]
        if not valid_uid(study):
            return await self._refuse(request, 400, "invalid Study Instance UID in the URL")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return await self._refuse(request, 415, "a certificate is application/json")
        limit = self.cfg.limits.max_certificate_bytes
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await self._refuse(request, 413, "certificate exceeds the size limit")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                return await self._refuse(request, 413, "certificate exceeds the size limit")
        try:
            doc = certs.parse(bytes(raw), study)
        except certs.CertificateError as e:
            return PlainTextResponse(str(e), 400)
        state, row = await anyio.to_thread.run_sync(certs.save, self.store, study, bytes(raw), doc, who.site,
                                                    self.signer)
        if state == certs.CONFLICT:
            return PlainTextResponse("another certificate with this batch id is stored for this study", 409)
        check = await anyio.to_thread.run_sync(certs.check, self.store, study, doc)
        url = f"{self.base_url(request)}/studies/{study}/certificates/{row['id']}"
        body = {"id": row["id"], "batch": row["batch"], "sha256": row["sha256"], "url": url,
                "signed": url + "/signed", "check": check.as_dict()}
        return JSONResponse(body, 201 if state == certs.CREATED else 200, headers={"Location": url})

    async def list_certificates(self, request: Request) -> Response:
        who = await self.principal(request, "read")
        if isinstance(who, Response):
            return who
        study = request.path_params["study"]
        if not valid_uid(study):
            return PlainTextResponse("invalid Study Instance UID", 400)
        rows = self.store.ledger.certificates(study, who.reads_site)
        base = f"{self.base_url(request)}/studies/{study}/certificates"
        return JSONResponse([{"id": r["id"], "batch": r["batch"], "site": r["site"], "sha256": r["sha256"],
                              "received": r["received"], "url": f"{base}/{r['id']}"} for r in rows])

    async def check_certificate(self, request: Request) -> Response:
        return await self.get_certificate(request, view="check")

    async def signed_certificate(self, request: Request) -> Response:
        return await self.get_certificate(request, view="signed")

    async def get_certificate(self, request: Request, view: str = "document") -> Response:
        who = await self.principal(request, "read")
        if isinstance(who, Response):
            return who
        study, cert_id = request.path_params["study"], request.path_params["cert"]
        ok = valid_uid(study) and certs.ID_RE.fullmatch(cert_id) is not None
        row = self.store.ledger.certificate(study, cert_id=cert_id) if ok else None
        if row is None or (who.reads_site is not None and row["site"] != who.reads_site):
            return PlainTextResponse("no such certificate", 404)
        if view == "check":
            raw = certs.load(self.store, row)
            result = await anyio.to_thread.run_sync(certs.check, self.store, study, json.loads(raw))
            return JSONResponse(result.as_dict())
        try:
            raw = certs.load(self.store, row, signed=view == "signed")
        except FileNotFoundError:  # stored before certificates were signed
            return PlainTextResponse("this certificate has no signed receipt", 404)
        return Response(raw, media_type="application/json")

    async def signing_key(self, request: Request) -> Response:
        return Response(self.signer.public_pem, media_type="application/x-pem-file",
                        headers={"Cache-Control": "no-cache", "X-Key-Id": self.signer.key_id})

    # benchmark baseline: the same stack (TLS, auth, body spooled to disk) without DICOM
    async def sink(self, request: Request) -> Response:
        who = await self.principal(request, "store")
        if isinstance(who, Response):
            return who
        fd, path = self.store.temp_file(".sink")
        try:
            try:
                n = await spool(request.receive, fd, self.cfg.limits, self.cfg.limits.max_request_bytes)
                os.fsync(fd)
            except BodyError as e:
                return await self._refuse(request, e.status, e.message)
            finally:
                os.close(fd)
        finally:
            path.unlink(missing_ok=True)
        return JSONResponse({"bytes": n})

    async def status(self, request: Request) -> Response:
        who = await self.principal(request, "read")
        if isinstance(who, Response):
            return who
        health = self.verifier.health()
        degraded = health["state"] != "ok"
        return JSONResponse({"state": health["state"], "verification": health,
                             "stored": self.store.ledger.stored_count(who.reads_site),
                             "forwarding": self.store.ledger.forward_counts() if self.forwarder else None,
                             "recovered": self.recovered},
                            503 if degraded else 200,
                            headers={"Retry-After": RETRY_AFTER_WORKERS, "Cache-Control": "no-store"} if degraded
                            else {"Cache-Control": "no-store"})

    async def not_found(self, request: Request) -> Response:
        return PlainTextResponse("not found", 404)

    def build(self):
        r = Handlers(self.store, self.principal, self.base_url)
        routes = [
            Route(f"{BASE}/studies", self.store_instances, methods=["POST"]),
            Route(f"{BASE}/studies", r.search_studies, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}", self.store_instances, methods=["POST"]),
            Route(f"{BASE}/studies/{{study}}", r.retrieve, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/certificates", self.post_certificate, methods=["POST"]),
            Route(f"{BASE}/studies/{{study}}/certificates", self.list_certificates, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/certificates/{{cert}}", self.get_certificate, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/certificates/{{cert}}/check", self.check_certificate, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/certificates/{{cert}}/signed", self.signed_certificate,
                  methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/series", r.search_series, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/instances", r.search_instances, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/series/{{series}}", r.retrieve, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/series/{{series}}/instances", r.search_instances, methods=["GET"]),
            Route(f"{BASE}/studies/{{study}}/series/{{series}}/instances/{{sop}}", r.retrieve,
                  methods=["GET"]),
            Route(f"{BASE}/{{rest:path}}", self.not_found),
            Route("/receiver/status", self.status, methods=["GET"]),
            Route(WELL_KNOWN, self.signing_key, methods=["GET", "HEAD"]),
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
                self.workers.shutdown(wait=True)
                self.verifier.close()
                self.store.close()

        app = Starlette(routes=routes, lifespan=lifespan)
        return AccessLogMiddleware(HeaderLimit(PortalCors(app, self.cfg.cors_origins), self.cfg.limits))
