"""The same core run natively (run_sync with the native host's OCR and codecs): what the browser must match."""

from __future__ import annotations

from pathlib import Path

from py_deid.hosts import native
from py_deid.instance import Deidentifier, InstanceResult, run_sync
from py_deid.options import Options, Settings, Trial


def settings(options: tuple[str, ...] = (), **trial: str) -> Settings:
    return Settings(options=Options.from_names(options), trial=Trial(**trial))


def deidentify(paths: list[Path], settings: Settings, key: bytes) -> dict[Path, InstanceResult]:
    deid = Deidentifier(settings, key, codecs=native.codec_service())
    ocr = native.ocr_service()
    return {p: run_sync(deid.process(p.read_bytes()), ocr) for p in paths}


def flat(ds, prefix: str = "") -> dict:
    """Every attribute, nested ones under their sequence path; Pixel Data as bytes (so masks compare too)."""
    out = {}
    for el in ds:
        key = f"{prefix}{el.tag}"
        if el.VR == "SQ":
            for i, item in enumerate(el.value):
                out.update(flat(item, f"{key}[{i}]."))
        else:
            out[key] = bytes(el.value) if el.tag == 0x7FE00010 else el.value
    return out


def differences(got: bytes, want: bytes) -> list[str]:
    """Attributes (file meta included) whose presence or value differ between two encoded instances."""
    import pydicom
    from io import BytesIO

    a, b = pydicom.dcmread(BytesIO(got)), pydicom.dcmread(BytesIO(want))
    fa, fb = flat(a.file_meta, "meta.") | flat(a), flat(b.file_meta, "meta.") | flat(b)
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k, "<absent>") != fb.get(k, "<absent>"))


def masks(original: bytes, got: bytes, want: bytes) -> tuple[int, int]:
    """Mask by mask: (pixels native masked that the browser left, pixels the browser masked beyond native).
    The two OCR engines (Tesseract 5.5 natively, 5.1 in wasm) may differ; the browser must never mask less."""
    import numpy as np
    import pydicom
    from io import BytesIO

    orig, a, b = (pydicom.dcmread(BytesIO(x)).pixel_array for x in (original, got, want))
    browser, nat = a != orig, b != orig
    return int(np.count_nonzero(nat & ~browser)), int(np.count_nonzero(browser & ~nat))
