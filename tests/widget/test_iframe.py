"""The other embedding: the portal frames the asset host's upload page (built with --frame-ancestor), in a
sandboxed iframe, under the portal's own strict policy; the page inside works end to end."""

from __future__ import annotations

import pytest

from tests.browser import corpus

from .portal_page import PortalPage
from .servers import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_upload_page_in_a_portal_frame(context, portal, assets, samples, tmp_path):
    csp = context.request.get(assets.url + "/").headers["content-security-policy"]
    assert csp.endswith(f"frame-ancestors 'self' {portal.origin}")
    before = set(assets.stored())
    planted = corpus.plant(samples.path("CT_small.dcm"), tmp_path / corpus.PLANTED_FILE_NAME)

    p = PortalPage(context, portal.origin + "/iframe.html")
    p.page.wait_for_selector("#upload-frame")
    frame = p.page.frame_locator("#upload-frame")
    frame.locator("deid-uploader >> [part=panel]").wait_for()
    inner = next(f for f in p.page.frames if f.url.startswith(assets.url))
    inner.evaluate("""(token) => {
        window.__events = [];
        const el = document.querySelector('deid-uploader');
        el.addEventListener('deid-complete', (e) => window.__events.push(e.detail));
        el.setAttribute('token', token);
        return el.whenReady();
    }""", TOKEN)
    frame.locator("deid-uploader >> #files").set_input_files(str(planted))
    inner.wait_for_function("() => window.__events.length === 1", timeout=120000)
    summary = inner.evaluate("() => window.__events[0]")
    assert summary["counts"]["uploaded"] == 1, summary
    stored = set(assets.stored()) - before
    assert len(stored) == 1
    data = assets.stored()[stored.pop()].read_bytes()
    assert not [s for s in corpus.PLANTED_STRINGS if s.encode() in data]
    assert p.evaluate("() => document.getElementById('upload-frame').getAttribute('sandbox')").startswith("allow-scripts")
    assert not p.csp_violations(), p.console
