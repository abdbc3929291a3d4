"""Progress you can trust: bytes read of the batch's bytes, processing time apart from the time waiting for the
reviewer, every status in the summary (excluded too), and per-file labels that say what happened to the pixels."""

from __future__ import annotations

import time

import pytest

from .conftest import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EL = "document.querySelector('deid-uploader')"
WAIT_S = 3


def test_counts_times_and_labels(receiver, session_factory, samples):
    ct, us, mr = (samples.path(n) for n in ("CT_small.dcm", "GREYSCALE_IMAGE.dcm", "MR_small_expb.dcm"))
    total = sum(p.stat().st_size for p in (ct, us, mr))
    s = session_factory(receiver.url + "/")
    s.uploader(token=TOKEN, review="always")
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(ct), str(us), str(mr)])
    s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-review-required')", timeout=240000)
    s.page.wait_for_function("() => window.__events.filter((e) => e.type === 'deid-progress' && e.detail.phase === 'run')"
                             ".at(-1).detail.counts.awaitingReview === 3", timeout=10000)
    progress = [e["detail"] for e in s.events("deid-progress") if e["detail"]["phase"] == "run"][-1]
    assert progress["totalBytes"] == total and progress["inputBytes"] == total
    counts_text = s.page.locator("deid-uploader >> [part=counts]").inner_text()
    assert "3 of 3 files" in counts_text and f"of {total / 1e6:.1f} MB read" in counts_text

    rows = {r["name"]: r["detail"] for r in s.rows()}
    assert rows[us.name] == "US: text found and masked on 1 of 1 frames", rows
    assert "masked" not in rows[ct.name] and "masked" not in rows[mr.name], rows
    assert rows[ct.name].startswith("CT: pixels ") and rows[mr.name].startswith("MR: pixels "), rows

    time.sleep(WAIT_S)  # the reviewer takes their time: not processing time
    s.page.evaluate(f"""() => {{ const r = {EL}.run.reviewing;
        r.exclude(r.entries.filter((e) => e.row.path === '{mr.name}'), 'not-in-protocol'); }}""")
    s.page.fill("deid-uploader >> #reviewer", "Dr. Rhea Viewer")
    s.page.fill("deid-uploader >> #role", "Radiologist")
    s.page.click("deid-uploader >> [part=review] button")
    summary = s.wait_complete()
    assert summary["counts"]["uploaded"] == 2 and summary["counts"]["excluded"] == 1
    assert summary["excluded"] == {"not-in-protocol: Not part of the protocol": 1}
    assert summary["reviewSeconds"] >= WAIT_S and summary["seconds"] < summary["reviewSeconds"] + 120
    text = s.page.locator("deid-uploader >> [part=summary]").inner_text()
    assert "1 excluded by the reviewer" in text and "s of processing" in text and "waiting for review" in text


def test_frames_read_inside_a_file_are_shown(receiver, session_factory, tmp_path):
    from tests.review import images

    (tmp_path / "site").mkdir()
    cine = images.write(tmp_path / "site" / "us_cine.dcm", frames=6).path  # burned-in text on every frame
    s = session_factory(receiver.url + "/")
    s.uploader(token=TOKEN)
    s.listen()
    s.page.evaluate(f"""() => {{ window.__details = [];
        new MutationObserver(() => {{ for (const td of {EL}.shadowRoot.querySelectorAll('tbody td:nth-child(4)'))
            window.__details.push(td.textContent); }})
          .observe({EL}.shadowRoot, {{subtree: true, childList: true, characterData: true}}); }}""")
    s.page.set_input_files("deid-uploader >> #files", [str(cine)])
    s.wait_complete()
    seen = [d for d in s.page.evaluate("() => window.__details") if d.startswith("looking for text: frame")]
    frames = {int(d.split("frame ")[1].split(" of")[0]) for d in seen}
    assert seen and all(" of 6 (" in d for d in seen) and max(frames) >= 2, seen
