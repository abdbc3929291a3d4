"""The expert review: carry out a reviewer's mask edits on one instance, and what the local review screen shows.

The first run decided the masks with OCR (and device templates). The reviewer then adds rectangles, removes
automatic ones, per frame or for every frame. `rerun` cleans the instance again from its original bytes with
exactly the resulting boxes (no OCR: the decision is the reviewer's, so the masks are what they approved, and
a removed mask gives back the original pixels). Everything here is pure and does no I/O.

`local_view` is for the screen on the site only (patient name, study date, header values before and after, the
OCR text in each box): it never goes into the certificate, a report or a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .instance import EXPLICIT_BE, Deidentifier, InstanceResult, Steps, transfer_syntax_of
from .pixels import geometry
from .pixels.info import PixelInfo
from .pixels.palette import PaletteError, read_palette
from .elements import keyword

Box = tuple[int, int, int, int]
ALL_FRAMES = -1  # key of the boxes that apply to every frame ("all" in JSON)
REMOVE_SLACK = 2  # an automatic mask within this many pixels of a removed rectangle goes with it
FREE_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "PN"})
# Written by the de-identifier itself (markers.py): shown as "set", never highlighted as kept free text.
MARKERS = frozenset({"PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
                     "LongitudinalTemporalInformationModified", "BurnedInAnnotation"})
LABELS = ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime", "StudyDescription",
          "AccessionNumber", "SeriesDescription", "SeriesNumber", "InstanceNumber", "Modality", "Manufacturer",
          "ManufacturerModelName", "BodyPartExamined")


class EditError(ValueError):
    """Edits that cannot be carried out (the message names the field, never a value from a file)."""


def _boxes(value, where: str) -> dict[int, tuple[Box, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EditError(f"{where} must map frames to boxes")
    out: dict[int, tuple[Box, ...]] = {}
    for key, boxes in value.items():
        try:
            frame = ALL_FRAMES if str(key) == "all" else int(key)
            parsed = tuple(tuple(int(v) for v in b) for b in boxes)
        except (TypeError, ValueError):
            raise EditError(f"{where}: frames are numbers or 'all', boxes [x, y, width, height]") from None
        if frame < ALL_FRAMES or any(len(b) != 4 or b[2] <= 0 or b[3] <= 0 for b in parsed):
            raise EditError(f"{where}: boxes are [x, y, width, height] with a positive size")
        if parsed:
            out[frame] = out.get(frame, ()) + parsed
    return out


def _json_boxes(boxes: dict[int, list[Box]]) -> dict[str, list[list[int]]]:
    return {str(k): [list(b) for b in v] for k, v in sorted(boxes.items()) if v}


@dataclass(frozen=True)
class Edits:
    """auto: what the first run masked (frame -> boxes); added: the reviewer's boxes; removed: rectangles whose
    automatic masks the reviewer took away. Keys are frame indices or ALL_FRAMES."""

    auto: dict[int, tuple[Box, ...]]
    added: dict[int, tuple[Box, ...]]
    removed: dict[int, tuple[Box, ...]]

    @classmethod
    def from_json(cls, doc: dict) -> Edits:
        if not isinstance(doc, dict):
            raise EditError("edits must be an object")
        auto = _boxes(doc.get("auto"), "auto")
        if ALL_FRAMES in auto:
            raise EditError("auto: the first run's masks are given per frame")
        return cls(auto, _boxes(doc.get("added"), "added"), _boxes(doc.get("removed"), "removed"))

    def resolve(self, frames: int) -> tuple[dict[int, list[Box]], dict[int, list[Box]], dict[int, list[Box]]]:
        """(automatic masks kept, added, removed), every one per frame."""
        kept: dict[int, list[Box]] = {}
        added: dict[int, list[Box]] = {}
        removed: dict[int, list[Box]] = {}
        for f in range(frames):
            gone = [geometry.grow(r, REMOVE_SLACK) for r in self.removed.get(f, ()) + self.removed.get(ALL_FRAMES, ())]
            for b in self.auto.get(f, ()):
                (removed if any(geometry.contains(r, b) for r in gone) else kept).setdefault(f, []).append(b)
            extra = list(dict.fromkeys(self.added.get(f, ()) + self.added.get(ALL_FRAMES, ())))
            if extra:
                added[f] = extra
        return kept, added, removed


POLICIES_THAT_HOLD = ("always", "pixels")


def held(policy: str, result: InstanceResult) -> bool:
    """Whether the review policy holds this result for a reviewer (web/src/batch.js decides the same way)."""
    if result.output is None or policy not in POLICIES_THAT_HOLD:
        return False
    px = result.pixels or {}
    return policy == "always" or bool(px.get("cleaned") or px.get("boxes"))


def frame_count(data: bytes) -> int:
    try:
        ds = pydicom.dcmread(BytesIO(data), stop_before_pixels=True, force=True, specific_tags=["NumberOfFrames"])
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except Exception:  # noqa: BLE001 - an unreadable file fails in the pipeline itself, with its reason
        return 1


def rerun(deid: Deidentifier, data: bytes, edits: Edits) -> Steps:
    """De-identify the original bytes again, masking exactly the reviewed boxes (a generator, like process)."""
    kept, added, removed = edits.resolve(frame_count(data))
    plan = {f: kept.get(f, []) + added.get(f, []) for f in set(kept) | set(added)}
    result: InstanceResult = yield from deid.process(data, pixel_plan=plan)
    if result.pixels is not None:
        result.pixels["review"] = {"auto": _json_boxes(kept), "added": _json_boxes(added),
                                   "removed": _json_boxes(removed)}
    return result


# ---- what the local review screen shows ---------------------------------------------------------------------

def _text(value) -> str:
    text = "\\".join(str(v) for v in value) if isinstance(value, (list, tuple, MultiValue)) else str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _kept_rows(ds: Dataset, path: tuple[str, ...], changed: set[tuple[str, str]], out: list[dict]) -> None:
    for elem in ds:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        where = ">".join(path)
        if elem.tag == 0x7FE00010 or (where, tag) in changed:
            continue
        if elem.VR == "SQ":
            for item in elem.value or ():
                _kept_rows(item, (*path, keyword(elem.tag)), changed, out)
            continue
        if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            value = f"({len(elem.value or b'')} bytes)"
        else:
            value = _text(elem.value if elem.value is not None else "")
        name = keyword(elem.tag)
        ours = bool({name, *path} & MARKERS) or name.startswith("ClinicalTrial")
        out.append({"path": where, "tag": tag, "keyword": name, "vr": elem.VR, "action": "set" if ours else "K",
                    "old": "" if ours else value, "new": value,
                    "freeText": not ours and elem.VR in FREE_TEXT_VRS and value != ""})


def header_rows(result: InstanceResult, output: Dataset) -> list[dict]:
    """Every attribute: what the profile did to it (changes) and what it kept (from the output), in tag order.
    `freeText`: a kept or cleaned attribute of a free-text VR, for the reviewer to read."""
    rows = []
    for c in result.local.get("changes") or ():
        vr = ""
        try:
            vr = pydicom.datadict.dictionary_VR(int(c.tag[1:5] + c.tag[6:10], 16))
        except (KeyError, ValueError):
            pass
        rows.append({"path": c.path, "tag": c.tag, "keyword": c.keyword, "vr": vr, "action": c.action,
                     "old": c.old, "new": c.new, "freeText": c.action == "C" and vr in FREE_TEXT_VRS})
    _kept_rows(output, (), {(r["path"], r["tag"]) for r in rows}, rows)
    return sorted(rows, key=lambda r: (r["path"], r["tag"]))


def _labels(rows: list[dict]) -> dict[str, str]:
    """Patient, study and series as the site knows them: original values where the profile changed them."""
    out = {}
    for r in rows:
        if not r["path"] and r["keyword"] in LABELS and r["keyword"] not in out:
            out[r["keyword"]] = r["old"]
    return out


def describe(output: bytes) -> dict | None:
    """Where the page finds each frame in the output bytes and how to draw it (None: no pixel data).
    Native: one [offset, length] span per frame. Encapsulated: the fragments of each frame (the page decodes
    them with the worker's codecs), or None for a frame that cannot be located."""
    ds = pydicom.dcmread(BytesIO(output), defer_size=256)
    raw = ds._dict.get(0x7FE00010)  # still raw: its value_tell is where Pixel Data starts in the bytes
    if raw is None:
        return None
    ts = transfer_syntax_of(ds)
    try:
        info = PixelInfo.from_dataset(ds, ts)
    except Exception:  # noqa: BLE001 - the pipeline already accepted it; the screen then says "no preview"
        return None
    start = raw.value_tell
    if info.native:
        n = info.frame_length
        spans = [[[start + i * n, n]] for i in range(info.frames)]
    else:
        spans = _fragment_spans(output, start, info.frames)
    return {"rows": info.rows, "columns": info.columns, "frames": info.frames, "samples": info.samples,
            "bitsAllocated": info.bits_allocated, "bitsStored": info.bits_stored, "highBit": info.high_bit,
            "signed": info.signed, "photometric": info.photometric, "planar": info.planar,
            "slope": info.rescale_slope, "intercept": info.rescale_intercept,
            "window": list(info.window) if info.window else None, "transferSyntax": ts, "native": info.native,
            "littleEndian": ts != EXPLICIT_BE, "spans": spans, "codecInfo": info.codec_info(),
            "decoded": {"photometric": info.decoded().photometric}, "palette": _palette(ds, info, ts)}


def _palette(ds: Dataset, info: PixelInfo, ts: str) -> dict | None:
    """A PALETTE COLOR image's colours (8 bits an entry), so that the screen draws it as it is, not as grey."""
    if info.photometric != "PALETTE COLOR":
        return None
    try:
        p = read_palette(ds, ts != EXPLICIT_BE)
    except PaletteError:
        return None  # drawn as grey indices: the pipeline accepted the image, the screen still shows it
    return {"first": p.first, "red": list(p.red), "green": list(p.green), "blue": list(p.blue)}


def _fragment_spans(data: bytes, pos: int, frames: int) -> list | None:
    """Items of encapsulated Pixel Data (PS3.5 A.4): the Basic Offset Table, then fragments."""
    items = []
    while pos + 8 <= len(data):
        group, elem = int.from_bytes(data[pos:pos + 2], "little"), int.from_bytes(data[pos + 2:pos + 4], "little")
        length = int.from_bytes(data[pos + 4:pos + 8], "little")
        if (group, elem) == (0xFFFE, 0xE0DD):
            break
        if (group, elem) != (0xFFFE, 0xE000) or pos + 8 + length > len(data):
            return None
        items.append((pos, length))
        pos += 8 + length
    if not items:
        return None
    (bot_pos, bot_len), fragments = items[0], items[1:]
    if not fragments:
        return None
    spans = [[p + 8, n] for p, n in fragments]
    if frames == 1:
        return [spans]
    if len(fragments) == frames:
        return [[s] for s in spans]
    if bot_len == 4 * frames:
        first = fragments[0][0]
        offsets = [first + int.from_bytes(data[bot_pos + 8 + 4 * i:bot_pos + 12 + 4 * i], "little")
                   for i in range(frames)] + [pos]
        return [[[p + 8, n] for p, n in fragments if lo <= p < hi] for lo, hi in zip(offsets, offsets[1:])]
    return None


def local_view(result: InstanceResult) -> dict:
    """For the review screen on the site (holds PHI; never leaves the browser or workstation)."""
    if result.output is None:
        return {}
    ds = pydicom.dcmread(BytesIO(result.output), stop_before_pixels=True)
    rows = header_rows(result, ds)
    labels = _labels(rows)
    try:
        rows_n, columns = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError):
        rows_n, columns = 0, 0
    device = {"manufacturer": labels.get("Manufacturer", ""), "model": labels.get("ManufacturerModelName", ""),
              "rows": rows_n, "columns": columns}
    return {"labels": labels, "device": device, "header": rows, "words": list(result.local.get("ocr_words") or ()),
            "display": describe(result.output)}
