"""Residual-PHI checks of de-identified instances (the `verify` command and the receiver's front door).

A Finding says what kind of problem is where (a tag path), never the value: findings leave the site (the
receiver's reply, a report) and must carry no PHI themselves.

The walk converts a value through pydicom only where a check reads it (see _Checker.lazy_vr); the others
are judged as read by the value pass. check_dataset(convert_all=True) converts every element first, as the
walk once did: the same findings, slower (tests/header/test_verify_lazy.py holds the two together).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from . import codes
from . import dates as _dates
from .clean_text import allowlisted
from .codes import CODE_ITEM, CODE_PARTS
from . import values as _values_vr
from .conform import declared_as_other
from .conform import problems as value_problems
from .elements import DUMMY_TEXT, TEXT_VRS, dictionary_vr, keyword
from .iod import IodTypes
from .markers import TRIAL_TAGS
from .options import OPTION_CODES, PIXEL_OPTIONS, Options
from .phi import PhiTerms, phi_patterns_in
from .policy import profile_for
from .privates import PrivateFilter
from .pseudonyms import PATIENT_PSEUDONYM

# Values that a Z or D action may leave behind.
ALLOWED_DUMMIES = frozenset({"", DUMMY_TEXT, "ANONYMOUS", "0", "000D", "urn:removed", *_dates.DUMMY.values()})
PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
# This tool's own marker text and the parts of coded entries (a code's meaning is the standard's words).
NOT_FREE_TEXT = CODE_PARTS | {0x00120063, 0x00080104}
# File meta an output may hold: what PS3.10 needs to read it, nothing that names a source (E.1.1).
META_ALLOWED = frozenset({0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013})
_IMPLEMENTATION_VERSION = re.compile(r"[A-Z0-9_.]{1,16}")
# A trial subject ID as sites write them: no name separators, at least one digit.
_SUBJECT_SHAPE = re.compile(r"(?=[^\d]*\d)[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
# Lazy judging (see _Checker.lazy_vr): the VRs whose still-raw value may stay unconverted when the walk does
# not read it. Bytes kept as bytes by pydicom's conversion; numbers; text when it is plain printable ASCII.
_AS_BYTES_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV"})
_TEXTUAL_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR",
                          "SH", "LO", "ST", "LT", "UT", "UC", "PN"})
_LAZY_VRS = _AS_BYTES_VRS | _values_vr.NUMERIC_BINARY | _TEXTUAL_VRS
_PLAIN_ASCII = re.compile(rb"[ -~]*")


@dataclass(frozen=True)
class Finding:
    code: str  # identity-not-removed, identity-not-pseudonymous, attribute-not-allowed, private-not-safe,
    #            burned-in-annotation, original-uid, phi-marker, text-not-allowlisted, code-not-standard,
    #            value-not-valid, preamble, file-meta, option-not-allowed, unreadable, pixel-text
    where: str  # a tag path such as "(0040,A730)>(0040,A160)", or "frame 3" for pixels
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "where": self.where, "message": self.message}


@lru_cache(maxsize=64)
def _private_filter(options: Options) -> PrivateFilter:
    return PrivateFilter(options)


def _tag(t: int) -> str:
    return f"({t >> 16:04X},{t & 0xFFFF:04X})"


def _values(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return list(value)
    return [value]


class _Checker:
    def __init__(self, ds: Dataset, options: Options, original_uids: set[str] | None, terms: PhiTerms | None,
                 convert_all: bool = False):
        self.options = options
        self.convert_all = convert_all
        self.profile = profile_for(options)
        self.iod = IodTypes(ds.get("SOPClassUID"))
        self.unmet = self.iod.unmet(ds)
        self.safe = _private_filter(options)
        # With retain_uids the original UIDs are kept on purpose (E.3.9).
        self.original_uids = ({u.strip("\0 ") for u in original_uids}
                              if original_uids and not options.retain_uids else set())
        self.terms = terms.patient_only() if terms is not None else None
        self.findings: list[Finding] = []
        # Raw elements the walk found valid as read and left raw, by id (the value pass need not judge them
        # again); held here, so no id is reused while the dataset is checked.
        self.valid_as_read: dict[int, object] = {}

    def add(self, code: str, where: str, message: str) -> None:
        self.findings.append(Finding(code, where, message))

    def walk(self, ds: Dataset, path: tuple[str, ...], where: str, cleaned: bool) -> None:
        code_item = cleaned and codes.is_code_item(ds)
        if code_item:
            self.code_item(ds, where)
        creators = {}
        elements = ds._dict
        for tag in elements:
            if (tag >> 16) & 1 and 0x0010 <= (tag & 0xFFFF) <= 0x00FF:
                raw = ds.get_item(tag)
                v = raw.value
                creators[(tag >> 16, tag & 0xFFFF)] = (bytes(v).decode("latin-1") if isinstance(v, (bytes, bytearray))
                                                       else str(v or "")).strip("\0 ")
        for key, raw in list(elements.items()):
            tag = int(key)  # plain ints: pydicom's BaseTag comparisons are slow (ds[key], the dict's own key)
            loc = f"{where}>{_tag(tag)}" if where else _tag(tag)
            group = tag >> 16
            if group & 1:
                self.private(ds, tag, creators, path, loc)
                continue
            # Lazy: a value still as read is converted only when a check below reads it (see lazy_vr).
            vr = None if self.convert_all else self.lazy_vr(tag, raw)
            elem = None
            if vr is not None and vr not in _AS_BYTES_VRS:  # bytes: the value pass looks for element headers
                self.valid_as_read[id(raw)] = raw
            if vr is None:
                try:
                    elem = ds[key]
                except Exception:
                    self.add("unreadable", loc, "attribute cannot be parsed")
                    continue
                vr = elem.VR if elem.VR != "UN" else (dictionary_vr(tag) or "UN")
            resolved = self.profile.for_standard(tag, vr)
            action = resolved.action if resolved else None
            if resolved is None and dictionary_vr(tag) is None:
                self.add("attribute-not-allowed", loc, "attribute unknown to the data dictionary")
                continue
            if action and ("/" in action or action in ("X", "Z") and len(path) <= 1):
                action = self.iod.decide(action, path, keyword(tag), self.unmet)
            if (0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF) and not self.options.clean_graphics:
                self.add("attribute-not-allowed", loc, "overlay or curve data the profile removes")
                continue
            free_text = ((vr in TEXT_VRS or vr == "PN") and tag not in NOT_FREE_TEXT
                         and not (code_item and tag in CODE_ITEM))
            subject = not path and (tag in (PATIENT_NAME, PATIENT_ID) or tag in TRIAL_TAGS)
            if elem is None:
                if vr in _TEXTUAL_VRS and not raw.length:
                    continue  # empty text converts to no values: nothing below would find anything
                if not ((action in ("X", "Z") and not subject) or (vr == "UI" and self.original_uids)
                        or (free_text and (self.terms is not None or action == "C" or cleaned))):
                    continue  # no check here reads the value: it is judged as read by the value pass
                self.valid_as_read.pop(id(raw), None)  # converted: judged as converted, as before
                try:
                    elem = ds[key]
                except Exception:  # not reached: lazy_vr admits only values whose conversion succeeds
                    self.add("unreadable", loc, "attribute cannot be parsed")
                    continue
            if vr == "SQ":
                if action == "X" and elem.value:
                    self.add("attribute-not-allowed", loc, "sequence the profile removes")
                    continue
                if action == "Z" and elem.value:
                    self.add("attribute-not-allowed", loc, "sequence the profile empties")
                    continue
                sub_cleaned = cleaned or action in ("C", "D")
                for i, item in enumerate(elem.value or ()):
                    self.walk(item, (*path, keyword(tag)), f"{loc}[{i}]", sub_cleaned)
                continue
            values = _values(elem.value)
            if subject:
                pass  # the subject ID, a keyed pseudonym or the trial's own identifiers
            elif action == "X" and values:
                self.add("attribute-not-allowed", loc, "attribute the profile removes is present")
            elif action == "Z" and any(str(v).strip() not in ALLOWED_DUMMIES for v in values):
                self.add("attribute-not-allowed", loc, "attribute the profile empties holds a value")
            if vr == "UI" and self.original_uids:
                if any(str(v).strip("\0 ") in self.original_uids for v in values):
                    self.add("original-uid", loc, "an original UID of the batch is still present")
            if free_text:
                self.text(values, loc, action, cleaned)

    def lazy_vr(self, tag: int, raw) -> str | None:
        """The VR pydicom's conversion would give this element, when its value may stay as read; else None
        (convert it). Only where converting cannot change a verdict: the conversion cannot fail, and the
        value pass (py_deid.conform) finds the value valid as read exactly when it finds it valid converted,
        because the value is valid as read and converting it either keeps its bytes (OB, OW...), makes
        numbers (valid by construction: the length is a multiple of the size and the count within the
        dictionary's multiplicity) or drops padding of plain printable ASCII. Everything else (no or UN or
        an ambiguous VR, another VR than the dictionary's textual one, other characters, a value not valid
        as read) is converted as before, so it meets exactly the checks it met when every element was."""
        if raw.__class__ is not RawDataElement or tag & 0xFFFF == 0:
            return None
        vr = raw.VR
        if vr is None:
            vr = dictionary_vr(tag)  # implicit VR: pydicom's conversion takes the dictionary's
        if vr not in _LAZY_VRS:
            return None
        value = raw.value
        if value is None:
            if raw.length:
                return None  # a deferred read
            value = b""
        elif value.__class__ is not bytes:
            return None
        if declared_as_other(vr, dictionary_vr(tag)):
            return None
        if vr in _AS_BYTES_VRS:
            return vr
        if vr in _TEXTUAL_VRS and not _PLAIN_ASCII.fullmatch(value[:-1] if value.endswith(b"\0") and vr == "UI"
                                                          else value):
            return None
        if _values_vr.check(vr, value, tag=tag) != _values_vr.VALID:
            return None
        return vr

    def text(self, values: list, loc: str, action: str | None, cleaned: bool) -> None:
        for v in values:
            text = str(v)
            if self.terms is not None and self.terms.find_terms(text):
                self.add("phi-marker", loc, "text holds a PHI term of the original header")
                return
            if (action == "C" or cleaned) and phi_patterns_in(text):
                self.add("phi-marker", loc, "cleaned text still holds a PHI-shaped value")
                return
            if (action == "C" or cleaned) and text not in ALLOWED_DUMMIES and allowlisted(text)[1]:
                # Cleaned text is a fixed point of the cleaning: anything it would still replace is unknown.
                self.add("text-not-allowlisted", loc, "cleaned text holds a word not known to be safe")
                return

    def code_item(self, ds: Dataset, where: str) -> None:
        scheme, value = codes._text(ds, codes.SCHEME), codes._text(ds, codes.CODE_VALUE)
        meaning = codes.standard_meaning(scheme, value) if scheme and value else None
        if meaning is None or codes._text(ds, codes.MEANING) != meaning[:64]:
            self.add("code-not-standard", where, "a code of a replaced or cleaned sequence is not one the "
                                                 "standard defines, or its meaning is not the standard's")

    def private(self, ds: Dataset, tag: int, creators: dict, path: tuple[str, ...], loc: str) -> None:
        elem = tag & 0xFFFF
        if 0x0010 <= elem <= 0x00FF:
            return  # a creator is judged with its data elements
        if self.options.retain_safe_private and elem >= 0x1000:
            creator = creators.get((tag >> 16, elem >> 8))
            if creator and (tag >> 16, elem & 0xFF, creator) in self.safe.safe:
                return
        self.add("private-not-safe", loc, "private attribute not known to be safe")


def check_dataset(ds: Dataset, options: Options, *, original_uids: set[str] | None = None,
                  terms: PhiTerms | None = None, subject_ids: frozenset[str] | set[str] = frozenset(),
                  subject_pattern: str | None = None, convert_all: bool = False) -> list[Finding]:
    """Everything in this dataset that a de-identified instance under these options must not hold.
    `subject_ids` / `subject_pattern`: the trial's subject IDs, accepted as Patient ID and Patient's Name.
    `convert_all`: every element converted by pydicom before it is judged, as this check did before values
    were converted only when read (the same findings, slower: the tests' oracle for the lazy walk)."""
    checker = _Checker(ds, options, original_uids, terms, convert_all)
    _check_identity(checker, ds, subject_ids, subject_pattern)
    if str(ds.get("PatientIdentityRemoved", "") or "").strip().upper() != "YES":
        checker.add("identity-not-removed", "(0012,0062)", "Patient Identity Removed is not YES")
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES":
        checker.add("burned-in-annotation", "(0028,0301)", "Burned In Annotation is YES")
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        extra = sorted(t for t in meta.keys() if t not in META_ALLOWED)
        if extra:
            checker.add("file-meta", ",".join(_tag(t) for t in extra[:8]),
                        "file meta holds entries an output does not need (source AE titles, private data)")
        version = str(meta.get("ImplementationVersionName", "") or "").strip()
        if version and not _IMPLEMENTATION_VERSION.fullmatch(version):
            checker.add("file-meta", "(0002,0013)", "Implementation Version Name is not a plain version label")
        sop = str(ds.get("SOPInstanceUID", "") or "")
        if sop and str(meta.get("MediaStorageSOPInstanceUID", sop) or "") != sop:
            checker.add("attribute-not-allowed", "(0002,0003)", "file meta names another SOP instance")
    _check_codestreams(checker, ds)
    try:
        checker.walk(ds, (), "", False)
    except Exception:
        checker.add("unreadable", "", "dataset cannot be walked")
    try:
        implicit, little = ds.original_encoding
        for where, verdict in value_problems(ds, little=little is not False, implicit=bool(implicit),
                                             valid_as_read=checker.valid_as_read):
            checker.add("value-not-valid", where, "value not valid for its VR" if verdict == "invalid" else
                        "value holds bytes its VR cannot hold (a broken or forged structure)")
    except Exception:
        checker.add("unreadable", "", "values cannot be checked")
    return checker.findings


def _check_codestreams(checker: _Checker, ds: Dataset) -> None:
    """Compressed frames (JPEG, JPEG-LS, JPEG 2000) hold their image and nothing beside it: no comment or APPn
    segment, no bytes after its end (pixels.encapsulation.sanitized, which every output of this tool passed)."""
    from .pixels.encapsulation import J2K_FAMILY, JPEG_FAMILY, JPEG_LS, sanitized, split

    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""
    if "PixelData" not in ds or ts not in JPEG_FAMILY | JPEG_LS | J2K_FAMILY:
        return
    try:
        if sanitized(split(ds, int(ds.get("NumberOfFrames", 1) or 1)), ts) is None:
            return
        message = "a compressed frame carries data beside its image (a comment, an APPn segment or bytes after it)"
    except Exception:
        message = "compressed frames cannot be checked (malformed, or a comment in a tile-part header)"
    checker.add("codestream-extras", "(7FE0,0010)", message)


def _check_identity(checker: _Checker, ds: Dataset, subject_ids, subject_pattern: str | None) -> None:
    """Top-level Patient's Name and Patient ID must be the trial's subject ID or this tool's pseudonym."""
    trial_subject = str(ds.get("ClinicalTrialSubjectID", "") or "").strip()
    pattern = re.compile(subject_pattern) if subject_pattern else None
    for tag, where in ((PATIENT_NAME, "(0010,0010)"), (PATIENT_ID, "(0010,0020)")):
        try:
            elem = ds.get(tag)
            value = str((elem.value if elem is not None else "") or "").strip()
        except Exception:
            checker.add("unreadable", where, "attribute cannot be parsed")
            continue
        if not value or value in subject_ids or PATIENT_PSEUDONYM.fullmatch(value):
            continue
        if pattern is not None and pattern.fullmatch(value):
            continue
        if not subject_ids and pattern is None and value == trial_subject and _SUBJECT_SHAPE.fullmatch(value):
            continue  # the instance's own trial subject ID, when none is configured to compare with
        checker.add("identity-not-pseudonymous", where,
                    "neither a configured subject ID nor a pseudonym of this tool")


def check_bytes(data: bytes, options: Options, **kwargs) -> list[Finding]:
    """check_dataset of a Part 10 file, plus what only its bytes show (the preamble)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings quote values
        try:
            ds = pydicom.dcmread(BytesIO(data), force=True)
        except Exception:
            return [Finding("unreadable", "", "not a readable DICOM instance")]
        return preamble_findings(data) + check_dataset(ds, options, **kwargs)


def preamble_findings(data: bytes) -> list[Finding]:
    """An output's 128-byte preamble is all zero (E.1.1: it may hold anything, so nothing is kept)."""
    if len(data) >= 132 and data[128:132] == b"DICM" and any(data[:128]):
        return [Finding("preamble", "preamble", "the 128-byte preamble is not all zero")]
    return []


def declared_options(ds: Dataset) -> Options | None:
    """The options an instance says were applied (De-identification Method Code Sequence), or None when it
    does not say."""
    by_code = {code: name for name, code in OPTION_CODES.items() if name not in PIXEL_OPTIONS}
    try:
        items = ds.get("DeidentificationMethodCodeSequence") or []
        codes = {str(item.get("CodeValue", "")).strip() for item in items}
    except Exception:
        return None
    if not codes:
        return None
    try:
        return Options.from_names(by_code[c] for c in codes if c in by_code)
    except ValueError:
        return None


def check_received(ds: Dataset, allowed: Options, *, data: bytes | None = None, **kwargs) -> list[Finding]:
    """The receiver's check: the instance is judged under the options it declares, and those must be options
    the trial allows (every option relaxes the Basic Profile somewhere, so none may be claimed beyond it).
    `data`: the instance's bytes (for the preamble); kwargs as check_dataset (subject_ids, subject_pattern)."""
    found = preamble_findings(data) if data is not None else []
    declared = declared_options(ds)
    if declared is None:
        return found + check_dataset(ds, allowed, **kwargs)
    beyond = [name for name in declared.names if not getattr(allowed, name)]
    if beyond:
        return [Finding("option-not-allowed", "(0012,0064)",
                        "de-identified with options the trial does not allow: " + ", ".join(beyond))]
    return found + check_dataset(ds, declared, **kwargs)
