"""The native (CPython) host: OCR with tesserocr, codecs with pydicom's decoders and the pylibjpeg family.

Each service is optional: a missing package leaves it out, and the core fails closed where it needs it
(an instance that must be cleaned is never written as if clean).
"""

from __future__ import annotations

import os

from . import HAS_PROC_STATM, IS_BROWSER
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


# glibc serves a block of 128 KiB or more with its own mapping, returned when freed; but each time such a block
# is freed it raises that threshold to the block's size (up to 32 MiB), and later blocks of the pixel step's
# size (a frame, its rendering, the screen's bands) then come from the heap, which is not given back and
# fragments: a 15 MB radiograph after a 1024 x 768 ultrasound frame peaked at 166 MB, 139 MB alone. A fixed
# threshold (setting it stops glibc moving it) keeps every large block in its own mapping: 141 MB.
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def return_large_blocks() -> bool:
    """In a process the command line starts for pixel work: large blocks always mapped, so that freed ones go
    back to the system (unless the environment already sets glibc's threshold). False where the C library is
    not glibc (nothing changes)."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def resident_mb() -> float | None:
    """This process's resident size now (not its peak), in MB; None where it cannot be read (then no worker is
    ever replaced for its size: py_deid.batch.Job.worker_limit_mb)."""
    if not HAS_PROC_STATM:
        return None
    try:
        with open("/proc/self/statm", "rb") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * _PAGE / 2**20


_PAGE = os.sysconf("SC_PAGE_SIZE") if HAS_PROC_STATM else 0


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
