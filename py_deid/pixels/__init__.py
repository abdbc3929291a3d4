"""The pixel step: find burned-in text with OCR and mask it, on every frame, in the original transfer syntax.

Contract used by py_deid.instance:

    outcome = yield from clean(ds, settings, terms, transfer_syntax=ts, codecs=codecs)

a generator that may yield OcrRequest and receives list[Word]; it edits ds in place (Pixel Data, Burned In
Annotation, overlays) and returns a PixelOutcome. When the host has no OCR its driver throws ServiceUnavailable
into the generator; when cleaning is required that propagates (fail closed). Anything else that stops cleaning
is a PixelError whose message names what is missing and never quotes a value from the file.

Where the parts live: step.py (the orchestration), outcome.py (what it reports, how it fails), text_presence.py
(where text is, without OCR), detect.py (which frames and regions are read, and how), text_policy.py (which
words are masked), templates.py (fixed regions of known devices), verify.py (the independent re-read of
`py-deid verify`); the pixel buffers themselves: info.py, frames.py and friends; off.py (what `--pixels off`
does, without importing the step, which this package loads only when `clean` is first asked for).
"""

from __future__ import annotations

from .outcome import BURNED_IN_MODALITIES, CAPTURE_MODALITIES, PixelError, PixelOutcome

__all__ = ["BURNED_IN_MODALITIES", "CAPTURE_MODALITIES", "PixelError", "PixelOutcome", "clean", "cleaning_required"]


def __getattr__(name: str):
    # The step (OCR, screening, templates, the frame store: ~60 ms of imports) is loaded when first asked for;
    # a header-only run (`--pixels off`, pixels.off) never asks.
    if name in ("clean", "cleaning_required"):
        from . import step

        return getattr(step, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
