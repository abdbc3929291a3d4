"""A site key that stays: one key per site and endpoint in the browser (IndexedDB, sealed by a non-extractable
WebCrypto key), so a second tab re-uploading a file stores nothing new; exported with a passphrase, it opens on
another computer (a fresh browser profile) and in the CLI, whose output is byte-identical to the browser's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT, TOKEN, Session

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSPHRASE = "site 7 key passphrase"
EL = "document.querySelector('deid-uploader')"


def _upload(s, path) -> dict:
    s.uploader(token=TOKEN)
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(path)])
    s.wait_complete()
    return s.events("deid-file")[-1]["detail"]


def _export(s, path) -> None:
    s.page.click("deid-uploader >> [part=site-key] summary")
    s.page.fill("deid-uploader >> #export-pass", PASSPHRASE)
    with s.page.expect_download() as download:
        s.page.click("deid-uploader >> #key-export button")
    download.value.save_as(path)
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('#key-status').textContent.includes('saved')")


def test_site_key_across_tabs_computers_and_the_cli(receiver, browser, session_factory, samples, tmp_path):
    ct = samples.path("CT_small.dcm")
    first = session_factory(receiver.url + "/")
    assert first.page.locator("deid-uploader >> [part=site-key] p").first.inner_text().startswith("This browser keeps")
    assert not first.page.locator("deid-uploader >> [part=key-notice]").is_visible()
    row = _upload(first, ct)
    assert row["status"] == "uploaded"
    stored = receiver.stored()
    assert list(stored) == [row["sopUid"]]

    # A second tab of the same browser: same key, so the same output, known to be uploaded already.
    tab = first.context.new_page()
    tab.goto(receiver.url + "/")
    second = Session.__new__(Session)
    second.page, second.context, second.requests, second.console = tab, first.context, [], []
    again = _upload(second, ct)
    assert again == {**row, "status": "already-uploaded"}
    assert receiver.stored() == stored

    # Exported with a passphrase; the CLI reads it and writes exactly what the browser uploaded.
    key_file = tmp_path / "py-deid-site-key.json"
    _export(first, key_file)
    assert PASSPHRASE not in key_file.read_text() and '"format": "py-deid-site-key"' in key_file.read_text()
    phrase = tmp_path / "passphrase.txt"
    phrase.write_text(PASSPHRASE + "\n")
    out = tmp_path / "cli-out"
    subprocess.run([sys.executable, "-m", "py_deid", "deidentify", str(ct), "-o", str(out), "--key-file", str(key_file),
                    "--key-passphrase-file", str(phrase)], cwd=ROOT, check=True, capture_output=True)
    (written,) = out.rglob("*.dcm")
    assert written.stem == row["sopUid"] and written.read_bytes() == stored[row["sopUid"]].read_bytes()

    # Another computer (a fresh profile): a wrong passphrase is refused, the right one gives the same pseudonyms.
    other = session_factory(receiver.url + "/")
    other.page.click("deid-uploader >> [part=site-key] summary")
    other.page.set_input_files("deid-uploader >> #import-file", [str(key_file)])
    other.page.fill("deid-uploader >> #import-pass", "not the passphrase")
    other.page.click("deid-uploader >> #key-import button")
    status = other.page.locator("deid-uploader >> #key-status")
    status.filter(has_text="passphrase is wrong").wait_for()
    other.page.fill("deid-uploader >> #import-pass", PASSPHRASE)
    other.page.click("deid-uploader >> #key-import button")
    status.filter(has_text="Key imported").wait_for()
    elsewhere = _upload(other, ct)
    assert elsewhere["sopUid"] == row["sopUid"] and receiver.stored() == stored
