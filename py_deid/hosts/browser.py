"""The browser host (Pyodide in a Web Worker): drives the core's pipeline and answers its requests from JS.

The worker hands in three JS objects: an async OCR function (tesseract.js), a codec object with synchronous
`decode(frame, transferSyntax, info)` for the compressed syntaxes it has loaded, and nothing for upload (the page
uploads; only `Result.output` ever reaches it). Across this boundary:

- a JS error becomes a Python exception here (OCR -> ServiceUnavailable, codec -> CodecError), so the core's
  fail-closed rules apply unchanged;
- a Python exception never crosses as such: `Session.process_now` and `resume` return a plain JS object whose
  `error` names it (`{name, message}`), with a message that never quotes a value from the file;
- everything returned is converted with `to_js` (no PyProxy is handed to JS, so none can leak); a processed
  instance's record crosses as a JSON string (`{record, output, local}`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import IS_BROWSER, no_downloads, no_examples

if IS_BROWSER:  # before pydicom is first imported: its test-data downloader and examples are not loaded (see both)
    sys.modules.setdefault("pydicom.data.download", no_downloads)  # type: ignore[arg-type]
    sys.modules.setdefault("pydicom.examples", no_examples)  # type: ignore[arg-type]
    # pydicom's version without importlib.metadata, which would load the email package and urllib with it (26
    # modules, ~0.1-0.2 s of a worker's first start in Pyodide), as the CLI does (see installed_version).
    from .installed_version import while_importing

    with while_importing("pydicom"):
        import pydicom  # noqa: F401

from .. import certificate  # noqa: E402
from .. import review as review_core  # noqa: E402
from ..instance import Deidentifier, InstanceResult, Steps, run_sync  # noqa: E402
from ..options import OptionError, Options, Settings, Trial  # noqa: E402
# The pixel step loads with the page's start-up snapshot, as before instance.py loaded it only on demand (the
# page checks pixels by default: its first image should not pay for the import).
from ..pixels import step as _pixel_step  # noqa: E402, F401
from .services import OcrBatch, OcrRequest, OcrStart, ServiceUnavailable, Word  # noqa: E402

OcrFunction = Callable[[OcrRequest], Awaitable[list[Word]]]


class CodecError(ValueError):
    """A compressed frame the wasm decoder rejected (the message names the codec, never a value)."""


class ConfigError(ValueError):
    """Page configuration the core cannot run with."""


def settings_from(config: dict) -> Settings:
    """Settings from the page's configuration: {options: [names], trial: {field: text}, pixels, text}."""
    try:
        trial_fields = {k: str(v) for k, v in (config.get("trial") or {}).items() if v not in (None, "")}
        unknown = set(trial_fields) - set(Trial.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown trial identifier(s): {', '.join(sorted(unknown))}")
        return Settings(options=Options.from_names(config.get("options") or []), trial=Trial(**trial_fields),
                        pixels=config.get("pixels") or "auto", text=config.get("text") or "strict")
    except OptionError as e:
        raise ConfigError(str(e)) from None


class Spent:
    """Where a worker's time on files went (seconds): in Python (the core, between OCR answers) and waiting for
    OCR; `requests` OCR requests, `batches` waits. Numbers only, for the benchmark (`stats`)."""

    def __init__(self) -> None:
        self.python = 0.0
        self.ocr = 0.0
        self.requests = 0
        self.batches = 0

    def as_dict(self) -> dict:
        return {"python_s": round(self.python, 4), "ocr_s": round(self.ocr, 4), "requests": self.requests,
                "batches": self.batches}


async def run_async(steps: Steps, ocr: OcrFunction | None, request: OcrRequest | OcrBatch | OcrStart | None = None,
                    spent: Spent | None = None) -> InstanceResult:
    """Drive the pipeline, awaiting OCR for each OcrRequest (the browser twin of instance.run_sync). `request`:
    the pipeline's first request when it was already started (Session.process_now); `spent`: adds up the time.
    An OcrStart's requests go to the OCR engines at once (their workers read while the core prepares the rest of
    the batch); the batch that follows awaits those same readings."""
    spent = spent or Spent()
    clock = time.perf_counter
    started: dict[int, tuple[OcrRequest, asyncio.Future]] = {}  # id -> (the request, kept alive; its reading)
    t = clock()
    try:
        if request is None:
            request = next(steps)
        while True:
            if isinstance(request, OcrStart):
                if ocr is not None:
                    for r in request.requests:
                        started[id(r)] = (r, _reading(ocr(r)))
                    # one turn of the event loop: the bridge hands the images to the OCR workers (posted
                    # messages) before the core takes the thread again
                    await asyncio.sleep(0)
                request = steps.send(None)
                continue
            if ocr is None:
                request = steps.throw(ServiceUnavailable("OCR is needed to clean these pixels and is not loaded"))
                continue
            now = clock()
            spent.python += now - t
            try:
                if isinstance(request, OcrBatch):  # the bridge spreads them over its OCR engines
                    spent.requests += len(request.requests)
                    words = list(await asyncio.gather(*(_started(started, r) or ocr(r) for r in request.requests)))
                else:
                    spent.requests += 1
                    words = await ocr(request)
            except ServiceUnavailable as e:
                request = steps.throw(e)
                continue
            finally:
                t = clock()
                spent.ocr += t - now
                spent.batches += 1
            request = steps.send(words)
    except StopIteration as stop:
        spent.python += clock() - t
        return stop.value


def _reading(words: Awaitable[list[Word]]) -> asyncio.Future:
    future = asyncio.ensure_future(words)
    # a reading whose batch never comes (the core failed in between): its failure is not an unhandled error
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


def _started(started: dict, request: OcrRequest) -> asyncio.Future | None:
    """The reading OcrStart began for this very request object, if any (taken: each is awaited once)."""
    entry = started.pop(id(request), None)
    return entry[1] if entry is not None and entry[0] is request else None


class JsOcr:
    """OCR through the worker's tesseract.js bridge: `recognize(pgmBytes, psm)` -> [{text, left, ...}]."""

    def __init__(self, recognize: Any) -> None:
        self._recognize = recognize

    async def __call__(self, request: OcrRequest) -> list[Word]:
        from pyodide.ffi import JsException, to_js

        try:
            reply = await self._recognize(to_js(request.image.pgm()), request.psm, request.frame, request.frames)
        except JsException as e:
            # The bridge's messages are its own (timeout, worker failed); they never carry recognized text.
            raise ServiceUnavailable(f"OCR failed in the browser: {_js_name(e)}") from None
        words = reply.to_py()
        return [Word(str(w["text"]), int(w["left"]), int(w["top"]), int(w["width"]), int(w["height"]),
                     float(w["confidence"])) for w in words]


class JsCodecs:
    """CodecService backed by the worker's wasm decoders (synchronous once loaded)."""

    def __init__(self, codecs: Any) -> None:
        self._js = codecs
        self._syntaxes: frozenset[str] | None = None

    def can_decode(self, transfer_syntax: str) -> bool:
        # Read at first use: the worker loads its decoders after it reported ready, and processes no file before
        # they are loaded (web/src/worker.js).
        if self._syntaxes is None:
            self._syntaxes = frozenset(str(s) for s in self._js.syntaxes.to_py())
        return transfer_syntax in self._syntaxes

    def decode(self, frame: bytes, transfer_syntax: str, info: dict) -> bytes:
        from js import Object
        from pyodide.ffi import JsException, to_js

        if not self.can_decode(transfer_syntax):
            raise CodecError(f"no browser decoder for transfer syntax {transfer_syntax}")
        try:
            out = self._js.decode(to_js(frame), transfer_syntax, to_js(info, dict_converter=Object.fromEntries))
        except JsException as e:
            raise CodecError(f"the {transfer_syntax} decoder rejected a frame ({_js_name(e)})") from None
        return out.to_bytes()

    def can_encode(self, transfer_syntax: str) -> bool:
        return False

    def encode(self, pixels: bytes, transfer_syntax: str, info: dict) -> bytes:
        raise CodecError("the browser host does not encode compressed pixel data")


def may_hold(review: str, settings: Settings, plan: Any = None) -> bool:
    """Whether the review policy can hold an instance run with these settings (py_deid.review.held), so that its
    header's changes must be recorded for the review screen. "pixels" holds only an image whose pixels were
    cleaned or where text was found, which never happens with pixels="off" and no reviewer's plan (the pixel
    step does not run; pixels.off): such a run (tags-only) is not recorded. Recording cost 3.2x the header's
    time natively (5.8 against 1.8 ms a CT file)."""
    if review not in review_core.POLICIES_THAT_HOLD:
        return False
    return review == "always" or settings.pixels != "off" or plan is not None


def _internal(e: Exception) -> Any:
    return _js({"error": {"name": "InternalError", "message": f"internal error ({type(e).__name__})"}})


def _js_name(e: Exception) -> str:
    # JsException's str() is "Name: message"; keep the name only, messages of third-party code are not ours to vet.
    return str(e).split(":", 1)[0].strip()[:60] or "Error"


def result_record(result: InstanceResult, digest: bool = True) -> dict:
    """The PHI-free summary the page shows and uploads with (output bytes and their sha256 kept apart). `digest`
    False: the sha256 is left to the host (null here), which digests the output itself (Session)."""
    return {
        "status": result.status,
        "problem": {"code": result.problem.code, "message": result.problem.message} if result.problem else None,
        "sopClassUid": result.sop_class_uid, "modality": result.modality, "studyUid": result.study_uid,
        "seriesUid": result.series_uid, "sopUid": result.sop_uid, "transferSyntax": result.transfer_syntax,
        "actions": dict(result.actions), "warnings": list(result.warnings), "pixels": result.pixels,
        "sha256": hashlib.sha256(result.output).hexdigest() if result.output and digest else None,
        "size": len(result.output) if result.output else 0,
    }


class Session:
    """One worker's de-identifier: settings and key fixed until `configure` is called again. `host_digests`: the
    page digests each output itself (SubtleCrypto, web/src/pool.js) and the record's sha256 is left null here:
    SHA-256 in wasm took ~0.34 ms for a 39 KB CT output (~0.05 ms natively), a tenth of the core's time for such
    a file in the page once its code is optimized."""

    def __init__(self, recognize: Any = None, codecs: Any = None, host_digests: bool = False) -> None:
        self._ocr = JsOcr(recognize) if recognize is not None else None
        self._codecs = JsCodecs(codecs) if codecs is not None else None
        self._deid: Deidentifier | None = None
        self._key = b""
        self._recording: Deidentifier | None = None
        self._suspended: tuple[Steps, str, OcrRequest | OcrBatch | OcrStart] | None = None  # see process_now / resume
        self._host_digests = bool(host_digests)
        self.spent = Spent()

    def configure(self, config_json: str, key: Any) -> Any:
        """Returns a JS object {ok} or {error}. `key` is a Uint8Array (the sponsor's key or a session key)."""
        try:
            config = json.loads(config_json)
            key_bytes = key.to_bytes() if hasattr(key, "to_bytes") else bytes(key)
            if len(key_bytes) < 16:
                raise ConfigError("the pseudonym key must be at least 16 bytes")
            # batches: the worker's OCR bridge reads them on as many engines as it has
            self._deid = Deidentifier(settings_from(config), key_bytes, codecs=self._codecs, ocr_batch=True,
                                      ocr_start=True)
            self._key = key_bytes
            self._recording = None
            return _js({"ok": True, "options": list(self._deid.settings.options.names)})
        except (ConfigError, ValueError) as e:
            return _js({"error": {"name": "ConfigError", "message": str(e)}})

    def process_now(self, data: Any, review: str = "", edits_json: str | None = None) -> Any:
        """process() without the event loop, for the instances that need no OCR (most: a header-only pass
        answered through the loop waits for a timer turn, which cost a third of the time of a small file).
        Returns what process() returns, or None when the instance asks for OCR: then await resume()."""
        started = self._start(data, review, edits_json)
        if not isinstance(started, tuple):
            return started
        steps, review = started
        t0 = time.perf_counter()
        try:
            request = next(steps)
        except StopIteration as stop:
            return self._finish(stop.value, review)
        except Exception as e:  # noqa: BLE001 - the core catches per-file errors; this is the last guard
            return _internal(e)
        finally:
            self.spent.python += time.perf_counter() - t0
        self._suspended = (steps, review, request)
        return None

    async def resume(self) -> Any:
        """Carry on the instance process_now() left at its first OCR request, awaiting OCR from there."""
        if self._suspended is None:
            return _js({"error": {"name": "InternalError", "message": "nothing to resume"}})
        (steps, review, request), self._suspended = self._suspended, None
        try:
            result = await run_async(steps, self._ocr, request, self.spent)
        except Exception as e:  # noqa: BLE001 - the core catches per-file errors; this is the last guard
            return _internal(e)
        return self._finish(result, review)

    def _start(self, data: Any, review: str, edits_json: str | None) -> tuple[Steps, str] | Any:
        """The pipeline's steps for these bytes, or the JS error object that ends the call."""
        if self._deid is None:
            return _js({"error": {"name": "ConfigError", "message": "process called before configure"}})
        try:
            edits = review_core.Edits.from_json(json.loads(edits_json)) if edits_json else None
        except (review_core.EditError, ValueError) as e:
            return _js({"error": {"name": "EditError", "message": str(e)[:200]}})
        raw = data.to_bytes()
        deid = self._deid
        if may_hold(review, deid.settings, edits):  # the same settings and key, keeping the header's changes
            # for the review screen (recording costs: only when the policy may hold the instance)
            if self._recording is None:
                self._recording = Deidentifier(deid.settings, self._key, codecs=self._codecs, record=True,
                                               ocr_batch=True, ocr_start=True)
            deid = self._recording
        try:
            return (review_core.rerun(deid, raw, edits) if edits is not None else deid.process(raw)), review
        except Exception as e:  # noqa: BLE001
            return _internal(e)

    def _finish(self, result: InstanceResult, review: str) -> Any:
        if review_core.held(review, result) and "changes" not in result.local:
            # run unrecorded (may_hold said the policy could not hold it) and held all the same: fail closed, the
            # file neither uploaded nor shown for review without the header's changes
            return _js({"error": {"name": "InternalError", "message": "held without the review's record"}})
        try:
            local = review_core.local_view(result) if review_core.held(review, result) else None
        except Exception as e:  # noqa: BLE001
            return _internal(e)
        # The record crosses as one JSON string: to_js of the nested dict (its actions: one entry per attribute
        # changed) cost a fifth of a small file's time in the worker, JSON.parse a hundredth. The output crosses
        # as one Uint8Array copy.
        reply = _js({"record": json.dumps(result_record(result, digest=not self._host_digests))})
        if result.output is not None:
            from pyodide.ffi import to_js

            reply.output = to_js(result.output)
        if local is not None:
            reply.local = _js(local)
        return reply

    def warm_up(self) -> float:
        """One made-up instance through the header path (its own settings and throwaway key; the session's are
        untouched), once the worker is ready and before the first file: the first instance otherwise pays for the
        imports and the compilation of the runtime's code on its path (several files' time in the page). Returns the
        seconds it took; never raises (a failure only leaves the first file to pay)."""
        t0 = time.perf_counter()
        try:
            deid = Deidentifier(Settings(pixels="off"), os.urandom(32))
            run_sync(deid.process(_made_up_instance()), None)
        except Exception:  # noqa: BLE001, S110 - a warm-up that fails changes nothing for the files
            pass
        return time.perf_counter() - t0

    def timings(self) -> Any:
        """Where this worker's time on files went so far (Spent): {python_s, ocr_s, requests, batches}."""
        return _js(self.spent.as_dict())

    def certificate(self, request_json: str) -> Any:
        """The batch's certificate from the PHI-free records of its uploaded instances: {json, html, parts:
        [{study, json}]} (one part per study, for the receiver), or {error}. Request: {records, excluded,
        failed, skipped, batch, signature: {reviewer, role, attestation, signedAt} | null, reviewRequired}."""
        if self._deid is None:
            return _js({"error": {"name": "ConfigError", "message": "certificate asked before configure"}})
        try:
            req = json.loads(request_json)
            sig = req.get("signature")
            signature = certificate.Signature(str(sig.get("reviewer") or ""), str(sig.get("role") or ""),
                                              str(sig.get("attestation") or ""), str(sig.get("signedAt") or "")
                                              ) if sig else None
            cert = certificate.build(self._deid.settings, [certificate.entry_from_record(r) for r in req["records"]],
                                     signature=signature, excluded=req.get("excluded") or [],
                                     failed=int(req.get("failed") or 0), skipped=int(req.get("skipped") or 0),
                                     batch=req.get("batch"), review_required=bool(req.get("reviewRequired", True)))
        except (certificate.CertificateError, KeyError, TypeError, ValueError) as e:
            return _js({"error": {"name": "CertificateError", "message": str(e)[:200]}})
        parts = [{"study": s, "json": certificate.dumps(certificate.for_study(cert, s))}
                 for s in certificate.studies(cert)]
        return _js({"json": certificate.dumps(cert), "html": certificate.render_html(cert), "parts": parts,
                    "batch": cert["batch"]})


def _made_up_instance() -> bytes:
    """A small CT instance whose every value is invented here (names, ids, dates, a sequence, a private block,
    8x8 pixels): no file's data, for Session.warm_up."""
    from io import BytesIO

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "CT", "Warm^Up", "WARMUP"
    ds.PatientBirthDate, ds.StudyDate, ds.StudyTime = "19700101", "20000101", "120000"
    ds.AccessionNumber, ds.StudyID, ds.InstanceNumber = "0", "0", 1
    ds.InstitutionName, ds.StudyDescription, ds.ReferringPhysicianName = "Made Up", "Warm-up", "Made^Up"
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "0", "99WARM", "warm-up"
    ds.ProcedureCodeSequence = [item]
    block = ds.private_block(0x0009, "WARM UP", create=True)
    block.add_new(0x01, "LO", "made up")
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = bytes(128)
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _js(value: dict) -> Any:
    from js import Object
    from pyodide.ffi import to_js

    return to_js(value, dict_converter=Object.fromEntries)
