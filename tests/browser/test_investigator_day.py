"""The investigator's whole day on the page `py-deid serve` serves (its defaults: review of images with text), with
real files: files added before the token, a wrong token then the right one, review and sign-off, the certificate
downloaded, a second tab re-uploading a file (nothing new stored), the network cut and back (the only reload).
axe checks each screen; a screenshot of each step goes to test-artifacts/day-*.png for a person to look at."""

from __future__ import annotations

import json

import pydicom
import pytest

from . import corpus
from .axe import serious_violations
from .conftest import TOKEN, Receiver, Session
from .test_offline import LAST_RUN, OUTBOX, controlled

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EL = "document.querySelector('deid-uploader')"
ROOT = f"{EL}.shadowRoot"
SERIES = 30


@pytest.fixture
def served(dist, tmp_path):
    r = Receiver(dist, tmp_path / "store", review=None)  # as a site runs it: `py-deid serve`, no options
    r.start()
    yield r
    r.stop()


def _shot(s, artifacts, name: str) -> None:
    s.page.screenshot(path=str(artifacts / f"day-{name}.png"), full_page=True)


def _token(s, value: str) -> None:
    s.page.fill("deid-uploader >> #token", value)
    s.page.press("deid-uploader >> #token", "Enter")


# The file table and the counter above it as a person sees them.
_SHOWN = f"""() => ({{
    rows: Array.from({ROOT}.querySelectorAll('tbody tr[data-status]'),
                     (tr) => ({{status: tr.dataset.status, label: tr.children[2].textContent}})),
    counts: {ROOT}.querySelector('[part=counts]').textContent,
}})"""
# Every row drawn with its final state for now, and the counter's "N awaiting review" equal to those rows.
_TABLE_AGREES = f"""() => {{
    const shown = ({_SHOWN})();
    const run = {EL}.run;
    if (!run || shown.rows.length !== run.rows.length) return false;
    if (shown.rows.some((r, i) => r.status !== run.rows[i].status)) return false;
    const held = shown.rows.filter((r) => r.status === 'awaiting-review').length;
    const said = /(\\d+) awaiting review/.exec(shown.counts);
    return held === (said ? Number(said[1]) : 0);
}}"""


def _statuses(s) -> dict[str, str]:
    return {r["name"]: r["status"] for r in s.rows() if r["status"]}  # (the review's header table has rows too)


def test_the_investigators_day(served, sw_browser, samples, tmp_path, artifacts):
    ct, mr, us = (samples.path(n) for n in ("CT_small.dcm", "MR_small_expb.dcm", "GREYSCALE_IMAGE.dcm"))
    s = Session(sw_browser, served.url + "/")
    try:
        s.page.set_viewport_size({"width": 1280, "height": 900})
        controlled(s)
        s.page.evaluate(f"() => {EL}.whenReady()")
        s.listen()
        assert s.page.evaluate(f"() => {EL}.getAttribute('review')") == "pixels"
        assert serious_violations(s.page) == []
        _shot(s, artifacts, "1-page")

        # Morning: the CD's files go in before anyone found the token. They are de-identified and wait.
        s.page.set_input_files("deid-uploader >> #files", [str(ct), str(mr), str(us)])
        s.page.wait_for_function(f"() => ({LAST_RUN})()?.counts.processed === 3", timeout=240000)
        assert served.stored() == {} and not s.events("deid-error")
        assert s.page.locator("deid-uploader >> [part=token-form]").is_visible()
        # What the table says is what happens: nothing is being sent, so no row says "Uploading", and the counter
        # counts the rows as drawn (it is drawn with them, never ahead of them).
        waits = f"""() => ({_TABLE_AGREES})() && ({_SHOWN})().rows.filter((r) => r.status === 'uploading')
            .every((r) => r.label === 'Waiting for the upload token')"""
        try:
            s.page.wait_for_function(waits, timeout=10000)
        except Exception:
            pytest.fail(f"the table does not say what happens: {s.page.evaluate(_SHOWN)}")
        shown = s.page.evaluate(_SHOWN)
        assert [r["status"] for r in shown["rows"]].count("uploading") == 2, shown  # the CT and the MR
        assert not any(r["label"] == "Uploading" for r in shown["rows"]), shown
        _shot(s, artifacts, "2-waiting-for-token")

        # A token copied wrongly, then the right one: nothing added again, no reload.
        _token(s, "not-the-token")
        s.page.locator("deid-uploader >> [part=error]").filter(has_text="did not accept").wait_for()
        # A refused token: the files wait for another one, and their rows say so (drawn a moment after the error).
        s.page.wait_for_function(waits, timeout=10000)
        _shot(s, artifacts, "3-token-refused")
        _token(s, TOKEN)
        s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-review-required')", timeout=240000)
        s.page.wait_for_function(_TABLE_AGREES, timeout=10000)
        assert not any(r["label"] == "Waiting for the upload token" for r in s.page.evaluate(_SHOWN)["rows"])
        assert not s.page.locator("deid-uploader >> [part=error]").is_visible()
        statuses = _statuses(s)
        # Images whose pixels were cleaned wait for the reviewer (the burned-in ultrasound among them); the rest went.
        assert statuses[us.name] == "awaiting-review" and set(statuses.values()) <= {"uploaded", "awaiting-review"}
        assert len(served.stored()) == list(statuses.values()).count("uploaded")

        # The qualified reviewer looks at the ultrasound with its masks, and signs off.
        s.page.wait_for_function(f"() => {EL}.run.reviewing.entries.every((e) => !e.busy)", timeout=120000)
        index = s.page.evaluate(f"(name) => {EL}.run.reviewing.entries.find((e) => e.row.path === name).id", us.name)
        s.page.click(f"deid-uploader >> [part=review-screen] [part=review-thumb][data-entry='{index}']")
        s.page.wait_for_function(f"() => {ROOT}.querySelector('[part=review-boxes] li.box')")
        assert serious_violations(s.page) == []
        assert serious_violations(s.page, ["deid-uploader", "[part=review]"]) == []
        _shot(s, artifacts, "4-review")
        s.page.fill("deid-uploader >> #reviewer", "Dr. Rhea Viewer")
        s.page.fill("deid-uploader >> #role", "Radiologist")
        s.page.click("deid-uploader >> [part=review] button")
        summary = s.wait_complete()
        assert summary["counts"]["uploaded"] == 3 and summary["certificate"]["complete"] is True
        assert summary["reviewSeconds"] > 0 and len(served.stored()) == 3
        with s.page.expect_download() as download:
            s.page.click("deid-uploader >> [part=review-certificate] a[download$='.json']")
        certificate = json.loads(open(download.value.path()).read())
        assert "Dr. Rhea Viewer" in json.dumps(certificate) and ct.name not in json.dumps(certificate)
        _shot(s, artifacts, "5-signed-off")

        # Afternoon, a second tab: the CT again. Same site key, so nothing new is stored.
        tab = s.context.new_page()
        tab.goto(served.url + "/")
        second = Session.__new__(Session)
        second.page, second.context, second.requests, second.console = tab, s.context, [], []
        second.uploader(token=TOKEN)
        second.listen()
        second.page.set_input_files("deid-uploader >> #files", [str(ct)])
        assert second.wait_complete()["counts"]["alreadyUploaded"] == 1
        assert len(served.stored()) == 3
        second.page.screenshot(path=str(artifacts / "day-6-second-tab.png"), full_page=True)
        tab.close()

        # Evening: a series, and the network goes mid-batch. The page reloads offline and keeps what waits.
        files = corpus.ct_series(samples, tmp_path, SERIES)
        for f in files:  # a CT series that declares no burned-in text: not held for review under `pixels`
            ds = pydicom.dcmread(f)
            ds.BurnedInAnnotation = "NO"
            ds.save_as(f)
        s.page.set_input_files("deid-uploader >> #files", [str(p) for p in files])
        # (Cut as the first of them starts uploading: the rest are still being de-identified.)
        s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-file' && e.detail.index >= 3"
                                 " && e.detail.status === 'uploading')", timeout=120000)
        s.context.set_offline(True)
        served.stop()
        s.page.wait_for_function(f"() => ({LAST_RUN})()?.counts.processed === {3 + SERIES}", timeout=240000)
        assert len(served.stored()) < 3 + SERIES
        s.page.reload()
        s.page.evaluate(f"() => {EL}.whenReady()")
        s.listen()
        _token(s, TOKEN)
        s.page.wait_for_function(f"() => {ROOT}.querySelectorAll('tbody tr').length > 0", timeout=60000)
        assert s.page.evaluate(OUTBOX) > 0
        # Offline nothing is sent: the rows say they wait for a connection, not that they are uploading.
        s.page.wait_for_function(f"""() => {{ const rows = ({_SHOWN})().rows.filter((r) => r.status === 'uploading');
            return rows.length > 0 && rows.every((r) => r.label === 'Waiting for a connection (retrying)'); }}""",
            timeout=60000)
        _shot(s, artifacts, "7-offline")
        s.context.set_offline(False)
        served.start()
        summary = s.wait_complete(timeout=240)
        assert summary["counts"]["failed"] == 0 and s.page.evaluate(OUTBOX) == 0
        assert len(served.stored()) == 3 + SERIES
        assert serious_violations(s.page) == []
        _shot(s, artifacts, "8-back-online")
    finally:
        s.close()
