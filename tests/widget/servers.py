"""The three origins of an embedding: the sponsor's portal (web/examples, served here), the widget's asset host and
the DICOMweb receiver (both the real `py-deid serve`, on their own ports, with CORS for the portal's origin only)."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests import processes
from tests.browser.conftest import ROOT, TOKEN, free_port, stored_instances

EXAMPLES = ROOT / "web" / "examples"
EMBEDDING = ROOT / "docs" / "embedding.md"
# The example's made-up hosts, replaced by the test origins when served.
ASSET_BASE = "https://imaging.sponsor.example/deid/"
ASSET_HOST = "https://imaging.sponsor.example"
ENDPOINT_HOST = "https://dicomweb.sponsor.example"
INTEGRITY = "sha384-FROM-EMBED-JSON"
PSEUDONYM_KEY = "5eed" * 16
WRONG_TOKEN = "expired-portal-token"
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript", ".json": "application/json"}


def documented_csp() -> str:
    """The portal CSP exactly as docs/embedding.md documents it (the block after the portal-csp marker)."""
    text = EMBEDDING.read_text(encoding="utf-8")
    m = re.search(r"<!-- portal-csp -->\s*```[a-z]*\n(.*?)\n```", text, re.S)
    assert m, "docs/embedding.md lacks the <!-- portal-csp --> block"
    return " ".join(m.group(1).split())


@dataclass
class Serve:
    """`py-deid serve` on a free loopback port (HTTPS with its own certificate)."""

    store: Path
    args: tuple[str, ...]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> "Serve":
        self.store.mkdir(parents=True, exist_ok=True)
        log = open(self.store.parent / f"serve-{self.port}.log", "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PY_DEID_")}
        cmd = [sys.executable, "-m", "py_deid", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--store", str(self.store), "--token", TOKEN, "--no-build", "--verify-workers", "1",
               "--log-level", "warning", *self.args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        context = ssl._create_unverified_context()

        def answers() -> bool:
            try:
                urllib.request.urlopen(self.url + "/dicomweb/studies", timeout=1, context=context)
                return True
            except urllib.error.HTTPError:
                return True  # any HTTP answer (401, 405) means it is up
            except OSError:
                return False

        processes.wait_until_up(self.proc, answers, "py-deid serve", lambda: Path(log.name).read_text())
        return self

    def stop(self) -> None:
        processes.stop(self.proc)

    def stored(self) -> dict[str, Path]:
        """SOP Instance UID -> a file of its bytes, through the ledger's stored rows (small instances are in packs)."""
        return stored_instances(self.store)


class Portal:
    """The sponsor portal's origin: web/examples with the made-up hosts replaced, the documented CSP as a header,
    and the portal's two API calls (a short-lived upload token, the trial's pseudonym key)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.asset_url = ""      # set once the asset host runs
        self.endpoint_url = ""   # set per test (the receiver)
        self.integrity = ""
        self.token_requests: list[str] = []
        self.wrong_tokens = 0    # how many token requests get a token the receiver refuses (401)
        self.extra_csp = ""
        self.csp_edit = None     # a test's change to the documented policy (a portal that got it wrong)
        self.delays: dict[str, float] = {}  # seconds before a file of the portal is served (a slow portal script)
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                if url.path == "/portal-api/upload-token":
                    portal.token_requests.append(query.get("reason", [""])[0])
                    wrong = portal.wrong_tokens > 0
                    portal.wrong_tokens -= 1 if wrong else 0
                    return self.reply(json.dumps({"token": WRONG_TOKEN if wrong else TOKEN}).encode(), ".json")
                if url.path == "/portal-api/pseudonym-key":
                    return self.reply(json.dumps({"key": PSEUDONYM_KEY}).encode(), ".json")
                if url.path == "/bare.html":
                    return self.reply(portal.bare().encode(), ".html", csp=True)
                name = url.path.lstrip("/") or "portal.html"
                path = (EXAMPLES / name).resolve()
                if path.parent != EXAMPLES.resolve() or not path.is_file():
                    self.send_error(404)
                    return None
                body = portal.rewrite(path.read_text(encoding="utf-8"))
                time.sleep(portal.delays.get(name, 0))
                if "nowidget" in query:
                    body = re.sub(r'<script type="module" src="[^"]*embed\.js"[^>]*></script>', "", body)
                # The documented portal policy as a header (iframe.html has its own, in its meta tag).
                return self.reply(body.encode(), path.suffix, csp=name == "portal.html")

            def reply(self, body: bytes, suffix: str, csp: bool = False):
                self.send_response(200)
                self.send_header("Content-Type", TYPES.get(suffix, "application/octet-stream"))
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                if csp:
                    self.send_header("Content-Security-Policy", portal.csp())
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rewrite(self, text: str) -> str:
        return (text.replace(ASSET_BASE, self.asset_url + "/").replace(ASSET_HOST, self.asset_url)
                .replace(ENDPOINT_HOST, self.endpoint_url).replace(INTEGRITY, self.integrity))

    def csp(self) -> str:
        """The documented policy with the test origins (plus the iframe example's frame-src)."""
        policy = documented_csp().replace("ASSET_ORIGIN", self.asset_url).replace("ENDPOINT_ORIGIN", self.endpoint_url)
        if self.csp_edit:
            policy = self.csp_edit(policy)
        return policy + (f"; {self.extra_csp}" if self.extra_csp else "")

    def bare(self) -> str:
        """The widget alone on a page without any portal style or script: the reference for the leak checks."""
        return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bare</title>'
                f'<script type="module" src="{self.asset_url}/app/embed.js"></script></head>'
                '<body><deid-uploader id="uploader"></deid-uploader></body></html>')

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
