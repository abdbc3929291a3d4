"""`py-deid serve --review`: the page it serves holds images for sign-off by default, and follows the option."""

from __future__ import annotations

import httpx
import pytest

from .conftest import TOKEN, Receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EL = "document.querySelector('deid-uploader')"


@pytest.fixture
def default_receiver(dist, tmp_path):
    r = Receiver(dist, tmp_path / "store", review=None)  # serve's own default
    r.start()
    yield r
    r.stop()


def _served_policy(s, expected: str) -> str:
    """The page's policy once page-settings.json was applied (the page starts with index.html's `pixels`)."""
    s.page.wait_for_function("() => performance.getEntriesByType('resource')"
                             ".some((e) => e.name.endsWith('/page-settings.json') && e.responseEnd > 0)")
    s.page.wait_for_function(f"(want) => {EL}.getAttribute('review') === want", arg=expected, timeout=10000)
    return s.page.evaluate(f"() => {EL}.getAttribute('review')")


def test_served_page_reviews_burned_in_text_by_default(default_receiver, session_factory, samples):
    r = default_receiver
    settings = httpx.get(r.url + "/page-settings.json", verify=False, timeout=10)
    assert settings.json() == {"review": "pixels"} and settings.headers["cache-control"] == "no-store"
    s = session_factory(r.url + "/")
    assert _served_policy(s, "pixels") == "pixels"
    s.uploader(token=TOKEN)
    s.listen()
    us = samples.path("GREYSCALE_IMAGE.dcm")  # a real ultrasound with the patient's name burned in
    s.page.set_input_files("deid-uploader >> #files", [str(us)])
    s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-review-required')", timeout=240000)
    assert r.stored() == {} and not [q for q in s.requests if q.method == "POST"]
    s.page.fill("deid-uploader >> #reviewer", "Dr. Rhea Viewer")
    s.page.fill("deid-uploader >> #role", "Radiologist")
    s.page.click("deid-uploader >> [part=review] button")
    summary = s.wait_complete()
    assert summary["counts"]["uploaded"] == 1 and summary["certificate"]["complete"] is True
    assert len(r.stored()) == 1
    assert s.page.locator("deid-uploader >> [part=review-certificate] a[download]").count() == 2


@pytest.mark.parametrize("policy", ["always", "never"])
def test_served_page_follows_the_option(dist, tmp_path, session_factory, policy):
    r = Receiver(dist, tmp_path / "store", review=policy)
    r.start()
    try:
        s = session_factory(r.url + "/")
        assert _served_policy(s, policy) == policy
    finally:
        r.stop()
