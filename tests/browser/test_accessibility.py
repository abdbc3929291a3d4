"""Keyboard and screen readers: axe-core finds no serious or critical violation on the page, the review screen and
the sign-off form; Enter on the image applies a new mask; the frame slider announces the frame shown."""

from __future__ import annotations

import pytest

from tests.review import images

from .axe import serious_violations
from .conftest import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EL = "document.querySelector('deid-uploader')"
SCREEN = "deid-uploader >> [part=review-screen]"


def test_axe_and_keyboard_on_page_review_and_sign_off(receiver, session_factory, samples, tmp_path):
    s = session_factory(receiver.url + "/")
    s.page.evaluate(f"() => {EL}.whenReady()")
    s.page.click("deid-uploader >> [part=site-key] summary")  # the key forms too
    assert serious_violations(s.page) == []

    (tmp_path / "site").mkdir()
    cine = images.write(tmp_path / "site" / "us_cine.dcm", frames=4).path  # a generated cine with burned-in text
    s.uploader(token=TOKEN, review="always")
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(cine), str(samples.path("GREYSCALE_IMAGE.dcm"))])
    s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-review-required')", timeout=240000)
    s.page.wait_for_function(f"() => {EL}.run.reviewing.entries.every((e) => !e.busy)", timeout=120000)
    index = s.page.evaluate(f"(name) => {EL}.run.reviewing.entries.find((e) => e.row.path.endsWith(name)).id", cine.name)
    s.page.click(f"{SCREEN} [part=review-thumb][data-entry='{index}']")
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('.frame-label')")
    assert serious_violations(s.page) == []
    assert serious_violations(s.page, ["deid-uploader", "[part=review]"]) == []  # the sign-off form

    # The slider says which frame is shown, after moving with the keyboard.
    slider = s.page.locator(f"{SCREEN} [part=review-scrubber]")
    total = int(slider.get_attribute("max")) + 1
    assert total > 2
    slider.focus()
    s.page.keyboard.press("ArrowRight")
    s.page.keyboard.press("ArrowRight")
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('.frame-label').textContent.startsWith('Frame 3')")
    assert slider.get_attribute("aria-valuetext") == f"Frame 3 of {total}"
    assert "Frame 1" not in (slider.get_attribute("aria-label") or "")

    # Enter on the image applies a new mask (N adds it in the middle, arrows move it).
    added = f"{SCREEN} li.box[data-kind=added]"
    before = s.page.locator(added).count()
    canvas = s.page.locator(f"{SCREEN} [part=review-canvas]")
    canvas.focus()
    s.page.keyboard.press("n")
    s.page.keyboard.press("ArrowDown")
    s.page.keyboard.press("Enter")
    s.page.wait_for_function(f"() => {EL}.run.reviewing.entries.every((e) => !e.busy)", timeout=120000)
    s.page.wait_for_function(f"(n) => {EL}.shadowRoot.querySelectorAll('[part=review-screen] li.box[data-kind=added]').length > n",
                             arg=before, timeout=60000)
