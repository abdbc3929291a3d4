"""The pixel step (burned-in text). Interim: decides whether cleaning is required and fails closed.

Contract used by py_deid.instance:

    outcome = yield from clean(ds, settings, terms, transfer_syntax=ts, codecs=codecs)

a generator that may yield OcrRequest and receive list[Word]; it edits ds in place (Pixel Data, Burned In
Annotation, overlays) and returns a PixelOutcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from ..hosts.services import ServiceUnavailable

# Modalities whose images often carry burned-in annotation (PS3.15 E.3.1 practice; RSNA CTP's lists).
BURNED_IN_MODALITIES = frozenset({"US", "XA", "RF", "SC", "OT", "ES", "XC", "GM", "SM", "DOC", "IVUS", "OP"})


@dataclass
class PixelOutcome:
    required: bool = False
    cleaned: bool = False
    transfer_syntax: str = ""
    frames: dict[int, list[tuple[int, int, int, int]]] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"required": self.required, "cleaned": self.cleaned,
                "boxes": {str(k): [list(b) for b in v] for k, v in sorted(self.frames.items())}}

    def local_words(self) -> list:
        return []


def cleaning_required(ds: Dataset, policy: str) -> bool:
    if policy == "off" or "PixelData" not in ds:
        return False
    if policy == "all":
        return True
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned == "YES":
        return True
    modality = str(ds.get("Modality", "") or "").strip().upper()
    return modality in BURNED_IN_MODALITIES and burned != "NO"


def clean(ds: Dataset, settings, terms, *, transfer_syntax: str, codecs=None):
    if cleaning_required(ds, settings.pixels):
        raise ServiceUnavailable("burned-in text cleaning is required for this instance and is not available")
    return PixelOutcome()
    yield  # a generator, like the real step
