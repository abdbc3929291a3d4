"""What the pixel step reports and how it fails: a leaf module every pixel module may import."""

from __future__ import annotations

from dataclasses import dataclass, field

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
