"""`py-deid verify` on files: the header checks of verify.py, plus the independent OCR pass over pixels."""

from __future__ import annotations

import warnings

import pydicom

from . import phi
from .batch import iter_inputs
from .instance import read_dataset, InstanceProblem, transfer_syntax_of
from .options import Options
from .verify import Finding, check_dataset, preamble_findings

UID_VR = "UI"


def _originals(paths: list[str]) -> tuple[set[str], phi.PhiTerms | None]:
    uids: set[str] = set()
    terms = []
    for item in iter_inputs(paths):
        if item.path is None:
            continue
        try:
            ds = pydicom.dcmread(item.path, force=True)
            for elem in ds.iterall():
                if elem.VR == UID_VR and elem.value:
                    values = elem.value if isinstance(elem.value, (list, tuple)) or \
                        type(elem.value).__name__ == "MultiValue" else [elem.value]
                    uids.update(str(v).strip("\0 ") for v in values if len(str(v)) > 8)
            terms.append(phi.PhiTerms.from_dataset(ds))
        except Exception:
            continue
    from pydicom.uid import UID_dictionary
    return {u for u in uids if u not in UID_dictionary}, (phi.merge(terms) if terms else None)


def _pixel_findings(ds, terms, ocr, mode: str) -> list[Finding]:
    from .pixels import verify as pixel_verify
    steps = pixel_verify.residual_text(ds, terms, transfer_syntax=transfer_syntax_of(ds), codecs=_codecs(), mode=mode)
    from .instance import run_sync
    found = run_sync(steps, ocr)
    return [Finding("pixel-text", f"frame {f.get('frame', 0)} box {list(f.get('box', ()))}",
                    f"readable {f.get('kind', 'text')} in the pixels") for f in found or []]


def _codecs():
    from .hosts import native
    return native.codec_service()


def verify_files(paths: list[str], options: Options, *, against: list[str], ocr: bool,
                 text: str = "strict", subject_ids: frozenset[str] = frozenset(),
                 subject_pattern: str | None = None) -> list[tuple[str, Finding]]:
    original_uids, terms = _originals(against) if against else (None, None)
    ocr_service = None
    if ocr:
        from .hosts import native
        ocr_service = native.ocr_service()
    out: list[tuple[str, Finding]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in iter_inputs(paths):
            if item.path is None:
                out.append((item.name, Finding("unreadable", "", item.problem.message)))
                continue
            try:
                data = item.path.read_bytes()
                ds = read_dataset(data)
            except InstanceProblem as p:
                if p.code in ("dicomdir", "not-dicom", "empty"):
                    continue
                out.append((item.name, Finding("unreadable", "", p.message)))
                continue
            except OSError as e:
                out.append((item.name, Finding("unreadable", "", f"cannot be read ({e.strerror})")))
                continue
            for f in preamble_findings(data) + check_dataset(
                    ds, options, original_uids=original_uids, terms=terms, subject_ids=subject_ids,
                    subject_pattern=subject_pattern):
                out.append((item.name, f))
            if ocr_service is not None and "PixelData" in ds:
                try:
                    for f in _pixel_findings(ds, terms, ocr_service, text):
                        out.append((item.name, f))
                except Exception as e:  # noqa: BLE001 - report, never crash the whole check
                    out.append((item.name, Finding("unreadable", "(7FE0,0010)",
                                                   f"pixels could not be checked ({type(e).__name__})")))
    return out
