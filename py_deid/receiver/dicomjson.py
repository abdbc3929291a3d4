"""The few DICOM JSON (PS3.18 Annex F) documents the receiver answers with, built as plain dicts."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _quoted  # what json.dumps uses for a str (ensure_ascii)

from .reasons import Failure


def _el(vr: str, *values) -> dict:
    vals = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": vals} if vals else {"vr": vr}


def referenced_item(sop_class_uid: str, sop_uid: str, retrieve_url: str) -> dict:
    return {"00081150": _el("UI", sop_class_uid), "00081155": _el("UI", sop_uid), "00081190": _el("UR", retrieve_url)}


def _failure_fields(failure: Failure) -> dict:
    item = {"00081197": _el("US", failure.reason), "00000902": _el("LO", failure.comment)}
    if failure.offending:
        item["00000901"] = _el("AT", *failure.offending)
    return item


def failed_item(sop_class_uid: str, sop_uid: str, failure: Failure) -> dict:
    return {"00081150": _el("UI", sop_class_uid), "00081155": _el("UI", sop_uid), **_failure_fields(failure)}


def other_failure_item(failure: Failure) -> dict:
    return _failure_fields(failure)


def store_response(retrieve_url: str, referenced: list[dict], failed: list[dict], other: list[dict]) -> dict:
    """Store Instances Response Module (PS3.18 Table I.1-1)."""
    doc = {"00081190": _el("UR", retrieve_url)}
    if failed:
        doc["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        doc["00081199"] = {"vr": "SQ", "Value": referenced}
    if other:
        doc["0008119A"] = {"vr": "SQ", "Value": other}
    return doc


def _el_json(vr: str, value: str) -> str:
    """_el(vr, value) for one str value, as json_bytes writes it."""
    return f'{{"vr":"{vr}","Value":[{_quoted(value)}]}}' if value else f'{{"vr":"{vr}"}}'


def store_response_json(retrieve_url: str, referenced: list[tuple[str, str, str]], failed: list[dict],
                        other: list[dict]) -> bytes:
    """json_bytes(store_response(retrieve_url, [referenced_item(*r) for r in referenced], failed, other)),
    the same bytes, with the referenced items (every stored instance: most of a STOW answer) written from a
    template instead of a dict each encoded by json: a tenth of a request's thread's time before."""
    out = ['{"00081190":', _el_json("UR", retrieve_url)]
    if failed:
        out += (',"00081198":{"vr":"SQ","Value":', json.dumps(failed, separators=(",", ":")), "}")
    if referenced:
        out.append(',"00081199":{"vr":"SQ","Value":[')
        out.append(",".join(f'{{"00081150":{_el_json("UI", cls)},"00081155":{_el_json("UI", sop)},'
                            f'"00081190":{_el_json("UR", url)}}}' for cls, sop, url in referenced))
        out.append("]}")
    if other:
        out += (',"0008119A":{"vr":"SQ","Value":', json.dumps(other, separators=(",", ":")), "}")
    out.append("}")
    return "".join(out).encode("ascii")


def study_result(row: dict, retrieve_url: str) -> dict:
    modalities = sorted(m for m in (row.get("modalities") or "").split(",") if m)
    return {
        "0020000D": _el("UI", row["study_uid"]),
        "00080061": _el("CS", *modalities),
        "00201206": _el("IS", row["series"]),
        "00201208": _el("IS", row["instances"]),
        "00081190": _el("UR", retrieve_url),
    }


def series_result(row: dict, retrieve_url: str) -> dict:
    return {
        "0020000D": _el("UI", row["study_uid"]),
        "0020000E": _el("UI", row["series_uid"]),
        "00080060": _el("CS", row.get("modality") or None),
        "00201209": _el("IS", row["instances"]),
        "00081190": _el("UR", retrieve_url),
    }


def instance_result(row: dict, retrieve_url: str) -> dict:
    return {
        "00080016": _el("UI", row["sop_class_uid"]),
        "00080018": _el("UI", row["sop_uid"]),
        "0020000D": _el("UI", row["study_uid"]),
        "0020000E": _el("UI", row["series_uid"]),
        "00080060": _el("CS", row.get("modality") or None),
        "00020010": _el("UI", row.get("transfer_syntax") or None),
        "00081190": _el("UR", retrieve_url),
    }
