"""Start-up from a saved runtime (web/src/runtime.js). In a browser that trusts the site, a worker keeps a memory
snapshot of its interpreter after its first start (core imported, before any key or file), and the next page's
worker restores it instead of booting Python. Checked here: the first page saves one and the next restores it;
what the restored worker de-identifies is what the native core makes of the same files with the same key,
attribute by attribute; a saved snapshot that does not restore is dropped and the worker starts the long way, and
de-identifies the same."""

from __future__ import annotations

import pytest

from . import native
from .conftest import TOKEN, Session

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KEY = b"start-key-" + bytes(range(22))
KEY2 = b"start-key-2-" + bytes(range(20))  # the second round: other UIDs, so nothing counts as already uploaded
# Header only, a codec (JPEG 2000, decoded by the wasm codecs that load after "ready"), implicit VR, an SR.
NAMES = ["CT_small.dcm", "JPEG2000.dcm", "MR_small_implicit.dcm", "test-SR.dcm"]
EL = "document.querySelector('deid-uploader')"
STARTUP = f"async () => {{ await {EL}.whenReady(); return {EL}.pool.startupTimes()[0]; }}"
SAVED = """async () => {
    for (let i = 0; i < 600; i += 1) {
        const keys = await (await caches.open('py_deid-runtime')).keys();
        if (keys.some((k) => k.url.endsWith('.snapshot'))) return keys.map((k) => k.url);
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return null;
}"""
# Every OCR engine of every worker can read (the second starts once the first can: web/src/ocr-pool.js).
IDLE_ENGINES = f"""async () => {{ const all = await {EL}.stats();
    return all.every((w) => w.engines.length === {EL}.pool.ocrEngines && w.engines.every((e) => e.ready)); }}"""
SPOIL = """async () => {
    const cache = await caches.open('py_deid-runtime');
    const key = (await cache.keys()).find((k) => k.url.endsWith('.snapshot'));
    const junk = new Uint8Array(1 << 20).fill(7);
    // Kept as this version keeps them, with a size: the module is made meanwhile (web/src/runtime.js), the read
    // then fails (not a snapshot without its pages of zeros: web/src/snapshot-pages.js).
    await cache.put(key, new Response(junk, { headers: { 'X-Snapshot-Bytes': String(junk.length + 4096),
        'X-Snapshot-Format': 'pages-4k-1' } }));
    return key.url;
}"""


def _new_page(s: Session, url: str) -> None:
    s.page.close()
    s.page = s.context.new_page()
    s.page.goto(url)


def _deidentify(s: Session, paths, receiver, key: bytes) -> None:
    expected = native.deidentify(paths, native.settings(), key)
    s.uploader(token=TOKEN)
    s.set_key(key)
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(p) for p in paths])
    s.wait_complete(timeout=300)
    rows = {r["name"]: r for r in s.rows()}
    stored = receiver.stored()
    for p in paths:
        want = expected[p]
        assert want.status == "done", (p.name, want.status)
        assert rows[p.name]["status"] == "uploaded", rows[p.name]
        assert native.differences(stored[want.sop_uid].read_bytes(), want.output) == [], p.name


def test_saved_runtime_restores_and_deidentifies_as_native(receiver, sw_browser, samples):
    paths = [samples.path(n) for n in NAMES]
    url = receiver.url + "/"
    s = Session(sw_browser, url)
    try:
        first = s.page.evaluate(STARTUP)
        assert first["snapshot"] == "saving", first
        saved = s.page.evaluate(SAVED)
        assert saved and len(saved) == 1, saved
        # the worker's own account (stats, which the benchmarks wait on before timing): saved, every engine ready
        s.page.wait_for_function(f"async () => (await {EL}.stats())[0].snapshot === 'saved'", timeout=60000)
        s.page.wait_for_function(IDLE_ENGINES, timeout=120000)

        _new_page(s, url)
        again = s.page.evaluate(STARTUP)
        assert again["snapshot"] == "restored", again
        assert s.page.evaluate(f"async () => (await {EL}.stats())[0].snapshot") == "restored"
        _deidentify(s, paths, receiver, KEY)

        # A snapshot that does not restore (here: not a snapshot at all) is dropped; the worker starts the long way
        # and saves a new one.
        s.page.evaluate(SPOIL)
        _new_page(s, url)
        spoiled = s.page.evaluate(STARTUP)
        assert spoiled["snapshot"] == "saving", spoiled
        _deidentify(s, paths, receiver, KEY2)
    finally:
        s.close()
