"""The Sequence of Ultrasound Regions (0018,6011): where the clinical image is, as the header says.

Text OCR reads outside these regions is annotation; inside a 2D / M-mode / Doppler region it may be speckle
that OCR mistakes for letters, so short low-confidence reads there are treated as noise (PHI matches never).
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from .geometry import Box

# Region Spatial Format (0018,6012): 1 2D, 2 M-mode, 3 spectral, 4 waveform, 5 graphics; 0 none.
IMAGE_FORMATS = frozenset({1, 2, 3})


def clinical_regions(ds: Dataset, width: int, height: int) -> list[Box]:
    out: list[Box] = []
    try:
        items = list(ds.get("SequenceOfUltrasoundRegions", None) or [])
    except Exception:
        return out
    for item in items:
        try:
            fmt = int(item.get("RegionSpatialFormat", 0) or 0)
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1), int(item.RegionLocationMaxY1)
        except (AttributeError, TypeError, ValueError):
            continue
        if fmt not in IMAGE_FORMATS:
            continue
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(width - 1, x1), min(height - 1, y1)
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1 - x0 + 1, y1 - y0 + 1))
    return out
