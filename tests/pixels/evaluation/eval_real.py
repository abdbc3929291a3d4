"""The real half of the evaluation set: deid-data's ultrasound images with their burned-in text listed by hand.

Each word was read off the image by eye and given a label and a loose region (x0, y0, x1, y1) around it; the
box scored is the ink inside that region (pixels clearly lighter than the region's median), so the ground truth
does not depend on any OCR engine. "label" words (field labels, the sex letter, a logo) are scored neither way.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval_scenes import TruthWord

PHI, TECH, LABEL = "phi", "tech", "label"

GREYSCALE_IMAGE = (
    ("ZZZ", PHI, (7, 4, 37, 21)), ("TEST", PHI, (38, 4, 79, 21)), ("PATIENTFI..", PHI, (80, 4, 176, 21)),
    ("00079241539", PHI, (181, 4, 283, 21)), ("DOB:", LABEL, (390, 4, 429, 21)),
    ("08/29/1951", PHI, (430, 4, 517, 21)), ("M", LABEL, (528, 4, 544, 21)), ("CCHS", PHI, (554, 4, 599, 21)),
    ("CLEVELAN..", PHI, (600, 4, 688, 21)), ("03/02/2017", PHI, (821, 4, 908, 21)),
    ("05:24:57PM", PHI, (921, 4, 1010, 21)),
    ("Adv", TECH, (12, 24, 60, 45)), ("Breast", TECH, (66, 24, 140, 45)), ("TIS0.0", TECH, (826, 24, 899, 45)),
    ("MI", TECH, (916, 24, 944, 45)), ("0.6", TECH, (950, 24, 985, 45)), ("L12-5", TECH, (14, 52, 77, 73)),
    ("36Hz", TECH, (13, 76, 70, 97)), ("RS", TECH, (14, 98, 42, 117)), ("M3", TECH, (962, 78, 986, 94)),
    ("2D", TECH, (13, 138, 40, 160)), ("60%", TECH, (24, 157, 67, 178)), ("Dyn", TECH, (14, 179, 52, 200)),
    ("R", TECH, (52, 179, 67, 198)), ("58", TECH, (71, 179, 97, 198)), ("P", TECH, (14, 199, 28, 218)),
    ("Med", TECH, (33, 199, 73, 218)), ("Res", TECH, (20, 219, 56, 238)), ("TAC1", TECH, (18, 239, 67, 258)),
    ("x3", TECH, (903, 318, 925, 337)), ("4.0cm", TECH, (855, 697, 914, 718)),
)

RGB_IMAGE = (
    ("ZZZDOWNTIME,MARY", PHI, (2, 6, 228, 28)), ("AC", PHI, (401, 6, 434, 25)), ("8:48:26", PHI, (502, 6, 577, 25)),
    ("AM", PHI, (579, 6, 614, 25)), ("4/14/2020", PHI, (618, 6, 717, 25)), ("120907058", PHI, (774, 6, 883, 25)),
    ("00047431395", PHI, (2, 34, 137, 53)), ("CCHS", PHI, (503, 34, 564, 53)),
    ("CLEVELAND", PHI, (568, 34, 695, 53)), ("CLINIC", PHI, (699, 34, 770, 53)),
    ("SIEMENS", LABEL, (927, 63, 1019, 81)), ("6C1", TECH, (953, 83, 987, 100)), ("HD", TECH, (992, 83, 1020, 100)),
    ("*Renal", TECH, (963, 101, 1020, 118)), ("General", TECH, (954, 119, 1020, 136)),
    ("TIS:", TECH, (956, 145, 991, 162)), ("0.5", TECH, (993, 145, 1020, 162)),
    ("TIB:", TECH, (956, 163, 991, 180)),
    ("0.5", TECH, (993, 163, 1020, 180)), ("MI:", TECH, (965, 181, 991, 198)), ("1.4", TECH, (994, 181, 1020, 198)),
    ("19fps", TECH, (975, 199, 1020, 219)), ("2D--", TECH, (931, 225, 976, 242)),
    ("100%", TECH, (977, 225, 1020, 242)),
    ("THI", TECH, (988, 243, 1019, 260)), ("H4.00", TECH, (928, 261, 978, 278)), ("MHz", TECH, (981, 261, 1021, 278)),
    ("20dB/DR60", TECH, (919, 279, 1020, 296)), ("ASC", TECH, (966, 297, 1006, 314)),
    ("3", TECH, (1008, 297, 1020, 314)),
    ("DTCE", TECH, (950, 315, 1005, 332)), ("M", TECH, (1006, 315, 1020, 332)),
    ("MapE/ST2", TECH, (928, 333, 1020, 354)), ("Sag", TECH, (517, 741, 569, 768)),
    ("Liver", TECH, (576, 741, 640, 765)),
    ("L-M", TECH, (645, 741, 693, 765)), ("16cm", TECH, (798, 743, 847, 761)),
)

FILES = {"GREYSCALE_IMAGE.dcm": GREYSCALE_IMAGE, "RGB_IMAGE.dcm": RGB_IMAGE}


@dataclass(frozen=True)
class RealSpec:
    name: str


@dataclass
class RealCase:
    spec: RealSpec
    dataset: object
    truth: list


def _sample(name: str) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data"))
    import fetch

    root = fetch.fetch(quiet=True)
    hits = [root / s.relpath for s in fetch.load_manifest() if s.relpath.endswith("/" + name)]
    return hits[0]


def _words(gray: np.ndarray, listed) -> list[TruthWord]:
    out = []
    for text, label, (x0, y0, x1, y1) in listed:
        region = gray[y0:y1, x0:x1].astype(np.int32)
        ink_local = region > np.median(region) + 50
        ink = np.zeros(gray.shape, dtype=bool)
        ink[y0:y1, x0:x1] = ink_local
        ys, xs = np.nonzero(ink)
        if not len(xs):
            raise ValueError(f"no ink for a listed word in region {(x0, y0, x1, y1)}")
        box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        out.append(TruthWord(text, label, box, ink))
    return out


def cases(names=None) -> list[RealCase]:
    import pydicom

    out = []
    for name, listed in FILES.items():
        case_name = "real-" + name.removesuffix(".dcm")
        if names is not None and case_name not in names:
            continue
        ds = pydicom.dcmread(_sample(name))
        arr = ds.pixel_array.astype(np.float64)
        gray = arr if arr.ndim == 2 else arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
        out.append(RealCase(RealSpec(case_name), ds, [_words(gray, listed)]))
    return out
