"""OCR on CPython: Tesseract 5 through `tesserocr`, reading with the pinned model of py_deid.hosts.tessdata.

One tesserocr API object is created per thread and reused for every request (loading the model costs far
more than reading a small image; Tesseract's API object is not safe to share between threads).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

from . import tessdata
from .services import OcrRequest, ServiceUnavailable, Word

_MISSING = "native OCR needs the Python package 'tesserocr' (pip install 'py_deid[native]')"


def _tesserocr():
    try:
        import tesserocr
    except ImportError:
        return None
    return tesserocr


def _installed() -> bool:
    """Whether tesserocr can be imported, without importing it: the engine is loaded when the first frame is
    read (a run whose images hold no text never loads it)."""
    if "tesserocr" in sys.modules:
        return sys.modules["tesserocr"] is not None
    try:
        return importlib.util.find_spec("tesserocr") is not None
    except (ImportError, ValueError):
        return False


class NativeOcr:
    """OcrService: words with boxes and confidences in the coordinates of the image sent."""

    def __init__(self, tessdata_dir: Path | str | None = None, *, download: bool = False) -> None:
        self._dir = Path(tessdata_dir) if tessdata_dir else None
        self._download = download
        self._local = threading.local()
        self._folder: Path | None = None

    def _model_folder(self) -> Path | None:
        if self._folder is None:
            if self._download:
                try:
                    self._folder = tessdata.ensure(self._dir)
                except tessdata.TessdataError:
                    return None
            else:
                self._folder = tessdata.present(self._dir)
        return self._folder

    def available(self) -> bool:
        return _installed() and self._model_folder() is not None

    def missing(self) -> str:
        """What is missing, for an error message ('' when available)."""
        if not _installed():
            return _MISSING
        if self._model_folder() is None:
            return "the OCR model eng.traineddata is missing; run: python -m py_deid.hosts.tessdata"
        return ""

    def _api(self):
        api = getattr(self._local, "api", None)
        if api is None:
            if not self.available():
                raise ServiceUnavailable(self.missing())
            tesserocr = _tesserocr()
            if tesserocr is None:  # found but does not import (a broken install)
                raise ServiceUnavailable(_MISSING)
            api = tesserocr.PyTessBaseAPI(path=str(self._model_folder()) + "/", lang=tessdata.LANGUAGE,
                                          oem=tesserocr.OEM.LSTM_ONLY)
            # The images are screen renderings, not scans: a fixed resolution silences the DPI guess.
            api.SetVariable("user_defined_dpi", "96")
            self._local.api = api
        return api

    def find_text(self, request: OcrRequest) -> list[Word]:
        tesserocr = _tesserocr()
        api = self._api()
        image = request.image
        if image.width < 3 or image.height < 3:
            return []
        api.SetPageSegMode(int(request.psm))
        api.SetImageBytes(image.pixels, image.width, image.height, 1, image.width)
        api.Recognize()
        words: list[Word] = []
        it = api.GetIterator()
        if it is None:
            return words
        level = tesserocr.RIL.WORD
        while True:
            text = it.GetUTF8Text(level) if not it.Empty(level) else None
            box = it.BoundingBox(level)
            if text and text.strip() and box:
                x1, y1, x2, y2 = box
                words.append(Word(text.strip(), x1, y1, max(1, x2 - x1), max(1, y2 - y1),
                                  float(it.Confidence(level))))
            if not it.Next(level):
                break
        api.Clear()
        return words

    def close(self) -> None:
        api = getattr(self._local, "api", None)
        if api is not None:
            api.End()
            self._local.api = None
