"""The same core run natively (run_sync with the native host's OCR and codecs): what the browser must match."""

from __future__ import annotations

from pathlib import Path

from py_deid.hosts import native
from py_deid.instance import Deidentifier, InstanceResult, run_sync
from py_deid.options import Options, Settings, Trial


def settings(options: tuple[str, ...] = (), **trial: str) -> Settings:
    return Settings(options=Options.from_names(options), trial=Trial(**trial))


def deidentify(paths: list[Path], settings: Settings, key: bytes) -> dict[Path, InstanceResult]:
    deid = Deidentifier(settings, key, codecs=native.codec_service())
    ocr = native.ocr_service()
    return {p: run_sync(deid.process(p.read_bytes()), ocr) for p in paths}
