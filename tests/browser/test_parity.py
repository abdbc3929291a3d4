"""Same core, same results: real files de-identified natively (run_sync) and in the browser with the same
settings and key, compared attribute by attribute (and pixel data byte for byte, i.e. mask by mask)."""

from __future__ import annotations

from io import BytesIO

import pydicom
import pytest

from . import native
from .conftest import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KEY = b"parity-key-" + bytes(range(21))
OPTIONS = ("retain_safe_private", "retain_device_identity", "clean_descriptors")
NAMES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtdose.dcm", "JPEG2000.dcm", "emri_small_RLE.dcm",
         "SC_rgb_small_odd.dcm", "chrH31.dcm", "test-SR.dcm", "waveform_ecg.dcm", "explicit_VR-UN.dcm",
         "MR-SIEMENS-DICOM-WithOverlays.dcm", "OBXXXX1A.dcm", "US1_J2KI.dcm", "GREYSCALE_IMAGE.dcm",
         "liver.dcm", "nested_priv_SQ.dcm", "no_meta_group_length.dcm", "ExplVR_BigEndNoMeta.dcm", "MR_truncated.dcm"]


def _flat(ds, prefix=""):
    out = {}
    for el in ds:
        key = f"{prefix}{el.tag}"
        if el.VR == "SQ":
            for i, item in enumerate(el.value):
                out.update(_flat(item, f"{key}[{i}]."))
        else:
            out[key] = el.value if el.tag != 0x7FE00010 else bytes(el.value)
    return out


def test_browser_matches_native_attribute_by_attribute(receiver, session_factory, samples):
    paths = [samples.path(n) for n in NAMES]
    expected = native.deidentify(paths, native.settings(OPTIONS), KEY)
    s = session_factory(receiver.url + "/")
    s.uploader(token=TOKEN, options=" ".join(OPTIONS))
    s.set_key(KEY)
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(p) for p in paths])
    s.wait_complete(timeout=600)
    rows = s.rows()
    stored = receiver.stored()
    for path, row in zip(paths, rows):
        want = expected[path]
        assert row["name"] == path.name
        if want.status != "done":
            assert row["status"] == want.status and row["detail"] == want.problem.message, (path.name, row)
            continue
        assert row["status"] == "uploaded", (path.name, row)
        got = pydicom.dcmread(BytesIO(stored[want.sop_uid].read_bytes()))
        ref = pydicom.dcmread(BytesIO(want.output))
        g, r = _flat(got), _flat(ref)
        assert g.keys() == r.keys(), (path.name, set(g) ^ set(r))
        diff = [k for k in r if g[k] != r[k]]
        assert not diff, (path.name, diff[:5])
    assert sum(e.status == "done" for e in expected.values()) >= 10
