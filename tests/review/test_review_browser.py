"""The review screen end to end: real burned-in ultrasound and generated images in Chromium, the reviewer's edits,
an excluded series, sign-off; then what the real receiver stored, and the certificate it keeps with each study."""

from __future__ import annotations

import hashlib
import json

import httpx
import numpy as np
import pydicom
import pytest

from py_deid import certificate
from py_deid.phi import PhiTerms
from py_deid.pixels import templates
from tests.browser import corpus
from tests.browser.conftest import TOKEN

from . import images

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KEY = bytes(range(40, 72))
ATTESTATION = "I, the site's qualified reviewer, determined that these images identify no one (ACME-7 protocol)."
EL = "document.querySelector('deid-uploader')"
SCREEN = "deid-uploader >> [part=review-screen]"


def _box(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def _inside(box, region) -> bool:
    return (region[0] <= box[0] and region[1] <= box[1] and box[0] + box[2] <= region[0] + region[2]
            and box[1] + box[3] <= region[1] + region[3])


def _intersects(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _settled(s) -> None:
    s.page.wait_for_function(f"() => {EL}.run.reviewing.entries.every((e) => !e.busy)", timeout=120000)
    assert s.page.evaluate(f"() => {EL}.run.reviewing.entries.filter((e) => e.error).length") == 0


def _open(s, name: str) -> None:
    """Show the held instance that came from this file (the test knows which row is which; the screen does not)."""
    index = s.page.evaluate(f"(name) => {EL}.run.reviewing.entries.find((e) => e.row.path.endsWith(name)).id", name)
    s.page.click(f"{SCREEN} [part=review-thumb][data-entry='{index}']")
    s.page.wait_for_function(f"() => {EL}.shadowRoot.querySelector('.frame-label')")


def _boxes(s, kind: str) -> list[tuple[list[int], str]]:
    items = s.page.locator(f"{SCREEN} li.box[data-kind={kind}]")
    return [(_box(items.nth(i).get_attribute("data-box")), items.nth(i).locator(".ocr").inner_text())
            for i in range(items.count())]


def _drag(s, box) -> None:
    """Draw a rectangle on the canvas, in image pixel coordinates."""
    canvas = s.page.locator(f"{SCREEN} [part=review-canvas]")
    canvas.evaluate("(c) => c.scrollIntoView({block: 'center'})")  # mouse events reach only what is in view
    bb = canvas.bounding_box()
    width = canvas.evaluate("(c) => c.width")
    k = bb["width"] / width
    x0, y0 = bb["x"] + box[0] * k, bb["y"] + box[1] * k
    x1, y1 = bb["x"] + (box[0] + box[2]) * k, bb["y"] + (box[1] + box[3]) * k
    s.page.mouse.move(x0, y0)
    s.page.mouse.down()
    s.page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    s.page.mouse.move(x1, y1, steps=4)
    s.page.mouse.up()


def _get(url: str):
    r = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, verify=False, timeout=30)
    r.raise_for_status()
    return r


def _forbidden(paths) -> list[str]:
    out = list(corpus.PLANTED_STRINGS) + [images.FAINT, images.MEASUREMENT, "Lesion"]
    for p in paths:
        ds = pydicom.dcmread(p)
        terms = PhiTerms.from_dataset(ds)
        out += sorted(t for t in terms.names | terms.ids if len(t) > 3)
        out += [str(ds.SOPInstanceUID), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(p), p.name]
    return out


def test_review_edit_exclude_sign_off_and_certificate(receiver, session_factory, samples, tmp_path, artifacts):
    generated = images.series(tmp_path / "site")
    cine, still = (g.path for g in generated)
    us_gray, us_rgb = samples.path("GREYSCALE_IMAGE.dcm"), samples.path("RGB_IMAGE.dcm")
    s = session_factory(receiver.url + "/")
    s.page.set_viewport_size({"width": 1440, "height": 900})
    s.uploader(token=TOKEN, review="always", attestation=ATTESTATION, **{"pool-size": "2"})
    s.set_key(KEY)
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(p) for p in (cine, still, us_gray, us_rgb)])
    s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-review-required')", timeout=240000)
    assert s.page.locator(f"{SCREEN} [part=review-thumb]").count() == 4
    assert s.page.locator(f"{SCREEN} .study").count() == 3 and s.page.locator(f"{SCREEN} .series").count() == 3
    assert s.page.locator(SCREEN).inner_text().count("ZQXPLANT, JOHANNA") >= 1  # grouped by patient, locally

    # The burned-in ultrasound: OCR's boxes are shown with the text read in them.
    _open(s, us_gray.name)
    auto = _boxes(s, "auto")
    assert any(b[1] < 30 for b, _ in auto), auto  # the title line (name, ID, birth date) is masked
    s.page.wait_for_timeout(200)
    s.page.locator(SCREEN).screenshot(path=str(artifacts / "review-screen-ultrasound.png"))
    # The generated cine: the planted name is masked; the measurement label is masked too; the faint name is not.
    _open(s, cine.name)
    auto = _boxes(s, "auto")
    assert any("JOHANNA" in text.upper() or "ZQX" in text.upper() for _, text in auto), auto
    measurement = [b for b, text in auto if _inside(b, images.MEASUREMENT_REGION)]
    assert measurement and "Lesion" in dict((tuple(b), t) for b, t in auto)[tuple(measurement[0])]
    assert not any(_intersects(b, images.FAINT_BOX) for b, _ in auto), "OCR read the faint name after all"

    # A narrow window shows the faint name to the reviewer.
    s.page.fill(f"{SCREEN} input[name=center]", "3")
    s.page.fill(f"{SCREEN} input[name=width]", "8")
    # Mask it on every image of this device and size (a session template), and export the template.
    s.page.click(f"{SCREEN} >> text=Draw a mask")
    _drag(s, images.FAINT_BOX)
    pending = s.page.locator(f"{SCREEN} .pending")
    drawn = _box(pending.locator(".coords").get_attribute("data-box"))
    assert all(abs(a - b) <= 2 for a, b in zip(drawn, images.FAINT_BOX)), drawn
    s.page.click(f"{SCREEN} .pending >> text=Mask on every image of this device and size (template)")
    _settled(s)
    # Remove the automatic mask over the measurement, on every frame of the cine.
    s.page.locator(f"{SCREEN} li.box[data-kind=auto][data-box='{','.join(map(str, measurement[0]))}']") \
        .get_by_role("button", name="Remove on every frame").click()
    _settled(s)
    assert [b for b, _ in _boxes(s, "removed")] == [measurement[0]]
    assert [b for b, _ in _boxes(s, "added")] == [drawn]
    s.page.fill(f"{SCREEN} input[name=center]", "3")
    s.page.fill(f"{SCREEN} input[name=width]", "8")
    # Leave the RGB ultrasound's series out: not part of the protocol.
    _open(s, us_rgb.name)
    rgb_series = s.page.locator(f"{SCREEN} .series:has([aria-current=true])")
    rgb_series.locator("select.reason").select_option("not-in-protocol")
    rgb_series.get_by_role("button", name="Exclude series").click()
    _open(s, cine.name)
    s.page.fill(f"{SCREEN} input[name=center]", "3")
    s.page.fill(f"{SCREEN} input[name=width]", "8")
    s.page.wait_for_timeout(300)
    s.page.locator(SCREEN).screenshot(path=str(artifacts / "review-screen.png"))
    with s.page.expect_download() as download:
        s.page.click(f"{SCREEN} >> text=Export session templates")
    exported = templates.parse(open(download.value.path(), encoding="utf-8").read())
    assert [(t.manufacturer, t.model, t.rows, t.columns, t.boxes) for t in exported] == \
        [("zqx sonics", "vista 3", images.ROWS, images.COLUMNS, (tuple(drawn),))]
    assert not [r for r in s.requests if r.method != "GET"], "the review screen sent something"

    # Sign off: upload, then the certificate.
    s.page.fill("deid-uploader >> #reviewer", "Dr. Rhea Viewer")
    s.page.fill("deid-uploader >> #role", "Radiologist")
    s.page.click("deid-uploader >> [part=review] button")
    summary = s.wait_complete(timeout=180)
    assert summary["certificate"]["complete"] and summary["certificate"]["studies"] == 2, summary
    assert summary["counts"]["uploaded"] == 3 and summary["counts"]["excluded"] == 1

    stored = receiver.stored()
    assert len(stored) == 3
    outputs = {pydicom.dcmread(p).ManufacturerModelName: p for p in stored.values()}
    assert not any("S2000" in m for m in outputs), "the excluded series reached the receiver"

    # The certificate stored with each study matches what was stored and says what the reviewer did.
    by_sop, batch = {}, None
    for study in {pydicom.dcmread(p).StudyInstanceUID for p in stored.values()}:
        listing = _get(f"{receiver.url}/dicomweb/studies/{study}/certificates").json()
        assert len(listing) == 1
        part = _get(listing[0]["url"]).json()
        check = _get(listing[0]["url"] + "/check").json()
        assert check["complete"] is True and check["present"] == len(part["instances"]), check
        assert part["study_instance_uid"] == study and part["batch_studies"] == 2
        assert batch in (None, part["batch"])
        batch = part["batch"]
        for item in part["instances"]:
            by_sop[item["sop_instance_uid"]] = item
        assert part["review"]["reviewer"] == "Dr. Rhea Viewer" and part["review"]["role"] == "Radiologist"
        assert part["review"]["attestation"] == ATTESTATION
        assert part["excluded"] == [{"reason": "not-in-protocol", "meaning": certificate.EXCLUSION_REASONS["not-in-protocol"],
                                     "instances": 1}]
        assert certificate.leaks(part, _forbidden([cine, still, us_gray, us_rgb])) == []
    assert set(by_sop) == set(stored)
    for sop, path in stored.items():
        assert by_sop[sop]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    # The uploaded pixels are exactly the edits: masks and added boxes are background, the removed mask shows
    # the original pixels, nothing else changed.
    originals = {cine: images.pixels(cine.read_bytes()), still: images.pixels(still.read_bytes())}
    for source, original in originals.items():
        ds_src = pydicom.dcmread(source)
        sop = next(s_ for s_, p in stored.items() if pydicom.dcmread(p).InstanceNumber == ds_src.InstanceNumber
                   and pydicom.dcmread(p).ManufacturerModelName == "Vista 3")
        item = by_sop[sop]
        out = images.pixels(stored[sop].read_bytes())
        masks = np.zeros(out.shape, dtype=bool)
        for f in range(out.shape[0]):
            assert item["reviewer_added"][str(f)] == [drawn]
            for x, y, w, h in item["masked"].get(str(f), []) + item["reviewer_added"][str(f)]:
                masks[f, y:y + h, x:x + w] = True
        assert (out[masks] == 0).all()
        assert (out[~masks] == original[~masks]).all()
        if source == cine:
            assert item["reviewer_removed"] == {str(f): [measurement[0]] for f in range(2)}
            assert (images.region(out, measurement[0]) == images.region(original, measurement[0])).all()
        else:
            assert item["reviewer_removed"] == {}
            assert any(_inside(b, images.MEASUREMENT_REGION) for b in item["masked"]["0"])

    # The investigator can download the batch certificate (JSON and printable HTML) from the screen.
    with s.page.expect_download() as download:
        s.page.click(f"{SCREEN} >> text=Download certificate (JSON)")
    whole = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert whole["batch"] == batch and {i["sop_instance_uid"] for i in whole["instances"]} == set(stored)
    assert certificate.leaks(whole, _forbidden([cine, still, us_gray, us_rgb])) == []
    with s.page.expect_download() as download:
        s.page.click(f"{SCREEN} >> text=Download certificate (printable HTML)")
    page = open(download.value.path(), encoding="utf-8").read()
    assert "Dr. Rhea Viewer" in page and "<script" not in page and batch in page
    s.page.locator(SCREEN).screenshot(path=str(artifacts / "review-signed.png"))
    for req in s.requests:
        assert req.url.startswith(receiver.url + "/"), req.url
        for planted in corpus.PLANTED_STRINGS + [images.FAINT]:
            assert planted.encode() not in req.body + req.url.encode(), (req.url, planted)
