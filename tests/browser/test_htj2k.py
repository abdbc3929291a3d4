"""HTJ2K in the browser: the instances tests/htj2k.py makes with a real encoder (OpenJPH's ojph_compress, from real
samples with burned-in PHI) dropped into the page with pixels="all", against the same core run natively.

The page decodes HTJ2K with the pinned OpenJPEG wasm (web/src/codecs.js), the native host with pylibjpeg-openjpeg.
What must hold: every instance is uploaded; its header is the native output's, attribute by attribute (transfer
syntax Explicit VR Little Endian, Lossy Image Compression truthful); the PHI glyphs measured on the original are
gone, and over them both hosts mask; and where neither host masked, the pixels are the native output's bit for bit
(the decoders agree, lossy codestreams included). Masks over other words may differ: the two OCR engines (Tesseract
5.5 natively, 5.1 in wasm) do not always read the same non-PHI words (as in tests/browser/test_parity.py)."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pydicom
import pytest

from tests import htj2k

from . import native
from .conftest import TOKEN, Receiver, Session

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KEY = b"htj2k-key-" + bytes(range(22))
EXPLICIT_LE = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def runs(dist, browser, samples, tmp_path_factory):
    from py_deid.options import Options, Settings, Trial

    htj2k.require_encoder()
    made = htj2k.make_all(samples, tmp_path_factory.mktemp("htj2k-browser") / "in")
    paths = [path for _, path, _ in made.values()]
    expected = native.deidentify(paths, Settings(options=Options.from_names(()), trial=Trial(), pixels="all"), KEY)
    receiver = Receiver(dist, tmp_path_factory.mktemp("htj2k-store") / "store")
    receiver.start()
    s = Session(browser, receiver.url + "/")
    try:
        s.uploader(token=TOKEN, pixels="all")
        s.set_key(KEY)
        s.listen()
        s.page.set_input_files("deid-uploader >> #files", [str(p) for p in paths])
        s.wait_complete(timeout=600)
        rows = {r["name"]: r for r in s.rows()}
        stored = receiver.stored()
        yield {name: (recipe, path, arr, expected[path], rows[name], stored) for name, (recipe, path, arr)
               in made.items()}
    finally:
        s.close()
        receiver.stop()


@pytest.mark.parametrize("name", [r.name for r in htj2k.RECIPES])
def test_browser_deidentifies_htj2k_like_native(runs, name):
    recipe, path, arr, want, row, stored = runs[name]
    assert want.status == "done", want.problem
    assert want.pixels["cleaned"]
    assert row["status"] == "uploaded", row
    got = stored[want.sop_uid].read_bytes()
    assert native.differences(got, want.output) in ([], ["(7FE0,0010)"]), "the header differs from native"

    out = pydicom.dcmread(BytesIO(got))
    assert out.file_meta.TransferSyntaxUID == EXPLICIT_LE
    if recipe.lossless:
        assert "LossyImageCompressionMethod" not in out
    else:
        assert out.LossyImageCompression == "01" and out.LossyImageCompressionMethod == "ISO_15444_15"

    original = htj2k.frames_of(pydicom.dcmread(path))
    browser, nat = htj2k.frames_of(out), htj2k.frames_of(pydicom.dcmread(BytesIO(want.output)))
    assert browser.shape == nat.shape == original.shape
    boxes, threshold = htj2k.PHI_GLYPHS[name]
    for i in range(len(arr)):
        for word, box in boxes.items():
            had, left = htj2k.glyph_pixels(original[i], box, threshold), htj2k.glyph_pixels(browser[i], box, threshold)
            assert had > 100, f"frame {i} {word}: the check does not see the text on the original"
            assert left == 0, f"frame {i} {word}: {left} of its {had} glyph pixels left unmasked by the browser"
    changed_b, changed_n = browser != original, nat != original
    if changed_b.ndim == 4:
        changed_b, changed_n = changed_b.any(axis=3), changed_n.any(axis=3)
    # OCR may differ between the hosts (Tesseract 5.5 natively, 5.1 in wasm) on words that are not the PHI: those
    # masks may differ (printed for the record). Over the PHI both hosts mask, and the rest is decoded alike.
    phi = np.zeros(changed_b.shape, bool)
    for x, y, w, h in boxes.values():
        phi[:, y:y + h, x:x + w] = True
    assert not (changed_n & ~changed_b & phi).any(), "the browser left PHI pixels unmasked that native masked"
    missing, extra = int(np.count_nonzero(changed_n & ~changed_b)), int(np.count_nonzero(changed_b & ~changed_n))
    print(f"{name}: masked by native only {missing} px, by the browser only {extra} px")
    neither = ~(changed_b | changed_n)
    assert np.array_equal(browser[neither], nat[neither]), "unmasked pixels differ from the native output"
    if recipe.lossless:
        assert np.array_equal(browser[neither], arr[neither]), "lossless HTJ2K not decoded to the original"
