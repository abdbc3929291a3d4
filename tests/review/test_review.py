"""py_deid.review natively: the reviewer's edits carried out on real and generated instances, the local view."""

from __future__ import annotations

import json
from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

from py_deid import certificate, review
from py_deid.hosts import native
from py_deid.hosts.browser import result_record
from py_deid.instance import Deidentifier, run_sync
from py_deid.options import Settings

from . import images

KEY = b"review-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def ocr():
    service = native.ocr_service()
    if service is None:
        pytest.skip("native OCR (tesserocr) is not installed")
    return service


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return images.series(tmp_path_factory.mktemp("generated"))


def deid() -> Deidentifier:
    return Deidentifier(Settings(), KEY, codecs=native.codec_service(), record=True)


def first_run(data: bytes, ocr):
    result = run_sync(deid().process(data), ocr)
    assert result.status == "done", result.problem
    return result


def auto_of(result) -> dict:
    return {int(k): [tuple(b) for b in v] for k, v in result.pixels["boxes"].items()}


def inside(box, region) -> bool:
    return (region[0] <= box[0] and region[1] <= box[1] and box[0] + box[2] <= region[0] + region[2]
            and box[1] + box[3] <= region[1] + region[3])


def test_rerun_masks_exactly_what_the_reviewer_decided(generated, ocr):
    cine = generated[0]
    data = cine.path.read_bytes()
    first = first_run(data, ocr)
    auto = auto_of(first)
    measurement = [b for b in auto[0] if inside(b, images.MEASUREMENT_REGION)]
    assert measurement, "OCR masked the measurement label (--text strict): the reviewer has something to remove"
    assert not any(b[1] > 400 and b[0] < 220 for f in auto.values() for b in f), "OCR missed the faint name"
    edits = review.Edits.from_json({"auto": first.pixels["boxes"], "added": {"all": [list(images.FAINT_BOX)]},
                                    "removed": {"all": [list(measurement[0])]}})
    again = run_sync(review.rerun(deid(), data, edits), None)  # no OCR needed: the reviewer decided
    assert again.status == "done", again.problem
    original, before, after = images.pixels(data), images.pixels(first.output), images.pixels(again.output)
    assert (images.region(after, images.FAINT_BOX) == 0).all()  # the added box is background on every frame
    assert (images.region(before, images.FAINT_BOX) == images.region(original, images.FAINT_BOX)).all()
    m = measurement[0]
    assert (images.region(after, m) == images.region(original, m)).all()  # removed: the original pixels are back
    assert (images.region(before, m) == 0).all()
    names = [b for b in auto[0] if b[1] < 40]  # the name's words, a mask each
    assert names
    for name in names:
        assert (images.region(after, name) == 0).all()  # the automatic masks the reviewer kept stay
    changed = np.argwhere(after != original)
    for f, y, x in changed:  # nothing changed outside the masks
        assert any(inside((x, y, 1, 1), b) for b in [*names, images.FAINT_BOX]), (f, y, x)
    summary = again.pixels["review"]
    assert summary["added"] == {"0": [list(images.FAINT_BOX)], "1": [list(images.FAINT_BOX)]}
    assert summary["removed"] == {"0": [list(m)], "1": [list(m)]}
    assert all(list(m) not in boxes for boxes in summary["auto"].values())
    # The header is the first run's: same key, same pseudonyms.
    a, b = pydicom.dcmread(BytesIO(first.output)), pydicom.dcmread(BytesIO(again.output))
    del a.PixelData, b.PixelData
    assert a == b


def test_rerun_masks_where_the_policy_would_not(samples):
    data = samples.bytes("CT_small.dcm")
    first = run_sync(deid().process(data), None)
    assert first.status == "done" and not first.pixels["cleaned"]
    edits = review.Edits.from_json({"auto": {}, "added": {"0": [[10, 10, 20, 8]]}})
    again = run_sync(review.rerun(deid(), data, edits), None)
    ds = pydicom.dcmread(BytesIO(again.output))
    assert (ds.pixel_array[10:18, 10:30] == ds.pixel_array[10:18, 10:30].flat[0]).all()
    assert again.pixels["boxes"] == {"0": [[10, 10, 20, 8]]} and ds.BurnedInAnnotation == "NO"


def test_rerun_on_jpeg_baseline_masks_whole_blocks(samples):
    data = samples.bytes("SC_rgb_jpeg_dcmtk.dcm")
    edits = review.Edits.from_json({"auto": {}, "added": {"0": [[3, 5, 10, 10]]}})
    again = run_sync(review.rerun(Deidentifier(Settings(pixels="off"), KEY, codecs=native.codec_service()), data,
                                  edits), None)
    assert again.status == "done", again.problem
    done = again.pixels["boxes"]["0"][0]
    assert inside((3, 5, 10, 10), done) and done[0] % 8 == 0 and done[1] % 8 == 0
    assert again.pixels["review"]["added"] == {"0": [[3, 5, 10, 10]]}


@pytest.mark.parametrize("edits", [
    {"added": {"0": "ZQXPLANT JOHANNA"}},
    {"added": {"0": [[1, 2, 0, 4]]}},
    {"added": {"first": [[1, 2, 3, 4]]}},
    {"removed": [[1, 2, 3, 4]]},
    {"auto": {"all": [[1, 2, 3, 4]]}},
    "remove the name",
])
def test_edits_that_cannot_be_carried_out_are_refused(edits):
    with pytest.raises(review.EditError) as e:
        review.Edits.from_json(edits)
    assert "ZQXPLANT" not in str(e.value)


def test_removed_rectangle_takes_every_automatic_mask_inside_it():
    edits = review.Edits.from_json({"auto": {"0": [[0, 0, 10, 10], [50, 50, 10, 10]], "2": [[51, 49, 10, 10]]},
                                    "removed": {"all": [[50, 50, 10, 10]]}, "added": {"1": [[5, 5, 5, 5]]}})
    kept, added, removed = edits.resolve(3)
    assert kept == {0: [(0, 0, 10, 10)]}
    assert removed == {0: [(50, 50, 10, 10)], 2: [(51, 49, 10, 10)]}
    assert added == {1: [(5, 5, 5, 5)]}


def test_local_view_shows_the_site_what_it_needs(generated, ocr, samples):
    first = first_run(generated[1].path.read_bytes(), ocr)
    view = review.local_view(first)
    assert view["labels"]["PatientName"] == "ZQXPLANT^JOHANNA"  # shown on the site, to group by patient
    assert view["device"] == {"manufacturer": "ZQX Sonics", "model": "Vista 3", "rows": 480, "columns": 640}
    rows = {(r["path"], r["keyword"]): r for r in view["header"]}
    assert rows[("", "PatientName")]["old"] == "ZQXPLANT^JOHANNA" and rows[("", "PatientName")]["action"] in "ZDX"
    assert rows[("", "Manufacturer")]["action"] == "K" and rows[("", "Manufacturer")]["freeText"]
    assert rows[("", "PatientIdentityRemoved")]["action"] == "set" and not rows[("", "PatientIdentityRemoved")]["freeText"]
    assert any(w["text"].upper().startswith("JOHANNA") and w["masked"] for w in view["words"])
    d = view["display"]
    (offset, length), = d["spans"][0]
    assert first.output[offset:offset + length] == pydicom.dcmread(BytesIO(first.output)).PixelData
    json.dumps(view)  # crosses to the page as plain data


def test_fragment_spans_locate_each_compressed_frame(samples):
    data = samples.bytes("SC_rgb_rle_2frame.dcm")
    result = run_sync(Deidentifier(Settings(pixels="off"), KEY).process(data), None)
    d = review.describe(result.output)
    assert not d["native"] and len(d["spans"]) == 2
    frames = list(generate_frames(pydicom.dcmread(BytesIO(result.output)).PixelData, number_of_frames=2))
    for spans, want in zip(d["spans"], frames):
        assert b"".join(result.output[o:o + n] for o, n in spans).rstrip(b"\0") == want.rstrip(b"\0")


def test_certificate_from_reviewed_records_is_phi_free(generated, ocr, samples):
    records, forbidden = [], [images.FAINT, images.MEASUREMENT, "Lesion", "ZQXPLANT", "JOHANNA", "ZQX-PID-739164"]
    for g in generated:
        data = g.path.read_bytes()
        first = first_run(data, ocr)
        forbidden += [g.sop_uid, g.study_uid, g.series_uid, str(g.path)]
        forbidden += [w["text"] for w in first.local["ocr_words"] if len(w["text"]) > 3]
        edits = review.Edits.from_json({"auto": first.pixels["boxes"], "added": {"all": [list(images.FAINT_BOX)]}})
        records.append(result_record(run_sync(review.rerun(deid(), data, edits), None)))
    us = first_run(samples.bytes("GREYSCALE_IMAGE.dcm"), ocr)
    records.append(result_record(us))
    entries = [certificate.entry_from_record(r) for r in records]
    cert = certificate.build(Settings(), entries, signature=certificate.Signature("Dr. R. Eviewer", "radiologist"),
                             excluded=[{"reason": "not-in-protocol", "instances": 1}])
    assert certificate.leaks(cert, [f for f in forbidden if f]) == []
    assert cert["counts"]["reviewer_edited"] == 2 and cert["counts"]["excluded"] == 1
    assert cert["counts"]["pixels_cleaned"] == 3 and "113101" in [m["code_value"] for m in cert["methods"]]
    assert cert["instances"][0]["reviewer_added"] == {"0": [list(images.FAINT_BOX)], "1": [list(images.FAINT_BOX)]}
    assert cert["instances"][2]["masked"] == us.pixels["boxes"]
    parts = {s: certificate.for_study(cert, s) for s in certificate.studies(cert)}
    assert len(parts) == 2 and sum(len(p["instances"]) for p in parts.values()) == 3
    for study, part in parts.items():
        assert part["study_instance_uid"] == study and part["batch"] == cert["batch"] and part["batch_studies"] == 2
        assert all(i["study_instance_uid"] == study for i in part["instances"])
    with pytest.raises(certificate.CertificateError):
        certificate.for_study(cert, "1.2.3")


def test_review_policy_holds_what_batch_js_holds(samples, generated, ocr):
    ct = run_sync(deid().process(samples.bytes("CT_small.dcm")), None)
    us = first_run(generated[1].path.read_bytes(), ocr)
    assert [review.held(p, ct) for p in ("always", "pixels", "never", "")] == [True, False, False, False]
    assert [review.held(p, us) for p in ("always", "pixels", "never", "")] == [True, True, False, False]
