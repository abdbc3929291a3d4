"""The PHI terms of one instance, taken from its original header, and the matching of text against them.

Two consumers: free text in the header (clean_descriptors, clean_structured_content: exact matching, case
and separator tolerant, here) and OCR output from the pixels (tolerant of the errors OCR makes: O/0, l/1,
S/5, a lost space; `fold_ocr` is here, the matcher is py_deid.pixels.phi_text).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Iterable, Iterator

from pydicom import config
from pydicom.charset import decode_bytes
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName, validate_value

from . import dates as _dates
from .elements import KNOWN_VRS, dictionary_vr

# Attributes whose values are identifiers of the patient or the encounter.
ID_KEYWORDS = (
    "PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "AdmissionID", "MedicalRecordLocator",
    "PatientInsurancePlanCodeSequence", "MilitaryRank", "RequestedProcedureID", "PerformedProcedureStepID",
    "ScheduledProcedureStepID", "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest", "ServiceEpisodeID", "IssuerOfPatientID",
    "ContainerIdentifier", "SpecimenIdentifier",
)
# Attributes whose values name places and organisations tied to the patient.
PLACE_KEYWORDS = (
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "PatientAddress",
    "ReferringPhysicianAddress", "RegionOfResidence", "CountryOfResidence", "StationName",
    "PerformedLocation", "ScheduledProcedureStepLocation", "CurrentPatientLocation", "PatientInstitutionResidence",
)
PHONE_KEYWORDS = ("PatientTelephoneNumbers", "ReferringPhysicianTelephoneNumbers", "PersonTelephoneNumbers")
DATE_KEYWORDS = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
                 "InstanceCreationDate", "PerformedProcedureStepStartDate", "LastMenstrualDate")
NAME_FIELD_KEYWORDS = ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
                       "ResponsiblePerson")

# The keyword of every tag whose keyword decides what kind of term its values are (any other tag's is
# treated as ""): read-only, built once.
_KEYWORDS = MappingProxyType({tag_for_keyword(k): k for k in (*ID_KEYWORDS, *PLACE_KEYWORDS, *PHONE_KEYWORDS,
                                                               *DATE_KEYWORDS, *NAME_FIELD_KEYWORDS)
                              if tag_for_keyword(k) is not None})
_KEYWORD_TAGS = frozenset(_KEYWORDS)
# VRs that hold no term (a term is in PN, DA and DT values, or in the attributes of _KEYWORDS); SQ, UN and
# no VR (implicit) are looked at further.
_NO_TERM_VRS = KNOWN_VRS - {"SQ", "PN", "DA", "DT", "UN"}

# Words too common to count as a name part on their own, whatever a header says.
_NOT_NAMES = frozenset({"MR", "MRS", "MS", "DR", "JR", "SR", "II", "III", "IV", "THE", "AND", "OF", "DE", "LA",
                        "VAN", "VON", "DER", "DEN", "DEL", "DA", "DI", "LE", "EL", "MD", "PHD"})

_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_PHONE = r"(?<![\w.])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.-]\d{3,4}[\s.-]?\d{3,4}(?![\w.])"
_SSN = r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"
_DIGITS = r"(?<![\w.])\d{6,}(?![\w.])"
_MON = r"(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|SEPT|OCT|NOV|DEC)[A-Z]*\.?"
_DATES = (
    r"(?<![\w.])\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?![\w.])",
    r"(?<![\w.])(?:1[89]|20)\d{2}[/.-]\d{1,2}[/.-]\d{1,2}(?![\w.])",
    rf"(?<![\w.])\d{{1,2}}[ -]?{_MON}[ -]?(?:\d{{4}}|\d{{2}})(?![\w.])",
    rf"(?<![\w.]){_MON} \d{{1,2}},? \d{{4}}(?![\w.])",
)
# Case-sensitive (the patterns are matched ignoring case): "Mr Smith" and "DR. SMITH" are people, "MR BRAIN"
# is a modality and "DR 60" a setting.
_HONORIFIC = (r"(?-i:(?:\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Doctor)\b\.?|\b(?:DR|MR|MRS|MS|PROF)\.)\s*[A-Z][A-Za-z'-]+"
              r"(?:[ ,]+[A-Z][A-Za-z'-]+)?)")

PATTERNS = (_EMAIL, _SSN, _PHONE, *_DATES, _DIGITS, _HONORIFIC)
REDACTED = "***"

# OCR confusions folded together before comparing (applied before upper-casing: l and I differ from L).
_OCR_FOLD = str.maketrans({
    "O": "0", "o": "0", "Q": "0", "D": "0",
    "I": "1", "l": "1", "i": "1", "|": "1", "!": "1", "L": "1",
    "Z": "2", "z": "2",
    "S": "5", "s": "5", "$": "5",
    "G": "6", "b": "6",
    "B": "8",
    "g": "9", "q": "9",
})
_NON_ALNUM = re.compile(r"[^0-9A-Z]")


def fold_ocr(text: str) -> str:
    """Text reduced to what survives OCR errors: confusable characters folded, separators dropped."""
    return _NON_ALNUM.sub("", text.translate(_OCR_FOLD).upper())


def _decoded(raw, vr: str, encodings) -> list[str] | None:
    """The values of an element as text, decoded from its raw bytes without converting it in the dataset
    (a converted element costs more to write back; most are written back unchanged). `encodings`: the
    dataset's character sets (Dataset._character_set), needed for raw text of the VRs in _CHARSET_VRS."""
    if not getattr(raw, "is_raw", False):
        value = raw.value
        return [str(v) for v in _text_values(value)]
    return _decoded_bytes(raw.value, vr, encodings)


def _decoded_bytes(data, vr: str, encodings) -> list[str] | None:
    """_decoded of a value's raw bytes."""
    if not data:
        return []
    try:
        if vr in _CHARSET_VRS:
            if encodings is _UNREADABLE:
                return None
            if isinstance(encodings, str):
                encodings = [encodings]
            text = decode_bytes(data, encodings, _PN_DELIMITERS if vr == "PN" else _TEXT_DELIMITERS)
        else:
            text = bytes(data).decode("ascii")
    except Exception:
        return None
    return [v.strip("\0 ") for v in text.split("\\")] if vr not in ("ST", "LT", "UT") else [text.strip("\0 ")]


_UNREADABLE = object()  # the character sets of a dataset whose Specific Character Set cannot be read
_CHARSET_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})
_PN_DELIMITERS = {0x5C, 0x3D, 0x5E}  # backslash, =, ^
_TEXT_DELIMITERS = {0x5C}


class _NotPlain(Exception):
    """A sequence's bytes that _scan_sequence does not read the way pydicom would for certain."""


_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_CHARACTER_SET = 0x00080005
_TAG_LENGTH = struct.Struct("<HHI").unpack_from
_EXPLICIT_HEAD = struct.Struct("<HH2sH").unpack_from
_U32 = struct.Struct("<I").unpack_from
# The VRs read from an explicit VR element's two bytes (UN is not the plain case: pydicom may read its value
# as a sequence), and those with a 4-byte length after two reserved bytes (PS3.5 7.1.2).
_EXPLICIT_VRS = MappingProxyType({vr.encode("ascii"): vr for vr in KNOWN_VRS if len(vr) == 2 and vr != "UN"})
_LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UR", "UT", "UV"})


def _scan_sequence(data: bytes, pos: int, end: int, undefined: bool, found: list) -> int:
    """The items of an explicit VR little endian sequence from `pos`: up to `end` (a defined length), or to
    its delimiter before `end` (undefined). Appends (tag, VR, value) of the elements that may hold a term,
    in the order the walk over pydicom's items meets them; returns where the sequence ends."""
    while True:
        if not undefined and pos == end:
            return pos
        if pos + 8 > end:
            raise _NotPlain
        group, element, length = _TAG_LENGTH(data, pos)
        tag = (group << 16) | element
        pos += 8
        if tag == _SEQUENCE_END and undefined and length == 0:
            return pos
        if tag != _ITEM:
            raise _NotPlain
        if length == _UNDEFINED:
            pos = _scan_item(data, pos, end, True, found)
        else:
            if pos + length > end:
                raise _NotPlain
            if _scan_item(data, pos, pos + length, False, found) != pos + length:
                raise _NotPlain
            pos += length


def _scan_item(data: bytes, pos: int, end: int, undefined: bool, found: list) -> int:
    """One item's elements (as _scan_sequence); returns where the item ends."""
    last = -1
    while True:
        if not undefined and pos == end:
            return pos
        if pos + 8 > end:
            raise _NotPlain
        group, element, vr_bytes, short = _EXPLICIT_HEAD(data, pos)
        tag = (group << 16) | element
        if group == 0xFFFE:
            if undefined and tag == _ITEM_END and data[pos + 4:pos + 8] == b"\0\0\0\0":
                return pos + 8
            raise _NotPlain
        if (tag <= last) or (tag == _CHARACTER_SET):
            raise _NotPlain  # out of order or twice (pydicom keeps the last), or a character set of its own
        last = tag
        vr = _EXPLICIT_VRS.get(vr_bytes)
        if vr is None:
            raise _NotPlain
        if vr in _LONG_LENGTH_VRS:
            if short or (pos + 12 > end):
                raise _NotPlain
            length = _U32(data, pos + 8)[0]
            pos += 12
        else:
            length = short
            pos += 8
        if length == _UNDEFINED:
            if vr != "SQ":
                raise _NotPlain
            pos = _scan_sequence(data, pos, end, True, found)
            continue
        if pos + length > end:
            raise _NotPlain
        if vr == "SQ":
            _scan_sequence(data, pos, pos + length, False, found)
        elif length and ((vr not in _NO_TERM_VRS) or (tag in _KEYWORD_TAGS)):
            found.append((tag, vr, data[pos:pos + length]))
        pos += length


_NAME_PART_SPLIT = re.compile(r"[\s,.]+")


def _person_name_text(value) -> str:
    """str(PersonName(value)) without building one: its component groups, trailing empty ones dropped. The
    value is validated as PersonName would only where pydicom is set to raise (a warning says nothing here:
    pydicom's warnings are not shown while an instance is processed)."""
    if isinstance(value, PersonName):
        return str(value)
    value = str(value)
    mode = config.settings.reading_validation_mode
    if mode == config.RAISE:
        validate_value("PN", value, mode)
    groups = value.split("=")
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


def _text_values(value) -> Iterator[str]:
    if value is None:
        return
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        for v in value:
            yield from _text_values(v)
    elif isinstance(value, (bytes, bytearray)):
        yield bytes(value).decode("latin-1", "replace").strip("\0 ")
    else:
        yield str(value).strip("\0 ")


@dataclass
class PhiTerms:
    """Identifying strings of one instance, collected before any attribute is changed."""

    names: set[str] = field(default_factory=set)  # single name parts, upper case (>= 2 letters)
    patient_names: set[str] = field(default_factory=set)  # the parts of the patient's own names
    full_names: set[str] = field(default_factory=set)  # whole names as written in the header
    ids: set[str] = field(default_factory=set)
    places: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    dates: set = field(default_factory=set)  # datetime.date
    birth_dates: set = field(default_factory=set)

    @classmethod
    def from_dataset(cls, ds: Dataset) -> PhiTerms:
        terms = cls()
        terms._collect(ds)
        return terms

    def _collect(self, ds: Dataset) -> None:
        # Only the elements that can hold a term are converted: pydicom parses values lazily, and most of
        # a header (numbers, codes, pixel description) is never touched. The elements are read from the
        # dataset's dict (Dataset.get_item converts every key to a Tag first) and the kind of term a tag
        # holds comes from one table (_KEYWORDS): this runs over every element of every instance.
        elements = ds._dict
        encodings = None
        for tag, raw in list(elements.items()):
            vr = raw.VR
            if vr is None and isinstance(raw, RawDataElement) and raw.value is None:
                vr = dictionary_vr(tag)  # implicit VR, value not read (a large one): never read for nothing
            if (vr in _NO_TERM_VRS) and (tag not in _KEYWORD_TAGS):
                continue  # most elements: a VR that holds no term, in an attribute that names none
            if isinstance(raw, RawDataElement) and raw.value is None:
                raw = ds.get_item(tag)  # a deferred read: read it, as get_item does
                vr = raw.VR
            if vr is None or vr == "UN":
                vr = dictionary_vr(tag) or vr
            if vr == "SQ":
                if self._collect_raw_sequence(ds, raw):
                    continue
                try:
                    items = ds[tag].value or ()
                except Exception:
                    continue
                for item in items:
                    self._collect(item)
                continue
            keyword = _KEYWORDS.get(tag, "")
            if vr not in ("PN", "DA", "DT") and not keyword:
                continue
            if encodings is None and vr in _CHARSET_VRS and getattr(raw, "is_raw", False):
                try:
                    encodings = ds._character_set
                except Exception:
                    encodings = _UNREADABLE  # its text cannot be decoded
            values = _decoded(raw, vr, encodings)
            if values is None:
                continue  # an element that cannot be decoded holds nothing we can match
            self._add(vr, keyword, values)

    def _collect_raw_sequence(self, ds: Dataset, raw) -> bool:
        """The terms of a sequence still as read (explicit VR little endian), taken from its bytes without
        pydicom parsing its items into Datasets (most such sequences are then removed by the profile, never
        walked again). The items are read as pydicom would read them; anything but the plain case (implicit VR
        or big endian items, UN, an item's own Specific Character Set, elements out of order, a length that
        does not fit, a delimiter out of place) gives False: the sequence is then parsed by pydicom as before.
        The terms are added in the order the items' elements come, as the walk over parsed items adds them."""
        if (raw.__class__ is not RawDataElement) or (raw.VR != "SQ") or raw.is_implicit_VR \
                or not raw.is_little_endian or (raw.value.__class__ is not bytes):
            return False
        data = raw.value
        found: list[tuple[int, str, bytes]] = []
        try:
            if _scan_sequence(data, 0, len(data), False, found) != len(data):
                return False
        except _NotPlain:
            return False
        if not found:
            return True
        try:
            # What Dataset.__getitem__ gives the items of a sequence it converts (their own character sets
            # are not read here: an item with one is not the plain case).
            encodings = ds.original_character_set or ds._character_set
        except Exception:
            return False  # pydicom's conversion fails alike: the usual path skips the sequence
        for tag, vr, value in found:
            values = _decoded_bytes(value, vr, encodings)
            if values is not None:
                self._add(vr, _KEYWORDS.get(tag, ""), values)
        return True

    def _add(self, vr: str, keyword: str, value: list[str]) -> None:
        """The terms of one element's values (a list of str, stripped: what _text_values would give)."""
        if vr == "PN":
            for v in value:
                parts = self.add_name(v)
                if keyword in NAME_FIELD_KEYWORDS:
                    self.patient_names.update(p for p in parts if len(p) >= 3)
        elif keyword in ID_KEYWORDS and vr != "SQ":
            for v in value:
                if len(v) >= 3:
                    self.ids.add(v)
        elif keyword in PLACE_KEYWORDS:
            for v in value:
                if len(v) >= 3:
                    self.places.add(v)
        elif keyword in PHONE_KEYWORDS:
            for v in value:
                if sum(c.isdigit() for c in v) >= 5:
                    self.phones.add(v)
        elif vr == "DA" or keyword in DATE_KEYWORDS:
            for v in value:
                try:
                    d = _dates.parse_da(v[:8])
                except _dates.DateValueError:
                    continue
                self.dates.add(d)
                if keyword == "PatientBirthDate":
                    self.birth_dates.add(d)
        elif vr == "DT":
            for v in value:
                try:
                    self.dates.add(_dates.parse_da(v[:8]))
                except _dates.DateValueError:
                    pass

    def add_name(self, value) -> set[str]:
        """Add a person name; returns its parts."""
        if value is None or value == "":
            return set()
        text = _person_name_text(value).strip()
        found: set[str] = set()
        for group in text.split("="):
            for component in group.split("^"):
                for part in _NAME_PART_SPLIT.split(component):
                    part = part.strip().upper()
                    if len(part) >= 2 and part not in _NOT_NAMES and any(c.isalpha() for c in part):
                        found.add(part)
        self.names |= found
        if len(found) >= 2:
            self.full_names.add(text)
        return found

    def __bool__(self) -> bool:
        return bool(self.names or self.ids or self.places or self.phones or self.dates)

    # -- exact matching for header text ------------------------------------------------------------

    def literal_terms(self) -> list[str]:
        out: set[str] = set()
        out |= self.names | self.ids | self.phones
        for place in self.places:
            out.add(place)
        for full in self.full_names:
            out.add(full.replace("^", " ").strip())
        for d in self.dates:
            out |= _dates.written_forms(d)
        return sorted((t for t in out if t.strip()), key=len, reverse=True)

    def _term_alternative(self) -> list[str]:
        parts = []
        for term in self.literal_terms():
            words = [re.escape(w) for w in re.split(r"[\s^,]+", term) if w]
            if words:
                parts.append(r"[\s^,.-]*".join(words))
        return [rf"(?<![0-9A-Za-z])(?:{'|'.join(parts)})(?![0-9A-Za-z])"] if parts else []

    @cached_property
    def _scrub_re(self) -> re.Pattern:
        alternatives = self._term_alternative() + list(PATTERNS)
        return re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE)

    @cached_property
    def _terms_re(self) -> re.Pattern | None:
        alternatives = self._term_alternative()
        return re.compile(alternatives[0], re.IGNORECASE) if alternatives else None

    def scrub(self, text: str) -> tuple[str, int]:
        """Remove this instance's PHI terms and PHI-shaped patterns from free text; keeps the rest."""
        if not text:
            return text, 0
        cleaned, n = self._scrub_re.subn(REDACTED, text)
        return cleaned, n

    def find(self, text: str) -> list[str]:
        """The PHI-like substrings of text, terms and patterns (for checks; never logged)."""
        return [m.group(0) for m in self._scrub_re.finditer(text or "")]

    def find_terms(self, text: str) -> list[str]:
        """The substrings of text that are this instance's own PHI terms (no patterns)."""
        if self._terms_re is None:
            return []
        return [m.group(0) for m in self._terms_re.finditer(text or "")]

    def patient_only(self) -> PhiTerms:
        """The terms that point at the patient alone (their names, IDs, birth date): what a residual check
        looks for without the false alarms of staff or device names that an instance may legitimately keep."""
        birth = set(self.birth_dates)
        return PhiTerms(names=set(self.patient_names), ids={i for i in self.ids if len(i) >= 4}, dates=birth,
                        birth_dates=birth)

    def without(self, *, places: bool = False, dates: bool = False) -> PhiTerms:
        """A copy without the kinds of term that the options in force retain."""
        return PhiTerms(names=set(self.names), patient_names=set(self.patient_names),
                        full_names=set(self.full_names), ids=set(self.ids),
                        places=set() if places else set(self.places), phones=set(self.phones),
                        dates=set() if dates else set(self.dates), birth_dates=set(self.birth_dates))

    def describe(self) -> dict[str, int]:
        """Counts only: safe to report."""
        return {"names": len(self.names), "ids": len(self.ids), "places": len(self.places),
                "phones": len(self.phones), "dates": len(self.dates)}


def phi_patterns_in(text: str) -> list[str]:
    """PHI-shaped substrings (dates, phone numbers, e-mails, long digit runs) with no header to compare to."""
    return [m.group(0) for m in _PATTERN_RE.finditer(text or "")]


_PATTERN_RE = re.compile("|".join(f"(?:{p})" for p in PATTERNS), re.IGNORECASE)


def merge(terms: Iterable[PhiTerms]) -> PhiTerms:
    out = PhiTerms()
    for t in terms:
        out.names |= t.names
        out.full_names |= t.full_names
        out.ids |= t.ids
        out.places |= t.places
        out.phones |= t.phones
        out.dates |= t.dates
        out.patient_names |= t.patient_names
        out.birth_dates |= t.birth_dates
    return out
