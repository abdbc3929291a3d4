"""The native (CPython) host: OCR with tesserocr, codecs with pydicom's decoders and the pylibjpeg family.

Each service is optional: a missing package leaves it out, and the core fails closed where it needs it
(an instance that must be cleaned is never written as if clean).
"""

from __future__ import annotations

import os

from . import IS_BROWSER
from .services import CodecService, OcrService

if IS_BROWSER:
    # Its libraries (tesserocr, numpy, Pillow, the pylibjpeg family) have no Pyodide build: without this, every
    # service would quietly be missing instead of the import failing where the wrong host was chosen.
    raise ImportError("py_deid.hosts.native is the CPython host; in the browser use py_deid.hosts.browser")


# numpy's wheels carry OpenBLAS, which starts a thread for every core when numpy is imported (0.03-0.05 s of
# CPU at start-up on two cores, measured; more with more cores). py_deid does no linear algebra but one small
# matrix product per JPEG frame its own decoder reconstructs, and a batch runs its jobs as processes, not
# threads: one BLAS thread each is enough.
ARRAY_THREADS = {"OPENBLAS_NUM_THREADS": "1"}


def one_array_thread() -> None:
    """Before numpy is first imported (in a process the command line starts): one BLAS thread, unless the
    environment already says how many."""
    for name, value in ARRAY_THREADS.items():
        os.environ.setdefault(name, value)


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
