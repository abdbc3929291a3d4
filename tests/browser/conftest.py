"""Browser end-to-end fixtures: the built site, a receiver on one local origin, Debian's Chromium via Playwright.

Chromium resolves no host but 127.0.0.1 (--host-resolver-rules), and every request the page or its workers make
is recorded so tests can assert where it went and what it carried.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import processes

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
TOKEN = "browser-test-token-0123456789"
ARTIFACTS = ROOT / "test-artifacts"


def _build(out: Path, *extra: str) -> Path:
    sys.path.insert(0, str(ROOT))
    try:
        import build_wasm
    finally:
        sys.path.pop(0)
    assert build_wasm.main(["--out", str(out), *extra]) == 0
    return out


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Path:
    """The production build (no test hooks)."""
    return _build(tmp_path_factory.mktemp("dist") / "site")


@pytest.fixture(scope="session")
def dist_hooks(tmp_path_factory) -> Path:
    """A build with the test-only crash hooks (never deployed)."""
    return _build(tmp_path_factory.mktemp("dist-hooks") / "site", "--test-hooks")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stored_instances(store: Path) -> dict[str, Path]:
    """SOP Instance UID -> a file of its bytes, read from the receiver's ledger (sqlite3, not the store's code):
    its own file under instances/, or its range of a pack copied to `<store>-packed/<uid>.dcm`."""
    import sqlite3

    if not (store / "ledger.sqlite").is_file():
        return {}
    db = sqlite3.connect(f"file:{store / 'ledger.sqlite'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in db.execute("SELECT * FROM instances WHERE state = 'stored'")]
    finally:
        db.close()
    out = {}
    for r in rows:
        if r.get("pack"):
            with open(store / "packs" / r["pack"], "rb") as f:
                f.seek(r["pack_offset"])
                data = f.read(r["size"])
            path = store.parent / f"{store.name}-packed" / f"{r['sop_uid']}.dcm"
            path.parent.mkdir(exist_ok=True)
            if not path.is_file() or path.read_bytes() != data:
                path.write_bytes(data)
        else:
            path = store / "instances" / r["study_uid"] / r["series_uid"] / f"{r['sop_uid']}.dcm"
        out[r["sop_uid"]] = path
    return out


def real_receiver_available() -> bool:
    return importlib.util.find_spec("py_deid.receiver.cli") is not None and not os.environ.get("PY_DEID_TEST_STUB_RECEIVER")


@dataclass
class Receiver:
    """`py-deid serve` (HTTPS, the real receiver) on a free loopback port; tests/browser/site_server.py (HTTP)
    where the receiver is not installed or PY_DEID_TEST_STUB_RECEIVER is set."""

    site: Path
    store: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    real: bool = field(default_factory=real_receiver_available)
    options: tuple[str, ...] = ()  # the profile options the real receiver verifies against
    # The page's review policy (--review); these tests upload directly unless they ask. None: serve's default.
    review: str | None = "never"

    @property
    def url(self) -> str:
        return f"{'https' if self.real else 'http'}://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.real:
            return [sys.executable, "-m", "py_deid", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                    "--store", str(self.store), "--token", TOKEN, "--site", str(self.site), "--no-build",
                    "--verify-workers", "1", "--log-level", "warning",
                    *[arg for o in self.options for arg in ("--option", o)],
                    *(("--review", self.review) if self.review else ())]
        return [sys.executable, str(Path(__file__).with_name("site_server.py")), "--site", str(self.site),
                "--store", str(self.store), "--port", str(self.port), "--token", TOKEN,
                *(("--review", self.review) if self.review else ())]

    def start(self) -> None:
        self.log = self.store.parent / f"receiver-{self.port}.log"
        self.store.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PY_DEID_")}
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))
        context = ssl._create_unverified_context()  # the receiver's own generated certificate

        def answers() -> bool:
            try:
                urllib.request.urlopen(self.url + "/manifest.json", timeout=1, context=context).read()
                return True
            except OSError:
                return False

        processes.wait_until_up(self.proc, answers, "receiver", self.log.read_text)

    def stop(self) -> None:
        processes.stop(self.proc)

    def stored(self) -> dict[str, Path]:
        """SOP Instance UID -> stored file (for the real receiver: what its ledger's stored rows point at, an
        instance held in a pack copied out to a file of its own beside the store)."""
        if not self.real:
            return {p.stem: p for p in self.store.rglob("*.dcm")} if self.store.is_dir() else {}
        return stored_instances(self.store)

    def received_log(self) -> list[dict] | None:
        """Every instance the stub was sent (None for the real receiver, whose ledger keeps one row per SOP)."""
        if self.real:
            return None
        log = self.store / "received.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


@pytest.fixture
def receiver(dist, tmp_path):
    r = Receiver(dist, tmp_path / "store")
    r.start()
    yield r
    r.stop()


@pytest.fixture
def receiver_hooks(dist_hooks, tmp_path):
    r = Receiver(dist_hooks, tmp_path / "store")
    r.start()
    yield r
    r.stop()


_SHARED_BROWSER: list = []  # other test folders import this fixture: one Playwright per session, not one each


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    if _SHARED_BROWSER:  # started by another folder's copy of this fixture (a second sync_playwright would fail)
        yield _SHARED_BROWSER[0]
        return
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _SHARED_BROWSER.append(b)
        yield b
        _SHARED_BROWSER.clear()
        b.close()


@pytest.fixture(scope="session")
def sw_browser(browser):
    """A second Chromium that accepts the receiver's self-signed certificate for service workers too (Chromium
    registers none over a certificate it does not trust, whatever the context says): for the offline tests.
    The other tests run as a site that has not trusted the certificate, without the service worker."""
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"])
    yield b
    b.close()


@dataclass
class Recorded:
    url: str
    method: str
    headers: dict
    body: bytes


class Session:
    """A fresh browser context on the page, recording every request (page, workers, nested workers)."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(ignore_https_errors=True)
        self.requests: list[Recorded] = []
        self.console: list[str] = []
        self.context.on("request", self._record)
        self.failed: list[str] = []
        self.context.on("requestfailed", lambda r: self.failed.append(f"{r.method} {r.url}"))
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.console.append(m.text))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.goto(url)

    def _record(self, request) -> None:
        try:
            body = request.post_data_buffer or b""
        except Exception:  # noqa: BLE001 - a body Playwright cannot give is recorded as empty
            body = b""
        self.requests.append(Recorded(request.url, request.method, dict(request.headers), body))

    def uploader(self, **attrs) -> None:
        """Set attributes/properties of the page's <deid-uploader>."""
        self.page.evaluate("""(attrs) => {
            const el = document.querySelector('deid-uploader');
            for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
        }""", attrs)

    def set_key(self, key: bytes) -> None:
        self.page.evaluate("(hex) => { document.querySelector('deid-uploader').pseudonymKey = hex; }", key.hex())

    def listen(self) -> None:
        self.page.evaluate("""() => {
            window.__events = [];
            for (const t of ['deid-progress', 'deid-file', 'deid-review-required', 'deid-uploaded', 'deid-error', 'deid-complete']) {
                document.addEventListener(t, (e) => window.__events.push({type: t, detail: JSON.parse(JSON.stringify(e.detail))}));
            }
        }""")

    def events(self, kind: str | None = None) -> list[dict]:
        ev = self.page.evaluate("() => window.__events")
        return [e for e in ev if kind is None or e["type"] == kind]

    def wait_complete(self, count: int = 1, timeout: float = 300) -> dict:
        # Polled every 100 ms, not every frame: a check per animation frame would load the page it measures.
        self.page.wait_for_function(f"() => window.__events.filter(e => e.type === 'deid-complete').length >= {count}",
                                    timeout=timeout * 1000, polling=100)
        return self.events("deid-complete")[-1]["detail"]

    def rows(self) -> list[dict]:
        return self.page.evaluate("""() => Array.from(
            document.querySelector('deid-uploader').shadowRoot.querySelectorAll('tbody tr'),
            (tr) => ({name: tr.children[1].textContent, status: tr.dataset.status, detail: tr.children[3].textContent}))""")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session_factory(browser):
    made = []

    def make(url: str) -> Session:
        s = Session(browser, url)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
