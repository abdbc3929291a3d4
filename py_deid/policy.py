"""The PS3.15 profile as data: Table E.1-1 resolved under a set of options, plus the rules this tool adds.

Resolution (E.3: "the Option wins"): among the options in force that list a row, C wins over K (cleaning
keeps the useful part of a value and never less privacy than keeping it); otherwise K; otherwise the basic
profile's action. Combined actions (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) stay combined here and are decided per
instance from the IOD Type (see iod.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ._standard import table_e1_1
from .elements import dictionary_vr
from .options import Options

# Free-text value of an SR content item (and of a graphic text object): not a row of Table E.1-1, but it
# is the value of the sequences the table marks D (Content Sequence) and cleans under an option.
TEXT_VALUE = 0x0040A160


@dataclass(frozen=True)
class Rule:
    tag: str  # as printed in the standard, e.g. "(0010,0010)" or "(60XX,3000)"
    name: str
    keyword: str
    basic: str
    option_actions: tuple[tuple[str, str], ...]  # (option, action) for the options that list the row
    edition: str

    def resolve(self, options: Options) -> tuple[str, str]:
        """(action, the option that decided it, or '' for the basic profile)."""
        active = [(option, action) for option, action in self.option_actions if getattr(options, option)]
        for wanted in ("C", "K"):
            for option, action in active:
                if action == wanted:
                    return action, option
        return self.basic, ""


def _parse_tag(text: str) -> int | None:
    group, elem = text.strip("()").split(",")
    if "X" in group or "X" in elem or "G" in group:
        return None
    return int(group + elem, 16)


@lru_cache(maxsize=1)
def rules() -> tuple[Rule, ...]:
    out = []
    for tag, name, keyword, _in_iod, basic, opts, edition in table_e1_1.ROWS:
        option_actions = tuple((c, a) for c, a in zip(table_e1_1.OPTION_COLUMNS, opts) if a)
        out.append(Rule(tag, name, keyword, basic, option_actions, edition))
    return tuple(out)


@dataclass(frozen=True)
class Resolved:
    action: str
    option: str  # the option that decided, '' for the basic profile, 'vr:<VR>' for a by-VR rule
    rule: Rule | None


class Profile:
    """Table E.1-1 resolved under one set of options; answers 'what happens to this tag'."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.by_tag: dict[int, Resolved] = {}
        self.curves = self.overlay_data = self.overlay_comments = self.private = None
        for rule in rules():
            action, option = rule.resolve(options)
            resolved = Resolved(action, option, rule)
            tag = _parse_tag(rule.tag)
            if tag is not None:
                self.by_tag[tag] = resolved
            elif rule.tag == "(50XX,XXXX)":
                self.curves = resolved
            elif rule.tag == "(60XX,3000)":
                self.overlay_data = resolved
            elif rule.tag == "(60XX,4000)":
                self.overlay_comments = resolved
            elif rule.tag == "(GGGG,EEEE)":
                self.private = resolved
        missing = [n for n in ("curves", "overlay_data", "overlay_comments", "private") if getattr(self, n) is None]
        if missing:
            raise RuntimeError(f"Table E.1-1 lacks its wildcard rows: {missing}")
        dates = "K" if options.retain_long_full_dates else "C" if options.retain_long_modified_dates else "X"
        date_option = ("retain_long_full_dates" if options.retain_long_full_dates
                       else "retain_long_modified_dates" if options.retain_long_modified_dates else "")
        self._by_vr = {
            "PN": Resolved("X", "vr:PN", None),
            "DA": Resolved(dates, date_option or "vr:DA", None),
            "DT": Resolved(dates, date_option or "vr:DT", None),
        }

    def for_standard(self, tag: int, vr: str | None) -> Resolved | None:
        """The action for a standard (even group) tag, or None to keep it as it is."""
        found = self.by_tag.get(tag)
        if found is not None:
            return found
        group = tag >> 16
        if 0x5000 <= group <= 0x50FF:
            return self.curves
        if 0x6000 <= group <= 0x60FF:
            elem = tag & 0xFFFF
            if elem == 0x3000:
                return self.overlay_data
            if elem == 0x4000:
                return self.overlay_comments
            return None
        if vr is None:
            vr = dictionary_vr(tag)
        return self._by_vr.get(vr) if vr else None


@lru_cache(maxsize=64)
def profile_for(options: Options) -> Profile:
    """The Profile of these options, built once: a verifier or receiver checks many instances under few."""
    return Profile(options)


def explain(options: Options) -> list[tuple[str, str, str, str, str]]:
    """(tag, name, basic action, action, why) for every row of the table under these options, then the rules
    this tool adds. What it prints is what the header step does."""
    profile = Profile(options)
    out = []
    for rule in rules():
        action, option = rule.resolve(options)
        why = f"option {option}" if option else "basic profile"
        if rule.tag.startswith("(0000,"):
            action, why = "X", "command element: never kept in a stored instance"
        elif rule.tag.startswith("(0002,"):
            why += "; the file meta is rebuilt around the new SOP Instance UID"
        elif "/" in action:
            why += "; the instance's IOD Type decides"
        elif rule.tag == "(GGGG,EEEE)" and action == "C":
            why += "; only Table E.3.10-1 attributes (and blocks the instance declares SAFE) stay"
        if action == "C" and option in ("clean_descriptors", "clean_structured_content", "clean_graphics"):
            why += "; text keeps only words of the vocabulary (allowlist)"
        out.append((rule.tag, rule.name, rule.basic, action, why))
    extra = [
        ("(0040,A160)", "Text Value (of SR content items)", "-", "D",
         "with the enclosing Content Sequence; C when it is cleaned"),
        ("(any,X or Z)", "an X or Z attribute the instance's IOD makes Type 1 or 2", "-", "Z or D",
         "keeps the IOD valid; discloses no more than removing it; a 1C/2C one whose condition the "
         "instance does not meet is removed"),
        ("(code item)", "a coded entry inside a sequence that is replaced (D) or cleaned (C)", "-", "K or D",
         "a code of the standard (PS3.16) stays with the standard's meaning; any other becomes the dummy "
         "code REMOVED/99PYDEID"),
        ("(any text in D)", "free text inside a sequence that is replaced (D)", "-", "D",
         "no text of the original stays in a replaced sequence"),
        ("(any value)", "every value that stays, of any attribute", "-", "K, repaired or X",
         "must be valid for its VR: repaired where exact, else emptied, dummy or removed; bytes its VR "
         "cannot hold fail the instance"),
    ]
    for vr, resolved in profile._by_vr.items():
        why = f"option {resolved.option}" if not resolved.option.startswith("vr:") else "by VR: not in Table E.1-1"
        extra.append((f"(any,{vr})", f"any other attribute with VR {vr}", "-", resolved.action, why))
    extra.append(("(any,?)", "an attribute unknown to the data dictionary", "-", "X", "cannot be known to be safe"))
    return out + extra
