"""Scoring a cleaner on the evaluation set from its output pixels alone (the cleaner's own claims are not read).

Per word of the ground truth, the share of its glyph pixels whose stored value changed:
- PHI hidden: at least 95% of its glyph pixels changed;
- technical kept: less than 5% changed;
- damage: pixels changed farther than 2 px from every word box, as a share of all such pixels;
- readable PHI: PHI words (3 or more letters or digits) that an independent OCR pass (Pillow Lanczos
  enlargement, Tesseract sparse text on the frame and single-block strips of 64 rows every 48, no py_deid
  code) finds in the output at the word's place (a word's height around it), counted only where it also
  found them there in the input; `..._anywhere` counts them wherever in the frame they were read;
- seconds per frame of the cleaner.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

MARGIN = 2


def stored(ds) -> np.ndarray:
    """Stored values as (frames, rows, cols, samples), colour kept in its own space (YBR stays YBR)."""
    from pydicom.pixels import pixel_array

    arr = pixel_array(ds, raw=True)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.SamplesPerPixel)
    arr = arr.reshape((n, ds.Rows, ds.Columns, samples))
    return arr


def gray(ds, window=None) -> list[np.ndarray]:
    """What a viewer shows, as 8-bit luminance per frame (pydicom's colour conversion and LUTs)."""
    from pydicom.pixels import apply_color_lut

    arr = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if n == 1:
        arr = arr[None]
    pi = str(ds.PhotometricInterpretation)
    out = []
    for f in arr:
        if pi == "PALETTE COLOR":
            f = apply_color_lut(f, ds) / 257.0
        f = f.astype(np.float64)
        if f.ndim == 3:
            f = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
        else:
            lo, hi = window if window is not None else (f.min(), f.max())
            f = (f - lo) * 255.0 / max(hi - lo, 1)
            if pi == "MONOCHROME1":
                f = 255.0 - f
        out.append(np.clip(f + 0.5, 0, 255).astype(np.uint8))
    return out


def colour_views(ds) -> list[list[np.ndarray]]:
    """For a colour image, per frame its brightest and its darkest channel (what a viewer's colour shows that
    luminance may not: green text on gray); [] per frame for grayscale."""
    from pydicom.pixels import apply_color_lut

    n = int(ds.get("NumberOfFrames", 1) or 1)
    pi = str(ds.PhotometricInterpretation)
    if int(ds.SamplesPerPixel) == 1 and pi != "PALETTE COLOR":
        return [[] for _ in range(n)]
    arr = ds.pixel_array
    if n == 1:
        arr = arr[None]
    out = []
    for f in arr:
        if pi == "PALETTE COLOR":
            f = (apply_color_lut(f, ds) / 257.0 + 0.5).astype(np.uint8)
        out.append([np.ascontiguousarray(f.max(axis=-1)), np.ascontiguousarray(f.min(axis=-1))])
    return out


def window_of(ds):
    if int(ds.SamplesPerPixel) != 1 or str(ds.PhotometricInterpretation) == "PALETTE COLOR":
        return None
    a = ds.pixel_array
    return float(a.min()), float(a.max())


# ---- the independent reader -----------------------------------------------------------------------------
class IndependentReader:
    """Tesseract through tesserocr directly, on Pillow-enlarged images: shares no code with py_deid's reader."""

    def __init__(self, tessdata: str) -> None:
        import tesserocr

        self.api = tesserocr.PyTessBaseAPI(path=tessdata.rstrip("/") + "/", lang="eng")
        self.api.SetVariable("user_defined_dpi", "96")
        self._cache: dict[bytes, list[tuple[str, tuple]]] = {}  # inputs are read once for every mode scored

    def _read(self, im, scale: int, psm: int, at: tuple[int, int] = (0, 0)) -> list[tuple[str, tuple]]:
        """Words with their boxes in the frame's pixels (`at`: where `im` was cut from)."""
        import tesserocr
        from PIL import Image, ImageOps

        pad = 20
        big = ImageOps.expand(im.resize((im.width * scale, im.height * scale), Image.LANCZOS), pad, fill=0)
        self.api.SetPageSegMode(psm)
        self.api.SetImage(big)
        self.api.Recognize()
        out = []
        level = tesserocr.RIL.WORD
        for r in tesserocr.iterate_level(self.api.GetIterator(), level):
            try:
                text = r.GetUTF8Text(level)
            except RuntimeError:  # an empty word
                continue
            x0, y0, x1, y1 = r.BoundingBox(level)
            box = ((x0 - pad) / scale + at[0], (y0 - pad) / scale + at[1], (x1 - x0) / scale, (y1 - y0) / scale)
            out += [(t, box) for t in text.split()]
        return out

    def words(self, frame: np.ndarray) -> list[str]:
        return [t for t, _ in self.located(frame)]

    def located(self, frame: np.ndarray) -> list[tuple[str, tuple]]:
        import hashlib

        key = hashlib.sha256(frame.tobytes() + repr(frame.shape).encode()).digest()
        if key not in self._cache:
            self._cache[key] = self._words(frame)
        return self._cache[key]

    def _words(self, frame: np.ndarray) -> list[tuple[str, tuple]]:
        from PIL import Image

        im = Image.fromarray(frame)
        found = self._read(im, 2, 11)
        for y in range(0, im.height, 48):
            found += self._read(im.crop((0, y, im.width, min(im.height, y + 64))), 2, 6, (0, y))
        # Both polarities: dark-on-light is what Tesseract is trained on.
        found += self._read(Image.fromarray(255 - frame), 2, 11)
        return found


def _fold(text: str) -> str:
    from py_deid.phi import fold_ocr

    return fold_ocr(text)


def readable(word: str, found_folded: list[str]) -> bool:
    from py_deid.pixels.phi_text import within_edits

    e = _fold(word)
    for f in found_folded:
        if f == e or (len(e) >= 4 and e in f) or (len(e) >= 5 and within_edits(e, f, 1)):
            return True
    return False


# ---- scores ---------------------------------------------------------------------------------------------
@dataclass
class Score:
    phi: int = 0
    phi_hidden: int = 0
    tech: int = 0
    tech_kept: int = 0
    outside: int = 0  # pixels away from every word box
    damaged: int = 0
    frames: int = 0
    seconds: float = 0.0
    readable_before: int = 0
    readable_after: int = 0
    readable_before_anywhere: int = 0  # the same, wherever in the frame the independent pass read them
    readable_after_anywhere: int = 0
    missed: list = field(default_factory=list)  # (case, frame, label, coverage) of failures, text kept local
    cut: list = field(default_factory=list)

    def add(self, other: Score) -> None:
        for k in ("phi", "phi_hidden", "tech", "tech_kept", "outside", "damaged", "frames", "seconds",
                  "readable_before", "readable_after", "readable_before_anywhere", "readable_after_anywhere"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.missed += other.missed
        self.cut += other.cut

    def row(self) -> dict:
        return {"phi_hidden": f"{self.phi_hidden}/{self.phi}", "phi_hidden_pct": _pct(self.phi_hidden, self.phi),
                "tech_kept": f"{self.tech_kept}/{self.tech}", "tech_kept_pct": _pct(self.tech_kept, self.tech),
                "damage_pct": round(100.0 * self.damaged / max(1, self.outside), 3),
                "phi_readable_after": self.readable_after, "phi_readable_before": self.readable_before,
                "phi_readable_after_anywhere": self.readable_after_anywhere,
                "s_per_frame": round(self.seconds / max(1, self.frames), 3), "frames": self.frames}


def _pct(a: int, b: int) -> float:
    return round(100.0 * a / b, 1) if b else 100.0


def score(case, out_ds, seconds: float, reader: IndependentReader | None = None, read_frames=None) -> Score:
    """Score one cleaned output against its case (case.dataset is the untouched input)."""
    before, after = stored(case.dataset), stored(out_ds)
    s = Score(frames=before.shape[0], seconds=seconds)
    rows, cols = before.shape[1:3]
    changed_all = (before != after).any(axis=-1)
    for f, words in enumerate(case.truth):
        changed = changed_all[f]
        zone = np.zeros((rows, cols), dtype=bool)
        for w in words:
            x, y, bw, bh = w.box
            zone[max(0, y - MARGIN):y + bh + MARGIN, max(0, x - MARGIN):x + bw + MARGIN] = True
            share = float(changed[w.ink].mean())
            if w.label == "phi":
                s.phi += 1
                if share >= 0.95:
                    s.phi_hidden += 1
                else:
                    s.missed.append((case.spec.name, f, w.text, round(share, 2)))
            elif w.label == "tech":
                s.tech += 1
                if share < 0.05:
                    s.tech_kept += 1
                else:
                    s.cut.append((case.spec.name, f, w.text, round(share, 2)))
        s.outside += int((~zone).sum())
        s.damaged += int((changed & ~zone).sum())
    if reader is not None:
        window = window_of(case.dataset)
        g_before, g_after = gray(case.dataset, window), gray(out_ds, window)
        c_before, c_after = colour_views(case.dataset), colour_views(out_ds)
        frames = read_frames if read_frames is not None else _sampled(len(g_before))
        for f in frames:
            found_before = [(_fold(t), b) for im in [g_before[f], *c_before[f]] for t, b in reader.located(im)]
            found_after = [(_fold(t), b) for im in [g_after[f], *c_after[f]] for t, b in reader.located(im)]
            for w in case.truth[f]:
                if w.label != "phi" or sum(c.isalnum() for c in w.text) < 3:
                    continue
                # Read where the word stands: a 3-digit area code "(508)" was "found" after cleaning in
                # speckle 200 px from its masked place (held-out draw 20300515), as it was before.
                if readable(w.text, _at(w.box, found_before)):
                    s.readable_before += 1
                    s.readable_after += readable(w.text, _at(w.box, found_after))
                if readable(w.text, [t for t, _ in found_before]):
                    s.readable_before_anywhere += 1
                    s.readable_after_anywhere += readable(w.text, [t for t, _ in found_after])
    return s


def _at(box, found: list[tuple[str, tuple]]) -> list[str]:
    """The texts of found words whose box meets `box` grown by its height on every side."""
    x, y, w, h = box
    return [t for t, (fx, fy, fw, fh) in found
            if fx < x + w + h and x - h < fx + fw and fy < y + 2 * h and y - h < fy + fh]


def _sampled(n: int) -> list[int]:
    return sorted({0, n // 2, n - 1})


def copy(ds):
    import pydicom

    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))
