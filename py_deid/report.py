"""The JSON report of a run: per input what happened, and the summary.

Two forms. The site's own report (`--report FILE.json`) names the inputs so the site can find what
failed; it stays on the site. `shareable()` gives the form that may leave the site (certificates, upload
manifests): inputs become ordinal numbers, and only pseudonymous UIDs, counts and PHI-free reasons remain.
The report is written as it goes (one entry at a time) so a folder of any size needs bounded memory.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from typing import IO

from . import __version__
from ._standard import table_e1_1
from .instance import InstanceResult
from .options import Settings

SHAREABLE_FIELDS = ("status", "sop_class_uid", "modality", "study_uid", "series_uid", "sop_uid", "transfer_syntax",
                    "actions", "warnings", "error", "pixels", "sha256")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def entry(input_name: str, result: InstanceResult, output: str | None, sha256: str | None = None) -> dict:
    e = {
        "input": input_name,
        "status": result.status,
        "output": output,
        "sop_class_uid": result.sop_class_uid or None,
        "modality": result.modality or None,
        "study_uid": result.study_uid or None,
        "series_uid": result.series_uid or None,
        "sop_uid": result.sop_uid or None,
        "transfer_syntax": result.transfer_syntax or None,
        "actions": dict(sorted(result.actions.items())),
        "warnings": list(result.warnings),
        "error": {"code": result.problem.code, "message": result.problem.message} if result.problem else None,
        "pixels": result.pixels,
        "sha256": sha256,
    }
    return e


def header(settings: Settings, *, key_source: str) -> dict:
    return {
        "tool": f"py_deid {__version__}",
        "profile": {
            "table": f"PS3.15 E.1-1 {table_e1_1.EDITION} + rows to {table_e1_1.LATER_EDITIONS}",
            "options": list(settings.options.names),
            "pixels": settings.pixels,
            "text": settings.text,
        },
        "pseudonym_key": key_source,  # where the key came from, never the key
        "started": _now(),
    }


class ReportWriter:
    """Streams entries to an open text file as one JSON document; keeps only the counts in memory."""

    def __init__(self, fh: IO[str], head: dict) -> None:
        self.fh = fh
        self.head = head
        self.counts: Counter = Counter()
        self.actions: Counter = Counter()
        self.first = True
        # json.dumps(e, sort_keys=True) makes an encoder for every entry: one made once writes the same text.
        self._encode = json.JSONEncoder(sort_keys=True).encode
        body = json.dumps(head, indent=1)[:-2]  # open the object, leave it unclosed
        fh.write(body + ',\n "files": [\n')

    def add(self, e: dict) -> None:
        self.counts[e["status"]] += 1
        self.actions.update(e.get("actions") or {})
        self.fh.write(("" if self.first else ",\n") + "  " + self._encode(e))
        self.first = False

    def close(self) -> dict:
        summary = {"finished": _now(), "summary": {
            "done": self.counts["done"], "skipped": self.counts["skipped"], "failed": self.counts["failed"],
            "actions": dict(sorted(self.actions.items()))}}
        self.fh.write("\n ],\n" + json.dumps(summary, indent=1)[2:] + "\n")
        return summary


def shareable(report: dict) -> dict:
    """The copy that may leave the site: no input paths, no output paths, no local details."""
    files = []
    for i, e in enumerate(report.get("files", []), 1):
        files.append({"n": i, **{k: e.get(k) for k in SHAREABLE_FIELDS}})
    out = {k: report[k] for k in ("tool", "profile", "started", "finished", "summary") if k in report}
    out["files"] = files
    return out
