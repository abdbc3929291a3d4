"""Narrow screens (360-400 px): no horizontal overflow on the page, the review screen or the summary; card
layouts keep the names of their values; every modality's thumbnail shows its image before it is opened."""

from __future__ import annotations

import pytest

from .conftest import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EL = "document.querySelector('deid-uploader')"
SCREEN = "deid-uploader >> [part=review-screen]"

OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const wide = [];
    const walk = (root) => {
        for (const el of root.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.width && r.right > width + 0.5 && getComputedStyle(el).position !== 'fixed') {
                wide.push(`${el.tagName.toLowerCase()}.${el.className || ''}[${el.getAttribute('part') || ''}] ${Math.round(r.right)}`);
            }
            if (el.shadowRoot) walk(el.shadowRoot);
        }
    };
    walk(document);
    return { scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 8) };
}"""


def _no_overflow(s, what: str) -> None:
    for width in (360, 400):
        s.page.set_viewport_size({"width": width, "height": 800})
        s.page.wait_for_timeout(150)
        got = s.page.evaluate(OVERFLOW)
        assert got["scroll"] <= got["width"] and not got["wide"], (what, width, got)


THUMB_LIT = """(id) => {
    const c = document.querySelector('deid-uploader').shadowRoot.querySelector(`[part=review-thumb][data-entry='${id}'] canvas`);
    if (!c || !c.width) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 30) lit += 1;
    return lit / (d.length / 4);
}"""


def test_narrow_screens_and_thumbnails(receiver, session_factory, samples):
    s = session_factory(receiver.url + "/")
    s.page.set_viewport_size({"width": 360, "height": 800})
    _no_overflow(s, "page")
    names = ["CT_small.dcm", "MR_small_expb.dcm", "SC_rgb_small_odd.dcm", "GREYSCALE_IMAGE.dcm"]
    s.uploader(token=TOKEN, review="always")
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(samples.path(n)) for n in names])
    s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-review-required')", timeout=240000)
    s.page.wait_for_function(f"() => {EL}.run.reviewing.entries.every((e) => !e.busy)", timeout=120000)
    entries = s.page.evaluate(f"() => {EL}.run.reviewing.entries.map((e) => [e.id, e.row.path])")
    # Every thumbnail shows its image before it is opened (MR and OT were black until then).
    s.page.wait_for_timeout(1000)
    for entry_id, name in entries:
        s.page.locator(f"{SCREEN} [part=review-thumb][data-entry='{entry_id}']").scroll_into_view_if_needed()
        s.page.wait_for_timeout(500)
        assert s.page.evaluate(THUMB_LIT, entry_id) > 0.02, f"thumbnail of {name} is black"
    _no_overflow(s, "review list")
    mr = next(i for i, n in entries if n.startswith("MR"))
    s.page.click(f"{SCREEN} [part=review-thumb][data-entry='{mr}']")
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('.frame-label')")
    _no_overflow(s, "review viewer")
    us = next(i for i, n in entries if n.startswith("GREYSCALE"))
    s.page.click(f"{SCREEN} [part=review-thumb][data-entry='{us}']")
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('[part=review-boxes] li.box')")
    _no_overflow(s, "review viewer, ultrasound with masks")
    s.page.click(f"{SCREEN} [part=review-thumb][data-entry='{mr}']")
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('.header-table tbody td.value')")
    # The header table, as cards: each value keeps its column's name.
    cell = s.page.locator(f"{SCREEN} .header-table tbody td.value").first
    label = cell.evaluate("(td) => getComputedStyle(td, '::before').content")
    assert "Before" in label, label
    s.page.fill("deid-uploader >> #reviewer", "Dr. Rhea Viewer")
    s.page.fill("deid-uploader >> #role", "Radiologist")
    s.page.click("deid-uploader >> [part=review] button")
    s.wait_complete()
    _no_overflow(s, "summary")
    status = s.page.locator("deid-uploader >> [part=table] tbody td:nth-child(3)").first
    assert "Status" in status.evaluate("(td) => getComputedStyle(td, '::before').content")
