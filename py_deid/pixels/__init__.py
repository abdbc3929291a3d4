"""The pixel step: find burned-in text with OCR and mask it, on every frame, in the original transfer syntax.

Contract used by py_deid.instance:

    outcome = yield from clean(ds, settings, terms, transfer_syntax=ts, codecs=codecs)

a generator that may yield OcrRequest and receives list[Word]; it edits ds in place (Pixel Data, Burned In
Annotation, overlays) and returns a PixelOutcome. When the host has no OCR its driver throws ServiceUnavailable
into the generator; when cleaning is required that propagates (fail closed). Anything else that stops cleaning
is a PixelError whose message names what is missing and never quotes a value from the file.

Where the parts live: clean.py (the orchestration), detect.py (which frames and regions are read, and how),
text_policy.py (which words are masked), templates.py (fixed regions of known devices), verify.py (the
independent re-read of `py-deid verify`); the pixel buffers themselves: info.py, frames.py and friends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BURNED_IN_MODALITIES", "CAPTURE_MODALITIES", "PixelError", "PixelOutcome", "clean", "cleaning_required"]

# Modalities whose images often carry burned-in annotation (PS3.15 E.3.1 practice; RSNA CTP's lists).
BURNED_IN_MODALITIES = frozenset({"US", "XA", "RF", "SC", "OT", "ES", "XC", "GM", "SM", "DOC", "IVUS", "OP", "IO"})
# Projection modalities whose secondary captures (and only those) are treated like the above.
CAPTURE_MODALITIES = frozenset({"DX", "CR", "MG", "PX"})


class PixelError(Exception):
    """Cleaning was required and could not be done. `message` never holds a value from the file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class PixelOutcome:
    required: bool = False
    cleaned: bool = False
    transfer_syntax: str = ""
    frames: dict[int, list[tuple[int, int, int, int]]] = field(default_factory=dict)  # (x, y, w, h) masked
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    words: list[dict] = field(default_factory=list)  # local only: OCR text; may hold PHI
    overlays_cleaned: set[int] = field(default_factory=set)  # overlay groups (0x60xx) read and cleaned
    overlay_boxes: dict[str, list] = field(default_factory=dict)  # "6000/0" -> boxes masked in that plane

    def summary(self) -> dict:
        """PHI-free: what was decided and where masks went, never the text."""
        return {"required": self.required, "cleaned": self.cleaned, "reason": self.reason,
                "transfer_syntax": self.transfer_syntax,
                "boxes": {str(k): [list(b) for b in v] for k, v in sorted(self.frames.items())},
                "counts": dict(sorted(self.counts.items())),
                "overlays_cleaned": [f"{g:04X}" for g in sorted(self.overlays_cleaned)],
                "overlay_boxes": dict(sorted(self.overlay_boxes.items()))}

    def local_words(self) -> list[dict]:
        """For the review screen on the site: what OCR read, where, and what was done with it."""
        return list(self.words)


# At the end: clean.py and the buffer modules import PixelError from here. The function then shadows the
# submodule of the same name, so `pixels.clean(...)` is the step.
from .clean import clean, cleaning_required  # noqa: E402
