"""The record of one instance's header pass, and the edits its steps make to elements.

The steps of the header pass (header.py, header_values.py, privates.py) change the dataset through an `Edits`:
it counts each action, keeps the warnings, and, when asked for the local review screen, lists each change with
its old and new value. A replacement is a new element written into the dataset's element dict (`ds._dict`)
directly: Dataset's own lookups convert every key to a Tag and parse the old value first, which would cost more
than the whole change, and the old value is not needed. (Elsewhere: codes.settle rewrites a coded entry's parts,
elements.as_sequence puts a sequence read as UN back parsed, and the patient's identity is set through Dataset.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .elements import BINARY_VRS, keyword, new_element, short, tag_text, writable_vr


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


Path = tuple[str, ...]  # keywords (or private tags) of the sequences above an element


class Edits:
    """What one instance's header pass did (`out`), and the element edits it is done with."""

    def __init__(self, record: bool) -> None:
        self.out = HeaderOutcome(changes=[] if record else None)

    def count(self, action: str) -> None:
        self.out.actions[action] += 1

    def warn(self, message: str) -> None:
        if message not in self.out.warnings:
            self.out.warnings.append(message)

    def note(self, path: Path, tag: int, action: str, ds: Dataset, new) -> None:
        """List the change for the review screen (only when recording); call it before the element changes."""
        if self.out.changes is None:
            return
        try:
            old = ds[tag].value
            old_text = "(sequence)" if isinstance(old, Sequence) else short(old)
        except Exception:
            old_text = "(unreadable)"
        self.out.changes.append(Change(">".join(path), tag_text(tag), keyword(tag), action, old_text, short(new)))

    def read(self, ds: Dataset, tag: int) -> DataElement:
        """The element, parsed; a value pydicom cannot parse fails the instance."""
        try:
            return ds[tag]
        except Exception:
            raise HeaderError(f"attribute {keyword(tag)} cannot be read") from None

    def set_values(self, elem: DataElement, new: list) -> None:
        """New values of a parsed element: one value, or several."""
        elem.value = new if len(new) != 1 else new[0]

    def put(self, ds: Dataset, tag: int, vr: str, value) -> None:
        """A new element in place of the old one."""
        ds._dict[tag] = new_element(tag, vr, value)

    def remove(self, ds: Dataset, tag: int, path: Path) -> None:
        """X: the element goes."""
        out = self.out
        if out.changes is not None:
            self.note(path, tag, "X", ds, "")
        del ds._dict[tag]
        out.actions["X"] += 1  # count("X"), inline: most elements a pass touches go

    def empty(self, ds: Dataset, tag: int, vr: str, path: Path) -> None:
        """Z: the element stays with an empty value (an empty sequence, no bytes)."""
        vr = writable_vr(ds, tag, vr)
        self.note(path, tag, "Z", ds, "")
        if vr == "SQ":
            value = Sequence()
        elif vr in BINARY_VRS:
            value = b""
        else:
            value = None
        self.put(ds, tag, vr, value)
        self.count("Z")
