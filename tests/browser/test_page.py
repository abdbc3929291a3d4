"""The page itself: CSP in force, drop of files, keyboard access, the review seam, configuration errors."""

from __future__ import annotations

import base64

import pytest

from . import corpus
from .conftest import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DROP = """async ([name, b64]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, {type: 'application/dicom'}));
    dt.items.add(new File(['hello'], 'readme.txt', {type: 'text/plain'}));
    const zone = document.querySelector('deid-uploader').shadowRoot.querySelector('[part=dropzone]');
    zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
    zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
}"""


def test_csp_is_served_and_nothing_is_refused(receiver, session_factory):
    s = session_factory(receiver.url + "/")
    response = s.page.request.get(receiver.url + "/")
    csp = response.headers["content-security-policy"]
    assert "connect-src 'self'" in csp and "script-src 'self' 'wasm-unsafe-eval'" in csp and "unsafe-inline" not in csp
    s.page.evaluate("() => document.querySelector('deid-uploader').whenReady()")
    s.page.wait_for_function("""() => document.querySelector('deid-uploader').shadowRoot
        .querySelector('[data-stage=ocr]').dataset.state === 'done'""", timeout=120000)
    assert not [line for line in s.console if "Refused" in line or "Content Security Policy" in line], s.console
    # The page loads the element as one module (build_wasm.py page(): the import map sends app/main.js's import
    # to app/embed.js, pinned like the rest), not its ~28 modules one level after another.
    loaded = {r.url.split("/", 3)[3] for r in s.requests if r.url.startswith(receiver.url + "/app/")}
    assert {"app/main.js", "app/embed.js"} <= loaded, sorted(loaded)
    assert not loaded & {"app/deid-uploader.js", "app/batch.js", "app/review/screen.js"}, sorted(loaded)


def test_drop_review_and_sign_off(receiver, session_factory, samples, tmp_path):
    planted = corpus.plant(samples.path("CT_small.dcm"), tmp_path / corpus.PLANTED_FILE_NAME)
    s = session_factory(receiver.url + "/")
    s.uploader(token=TOKEN, review="always")
    s.listen()
    notice = s.page.locator("deid-uploader >> [part=key-notice]")
    s.page.evaluate(DROP, [planted.name, base64.b64encode(planted.read_bytes()).decode()])
    s.page.wait_for_function("() => window.__events.some(e => e.type === 'deid-review-required')", timeout=120000)
    assert s.events("deid-review-required")[0]["detail"] == {"count": 1}
    assert not notice.is_visible()  # no key configured: the browser's site key is used, and explained
    assert s.page.locator("deid-uploader >> [part=site-key]").is_visible()
    assert receiver.stored() == {} and not [r for r in s.requests if r.method == "POST"]
    rows = {r["name"]: r for r in s.rows()}
    assert rows[planted.name]["status"] == "awaiting-review" and rows["readme.txt"]["status"] == "skipped"
    s.page.fill("deid-uploader >> #reviewer", "Dr. Reviewer")
    s.page.fill("deid-uploader >> #role", "Radiologist")
    s.page.click("deid-uploader >> [part=review] button")
    summary = s.wait_complete()
    assert summary["counts"]["uploaded"] == 1 and summary["signoff"]["role"] == "Radiologist"
    assert len(receiver.stored()) == 1


def test_keyboard_reaches_both_pickers(receiver, session_factory):
    """Tab reaches the real file inputs (the browser opens them with Enter/Space; headless Chromium does not
    report keyboard-opened choosers to Playwright, so the mouse path checks the chooser itself)."""
    s = session_factory(receiver.url + "/")
    focused = []
    for _ in range(12):
        s.page.keyboard.press("Tab")
        focused.append(s.page.evaluate("() => document.querySelector('deid-uploader').shadowRoot.activeElement?.id"))
    assert "files" in focused and "folder" in focused and focused.index("files") < focused.index("folder")
    assert s.page.get_by_label("Choose files…").count() == 1  # accessible names
    assert s.page.get_by_label("Choose a folder…").count() == 1
    assert s.page.locator("deid-uploader >> #folder").get_attribute("webkitdirectory") is not None
    with s.page.expect_file_chooser() as chooser:
        s.page.click("deid-uploader >> text=Choose files…")
    assert chooser.value.is_multiple()


def test_wrong_configuration_is_reported(receiver, session_factory, samples, tmp_path):
    s = session_factory(receiver.url + "/")
    s.uploader(token=TOKEN, options="retain_everything")
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(samples.path("CT_small.dcm"))])
    s.page.wait_for_function("() => window.__events.some(e => e.type === 'deid-error')", timeout=120000)
    error = s.events("deid-error")[0]["detail"]
    assert error["name"] == "ConfigError" and "retain_everything" in error["message"]
    assert s.page.locator("deid-uploader >> [part=error]").is_visible()
    s.uploader(options="retain_safe_private", endpoint="http://example.org/dicomweb")
    s.page.set_input_files("deid-uploader >> #files", [str(samples.path("CT_small.dcm"))])
    s.page.wait_for_function("() => window.__events.filter(e => e.type === 'deid-error').length >= 2")
    assert "https" in s.events("deid-error")[1]["detail"]["message"]
    assert receiver.stored() == {}
