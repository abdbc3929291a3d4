"""Header de-identification: Table E.1-1 applied to every attribute of a pydicom Dataset, at every depth.

No I/O: a Dataset goes in and is changed in place; what was done comes back as counts (and, when asked
for the local review screen, as a list of changes). Pixel data is not touched here.

The pass is in steps, each in its own place:
- walking the dataset and its sequences, and settling coded entries: `_Run.walk`, `_Run.element`, `_Run.recurse`
- deciding the action of an attribute (the table, the IOD Type for combined actions) and dispatching it:
  `_Run.apply`, `_Run.unlisted`, `_Run.repeating_group`
- the actions: X and Z in header_edits.py, D in `_Run.dummy`, C by VR in `_Run.clean`, and the values
  (UIDs, dates, text, AE titles, the patient's identity) in header_values.py
- private attributes: privates.py
- after the walk: Patient's Age in place of the birth date (`_add_patient_age`)
The conform pass (conform.py) and the residual sweep (residual.py) run later, on what this pass leaves.
"""

from __future__ import annotations

import datetime as _dt
from functools import cached_property

from pydicom.dataset import Dataset

from . import codes
from . import dates as _dates
from .codes import CODE_ITEM, CODE_PARTS
from .elements import (BINARY_VRS, KNOWN_VRS, TEXT_VRS, as_sequence, dictionary_vr, dummy_value, keyword,
                       plain_value, raw_text, writable_vr)
from .header_edits import Change, Edits, HeaderError, HeaderOutcome, Path
from .header_values import map_uids, patient_identity, pseudonymize_ae_titles, scrub_text, shift_dates
from .iod import IodTypes
from .options import Settings
from .phi import PhiTerms
from .policy import TEXT_VALUE, Resolved, profile_for
from .privates import PrivateFilter
from .pseudonyms import Pseudonyms

__all__ = ["Change", "HeaderCleaner", "HeaderError", "HeaderOutcome"]

PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
TRAILING_PADDING = 0xFFFCFFFC
SOP_CLASS_UID = 0x00080016
# How the sequence an element is in is treated: as the profile says of each element (the instance itself, a
# kept sequence), replaced (D: its text and codes are replaced too) or cleaned (C: its text is cleaned).
PROFILE, REPLACED, CLEANED = "", "dummy", "clean"
_BYTES_VRS = BINARY_VRS | {"OB or OW", "US or OW", "US or SS or OW"}
_MAX_DECISIONS = 1 << 16


class _Run:
    """One instance's header pass: walks the dataset and sends each element to the step its action names."""

    def __init__(self, cleaner: HeaderCleaner, ds: Dataset, terms: PhiTerms, record: bool) -> None:
        self.profile = cleaner.profile
        self.privates = cleaner.privates
        self.pseudonyms = cleaner.pseudonyms
        self.terms = terms
        self.edits = Edits(record)
        self.iod = IodTypes(raw_text(ds, SOP_CLASS_UID))
        self.decisions = cleaner.decisions
        self.unmet = self.iod.unmet(ds)  # before anything changes: the conditions read the original
        self.shift: int | None = None
        self.patient = _patient_key(ds)  # before anything changes: pseudonyms and shifts hang on it
        self.subject_id = cleaner.settings.trial.subject_id
        if cleaner.settings.options.retain_long_modified_dates:
            self.shift = cleaner.pseudonyms.date_shift_days(self.patient)
            self.out.date_shift_days = self.shift
        if not self.iod.known:
            self.edits.warn("IOD of this SOP Class unknown: combined actions removed the attribute")

    @cached_property
    def patient_pseudonym(self) -> str:
        """The patient's pseudonym, made once for Patient's Name and Patient ID."""
        return self.pseudonyms.patient_id(self.patient)

    @property
    def out(self) -> HeaderOutcome:
        return self.edits.out

    def map_uids(self, ds: Dataset, tag: int, path: Path, counted: bool = True) -> None:
        map_uids(self.edits, self.pseudonyms, ds, tag, path, counted)

    # -- walking: every element, at every depth -----------------------------------------------------

    def walk(self, ds: Dataset, path: Path, mode: str) -> None:
        """Every element of one dataset: the instance, or an item of a sequence (`mode` says how that
        sequence is treated). Private elements go to the private filter first, all at once: whether one
        stays depends on its block's creator."""
        elements = ds._dict  # direct access: Dataset's own lookups convert every key to a Tag first
        coded = self.settle_code(ds, path, mode)
        tags = list(elements)
        if any((t >> 16) & 1 for t in tags):
            self.privates.apply(ds, tags, path, self)
        for tag in tags:
            if ((tag >> 16) & 1) or (tag not in elements) or (coded and (int(tag) in CODE_ITEM)):
                continue
            self.element(ds, tag, path, mode)

    def settle_code(self, ds: Dataset, path: Path, mode: str) -> bool:
        """A coded entry inside a replaced or cleaned sequence keeps a standard code or becomes the dummy
        code (codes.settle); its parts are then final. True when ds is such an entry."""
        coded = (mode in (REPLACED, CLEANED)) and codes.is_code_item(ds)
        if coded and codes.settle(ds):
            self.edits.note(path, codes.CODE_VALUE, "D", ds, "(code)")
            self.edits.count("D")
        return coded

    def element(self, ds: Dataset, tag: int, path: Path, mode: str) -> None:
        """One standard (even group) element: what no instance keeps, then the repeating groups, then the
        table's row for the attribute, else the rules for attributes the table does not list."""
        t = int(tag)  # compared as a plain int (pydicom's BaseTag compares slowly); ds is indexed by tag
        group = t >> 16
        if ((t & 0xFFFF) == 0) or (group in (0x0000, 0x0002)) or (t == TRAILING_PADDING):
            # Group lengths, command and file meta elements in the dataset, padding.
            self.edits.remove(ds, tag, path)
            return
        if (0x5000 <= group <= 0x50FF) or (0x6000 <= group <= 0x60FF):
            self.repeating_group(ds, tag, path)
            return
        vr = _read_vr(ds, tag)
        resolved = self.profile.for_standard(t, vr)
        if resolved is None:
            self.unlisted(ds, tag, vr, path, mode)
            return
        if (vr in (None, "UN")) and (resolved.action != "X"):
            # A listed attribute newer than the data dictionary: a sequence is recognised by its first
            # item tag and cleaned as one; any other value is handled as bytes.
            vr = "SQ" if as_sequence(ds, tag) is not None else "UN"
        self.apply(ds, tag, vr, resolved, path, mode)

    def recurse(self, ds: Dataset, tag: int, path: Path, mode: str) -> None:
        """Walk every item of a sequence; one that cannot be parsed goes."""
        try:
            elem = ds[tag]
        except Exception:
            self.edits.remove(ds, tag, path)
            self.edits.warn("sequence that could not be parsed removed")
            return
        if elem.VR != "SQ":
            if elem.VR == "UN":
                self.edits.remove(ds, tag, path)
                self.edits.warn("sequence that could not be parsed removed")
            return
        sub = (*path, keyword(tag))
        for item in elem.value or ():
            self.walk(item, sub, mode)

    # -- deciding the action ------------------------------------------------------------------------

    def unlisted(self, ds: Dataset, tag: int, vr: str | None, path: Path, mode: str) -> None:
        """An attribute no row of the table lists: unknown ones go; sequences are walked; free text is
        cleaned or replaced as the sequence it is in is; anything else stays."""
        if (vr is None) or (vr == "UN") or (dictionary_vr(tag) is None):
            # Not in the data dictionary: nothing says it is safe, and it cannot be parsed to be cleaned.
            self.edits.remove(ds, tag, path)
            self.edits.warn("attribute unknown to the data dictionary removed")
            return
        t = int(tag)  # compared as a plain int: pydicom's BaseTag compares slowly
        free_text = (vr in TEXT_VRS) and (t not in CODE_PARTS)
        if t == TEXT_VALUE:
            self.apply(ds, tag, vr, Resolved("C" if mode == CLEANED else "D", "", None), path, mode)
        elif vr == "SQ":
            self.recurse(ds, tag, path, mode)
        elif (mode == CLEANED) and free_text:
            scrub_text(self.edits, self.terms, ds, tag, vr, path, counted=False)
        elif (mode == REPLACED) and free_text:
            # Inside a sequence the profile replaces, text is no more kept than the sequence's own value.
            self.dummy(ds, tag, vr, path, mode)

    def apply(self, ds: Dataset, tag: int, vr: str, resolved: Resolved, path: Path, mode: str) -> None:
        """The table's action for a listed attribute; a combined one (X/Z, X/D...) and a plain X or Z of the
        instance or a first-level item are decided by the attribute's Type in the instance's IOD."""
        action = resolved.action
        t = int(tag)  # compared as a plain int: pydicom's BaseTag compares slowly
        if ("/" in action) or ((action in ("X", "Z")) and (len(path) <= 1)):
            action = self.decide(action, path, t)
        if (not path) and (t in (PATIENT_NAME, PATIENT_ID)):
            patient_identity(self.edits, ds, tag, self.subject_id or self.patient_pseudonym)
            return
        if (mode == CLEANED) and (action in ("D", "C")) and (vr in TEXT_VRS) and (t not in CODE_PARTS):
            # Inside a sequence being cleaned, free text is cleaned rather than replaced wholesale.
            scrub_text(self.edits, self.terms, ds, tag, vr, path)
            return
        if action == "X":
            self.edits.remove(ds, tag, path)
        elif action == "K":
            self.edits.count("K")
            if vr == "SQ":
                self.recurse(ds, tag, path, mode)
        elif action == "U":
            if vr == "SQ":
                self.edits.count("U")
                self.recurse(ds, tag, path, mode)
            else:
                self.map_uids(ds, tag, path)
        elif action == "Z":
            self.edits.empty(ds, tag, vr, path)
        elif action == "D":
            self.dummy(ds, tag, vr, path, mode)
        elif action == "C":
            self.clean(ds, tag, vr, resolved.option, path)
        else:  # pragma: no cover - the generator only emits the codes above
            raise HeaderError(f"unknown action {action}")

    def decide(self, action: str, path: Path, tag: int) -> str:
        """IodTypes.decide, remembered by the cleaner for every instance of the same IOD and unmet conditions:
        a pure function of those, the action, the path and the tag (each instance asks ~40 times)."""
        key = (self.iod.iod, self.unmet, action, path, tag)
        decided = self.decisions.get(key)
        if decided is None:
            decided = self.iod.decide(action, path, keyword(tag), self.unmet)
            if len(self.decisions) < _MAX_DECISIONS:  # paths come from the input: bounded
                self.decisions[key] = decided
        return decided

    def repeating_group(self, ds: Dataset, tag: int, path: Path) -> None:
        """Curves (50xx) and overlays (60xx): removed, or under clean_graphics kept at the top level with
        their text cleaned; the overlay bits then go to the pixel step."""
        group = tag >> 16
        resolved = self.profile.curves if (0x5000 <= group <= 0x50FF) else self.profile.overlay_data
        if (resolved.action == "X") or path:
            self.edits.remove(ds, tag, path)
            return
        raw = ds.get_item(tag)
        vr = raw.VR if (raw.VR not in (None, "UN")) else (dictionary_vr(tag) or raw.VR)
        if vr in TEXT_VRS:
            scrub_text(self.edits, self.terms, ds, tag, vr, path)
        elif vr == "PN":
            self.dummy(ds, tag, vr, path, PROFILE)
        if (0x6000 <= group <= 0x60FF) and ((tag & 0xFFFF) == 0x3000):
            self.out.overlay_groups.append(group)
            self.edits.count("C")

    # -- the actions that depend on the VR ----------------------------------------------------------

    def dummy(self, ds: Dataset, tag: int, vr: str, path: Path, mode: str) -> None:
        """D: a sequence is walked as replaced (or as cleaned, inside a cleaned one); a UID is mapped; any
        other value becomes the dummy of its VR."""
        vr = writable_vr(ds, tag, vr)
        self.edits.count("D")
        if vr == "SQ":
            self.recurse(ds, tag, path, CLEANED if mode == CLEANED else REPLACED)
            return
        if vr == "UI":
            self.map_uids(ds, tag, path, counted=False)
            return
        new = dummy_value(vr)
        self.edits.note(path, tag, "D", ds, new)
        self.edits.put(ds, tag, vr, new)

    def clean(self, ds: Dataset, tag: int, vr: str, option: str, path: Path) -> None:
        """C, by what the value is: a sequence is walked as cleaned, dates shift, AE titles get pseudonyms,
        text is cleaned, a name is replaced, bytes go; numbers and codes stay (E.1: values of similar meaning)."""
        if vr == "SQ":
            self.edits.count("C")
            self.recurse(ds, tag, path, CLEANED)
        elif (option == "retain_long_modified_dates") and (vr in ("DA", "DT", "TM")):
            shift_dates(self.edits, self.shift or 0, ds, tag, vr, path)
        elif vr == "AE":
            pseudonymize_ae_titles(self.edits, self.pseudonyms, ds, tag, path)
        elif vr in TEXT_VRS:
            scrub_text(self.edits, self.terms, ds, tag, vr, path)
        elif vr == "PN":
            self.dummy(ds, tag, vr, path, PROFILE)
        elif vr in _BYTES_VRS:
            # Bytes cannot be cleaned (a Maker Note, a timestamp token): nothing says what is in them.
            self.edits.remove(ds, tag, path)
        else:
            self.edits.count("C")


class HeaderCleaner:
    """Table E.1-1 under one set of options, ready to apply to any number of instances."""

    def __init__(self, settings: Settings, pseudonyms: Pseudonyms) -> None:
        self.settings = settings
        self.pseudonyms = pseudonyms
        self.profile = profile_for(settings.options)  # built once per set of options (the page configures each run)
        self.privates = PrivateFilter(settings.options)
        # (IOD, unmet conditions, action, path, tag) -> the action IodTypes.decide makes of it (_Run.decide)
        self.decisions: dict[tuple, str] = {}

    def clean(self, ds: Dataset, terms: PhiTerms, *, record: bool = False) -> HeaderOutcome:
        run = _Run(self, ds, terms, record)
        birth, study = _date_of(ds, 0x00100030, "PatientBirthDate"), _date_of(ds, 0x00080020, "StudyDate")
        run.walk(ds, (), PROFILE)
        if self.settings.options.retain_patient_characteristics:
            _add_patient_age(ds, birth, study)
        return run.out


def _add_patient_age(ds: Dataset, birth: _dt.date | None, study: _dt.date | None) -> None:
    """E.1.1 allows adding Patient's Age in place of the birth date the profile removes (from the dates as
    they were before the pass)."""
    if ("PatientAge" in ds) or (birth is None) or (study is None):
        return
    try:
        ds.PatientAge = _dates.age_between(birth, study)
    except _dates.DateValueError:
        pass


def _read_vr(ds: Dataset, tag: int) -> str | None:
    """The element's VR as read, the dictionary's when it was read as UN or in implicit VR (None when the
    dictionary does not know it either). A VR that does not exist fails the instance."""
    vr = ds._dict[tag].VR
    if (vr is not None) and (vr not in KNOWN_VRS):
        # A VR that does not exist: its length field may be two bytes or four, so nothing after it can
        # be trusted to be where it seems.
        raise HeaderError(f"attribute {keyword(tag)} has a value representation that does not exist "
                          "(a broken structure)")
    if (vr is None) or (vr == "UN"):
        vr = dictionary_vr(tag) or vr
    return vr


def _patient_key(ds: Dataset) -> str:
    """What identifies the patient for pseudonyms and the date shift: the original Patient ID, else name."""
    try:
        pid = plain_value(ds, PATIENT_ID)  # read without converting it where it is plain
        pid = str(ds.get("PatientID", "") or "").strip() if pid is None else pid
        if pid:
            return "id:" + pid
        return "name:" + str(ds.get("PatientName", "") or "").strip()
    except Exception:
        return "unknown"


def _date_of(ds: Dataset, tag: int, kw: str) -> _dt.date | None:
    try:
        value = plain_value(ds, tag)  # read without converting it where it is plain
        return _dates.parse_da(str(ds.get(kw, "") or "") if value is None else value)
    except Exception:
        return None
