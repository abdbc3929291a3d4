"""The de-identification certificate of a batch: what was done, to which output instances, signed by whom.

It leaves the site with the batch (uploaded to the receiver, stored with the study) and must carry no PHI:
no input paths, no original UIDs, no original values, no OCR text. It names output instances by their new
SOP Instance UID and the sha256 of the uploaded bytes, masks by boxes, exclusions by a reason code.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field

from . import __version__
from ._standard import table_e1_1
from .markers import CODE_MEANING, method_codes
from .options import Settings

KIND = "py_deid de-identification certificate"
VERSION = 1
# Why a reviewer left an instance or series out: codes, not free text (free text could carry PHI).
EXCLUSION_REASONS = {
    "not-in-protocol": "not part of the protocol",
    "identity-visible": "identifying content that cannot be cleaned (e.g. a face, a paper form)",
    "duplicate": "duplicate of another instance",
    "unreadable": "image unusable",
    "other": "other reason recorded at the site",
}
DEFAULT_ATTESTATION = ("I have reviewed the de-identified images and headers listed in this certificate and "
                       "determined that they contain no information that identifies the patient.")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class CertificateError(ValueError):
    """A certificate that would be wrong or could carry PHI; the message names the field, never a value."""


Box = tuple[int, int, int, int]


@dataclass
class InstanceEntry:
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    sha256: str
    modality: str = ""
    sop_class_uid: str = ""
    masked: dict[int, list[Box]] = field(default_factory=dict)  # frame -> boxes, OCR and template masks
    added: dict[int, list[Box]] = field(default_factory=dict)  # frame -> boxes the reviewer added
    removed: dict[int, list[Box]] = field(default_factory=dict)  # frame -> automatic boxes the reviewer removed
    # Whether the pixels were cleaned (the instance's own markers say so); None: whenever something was masked.
    pixels_cleaned: bool | None = None

    @property
    def cleaned(self) -> bool:
        return bool(self.masked) if self.pixels_cleaned is None else self.pixels_cleaned

    def as_dict(self) -> dict:
        def boxes(d):
            return {str(k): [list(map(int, b)) for b in v] for k, v in sorted(d.items()) if v}
        return {"sop_instance_uid": self.sop_instance_uid, "study_instance_uid": self.study_instance_uid,
                "series_instance_uid": self.series_instance_uid, "sop_class_uid": self.sop_class_uid,
                "modality": self.modality, "sha256": self.sha256, "masked": boxes(self.masked),
                "reviewer_added": boxes(self.added), "reviewer_removed": boxes(self.removed)}


@dataclass(frozen=True)
class Signature:
    reviewer: str
    role: str
    attestation: str = DEFAULT_ATTESTATION
    signed_at: str = ""  # ISO 8601 UTC; filled at signing when empty


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def build(settings: Settings, instances: list[InstanceEntry], *, signature: Signature | None,
          excluded: list[dict] | None = None, failed: int = 0, skipped: int = 0,
          batch: str | None = None, review_required: bool = True) -> dict:
    """The certificate as a JSON-ready dict. `excluded`: [{"reason": code, "instances": n}]."""
    for e in instances:
        for name in ("sop_instance_uid", "study_instance_uid", "series_instance_uid"):
            if not _UID.match(getattr(e, name) or "") or len(getattr(e, name)) > 64:
                raise CertificateError(f"instance {name} is not a UID")
        if not _HEX64.match(e.sha256 or ""):
            raise CertificateError("instance sha256 is not a SHA-256 hex digest")
    excluded = excluded or []
    for x in excluded:
        if x.get("reason") not in EXCLUSION_REASONS:
            raise CertificateError("exclusion reason must be one of " + ", ".join(EXCLUSION_REASONS))
    if review_required and signature is None:
        raise CertificateError("the policy asks for a review: the batch needs a signature")
    pixels_cleaned = any(e.cleaned for e in instances)
    codes = method_codes(settings, pixels_cleaned=pixels_cleaned)
    trial = {k: v for k, v in vars(settings.trial).items() if v}
    cert = {
        "kind": KIND,
        "version": VERSION,
        "batch": batch or str(uuid.uuid4()),
        "created": _now(),
        "tool": f"py_deid {__version__}",
        "profile": {"table": f"PS3.15 E.1-1 {table_e1_1.EDITION} + rows to {table_e1_1.LATER_EDITIONS}",
                    "options": list(settings.options.names), "pixels": settings.pixels, "text": settings.text},
        "methods": [{"code_value": c, "coding_scheme": "DCM", "code_meaning": CODE_MEANING[c]} for c in codes],
        "trial": trial,
        "counts": {"instances": len(instances),
                   "by_modality": dict(sorted(Counter(e.modality or "?" for e in instances).items())),
                   "pixels_cleaned": sum(1 for e in instances if e.cleaned),
                   "reviewer_edited": sum(1 for e in instances if e.added or e.removed),
                   "excluded": sum(int(x.get("instances", 1)) for x in excluded),
                   "failed": failed, "skipped": skipped},
        "instances": [e.as_dict() for e in instances],
        "excluded": [{"reason": x["reason"], "meaning": EXCLUSION_REASONS[x["reason"]],
                      "instances": int(x.get("instances", 1))} for x in excluded],
        "review": None,
    }
    if signature is not None:
        if not signature.reviewer.strip() or not signature.role.strip():
            raise CertificateError("the signature needs the reviewer's name and role")
        cert["review"] = {"reviewer": signature.reviewer.strip(), "role": signature.role.strip(),
                          "attestation": signature.attestation.strip() or DEFAULT_ATTESTATION,
                          "signed_at": signature.signed_at or _now()}
    return cert


def _frames(boxes) -> dict[int, list[Box]]:
    if not boxes:
        return {}
    try:
        return {int(k): [tuple(int(v) for v in b) for b in bs] for k, bs in boxes.items() if bs}
    except (AttributeError, TypeError, ValueError):
        raise CertificateError("instance boxes must map frames to [x, y, width, height]") from None


def entry_from_record(record: dict) -> InstanceEntry:
    """An entry from the PHI-free record a host keeps of an uploaded instance (py_deid.hosts.browser's
    result_record): output UIDs, sha256, the masks; after a review, what the reviewer added and removed."""
    pixels = record.get("pixels") or {}
    review = pixels.get("review") or {}
    masked = _frames(review["auto"] if "auto" in review else pixels.get("boxes"))
    return InstanceEntry(str(record.get("sopUid") or ""), str(record.get("studyUid") or ""),
                         str(record.get("seriesUid") or ""), str(record.get("sha256") or ""),
                         str(record.get("modality") or ""), str(record.get("sopClassUid") or ""),
                         masked=masked, added=_frames(review.get("added")), removed=_frames(review.get("removed")),
                         pixels_cleaned=bool(pixels.get("cleaned")))


def for_study(cert: dict, study_uid: str) -> dict:
    """The part of a batch's certificate that is stored with one of its studies: the same document with only
    that study's instances (so the receiver can check that every one of them arrived), and the study named."""
    part = dict(cert)
    part["instances"] = [i for i in cert["instances"] if i["study_instance_uid"] == study_uid]
    if not part["instances"]:
        raise CertificateError("the batch has no instance in this study")
    part["study_instance_uid"] = study_uid
    part["batch_studies"] = len({i["study_instance_uid"] for i in cert["instances"]})
    return part


def studies(cert: dict) -> list[str]:
    return sorted({i["study_instance_uid"] for i in cert["instances"]})


def dumps(cert: dict) -> str:
    return json.dumps(cert, indent=1, sort_keys=True, ensure_ascii=False)


def leaks(cert: dict, forbidden: list[str]) -> list[str]:
    """Which of the forbidden strings (PHI terms, original UIDs, input paths) occur in the certificate.
    Returns the fields' JSON paths, never the strings themselves."""
    found = []

    def walk(value, where):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif isinstance(value, str):
            upper = value.upper()
            if any(f and f.upper() in upper for f in forbidden):
                found.append(where)

    walk(cert, "$")
    return found


def render_html(cert: dict) -> str:
    """A printable, self-contained view of the certificate (no scripts, no external resources)."""
    e = html.escape
    review = cert.get("review") or {}
    rows = "".join(
        f"<tr><td>{i}</td><td>{e(x['modality'])}</td><td><code>{e(x['sop_instance_uid'])}</code></td>"
        f"<td><code>{e(x['sha256'][:16])}…</code></td><td>{sum(len(b) for b in x['masked'].values())}</td>"
        f"<td>{sum(len(b) for b in x['reviewer_added'].values())}</td>"
        f"<td>{sum(len(b) for b in x['reviewer_removed'].values())}</td></tr>"
        for i, x in enumerate(cert["instances"], 1))
    methods = "".join(f"<li>{e(m['code_meaning'])} ({e(m['coding_scheme'])} {e(m['code_value'])})</li>"
                      for m in cert["methods"])
    trial = "".join(f"<dt>{e(k.replace('_', ' '))}</dt><dd>{e(str(v))}</dd>" for k, v in cert["trial"].items())
    excluded = "".join(f"<li>{x['instances']} × {e(x['meaning'])}</li>" for x in cert["excluded"]) or "<li>none</li>"
    signed = (f"<p><strong>{e(review['reviewer'])}</strong>, {e(review['role'])}, {e(review['signed_at'])}</p>"
              f"<blockquote>{e(review['attestation'])}</blockquote>") if review else "<p>Not signed.</p>"
    counts = cert["counts"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>De-identification certificate {e(cert['batch'])}</title>
<style>body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:2px 6px;text-align:left}}code{{font-size:12px}}
@media print{{body{{margin:0}}}}</style></head><body>
<h1>De-identification certificate</h1>
<p>Batch <code>{e(cert['batch'])}</code>, created {e(cert['created'])} by {e(cert['tool'])}.</p>
<h2>Profile</h2><p>{e(cert['profile']['table'])}; pixels: {e(cert['profile']['pixels'])};
text: {e(cert['profile']['text'])}.</p><ul>{methods}</ul>
<h2>Trial</h2><dl>{trial or '<dd>not configured</dd>'}</dl>
<h2>Counts</h2><p>{counts['instances']} instances ({e(', '.join(f'{k}: {v}' for k, v in counts['by_modality'].items()))});
pixels cleaned in {counts['pixels_cleaned']}; edited by the reviewer: {counts['reviewer_edited']};
excluded: {counts['excluded']}; failed: {counts['failed']}; skipped: {counts['skipped']}.</p>
<h2>Excluded</h2><ul>{excluded}</ul>
<h2>Review and sign-off</h2>{signed}
<h2>Instances</h2><table><tr><th>#</th><th>Modality</th><th>SOP Instance UID</th><th>sha256</th>
<th>masks</th><th>added</th><th>removed</th></tr>{rows}</table>
</body></html>
"""
