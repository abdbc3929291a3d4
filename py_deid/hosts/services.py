"""The host services: what differs between CPython ("native") and the browser (Pyodide).

The core never imports a host. It is handed objects that satisfy these protocols (codecs), or it yields
requests that the host's driver answers (OCR, which is asynchronous in the browser). Each host implements
every service with the same signature: py_deid.hosts.native and py_deid.hosts.browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class GrayImage:
    """An 8-bit grayscale image, row-major, one byte per pixel; what OCR reads."""

    width: int
    height: int
    pixels: bytes

    def __post_init__(self) -> None:
        if len(self.pixels) != self.width * self.height:
            raise ValueError("GrayImage: pixel buffer does not match width x height")

    def pgm(self) -> bytes:
        """The image as a binary PGM (P5) file: tesseract.js and Tesseract both read it without a copy."""
        return b"P5\n%d %d\n255\n" % (self.width, self.height) + self.pixels


@dataclass(frozen=True)
class Word:
    """One word found by OCR, with its box in the coordinates of the image that was read."""

    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float  # 0..100, as Tesseract reports it

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


@dataclass(frozen=True)
class OcrRequest:
    """What the core asks OCR to read. `psm` is Tesseract's page segmentation mode (11: sparse text)."""

    image: GrayImage
    psm: int = 11
    purpose: str = "detect"  # "detect" while cleaning, "verify" for the independent re-read
    frame: int = -1  # the frame being read (0-based) of `frames`, for a host's progress display; -1 unknown
    frames: int = 0


@dataclass(frozen=True)
class OcrBatch:
    """Several OcrRequests that do not depend on each other's answers, asked at once so that a host with more
    than one OCR engine can read them at the same time. The answer is a list of words per request, in order."""

    requests: tuple[OcrRequest, ...]


@dataclass(frozen=True)
class OcrStart:
    """Requests of the OcrBatch to come, made known while the rest of that batch is still being prepared: a host
    that reads in the background may start on them now. The answer is None; their words come with the batch,
    which holds these same request objects (a host that cannot start early reads them then)."""

    requests: tuple[OcrRequest, ...]


class ServiceUnavailable(RuntimeError):
    """A host service the work needs is not there (names the missing package or asset)."""


@runtime_checkable
class OcrService(Protocol):
    """Synchronous OCR (the native host). The browser answers OcrRequests asynchronously instead."""

    def available(self) -> bool: ...

    def find_text(self, request: OcrRequest) -> list[Word]: ...


@runtime_checkable
class CodecService(Protocol):
    """Decode (and, where the host can, losslessly encode) compressed pixel data frames."""

    def can_decode(self, transfer_syntax: str) -> bool: ...

    def decode(self, frame: bytes, transfer_syntax: str, info: dict) -> bytes:
        """One compressed frame -> native pixel bytes (little endian, planar configuration 0 for colour)."""
        ...

    def can_encode(self, transfer_syntax: str) -> bool: ...

    def encode(self, pixels: bytes, transfer_syntax: str, info: dict) -> bytes: ...
