"""Encapsulated Pixel Data (PS3.5 A.4): split into frames, put back together with fresh offset tables."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames

from .info import PixelCodecError


def split(ds: Dataset, frames: int) -> list[bytes]:
    """The compressed bytes of every frame; raises PixelCodecError unless exactly `frames` are found."""
    data = ds.PixelData
    extended = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    try:
        found = list(generate_frames(data, number_of_frames=frames, extended_offsets=extended))
    except Exception:
        raise PixelCodecError("encapsulation", "encapsulated pixel data could not be split into frames") from None
    if len(found) != frames:
        raise PixelCodecError("encapsulation", "encapsulated pixel data does not hold the number of frames "
                              "the header declares")
    return found


def join(ds: Dataset, frames: list[bytes]) -> None:
    """Write frames as encapsulated Pixel Data (one fragment each) with a Basic Offset Table, or with an
    Extended Offset Table if the input had one (it is recomputed: frame sizes changed)."""
    frames = [f + b"\0" if len(f) % 2 else f for f in frames]
    if "ExtendedOffsetTable" in ds:
        data, offsets, lengths = encapsulate_extended(frames)
        ds.ExtendedOffsetTable = offsets
        ds.ExtendedOffsetTableLengths = lengths
    else:
        total = sum(len(f) + 8 for f in frames)
        data = encapsulate(frames, has_bot=total < 2**32 - 1)
    ds.PixelData = data
    elem = ds["PixelData"]
    elem.VR = "OB"
    elem.is_undefined_length = True


def drop_offset_tables(ds: Dataset) -> None:
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:
            del ds[keyword]
