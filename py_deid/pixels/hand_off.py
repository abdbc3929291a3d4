"""HandOff, a leaf of its own: py_deid.instance makes one for every instance with pixels, and a header-only run
(`--pixels off`) must not import the frame store (backends, decoders, rendering) to do so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class HandOff:
    """How the host takes the frames back, given by one that writes the dataset through py_deid.instance (the
    encoder): rewritten native Pixel Data stays in pieces (encoder.Pieces: unchanged frames as views of the
    value read, masked frames made again when written), and `release` is called as the store moves on from a
    frame read from the input (a memory-mapping host lets go of the pages read). Without one (a caller that
    writes the dataset with pydicom), Pixel Data is written back as one bytes value."""

    release: Callable[[], None] | None = None
