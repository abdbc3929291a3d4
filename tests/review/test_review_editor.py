"""The box editor and the viewer's controls in Chromium: window/level, the frame scrubber, draw / move / resize /
delete a mask, remove and restore an automatic one, exclude and include; a portal's own signOff() then uploads
exactly the result."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import TOKEN

from . import images
from .test_review_browser import EL, SCREEN, _boxes, _settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _edits(s) -> dict:
    return s.page.evaluate(f"() => JSON.parse(JSON.stringify({EL}.run.reviewing.entries[0].edits))")


def _canvas(s):
    canvas = s.page.locator(f"{SCREEN} [part=review-canvas]")
    canvas.evaluate("(c) => c.scrollIntoView({block: 'center'})")  # mouse events reach only what is in view
    bb = canvas.bounding_box()
    k = bb["width"] / canvas.evaluate("(c) => c.width")
    return canvas, (lambda x, y: (bb["x"] + x * k, bb["y"] + y * k))


def _drag(s, start, end) -> None:
    _, at = _canvas(s)
    s.page.mouse.move(*at(*start))
    s.page.mouse.down()
    s.page.mouse.move(*at((start[0] + end[0]) / 2, (start[1] + end[1]) / 2), steps=3)
    s.page.mouse.move(*at(*end), steps=3)
    s.page.mouse.up()


def _pixel(s, x, y) -> int:
    canvas, _ = _canvas(s)
    return canvas.evaluate("(c, [x, y]) => c.getContext('2d').getImageData(x, y, 1, 1).data[0]", [x, y])


def test_box_editor_and_viewer_controls(receiver, session_factory, tmp_path, artifacts):
    cine = images.series(tmp_path / "site")[0].path
    original = images.pixels(cine.read_bytes())
    s = session_factory(receiver.url + "/")
    s.page.set_viewport_size({"width": 1366, "height": 768})
    s.uploader(token=TOKEN, review="pixels", **{"pool-size": "1"})
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(cine)])
    s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-review-required')", timeout=240000)
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('[part=review-canvas]')?.width > 0")
    s.page.wait_for_timeout(200)
    s.page.screenshot(path=str(artifacts / "review-laptop-1366x768.png"))  # what a laptop shows when review opens

    # Window/level: the faint name (5 grey levels above black) appears under a narrow window.
    ys, xs = np.nonzero(images.region(original[0], images.FAINT_BOX) == 5)
    fx, fy = int(xs[0]) + images.FAINT_BOX[0], int(ys[0]) + images.FAINT_BOX[1]
    assert _pixel(s, fx, fy) < 20
    s.page.fill(f"{SCREEN} input[name=center]", "3")
    s.page.fill(f"{SCREEN} input[name=width]", "8")
    assert _pixel(s, fx, fy) > 150

    # Draw a mask on this frame only; the scrubber shows frame 2 without it.
    s.page.click(f"{SCREEN} >> text=Draw a mask")
    _drag(s, (20, 300), (120, 340))
    s.page.click(f"{SCREEN} .pending >> text=Mask on this frame")
    _settled(s)
    (added,) = _edits(s)["added"]["0"]
    assert all(abs(a - b) <= 2 for a, b in zip(added, [20, 300, 100, 40]))
    s.page.click(f"{SCREEN} [aria-label='Next frame']")
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('.frame-label').textContent === 'Frame 2 of 2'")
    assert _boxes(s, "added") == []
    s.page.keyboard.press("Escape")
    s.page.click(f"{SCREEN} [aria-label='Previous frame']")
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('.frame-label').textContent === 'Frame 1 of 2'")

    # Move it, then resize it from its lower right corner (select mode).
    s.page.click(f"{SCREEN} >> text=Select / move")
    x, y, w, h = added
    _drag(s, (x + w // 2, y + h // 2), (x + w // 2 + 30, y + h // 2 + 20))
    _settled(s)
    (moved,) = _edits(s)["added"]["0"]
    assert abs(moved[0] - (x + 30)) <= 2 and abs(moved[1] - (y + 20)) <= 2 and moved[2:] == [w, h]
    x, y, w, h = moved
    s.page.mouse.click(*_canvas(s)[1](x + 5, y + 5))  # select it: its corners become handles
    _drag(s, (x + w, y + h), (x + w + 40, y + h + 10))
    _settled(s)
    (resized,) = _edits(s)["added"]["0"]
    assert resized[:2] == [x, y] and abs(resized[2] - (w + 40)) <= 2 and abs(resized[3] - (h + 10)) <= 2
    # Delete it with the keyboard.
    s.page.mouse.click(*_canvas(s)[1](resized[0] + 5, resized[1] + 5))
    s.page.keyboard.press("Delete")
    _settled(s)
    assert _edits(s)["added"] == {}

    # Remove an automatic mask, then put it back.
    name = next(b for b, _ in _boxes(s, "auto") if b[1] < 40)
    s.page.locator(f"{SCREEN} li.box[data-kind=auto][data-box='{','.join(map(str, name))}']") \
        .get_by_role("button", name="Remove this mask").click()
    _settled(s)
    assert _edits(s)["removed"] == {"0": [name]} and [b for b, _ in _boxes(s, "removed")] == [name]
    s.page.get_by_role("button", name="Mask again").click()
    _settled(s)
    assert _edits(s)["removed"] == {} and name in [b for b, _ in _boxes(s, "auto")]

    # Move the automatic mask over the measurement: the original box is removed, the moved one added.
    measurement = next(b for b, _ in _boxes(s, "auto") if b[1] > 400)
    mx, my, mw, mh = measurement
    _drag(s, (mx + mw // 2, my + mh // 2), (mx + mw // 2 - 200, my + mh // 2 - 100))
    _settled(s)
    edits = _edits(s)
    assert edits["removed"] == {"0": [measurement]}
    (shifted,) = edits["added"]["0"]
    assert abs(shifted[0] - (mx - 200)) <= 2 and abs(shifted[1] - (my - 100)) <= 2

    # Keyboard only: N makes a new mask in the middle, arrows move it (Shift: by 10), Alt+arrows size it, a
    # tab stop applies it; a listed mask is selected with Enter, moved with the arrows and applied with Enter.
    canvas, _ = _canvas(s)
    width, height = canvas.evaluate("(c) => [c.width, c.height]")
    canvas.focus()
    s.page.keyboard.press("n")
    pending = s.page.locator(f"{SCREEN} .pending .coords")
    bx, by, bw, bh = map(int, pending.get_attribute("data-box").split(","))
    assert abs(bx + bw / 2 - width / 2) <= 1 and abs(by + bh / 2 - height / 2) <= 1
    for key in ["Shift+ArrowRight", "Shift+ArrowRight", "ArrowDown", "Alt+ArrowRight", "Alt+ArrowDown"]:
        s.page.keyboard.press(key)
    assert pending.get_attribute("data-box") == f"{bx + 20},{by + 1},{bw + 1},{bh + 1}"
    s.page.locator(f"{SCREEN} .pending").get_by_role("button", name="Mask on this frame").focus()
    s.page.keyboard.press("Enter")
    _settled(s)
    keyed = [bx + 20, by + 1, bw + 1, bh + 1]
    assert keyed in _edits(s)["added"]["0"]
    item = s.page.locator(f"{SCREEN} li.box[data-kind=added][data-box='{','.join(map(str, keyed))}']")
    item.focus()
    s.page.keyboard.press("Enter")
    for key in ["Shift+ArrowLeft", "ArrowUp"]:
        s.page.keyboard.press(key)
    assert keyed in _edits(s)["added"]["0"]  # a preview until Enter
    s.page.keyboard.press("Enter")
    _settled(s)
    moved_keyed = [keyed[0] - 10, keyed[1] - 1, keyed[2], keyed[3]]
    assert moved_keyed in _edits(s)["added"]["0"] and keyed not in _edits(s)["added"]["0"]
    s.page.locator(f"{SCREEN} li.box[data-kind=added][data-box='{','.join(map(str, moved_keyed))}']").focus()
    s.page.keyboard.press("Enter")
    s.page.keyboard.press("Delete")
    _settled(s)
    assert _edits(s)["added"]["0"] == [shifted]

    # Exclude the image, include it again.
    s.page.locator(f"{SCREEN} .viewer select.reason").select_option("duplicate")
    s.page.click(f"{SCREEN} >> text=Exclude image")
    assert s.page.evaluate(f"() => {EL}.run.reviewing.entries[0].excluded") == "duplicate"
    s.page.click(f"{SCREEN} .viewer >> text=Include again")
    assert s.page.evaluate(f"() => {EL}.run.reviewing.entries[0].excluded") is None

    # A portal's own review UI signs through the API; the upload carries exactly the edits on frame 0.
    s.page.evaluate(f"() => {EL}.signOff({{reviewer: 'Dr. Portal', role: 'Sonographer'}})")
    summary = s.wait_complete(timeout=120)
    assert summary["certificate"]["complete"] and summary["signoff"]["reviewer"] == "Dr. Portal"
    (stored,) = receiver.stored().values()
    out = images.pixels(stored.read_bytes())
    masked = np.zeros(out.shape, dtype=bool)
    auto = s.page.evaluate(f"() => {EL}.run.rows[0].record.pixels.review.auto")
    for f in range(2):
        for bx, by, bw, bh in auto.get(str(f), []) + ([shifted] if f == 0 else []) + ([measurement] if f else []):
            masked[f, by:by + bh, bx:bx + bw] = True
    assert (out[masked] == 0).all() and (out[~masked] == original[~masked]).all()
