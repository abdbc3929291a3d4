"""An OcrService that reads with the browser's engine (tesseract.js 7 under Node, browser_ocr.js), so the
evaluation set can be scored as the browser reads it. Needs Node and web/node_modules (npm ci in web/)."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

from py_deid.hosts.services import OcrRequest, Word

ROOT = Path(__file__).resolve().parents[3]


class BrowserEngineOcr:
    def __init__(self, web: Path = ROOT / "web") -> None:
        self.proc = subprocess.Popen(["node", str(Path(__file__).with_name("browser_ocr.js")), str(web)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self.proc.stdout.readline().strip() != b"READY":
            raise RuntimeError("tesseract.js did not start under Node (is web/node_modules there?)")

    def find_text(self, request: OcrRequest) -> list[Word]:
        pgm = request.image.pgm()
        self.proc.stdin.write(struct.pack("<II", request.psm, len(pgm)) + pgm)
        self.proc.stdin.flush()
        return [Word(w["text"], int(w["left"]), int(w["top"]), int(w["width"]), int(w["height"]),
                     float(w["confidence"])) for w in json.loads(self.proc.stdout.readline())]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
