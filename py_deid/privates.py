"""Private attributes: all removed, or with retain_safe_private only the safe ones (PS3.15 E.3.10) kept.

An attribute is safe when Table E.3.10-1 lists its (group, private creator, element offset), or when the
instance itself declares its block SAFE, or the element non-identifying, in Private Data Element
Characteristics Sequence (0008,0300). Everything else private goes, including creators left without data.
Private data encoded as UN or in implicit VR is matched the same way (by group, creator and offset); a safe
sequence is parsed and cleaned like any other, and removed if it cannot be parsed.
"""

from __future__ import annotations

from typing import Protocol

from pydicom.dataelem import convert_raw_data_element
from pydicom.dataset import Dataset

from ._standard import safe_private
from .elements import as_list, as_sequence, tag_text
from .header_edits import Edits, Path
from .options import Options

PRIVATE_CHARACTERISTICS = 0x00080300


class HeaderPass(Protocol):
    """What the private filter asks of the header pass that calls it (header._Run): its edits, and the walk
    and UID mapping of everything else. Described here, so that this module does not import the header module
    that imports it."""

    edits: Edits

    def walk(self, ds: Dataset, path: Path, mode: str) -> None: ...

    def map_uids(self, ds: Dataset, tag: int, path: Path, counted: bool = True) -> None: ...


def _text(raw) -> str:
    value = raw.value
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1", "replace")
    return str(value or "").strip("\0 ")


class PrivateFilter:
    def __init__(self, options: Options) -> None:
        self.retain = options.retain_safe_private
        self.map_uids = not options.retain_uids
        self.safe = {(g, off, creator): vr for g, off, creator, vr, _vm, _m in safe_private.ROWS}

    def apply(self, ds: Dataset, tags: list[int], path: Path, run: HeaderPass) -> None:
        private = [t for t in tags if (t >> 16) & 1]
        creators: dict[tuple[int, int], tuple[int, str]] = {}
        for t in private:
            elem = t & 0xFFFF
            if 0x0010 <= elem <= 0x00FF:
                creators[(t >> 16, elem)] = (t, _text(ds.get_item(t)))
        declared = self._declared(ds) if self.retain else {}
        used: set[tuple[int, int]] = set()
        for t in private:
            group, elem = t >> 16, t & 0xFFFF
            if 0x0010 <= elem <= 0x00FF:
                continue
            safe_vr = None
            if self.retain and elem >= 0x1000:
                block = elem >> 8
                creator = creators.get((group, block), (0, None))[1]
                if creator:
                    key = (group, elem & 0xFF, creator)
                    if key in self.safe:
                        safe_vr = self.safe[key] or "?"
                    elif _declared_safe(declared.get((group, creator)), elem & 0xFF):
                        safe_vr = "?"
            if (safe_vr is None) or (not self._keep(ds, t, safe_vr, path, run)):
                run.edits.remove(ds, t, path)
            else:
                used.add((group, elem >> 8))
        for (group, block), (tag, _creator) in creators.items():
            if (group, block) not in used:
                run.edits.remove(ds, tag, path)

    def _keep(self, ds: Dataset, tag: int, safe_vr: str, path: Path, run: HeaderPass) -> bool:
        raw = ds.get_item(tag)
        vr = raw.VR
        if (safe_vr == "SQ") or (vr == "SQ"):
            elem = as_sequence(ds, tag)
            if elem is None:
                run.edits.warn("safe private sequence that could not be parsed removed")
                return False
            run.edits.count("C")
            for item in elem.value:
                run.walk(item, (*path, tag_text(tag)), "")  # as the profile says of each element
            return True
        if ((safe_vr == "UI") or (vr == "UI")) and self.map_uids:
            # A UID kept in private data still links to the original instance: map it like any other.
            elem = convert_raw_data_element(raw) if not hasattr(raw, "keyword") else raw
            if elem.VR in ("UN", None):
                elem.VR = "UI"
                elem.value = bytes(elem.value or b"").decode("ascii", "replace").strip("\0 ")
            ds[tag] = elem
            run.map_uids(ds, tag, path, counted=False)
        run.edits.count("C")
        return True

    @staticmethod
    def _declared(ds: Dataset) -> dict[tuple[int, str], tuple[str, set[int]]]:
        """(group, creator) -> (block status, non-identifying element offsets) from (0008,0300)."""
        out: dict[tuple[int, str], tuple[str, set[int]]] = {}
        if PRIVATE_CHARACTERISTICS not in ds:
            return out
        try:
            for item in ds[PRIVATE_CHARACTERISTICS].value or ():
                group = int(item.get("PrivateGroupReference", 0) or 0)
                creator = str(item.get("PrivateCreatorReference", "") or "").strip()
                status = str(item.get("BlockIdentifyingInformationStatus", "") or "").strip().upper()
                nonid = item.get("NonidentifyingPrivateElements", [])
                offsets = {int(v) & 0xFF for v in as_list(nonid) if v is not None}
                if group and creator:
                    out[(group, creator)] = (status, offsets)
        except Exception:
            return {}
        return out


def _declared_safe(declared: tuple[str, set[int]] | None, offset: int) -> bool:
    if declared is None:
        return False
    status, offsets = declared
    return status == "SAFE" or (status == "MIXED" and offset in offsets)

