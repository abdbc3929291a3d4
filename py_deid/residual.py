"""The last sweep: the patient's own names, IDs and birth date must not survive anywhere in the header.

The profile keeps many attributes (K, options, safe private data) on the strength of what they usually
hold; test files and real ones sometimes put a patient's name where no table expects it. The written
header is searched for the patient's terms (a byte search, cheap); only when one is there are the text
attributes walked and cleaned.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from .dates import written_forms
from .codes import CODE_PARTS
from .elements import TEXT_VRS, fit
from .phi import PhiTerms

PATIENT_NAME, PATIENT_ID, METHOD = 0x00100010, 0x00100020, 0x00120063


def needles(terms: PhiTerms) -> list[bytes]:
    """The patient's terms as lower-case bytes (ASCII forms; other scripts are matched by the walk)."""
    patient = terms.patient_only()
    words = set(patient.names) | set(patient.ids)
    for d in patient.dates:
        words |= {f for f in written_forms(d) if len(f) >= 8}
    out = []
    for w in words:
        try:
            out.append(w.lower().encode("ascii"))
        except UnicodeEncodeError:
            out.append(w.lower().encode("utf-8"))
    return out


def header_end(data: bytes, big_endian: bool) -> int:
    """Offset of the top-level Pixel Data element in written bytes (or the end when there is none)."""
    tag = b"\x7f\xe0\x00\x10" if big_endian else b"\xe0\x7f\x10\x00"
    pos = data.find(tag, 132)
    while pos != -1:
        vr = data[pos + 4:pos + 6]
        if vr in (b"OB", b"OW") or data[pos + 4:pos + 8] == b"\xff\xff\xff\xff" or len(data) - pos - 8 == int.from_bytes(
                data[pos + 4:pos + 8], "big" if big_endian else "little"):
            return pos
        pos = data.find(tag, pos + 1)
    return len(data)


def present(data: bytes, found: list[bytes], end: int) -> bool:
    if not found:
        return False
    head = data[:end].lower()
    return any(n in head for n in found)


def sweep(ds: Dataset, terms: PhiTerms) -> int:
    """Clean the patient's terms out of every text attribute; returns how many attributes changed."""
    patient = terms.patient_only()
    changed = 0
    for elem in ds.iterall():
        if elem.VR not in TEXT_VRS and elem.VR != "PN":
            continue
        if elem.tag in CODE_PARTS or elem.tag in (PATIENT_NAME, PATIENT_ID, METHOD):
            continue
        values = elem.value if isinstance(elem.value, (list, tuple)) or type(elem.value).__name__ == "MultiValue" \
            else [elem.value]
        new, hit = [], False
        for v in values:
            text = str(v or "")
            if patient.find_terms(text):
                text = patient._terms_re.sub("***", text)
                hit = True
            new.append(fit(text, elem.VR))
        if hit:
            elem.value = new if len(new) != 1 else new[0]
            changed += 1
    return changed
