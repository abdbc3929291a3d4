"""Tokens a person can recover from: files wait for a missing token, a refused token brings the field back with a
plain next step, and the right one uploads what is pending, without a reload or adding the files again."""

from __future__ import annotations

import base64

import pytest

from .conftest import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = "document.querySelector('deid-uploader').shadowRoot"


def _visible(s, part: str) -> bool:
    return s.page.evaluate(f"() => !{ROOT}.querySelector('[part={part}]').hidden")


def _focused(s) -> str:
    return s.page.evaluate(f"() => {{ const a = {ROOT}.activeElement; return a ? (a.id || a.getAttribute('part')) : ''; }}")


def _focus_history(s) -> list[str]:
    return s.page.evaluate("() => window.__focus")


def _submit(s, token: str) -> None:
    s.page.fill("deid-uploader >> #token", token)
    s.page.press("deid-uploader >> #token", "Enter")


def test_files_wait_for_the_token_and_a_wrong_one_can_be_corrected(receiver, session_factory, samples):
    s = session_factory(receiver.url + "/")
    s.listen()
    s.page.evaluate(f"() => {{ window.__focus = []; {ROOT}.addEventListener('focusin',"
                    " (e) => window.__focus.push(e.target.id || e.target.getAttribute('part'))); }")
    assert _visible(s, "token-form")
    help_text = s.page.locator("deid-uploader >> #token-help").inner_text()
    assert "sponsor" in help_text and "py-deid serve" in help_text
    s.page.set_input_files("deid-uploader >> #files", [str(samples.path("CT_small.dcm")), str(samples.path("MR_small_expb.dcm"))])
    # De-identified, then waiting: not dropped, no error, nothing sent.
    s.page.wait_for_function(f"() => [...{ROOT}.querySelectorAll('tbody tr')].every((tr) => tr.dataset.status === 'uploading')"
                             f" && {ROOT}.querySelectorAll('tbody tr').length === 2", timeout=120000)
    assert not _visible(s, "error") and not s.events("deid-error")
    assert not [r for r in s.requests if r.method == "POST"]

    _submit(s, "not-the-" + TOKEN)
    s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-error')", timeout=60000)
    # The form hid: focus went where the work goes on (not the top of the page), then back to the field.
    assert _focus_history(s)[-2:] == ["counts", "token"]
    assert [e["detail"]["code"] for e in s.events("deid-error")] == ["unauthorized"]
    assert _visible(s, "token-form") and _visible(s, "error")
    error = s.page.locator("deid-uploader >> [part=error]").inner_text()
    assert "did not accept" in error and "not-the-" not in error
    assert _focused(s) == "token"
    assert {r["status"] for r in s.rows()} == {"uploading"} and receiver.stored() == {}

    _submit(s, TOKEN)
    assert _focused(s) == "counts"
    summary = s.wait_complete()
    assert summary["counts"]["uploaded"] == 2 and summary["counts"]["failed"] == 0
    assert len(receiver.stored()) == 2
    assert not _visible(s, "error") and not _visible(s, "token-form")  # the stale error went with its cause
    assert len(s.events("deid-error")) == 1


def test_a_token_given_while_the_run_is_set_up_reaches_its_uploads(receiver, session_factory, samples):
    """A portal (or a reloaded page resuming its outbox) can set the token in the moment between the files' arrival
    and their run's start (the key read, the workers configured). The run is made from the settings the files
    came with; the token must still reach it, else its uploads wait for a token the form no longer asks for."""
    s = session_factory(receiver.url + "/")
    s.listen()
    data = base64.b64encode(samples.path("CT_small.dcm").read_bytes()).decode()
    # One task: the files are queued (their settings have no token) and the token is set before any await ends.
    s.page.evaluate("""([data, token]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const el = document.querySelector('deid-uploader');
        el.addFiles([new File([bytes], 'CT_small.dcm')]);
        el.setAttribute('token', token);
    }""", [data, TOKEN])
    summary = s.wait_complete(timeout=120)
    assert summary["counts"]["uploaded"] == 1 and summary["counts"]["failed"] == 0
    assert len(receiver.stored()) == 1
    assert not _visible(s, "token-form")
