"""The native (CPython) host: OCR with tesserocr, codecs with pydicom's decoders and the pylibjpeg family.

Each service is optional: a missing package leaves it out, and the core fails closed where it needs it
(an instance that must be cleaned is never written as if clean).
"""

from __future__ import annotations

from ..hosts.services import CodecService, OcrService


def ocr_service() -> OcrService | None:
    try:
        from .native_ocr import NativeOcr
    except ImportError:
        return None
    ocr = NativeOcr()
    return ocr if ocr.available() else None


def codec_service() -> CodecService | None:
    try:
        from .native_codecs import NativeCodecs
    except ImportError:
        return None
    return NativeCodecs()
