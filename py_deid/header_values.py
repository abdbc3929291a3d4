"""The header pass's value steps: what becomes of one element's value under U, C and the patient's identity.

Each function handles one kind of value, reads the element, writes its replacement through the pass's
`Edits` and counts the action; none decides which action applies (header.py does) or walks sequences.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from . import dates as _dates
from .clean_text import allowlisted
from .elements import as_list, fit
from .header_edits import Edits, Path
from .phi import PhiTerms
from .pseudonyms import Pseudonyms

PATIENT_NAME = 0x00100010


def _original_uids(raw) -> list[str]:
    """The UIDs an element holds as written (no padding), whether it was parsed or not; [] when empty."""
    if getattr(raw, "is_raw", False):
        value = raw.value
        text = bytes(value).decode("ascii", "replace") if value else ""
        return [v.strip("\0 ") for v in text.split("\\")] if text.strip("\0 ") else []
    values = raw.value
    if values in (None, ""):
        return []
    return [str(v).strip("\0 ") for v in as_list(values)]


def map_uids(edits: Edits, pseudonyms: Pseudonyms, ds: Dataset, tag: int, path: Path, counted: bool = True) -> None:
    """U: every UID of the element becomes its keyed replacement, the same in every instance of the site.

    The originals are kept (locally) for the verifier's search; registered UIDs (SOP classes, transfer
    syntaxes) and degenerate values like "0" link nothing to the patient and are left out of that search.
    """
    if counted:
        edits.count("U")
    originals = _original_uids(ds._dict[tag])
    if not originals:
        return
    edits.out.original_uids.update(o for o in originals if (len(o) > 8) and (o not in UID_dictionary))
    mapped = [pseudonyms.uid(o) if o else o for o in originals]
    edits.note(path, tag, "U", ds, "\\".join(mapped))
    edits.put(ds, tag, "UI", mapped if len(mapped) > 1 else mapped[0])


def pseudonymize_ae_titles(edits: Edits, pseudonyms: Pseudonyms, ds: Dataset, tag: int, path: Path) -> None:
    """C of an AE title (retain_device_identity): a keyed pseudonym, so that the same device stays one."""
    elem = edits.read(ds, tag)
    new = [pseudonyms.ae_title(v) if v else v for v in as_list(elem.value)]
    edits.note(path, tag, "C", ds, "\\".join(new))
    edits.set_values(elem, new)
    edits.count("C")


def scrub_text(edits: Edits, terms: PhiTerms, ds: Dataset, tag: int, vr: str, path: Path,
               counted: bool = True) -> None:
    """C of free text: the instance's PHI terms go first ("Chest" may be a name here), then every word the
    vocabulary does not know (clean_text.allowlisted); the result is cut to the VR's length.

    `counted=False` for text that no row of the table names (inside a cleaned sequence): counted only when
    something was taken out of it.
    """
    elem = edits.read(ds, tag)
    hits = 0
    new = []
    for v in as_list(elem.value):
        text, n = terms.scrub(str(v))
        text, m = allowlisted(text)
        hits += n + m
        new.append(fit(text, vr))
    if hits:
        edits.note(path, tag, "C", ds, "\\".join(new))
        edits.set_values(elem, new)
    if counted or hits:
        edits.count("C")


def shift_dates(edits: Edits, days: int, ds: Dataset, tag: int, vr: str, path: Path) -> None:
    """C of a date under retain_long_modified_dates: every DA and DT moves back by the patient's whole-day
    shift; a time (TM) stays, as whole-day shifts keep the time of day; a value that is not a date becomes
    the dummy date."""
    elem = edits.read(ds, tag)
    edits.count("C")
    if vr == "TM":
        return
    shift = _dates.shift_da if vr == "DA" else _dates.shift_dt
    new = []
    for v in as_list(elem.value):
        try:
            new.append(shift(str(v), days))
        except _dates.DateValueError:
            new.append(_dates.DUMMY[vr])
            edits.warn("invalid date replaced by a dummy")
    edits.note(path, tag, "C", ds, "\\".join(new))
    edits.set_values(elem, new)


def patient_identity(edits: Edits, ds: Dataset, tag: int, new: str) -> None:
    """Patient's Name and Patient ID at the top level: the trial's subject ID or the patient's pseudonym."""
    edits.note((), tag, "D", ds, new)
    edits.put(ds, tag, "PN" if tag == PATIENT_NAME else "LO", new)
    edits.count("D")
