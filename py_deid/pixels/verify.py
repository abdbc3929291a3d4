"""Residual burned-in text: an independent OCR re-read of (de-identified) pixels, as MIDI-B scored cleaning.

Independent of the cleaning pass: other page segmentation (Tesseract's automatic layout, psm 3, instead of
sparse text, psm 11), other enlargement (pixel repetition by 3 instead of smooth 2x/4x), no second look.
A finding says where (frame, box) and what kind, never the text:
    phi-term     one of the instance's PHI terms is still readable (needs the terms of the original header)
    phi-pattern  a PHI-shaped pattern: a date, a time of day, a long digit run, a labelled identifier
    text         (mode "strict") any other word that is not technical vocabulary
"""

from __future__ import annotations

from collections.abc import Generator

from pydicom.dataset import Dataset

from ..hosts.services import OcrRequest, Word
from ..phi import PhiTerms
from .detect import FrameReader
from .phi_text import PhiMatcher
from .text_policy import decide, default_vocabulary
from .us_regions import clinical_regions

VERIFY_PSM = 3


def verify_factor(width: int, height: int) -> int:
    longest = max(width, height)
    return 3 if longest <= 1024 else 2 if longest <= 2048 else 1


def residual_text(ds: Dataset, terms: PhiTerms | None, *, transfer_syntax: str, codecs=None,
                  mode: str = "phi") -> Generator[OcrRequest, list[Word], list[dict]]:
    """Findings of PHI still readable in the pixels of ds (an empty list when none or no pixel data).
    `mode`: "phi" flags terms and patterns; "strict" also any non-technical text."""
    if "PixelData" not in ds:
        return []
    from .step import open_frames

    info, store = open_frames(ds, transfer_syntax, codecs)
    width, height = info.columns, info.rows
    reader = FrameReader(store, width, height, factor=verify_factor(width, height), psm=VERIFY_PSM,
                         second_look=False, nearest=True)
    matcher = PhiMatcher(terms)
    vocabulary = default_vocabulary()
    clinical = clinical_regions(ds, width, height)
    policy = "strict" if mode == "strict" else "phi"
    findings: list[dict] = []
    for i in range(store.count):
        readings = yield from reader.read(i)
        # the frame's reading and that of lines across a band's edge (detect.py); no second look here
        for words in (readings[0], readings[2]):
            for d in decide(words, policy, matcher, vocabulary, clinical):
                # a weak line beside PHI is masked when cleaning as a precaution; read again, it says nothing is
                # readable (its PHI neighbour, if still there, is the finding)
                if not d.mask or d.reason == "unreadable-beside-phi":
                    continue
                w = words[d.index]
                findings.append({"frame": i, "box": [w.left, w.top, w.width, w.height], "kind": d.reason,
                                 "confidence": round(w.confidence, 1), "characters": len(w.text)})
    return findings
