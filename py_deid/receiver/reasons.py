"""Failure Reason (0008,1197) values of the Store Instances Response (PS3.18 Table I.2-2) and their texts.

The standard's classes: A7xx out of resources, A9xx data set does not conform, Cxxx cannot understand,
0110 processing failure, 0122 SOP class not supported; "additional codes may be used" and must be named in
the conformance statement, which is this table. The de-identification findings of the core's verify get
their own A9Dx codes so that an uploader can tell the class of problem without any value being echoed.
Each failed item also carries Error Comment (0000,0902, LO) with the PHI-free text below and Offending
Element (0000,0901, AT) with the tags involved, as DIMSE failure statuses do (PS3.7 C.4, C.5).
"""

from __future__ import annotations

from dataclasses import dataclass

OUT_OF_RESOURCES = 0xA700
INFLATE_LIMIT = 0xA701
MEMORY_LIMIT = 0xA702
STUDY_MISMATCH = 0xA900
IDENTITY_NOT_REMOVED = 0xA9D0
ATTRIBUTE_NOT_ALLOWED = 0xA9D1
PRIVATE_NOT_SAFE = 0xA9D2
BURNED_IN_ANNOTATION = 0xA9D3
PHI_MARKER = 0xA9D4
ORIGINAL_UID = 0xA9D5
PIXEL_TEXT = 0xA9D6
OPTION_NOT_ALLOWED = 0xA9D7
NOT_PSEUDONYMOUS = 0xA9D8
PREAMBLE_OR_META = 0xA9D9
TEXT_NOT_ALLOWED = 0xA9DA
CODE_NOT_STANDARD = 0xA9DB
VALUE_NOT_VALID = 0xA9DC
OTHER_FINDING = 0xA9DF
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
DUPLICATE_CONFLICT = 0x0111
SOP_CLASS_NOT_SUPPORTED = 0x0122

TEXT = {
    OUT_OF_RESOURCES: "receiver is out of storage space",
    INFLATE_LIMIT: "deflated data set inflates beyond the receiver's limits",
    MEMORY_LIMIT: "instance needs more memory than a verifier may use",
    STUDY_MISMATCH: "instance is not of the study named in the request",
    IDENTITY_NOT_REMOVED: "Patient Identity Removed is not YES",
    ATTRIBUTE_NOT_ALLOWED: "instance still carries attributes the profile removes",
    PRIVATE_NOT_SAFE: "instance carries private attributes not known safe",
    BURNED_IN_ANNOTATION: "Burned In Annotation is YES",
    PHI_MARKER: "instance text still looks like identifying data",
    ORIGINAL_UID: "instance still carries an original UID",
    PIXEL_TEXT: "pixel data still shows text",
    OPTION_NOT_ALLOWED: "de-identified with options the trial does not allow",
    NOT_PSEUDONYMOUS: "Patient's Name or ID is neither a subject ID nor a pseudonym",
    PREAMBLE_OR_META: "preamble or file meta holds more than an output needs",
    TEXT_NOT_ALLOWED: "instance keeps text outside the allowed vocabulary",
    CODE_NOT_STANDARD: "instance keeps a code of no standard coding scheme",
    VALUE_NOT_VALID: "instance holds values invalid for their VR",
    OTHER_FINDING: "instance failed the de-identification check",
    CANNOT_UNDERSTAND: "part is not a readable DICOM instance",
    PROCESSING_FAILURE: "receiver failed to process the instance",
    DUPLICATE_CONFLICT: "a different instance with this SOP Instance UID is stored",
    SOP_CLASS_NOT_SUPPORTED: "SOP class not accepted (media index or not composite)",
}

# verify's finding codes, most serious first: with several findings the first one present names the failure.
FINDINGS = {
    "identity-not-removed": IDENTITY_NOT_REMOVED,
    "identity-not-pseudonymous": NOT_PSEUDONYMOUS,
    "option-not-allowed": OPTION_NOT_ALLOWED,
    "preamble": PREAMBLE_OR_META,
    "file-meta": PREAMBLE_OR_META,
    "burned-in-annotation": BURNED_IN_ANNOTATION,
    "attribute-not-allowed": ATTRIBUTE_NOT_ALLOWED,
    "private-not-safe": PRIVATE_NOT_SAFE,
    "phi-marker": PHI_MARKER,
    "original-uid": ORIGINAL_UID,
    "pixel-text": PIXEL_TEXT,
    "text-not-allowlisted": TEXT_NOT_ALLOWED,
    "code-not-standard": CODE_NOT_STANDARD,
    "value-not-valid": VALUE_NOT_VALID,
    "unreadable": CANNOT_UNDERSTAND,
}
_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def finding_comment(code: object) -> str:
    """The Error Comment of a finding: the table's text, else the finding's code (a fixed identifier of
    the verifier, never a value from the file), else a generic text."""
    reason = FINDINGS.get(code) if isinstance(code, str) else None
    if reason is not None:
        return TEXT[reason]
    if isinstance(code, str) and 0 < len(code) <= 40 and set(code) <= _CODE_CHARS:
        return f"de-identification check failed: {code}"
    return TEXT[OTHER_FINDING]


@dataclass(frozen=True)
class Failure:
    reason: int
    comment: str  # PHI-free, at most 64 characters (LO)
    offending: tuple[str, ...] = ()  # tags as 8 hex digits, e.g. "00100010"

    @classmethod
    def of(cls, reason: int, comment: str | None = None, offending: tuple[str, ...] = ()) -> Failure:
        return cls(reason, (comment or TEXT[reason])[:64], offending)
