"""Forwarding stored instances to an upstream DICOMweb server by STOW-RS, from a queue in the ledger.

Every stored instance gets a queue row in the same transaction that stores it; a background thread sends
due rows in batches and marks each one done only when the upstream lists it in ReferencedSOPSequence.
Anything else is retried with exponential backoff whose schedule is itself in the ledger, so restarts of
either side lose nothing. An instance may be sent again after a crash between the upstream's answer and
our commit; STOW-RS stores by SOP Instance UID, so the upstream still holds it once.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time

import httpx

from .. import stow
from .config import Forwarding
from .storage import Store

log = logging.getLogger("py_deid.receiver.forward")
# Upstream failure reasons worth retrying (out of resources, processing failure); others are final.
TRANSIENT = (range(0xA700, 0xA800), range(0x0110, 0x0111))
UNREACHABLE = "upstream unreachable"


def _transient(reason: int) -> bool:
    return any(reason in r for r in TRANSIENT)


def _uids(doc: dict, tag: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for item in (doc.get(tag) or {}).get("Value") or []:
        uid = ((item.get("00081155") or {}).get("Value") or [None])[0]
        reason = ((item.get("00081197") or {}).get("Value") or [None])[0]
        if isinstance(uid, str):
            out[uid] = reason if isinstance(reason, int) else None
    return out


class Forwarder:
    def __init__(self, store: Store, cfg: Forwarding) -> None:
        self.store = store
        self.cfg = cfg
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        verify = ssl.create_default_context(cafile=cfg.verify) if isinstance(cfg.verify, str) else cfg.verify
        self._client = httpx.Client(verify=verify, timeout=cfg.timeout)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="py-deid-forward", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._client.close()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception:  # noqa: BLE001 - the thread must outlive any single failure
                log.exception("forwarding pass failed")
                sent = 0
            if sent:
                continue
            next_at = self.store.ledger.next_due()
            wait = 5.0 if next_at is None else min(5.0, max(0.05, next_at - time.time()))
            self._wake.wait(wait)
            self._wake.clear()

    def run_once(self) -> int:
        """Send one batch of due instances; returns how many were attempted."""
        due = self.store.ledger.due(time.time(), self.cfg.batch_instances)
        batch, size = [], 0
        for row in due:
            if batch and size + row["size"] > self.cfg.batch_bytes:
                break
            batch.append(row)
            size += row["size"]
        if not batch:
            return 0
        missing = [r for r in batch if not self.store.has_file(r)]
        if missing:
            self.store.ledger.forward_done([r["id"] for r in missing], state="rejected", error="file missing")
            log.error("%d queued instance(s) have no file in the store", len(missing))
            batch = [r for r in batch if r not in missing]
            if not batch:
                return len(missing)
        try:
            status, doc = self._send(batch)
        except (httpx.HTTPError, OSError) as e:
            self._retry(batch, f"{UNREACHABLE} ({type(e).__name__})")
            return len(batch)
        referenced = _uids(doc, "00081199") if doc else {}
        failed = _uids(doc, "00081198") if doc else {}
        done = [r["id"] for r in batch if r["sop_uid"] in referenced]
        final = [r for r in batch if r["sop_uid"] in failed and failed[r["sop_uid"]] is not None
                 and not _transient(failed[r["sop_uid"]])]
        retry = [r for r in batch if r["id"] not in done and r not in final]
        if done:
            self.store.ledger.forward_done(done)
            self.store.ledger.forward_resume(UNREACHABLE)  # back up: send what waited for it, in full batches
        for r in final:
            code = failed[r["sop_uid"]]
            self.store.ledger.forward_done([r["id"]], state="rejected", error=f"upstream refused (0x{code:04X})")
        if final:
            log.warning("upstream refused %d instance(s)", len(final))
        if retry:
            self._retry(retry, f"upstream answered {status} without storing")
        log.info("forwarded %d of %d instance(s) (upstream status %d)", len(done), len(batch), status)
        return len(batch)

    def _retry(self, rows: list[dict], error: str) -> None:
        now = time.time()
        items = []
        for r in rows:
            attempts = r["attempts"] + 1
            delay = min(self.cfg.backoff_max, self.cfg.backoff * 2 ** (attempts - 1))
            items.append((r["id"], attempts, now + delay * random.uniform(0.8, 1.0)))
        self.store.ledger.forward_retry(items, error)
        log.warning("forwarding of %d instance(s) deferred: %s", len(rows), error)

    def _send(self, batch: list[dict]) -> tuple[int, dict | None]:
        boundary = stow.new_boundary()
        files = [self.store.open_instance(r) for r in batch]
        try:
            sizes = [r["size"] for r in batch]

            def body():
                for part in stow.iter_encode(_chunks(files), boundary):
                    yield part

            headers = {"Content-Type": stow.content_type(boundary), "Accept": "application/dicom+json",
                       "Content-Length": str(stow.encoded_length(sizes, boundary))}
            if self.cfg.token:
                headers["Authorization"] = f"Bearer {self.cfg.token}"
            url = self.cfg.url.rstrip("/") + "/studies"
            response = self._client.post(url, content=body(), headers=headers)
        finally:
            for f in files:
                f.close()
        try:
            doc = json.loads(response.content) if response.content else None
        except ValueError:
            doc = None
        return response.status_code, doc if isinstance(doc, dict) else None


def _chunks(files):
    """Each file's bytes as one part (read whole: forwarding batches are bounded by batch_bytes)."""
    for f in files:
        yield f.read()
