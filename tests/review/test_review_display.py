"""What the review screen draws is the de-identified pixels: frames found and decoded in the page (native, RLE,
JPEG Baseline, JPEG 2000) equal pydicom's reading of the same output bytes."""

from __future__ import annotations

import base64
from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut

from tests.browser.conftest import TOKEN

from .test_review_browser import EL

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FILES = ["ctbrain1.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm", "MR_small_implicit.dcm", "US1_UNCR.dcm",
         "examples_palette.dcm"]

READ = """async () => {
    const { loadFrame } = await import(new URL('app/review/pixels.js', location.href).href);
    const el = document.querySelector('deid-uploader');
    const out = [];
    for (const e of el.run.reviewing.entries) {
        const bytes = new Uint8Array(e.instance.bytes);
        let bin = '';
        for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        const frames = [];
        for (let f = 0; f < e.local.display.frames; f += 1) {
            const fr = await loadFrame(e, f, (...a) => el.call(...a));
            frames.push({ gray: fr.gray ? Array.from(fr.gray) : null, rgb: fr.rgb ? Array.from(fr.rgb) : null });
        }
        out.push({ output: btoa(bin), frames, syntax: e.local.display.transferSyntax });
    }
    return out;
}"""


def test_frames_drawn_are_the_output_pixels(receiver, session_factory, samples):
    s = session_factory(receiver.url + "/")
    s.uploader(token=TOKEN, review="always", pixels="off", **{"pool-size": "1"})
    s.listen()
    s.page.set_input_files("deid-uploader >> #files", [str(samples.path(n)) for n in FILES])
    s.page.wait_for_function("() => window.__events.some((e) => e.type === 'deid-review-required')", timeout=240000)
    s.page.wait_for_function(f"() => {EL}.run.reviewing.entries.length === {len(FILES)}")
    syntaxes = set()
    for item in s.page.evaluate(READ):
        ds = pydicom.dcmread(BytesIO(base64.b64decode(item["output"])))
        syntaxes.add(item["syntax"])
        want = ds.pixel_array
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames == 1:
            want = want[None]
        for f, got in enumerate(item["frames"]):
            if ds.PhotometricInterpretation == "PALETTE COLOR":  # drawn in its colours, 8 bits a channel
                rgb = apply_color_lut(want[f], ds)
                rgb = rgb >> 8 if rgb.max() > 255 else rgb
                assert got["gray"] is None and np.array_equal(np.array(got["rgb"]).reshape(rgb.shape), rgb)
            elif got["gray"] is not None:
                modality = want[f] * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
                assert np.array_equal(np.array(got["gray"]).reshape(want[f].shape), modality), item["syntax"]
            else:
                rgb = want[f]  # pydicom hands YCbCr back as RGB
                diff = np.abs(np.array(got["rgb"]).reshape(rgb.shape).astype(int) - rgb.astype(int))
                assert diff.max() <= 2, (item["syntax"], diff.max())  # YBR->RGB rounding
    assert {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.91"} <= syntaxes
