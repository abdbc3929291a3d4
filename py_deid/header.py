"""Header de-identification: Table E.1-1 applied to every attribute of a pydicom Dataset, at every depth.

No I/O: a Dataset goes in and is changed in place; what was done comes back as counts (and, when asked
for the local review screen, as a list of changes). Pixel data is not touched here.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary
from pydicom.valuerep import PersonName

from . import codes
from . import dates as _dates
from .clean_text import allowlisted
from .iod import IodTypes
from .options import Settings
from .phi import PhiTerms
from .policy import TEXT_VALUE, Profile, Resolved, _dictionary_vr, keyword
from .privates import PrivateFilter, _as_sequence
from .pseudonyms import Pseudonyms

TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
KNOWN_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD", "OF", "OL",
                       "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US",
                       "UT", "UV", "OB or OW", "US or SS", "US or OW", "US or SS or OW"})
MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "ST": 1024, "LT": 10240, "DS": 16, "IS": 12}
# Parts of coded entries: structure, not free text, so cleaning never touches them.
# (Code Meaning is free text and is cleaned: local codes can carry identity, E.1 notes.)
CODE_PARTS = frozenset({
    0x00080100,  # Code Value
    0x00080102,  # Coding Scheme Designator
    0x00080103,  # Coding Scheme Version
    0x00080105,  # Mapping Resource
    0x0008010F,  # Context Identifier
    0x00080119,  # Long Code Value
    0x00080120,  # URN Code Value
    0x00080122,  # Mapping Resource Name
})
# Every part of a coded entry, once codes.settle has made it a standard code or the dummy one.
CODE_ITEM = CODE_PARTS | codes.CODE_STRUCTURE | {codes.MEANING}
DUMMY_TEXT = "ANONYMIZED"
PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
TRAILING_PADDING = 0xFFFCFFFC


class HeaderError(ValueError):
    """An instance whose header cannot be de-identified safely; the message carries no value."""


@dataclass
class Change:
    """One change, for the local review screen only: values may be PHI and never leave the site."""

    path: str
    tag: str
    keyword: str
    action: str
    old: str
    new: str


@dataclass
class HeaderOutcome:
    actions: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    overlay_groups: list[int] = field(default_factory=list)  # kept under clean_graphics; pixels step cleans them
    original_uids: set[str] = field(default_factory=set)
    changes: list[Change] | None = None
    date_shift_days: int | None = None


class _Run:
    """State of one instance's header pass."""

    def __init__(self, cleaner: HeaderCleaner, ds: Dataset, terms: PhiTerms, record: bool) -> None:
        self.c = cleaner
        self.terms = terms
        self.iod = IodTypes(_raw_text(ds, 0x00080016))
        self.unmet = self.iod.unmet(ds)  # before anything changes: the conditions read the original
        self.out = HeaderOutcome(changes=[] if record else None)
        self.shift: int | None = None
        self.patient = _patient_key(ds)  # before anything changes: pseudonyms and shifts hang on it
        if cleaner.settings.options.retain_long_modified_dates:
            self.shift = cleaner.pseudonyms.date_shift_days(self.patient)
            self.out.date_shift_days = self.shift
        if not self.iod.known:
            self.out.warnings.append("IOD of this SOP Class unknown: combined actions removed the attribute")

    # -- walking ------------------------------------------------------------------------------

    def walk(self, ds: Dataset, path: tuple[str, ...], mode: str) -> None:
        elements = ds._dict  # direct access: Dataset's own lookups convert every key to a Tag first
        coded = mode in ("dummy", "clean") and codes.is_code_item(ds)
        if coded and codes.settle(ds):
            self.note(path, codes.CODE_VALUE, "D", ds, "(code)")
            self.out.actions["D"] += 1
        tags = list(elements)
        if any(t >> 16 & 1 for t in tags):
            self.c.privates.apply(ds, tags, path, self)
        for tag in tags:
            group = tag >> 16
            if group & 1 or tag not in elements or (coded and tag in CODE_ITEM):
                continue
            if (tag & 0xFFFF) == 0 or group in (0x0000, 0x0002) or tag == TRAILING_PADDING:
                self.remove(ds, tag, path)
                continue
            if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
                self.repeating_group(ds, tag, path)
                continue
            raw = elements[tag]
            vr = raw.VR
            if vr is not None and vr not in KNOWN_VRS:
                # A VR that does not exist: its length field may be two bytes or four, so nothing after it can
                # be trusted to be where it seems.
                raise HeaderError(f"attribute {keyword(tag)} has a value representation that does not exist "
                                  "(a broken structure)")
            if vr is None or vr == "UN":
                vr = _dictionary_vr(tag) or vr
            resolved = self.c.profile.for_standard(tag, vr)
            if resolved is None:
                self.unlisted(ds, tag, vr, path, mode)
                continue
            if vr in (None, "UN") and resolved.action != "X":
                # A listed attribute newer than the data dictionary: a sequence is recognised by its first
                # item tag and cleaned as one; any other value is handled as bytes.
                vr = "SQ" if _as_sequence(ds, tag) is not None else "UN"
            self.apply(ds, tag, vr, resolved, path, mode)

    def unlisted(self, ds: Dataset, tag: int, vr: str | None, path: tuple[str, ...], mode: str) -> None:
        if vr is None or vr == "UN" or _dictionary_vr(tag) is None:
            # Not in the data dictionary: nothing says it is safe, and it cannot be parsed to be cleaned.
            self.remove(ds, tag, path)
            self.warn("attribute unknown to the data dictionary removed")
            return
        if tag == TEXT_VALUE:
            self.apply(ds, tag, vr, Resolved("C" if mode == "clean" else "D", "", None), path, mode)
        elif vr == "SQ":
            self.recurse(ds, tag, path, mode)
        elif mode == "clean" and vr in TEXT_VRS and tag not in CODE_PARTS:
            self.scrub(ds, tag, vr, path, counted=False)
        elif mode == "dummy" and vr in TEXT_VRS and tag not in CODE_PARTS:
            # Inside a sequence the profile replaces, text is no more kept than the sequence's own value.
            self.dummy(ds, tag, vr, path, mode)

    def recurse(self, ds: Dataset, tag: int, path: tuple[str, ...], mode: str) -> None:
        try:
            elem = ds[tag]
        except Exception:
            self.remove(ds, tag, path)
            self.warn("sequence that could not be parsed removed")
            return
        if elem.VR != "SQ":
            if elem.VR == "UN":
                self.remove(ds, tag, path)
                self.warn("sequence that could not be parsed removed")
            return
        sub = (*path, keyword(tag))
        for item in elem.value or ():
            self.walk(item, sub, mode)

    # -- actions -------------------------------------------------------------------------------

    def apply(self, ds: Dataset, tag: int, vr: str, resolved: Resolved, path: tuple[str, ...], mode: str) -> None:
        action = resolved.action
        if "/" in action or action in ("X", "Z") and len(path) <= 1:
            action = self.iod.decide(action, path, keyword(tag), self.unmet)
        if not path and tag in (PATIENT_NAME, PATIENT_ID):
            self.patient_identity(ds, tag)
            return
        if mode == "clean" and action in ("D", "C") and vr in TEXT_VRS and tag not in CODE_PARTS:
            # Inside a sequence being cleaned, free text is cleaned rather than replaced wholesale.
            self.scrub(ds, tag, vr, path)
            return
        if action == "X":
            self.remove(ds, tag, path)
        elif action == "K":
            self.out.actions["K"] += 1
            if vr == "SQ":
                self.recurse(ds, tag, path, mode)
        elif action == "U":
            if vr == "SQ":
                self.out.actions["U"] += 1
                self.recurse(ds, tag, path, mode)
            else:
                self.map_uids(ds, tag, path)
        elif action == "Z":
            self.empty(ds, tag, vr, path)
        elif action == "D":
            self.dummy(ds, tag, vr, path, mode)
        elif action == "C":
            self.clean(ds, tag, vr, resolved.option, path)
        else:  # pragma: no cover - the generator only emits the codes above
            raise HeaderError(f"unknown action {action}")

    # Replacements are new elements: converting the old value first (pydicom's parse of it) would cost more
    # than the whole change, and the old value is not needed.

    def remove(self, ds: Dataset, tag: int, path: tuple[str, ...]) -> None:
        self.note(path, tag, "X", ds, "")
        del ds._dict[tag]
        self.out.actions["X"] += 1

    def empty(self, ds: Dataset, tag: int, vr: str, path: tuple[str, ...]) -> None:
        vr = _writable_vr(ds, tag, vr)
        self.note(path, tag, "Z", ds, "")
        value = Sequence() if vr == "SQ" else b"" if vr in BINARY_VRS else None
        ds._dict[tag] = DataElement(tag, vr, value)
        self.out.actions["Z"] += 1

    def dummy(self, ds: Dataset, tag: int, vr: str, path: tuple[str, ...], mode: str) -> None:
        vr = _writable_vr(ds, tag, vr)
        self.out.actions["D"] += 1
        if vr == "SQ":
            self.recurse(ds, tag, path, "clean" if mode == "clean" else "dummy")
            return
        if vr == "UI":
            self.map_uids(ds, tag, path, counted=False)
            return
        new = dummy_value(vr)
        self.note(path, tag, "D", ds, new)
        ds._dict[tag] = DataElement(tag, vr, new)

    def map_uids(self, ds: Dataset, tag: int, path: tuple[str, ...], counted: bool = True) -> None:
        if counted:
            self.out.actions["U"] += 1
        raw = ds._dict[tag]
        if getattr(raw, "is_raw", False):
            value = raw.value
            text = bytes(value).decode("ascii", "replace") if value else ""
            originals = [v.strip("\0 ") for v in text.split("\\")] if text.strip("\0 ") else []
        else:
            values = raw.value
            if values in (None, ""):
                return
            originals = [str(v).strip("\0 ") for v in (values if isinstance(values, (MultiValue, list, tuple))
                                                         else [values])]
        if not originals:
            return
        # Registered UIDs (SOP classes...) and degenerate values like "0" link nothing to the patient.
        self.out.original_uids.update(o for o in originals if len(o) > 8 and o not in UID_dictionary)
        mapped = [self.c.pseudonyms.uid(o) if o else o for o in originals]
        self.note(path, tag, "U", ds, "\\".join(mapped))
        ds._dict[tag] = DataElement(tag, "UI", mapped if len(mapped) > 1 else mapped[0])

    def clean(self, ds: Dataset, tag: int, vr: str, option: str, path: tuple[str, ...]) -> None:
        if vr == "SQ":
            self.out.actions["C"] += 1
            self.recurse(ds, tag, path, "clean")
        elif option == "retain_long_modified_dates" and vr in ("DA", "DT", "TM"):
            self.shift_dates(ds, tag, vr, path)
        elif vr == "AE":
            elem = self.element(ds, tag)
            values = _as_list(elem.value)
            new = [self.c.pseudonyms.ae_title(v) if v else v for v in values]
            self.note(path, tag, "C", ds, "\\".join(new))
            elem.value = new if len(new) != 1 else new[0]
            self.out.actions["C"] += 1
        elif vr in TEXT_VRS:
            self.scrub(ds, tag, vr, path)
        elif vr == "PN":
            self.dummy(ds, tag, vr, path, "")
        else:
            # Nothing to clean in a number or a code; C keeps it (E.1: values of similar meaning).
            self.out.actions["C"] += 1

    def scrub(self, ds: Dataset, tag: int, vr: str, path: tuple[str, ...], counted: bool = True) -> None:
        elem = self.element(ds, tag)
        values = _as_list(elem.value)
        hits = 0
        new = []
        for v in values:
            text, n = self.terms.scrub(str(v))  # the instance's own terms first: "Chest" may be a name here
            text, m = allowlisted(text)
            hits += n + m
            new.append(_fit(text, vr))
        if hits:
            self.note(path, tag, "C", ds, "\\".join(new))
            elem.value = new if len(new) != 1 else new[0]
        if counted or hits:
            self.out.actions["C"] += 1

    def shift_dates(self, ds: Dataset, tag: int, vr: str, path: tuple[str, ...]) -> None:
        elem = self.element(ds, tag)
        self.out.actions["C"] += 1
        if vr == "TM":
            return  # whole-day shifts keep the time of day
        shift = _dates.shift_da if vr == "DA" else _dates.shift_dt
        new = []
        for v in _as_list(elem.value):
            try:
                new.append(shift(str(v), self.shift or 0))
            except _dates.DateValueError:
                new.append(_dates.DUMMY[vr])
                self.warn("invalid date replaced by a dummy")
        self.note(path, tag, "C", ds, "\\".join(new))
        elem.value = new if len(new) != 1 else new[0]

    def patient_identity(self, ds: Dataset, tag: int) -> None:
        new = self.c.settings.trial.subject_id or self.c.pseudonyms.patient_id(self.patient)
        self.note((), tag, "D", ds, new)
        ds[tag] = DataElement(tag, "PN" if tag == PATIENT_NAME else "LO", new)
        self.out.actions["D"] += 1

    def repeating_group(self, ds: Dataset, tag: int, path: tuple[str, ...]) -> None:
        group = tag >> 16
        profile = self.c.profile
        if 0x5000 <= group <= 0x50FF:
            resolved = profile.curves
        else:
            resolved = profile.overlay_data
        if resolved.action == "X" or path:
            self.remove(ds, tag, path)
            return
        # C under clean_graphics: keep the overlay or curve, clean its text; overlay bits go to the pixel step.
        raw = ds.get_item(tag)
        vr = raw.VR if raw.VR not in (None, "UN") else (_dictionary_vr(tag) or raw.VR)
        if vr in TEXT_VRS:
            self.scrub(ds, tag, vr, path)
        elif vr == "PN":
            self.dummy(ds, tag, vr, path, "")
        if 0x6000 <= group <= 0x60FF and (tag & 0xFFFF) == 0x3000:
            self.out.overlay_groups.append(group)
            self.out.actions["C"] += 1

    # -- helpers -------------------------------------------------------------------------------

    def element(self, ds: Dataset, tag: int) -> DataElement:
        try:
            return ds[tag]
        except Exception:
            raise HeaderError(f"attribute {keyword(tag)} cannot be read") from None

    def warn(self, message: str) -> None:
        if message not in self.out.warnings:
            self.out.warnings.append(message)

    def note(self, path: tuple[str, ...], tag: int, action: str, ds: Dataset, new: str) -> None:
        if self.out.changes is None:
            return
        try:
            old = ds[tag].value
            old_text = "(sequence)" if isinstance(old, Sequence) else _short(old)
        except Exception:
            old_text = "(unreadable)"
        self.out.changes.append(Change(">".join(path), f"({tag >> 16:04X},{tag & 0xFFFF:04X})", keyword(tag),
                                       action, old_text, _short(new)))


class HeaderCleaner:
    """Table E.1-1 under one set of options, ready to apply to any number of instances."""

    def __init__(self, settings: Settings, pseudonyms: Pseudonyms) -> None:
        self.settings = settings
        self.pseudonyms = pseudonyms
        self.profile = Profile(settings.options)
        self.privates = PrivateFilter(settings.options)

    def clean(self, ds: Dataset, terms: PhiTerms, *, record: bool = False) -> HeaderOutcome:
        run = _Run(self, ds, terms, record)
        birth, study = _date_of(ds, "PatientBirthDate"), _date_of(ds, "StudyDate")
        run.walk(ds, (), "")
        if self.settings.options.retain_patient_characteristics and "PatientAge" not in ds and birth and study:
            # E.1.1 allows adding Patient's Age in place of the birth date the profile removes.
            try:
                ds.PatientAge = _dates.age_between(birth, study)
            except _dates.DateValueError:
                pass
        return run.out


def _raw_text(ds: Dataset, tag: int) -> str:
    """A short value as read, without converting the element (a broken one must not raise here)."""
    raw = ds._dict.get(tag)
    value = getattr(raw, "value", None)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("ascii", "replace").strip("\0 ")
    return str(value or "").strip("\0 ") if isinstance(value, str) else ""


def _patient_key(ds: Dataset) -> str:
    """What identifies the patient for pseudonyms and the date shift: the original Patient ID, else name."""
    try:
        pid = str(ds.get("PatientID", "") or "").strip()
        if pid:
            return "id:" + pid
        return "name:" + str(ds.get("PatientName", "") or "").strip()
    except Exception:
        return "unknown"


def _date_of(ds: Dataset, kw: str) -> _dt.date | None:
    try:
        return _dates.parse_da(str(ds.get(kw, "") or ""))
    except (_dates.DateValueError, Exception):
        return None


BINARY_VRS = frozenset({"OB", "OW", "UN", "OD", "OF", "OL", "OV"})


def _writable_vr(ds: Dataset, tag: int, vr: str | None) -> str:
    """The VR a replacement is written with: the element's own, resolved when it was read as UN or implicit."""
    if vr and vr not in ("UN",) and " or " not in vr:
        return vr
    raw = ds._dict[tag]
    if raw.VR and raw.VR != "UN" and " or " not in raw.VR:
        return raw.VR
    known = _dictionary_vr(tag)
    if known and " or " not in known:
        return known
    if known:  # "OB or OW" and friends: pydicom resolves these on conversion
        return ds[tag].VR
    return "UN"


def dummy_value(vr: str):
    if vr in ("DA", "DT", "TM"):
        return _dates.DUMMY[vr]
    if vr in ("DS", "IS"):
        return "0"
    if vr == "AS":
        return "000D"
    if vr == "PN":
        return PersonName(DUMMY_TEXT)
    if vr == "AE":
        return "ANONYMOUS"
    if vr == "UR":
        return "urn:removed"
    if vr in ("US", "SS", "UL", "SL", "UV", "SV", "AT"):
        return 0
    if vr in ("FL", "FD"):
        return 0.0
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return b"\0\0"
    return DUMMY_TEXT


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return list(value)
    return [value]


def _fit(text: str, vr: str) -> str:
    """Cut to the VR's length at a word boundary: half a word is a word nobody checked."""
    limit = MAX_LENGTH.get(vr)
    if not limit or len(text) <= limit:
        return text
    cut = text[:limit]
    if text[limit].isalnum() and cut[-1:].isalnum():
        cut = cut.rstrip("".join(c for c in set(cut) if c.isalnum()))
    return cut.rstrip()


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
