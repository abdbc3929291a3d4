"""The IOD Type of an attribute in an instance, which decides the combined actions of Table E.1-1."""

from __future__ import annotations

from types import MappingProxyType

from pydicom.datadict import tag_for_keyword

from ._standard import iod_types

# Outcome of each action for Type 1 (or 1C), Type 2 (or 2C) and Type 3 / not in the IOD.
# Two choices go beyond the letter of Table E.1-1a, each keeping the instance valid at no cost to privacy:
# - X/Z/U* on a Type 2 sequence keeps it with every UID replaced (the Type 1 outcome) instead of emptying
#   it, so that the Common Instance Reference module still finds the references (dciodvfy checks this);
# - plain X or Z on an attribute that the instance's IOD makes Type 1 or 2 (Responsible Person is Type 2C
#   for animals) empties it or puts a dummy in, which discloses no more than removing it.
_BY_TYPE = {
    "Z/D": ("D", "Z", "Z"),
    "X/Z": ("Z", "Z", "X"),
    "X/D": ("D", "D", "X"),
    "X/Z/D": ("D", "Z", "X"),
    "X/Z/U*": ("U", "U", "X"),
    "X": ("D", "Z", "X"),
    "Z": ("D", "Z", "Z"),
}
# Where the IOD is not known (private SOP classes, retired ones): privacy first, never a value.
_UNKNOWN_IOD = {"Z/D": "Z", "X/Z": "X", "X/D": "X", "X/Z/D": "X", "X/Z/U*": "X", "X": "X", "Z": "Z"}


def _animal(ds) -> bool:
    return any(_present(ds, kw) for kw in ("PatientSpeciesDescription", "PatientSpeciesCodeSequence"))


def _approved_or_rejected(ds) -> bool:
    try:
        return str(ds.get("ApprovalStatus", "") or "").strip().upper() in ("APPROVED", "REJECTED")
    except Exception:
        return True


def _present(ds, keyword: str) -> bool:
    tag = _TAGS[keyword]
    if (tag is not None) and (type(getattr(ds, "_dict", None)) is dict) and (tag not in ds._dict):
        return False  # what ds.get(keyword) says of an absent element (None), without converting the key
    try:
        return bool(ds.get(keyword))
    except Exception:
        return True  # unreadable: assume the condition may hold, and keep the attribute valid


_TAGS = MappingProxyType({kw: tag_for_keyword(kw)
                          for kw in ("PatientSpeciesDescription", "PatientSpeciesCodeSequence")})

# The conditions of the Type 1C/2C attributes that Table E.1-1 removes (X, Z or X/Z) at the top level of some
# IOD, as PS3.3 states them: Patient Module (C.7.1.1) for the responsible person and organisation and the
# patient's sex neutered, "required if the patient is an animal"; Approval Module (C.8.8.16) for the review
# date, time and reviewer, "required if Approval Status is APPROVED or REJECTED". Where a condition does not
# hold, X removes the attribute (a test keeps this list equal to what the generated IOD data holds).
CONDITIONS = {
    "PatientSexNeutered": _animal,
    "ResponsiblePerson": _animal,
    "ResponsibleOrganization": _animal,
    "ReviewDate": _approved_or_rejected,
    "ReviewerName": _approved_or_rejected,
    "ReviewTime": _approved_or_rejected,
}


def is_image_class(sop_class_uid: str | None) -> bool:
    """Whether the SOP class's IOD is an image IOD (PS3.3 names each '... Image'; each includes the Image
    Pixel module, whose Pixel Data it requires). False for a class the standard's tables do not hold."""
    iod = iod_types.SOP_CLASS_IOD.get(str(sop_class_uid or "").strip("\0 "))
    return iod is not None and iod.endswith("-image")


class IodTypes:
    """Attribute Types of one IOD, looked up by sequence path + keyword."""

    def __init__(self, sop_class_uid: str | None) -> None:
        iod = iod_types.SOP_CLASS_IOD.get(str(sop_class_uid or "").strip("\0 "))
        self.iod = iod
        self._types = iod_types.TYPE_SETS[iod_types.IOD_TYPE_SET[iod]] if iod in iod_types.IOD_TYPE_SET else None

    @property
    def known(self) -> bool:
        return self._types is not None

    def type_of(self, path: tuple[str, ...], keyword: str) -> str:
        if self._types is None:
            return "?"
        return self._types.get(">".join((*path, keyword)), "3")

    def unmet(self, ds) -> frozenset[str]:
        """The conditional attributes of CONDITIONS whose condition this instance does not meet."""
        if self._types is None:
            return frozenset()
        verdicts: dict = {}  # each condition read once (three attributes share each)

        def holds(condition) -> bool:
            if condition not in verdicts:
                verdicts[condition] = condition(ds)
            return verdicts[condition]

        return frozenset(kw for kw, condition in CONDITIONS.items() if kw in self._types and not holds(condition))

    def decide(self, action: str, path: tuple[str, ...], keyword: str, unmet: frozenset[str] = frozenset()) -> str:
        """Turn an action that depends on the Type into D, Z, X or U for this attribute here. `unmet`: the
        conditional attributes the instance does not need (see CONDITIONS): Type 3 for them."""
        if action not in _BY_TYPE:
            return action
        if self._types is None:
            return _UNKNOWN_IOD[action]
        t = self.type_of(path, keyword)
        if t in ("1C", "2C") and not path and keyword in unmet:
            t = "3"
        one, two, three = _BY_TYPE[action]
        if t in ("1", "1C"):
            return one
        if t in ("2", "2C"):
            return two
        return three
