"""The generated half of the burned-in text evaluation set: DICOM instances with text drawn at known places.

Every parameter below was fixed before any cleaner ran on the set, and without looking at how py_deid's detector
works: fonts are the Debian DejaVu and Liberation families at 10-24 px (regular and bold), text colours are the
usual annotation colours on dark, mid-grey and image backgrounds, and the words are what scanners print
(patient banners, clocks, settings of US, CT, MR, XA, NM, CR/DX/MG). Each case gets its own random stream from
SEED and its index, so adding a case at the end changes no other case.

Ground truth is one entry per word: its ink box (x, y, w, h) in frame pixels, the pixels of its glyphs, and a
label: "phi" (must be hidden), "tech" (should stay) or "label" (a field label such as "DOB:", scored neither way).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SEED = 20261205
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation2")
# (file, Debian package): the packages are in .ci/test's debs.
FONTS = (
    ("DejaVuSans.ttf", "fonts-dejavu-core"), ("DejaVuSans-Bold.ttf", "fonts-dejavu-core"),
    ("DejaVuSansMono.ttf", "fonts-dejavu-core"), ("DejaVuSansMono-Bold.ttf", "fonts-dejavu-core"),
    ("DejaVuSerif.ttf", "fonts-dejavu-core"), ("DejaVuSansCondensed.ttf", "fonts-dejavu-extra"),
    ("LiberationSans-Regular.ttf", "fonts-liberation2"), ("LiberationSans-Bold.ttf", "fonts-liberation2"),
    ("LiberationMono-Regular.ttf", "fonts-liberation2"),
)
SIZES = (10, 12, 14, 16, 18, 20, 24)
COLOURS = {"white": (255, 255, 255), "yellow": (255, 255, 0), "green": (0, 255, 0), "cyan": (0, 255, 255),
           "orange": (255, 165, 0), "light-grey": (200, 200, 200)}
GRAY_COLOURS = ("white", "light-grey")

FIRST = ("JOHN", "MARY", "AHMED", "LINDA", "KOFI", "SVETLANA", "PEDRO", "AIKO", "GRACE", "OMAR", "HELGA", "RAJ")
LAST = ("DOE", "SMITH", "OKAFOR", "NGUYEN", "KOWALSKI", "GARCIA", "TANAKA", "MUELLER", "OBRIEN", "HASSAN",
        "FERREIRA", "LINDQVIST")
PLACES = ("ST MARY HOSPITAL", "RIVERSIDE CLINIC", "NORTHGATE IMAGING", "LAKEVIEW MEDICAL CENTER")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Settings and measurements as the modalities print them (public manuals and sample screens of the vendors).
TECH = {
    "US": ("FR 28Hz", "PW 2.5MHz", "DR 60", "MI 0.9", "TIS 0.4", "TIB 0.7", "G 55", "Gn 62", "PRF 4.0kHz",
           "Depth 16cm", "Dist 1.84cm", "C5-1", "L12-5", "19fps", "WF 100Hz", "CF 3.1MHz", "2D 60%", "TIC 0.2"),
    "CT": ("kV 120", "mA 250", "mAs 180", "Slice 5.0mm", "W 400", "L 40", "Zoom 1.2", "Tilt 0.0", "FOV 350mm"),
    "MR": ("TR 500", "TE 15", "FOV 240mm", "Slice 5.0mm", "W 1200", "L 600", "Zoom 1.5", "NEX 2"),
    "XA": ("kV 80", "mA 12", "15fps", "LAO 30", "CRA 20", "Zoom 1.5", "W 256", "L 128"),
    "NM": ("256x256", "Zoom 1.0", "140keV", "Frame 12", "W 100", "L 50"),
    "CR": ("kV 70", "mAs 8.0", "W 2048", "L 1024", "Zoom 1.0"),
    "MG": ("kV 28", "mAs 63", "CC", "MLO", "W 4096", "L 2048"),
    "ES": ("Zoom 1.5", "W 256", "L 128"),
}


@dataclass(frozen=True)
class CaseSpec:
    name: str
    modality: str
    photometric: str  # MONOCHROME1, MONOCHROME2, RGB, YBR_FULL, YBR_FULL_422, PALETTE COLOR
    bits: int  # bits allocated (8 or 16)
    size: tuple[int, int]  # (columns, rows)
    background: str  # dark | mid | anatomy | band
    frames: int = 1
    planar: int = 0
    jpeg: bool = False  # JPEG Baseline (8-bit lossy), YBR_FULL_422


CASES = (
    CaseSpec("us-rgb-planar0-dark", "US", "RGB", 8, (640, 480), "dark"),
    CaseSpec("us-rgb-planar1-mid", "US", "RGB", 8, (640, 480), "mid", planar=1),
    CaseSpec("us-ybr-full-anatomy", "US", "YBR_FULL", 8, (640, 480), "anatomy"),
    CaseSpec("us-ybr-full-422-band", "US", "YBR_FULL_422", 8, (640, 480), "band"),
    CaseSpec("us-palette-anatomy", "US", "PALETTE COLOR", 8, (640, 480), "anatomy"),
    CaseSpec("us-jpeg-baseline-dark", "US", "YBR_FULL_422", 8, (640, 480), "dark", jpeg=True),
    CaseSpec("us-cine-clock", "US", "MONOCHROME2", 8, (640, 480), "anatomy", frames=8),
    CaseSpec("us-rgb-cine-clock", "US", "RGB", 8, (640, 480), "band", frames=6),
    CaseSpec("ct-mono2-16-anatomy", "CT", "MONOCHROME2", 16, (512, 512), "anatomy"),
    CaseSpec("mr-mono2-16-dark", "MR", "MONOCHROME2", 16, (512, 512), "dark"),
    CaseSpec("cr-mono1-16-mid", "CR", "MONOCHROME1", 16, (512, 512), "mid"),
    CaseSpec("xa-mono2-8-anatomy", "XA", "MONOCHROME2", 8, (512, 512), "anatomy"),
    CaseSpec("nm-mono2-16-band", "NM", "MONOCHROME2", 16, (512, 512), "band"),
    CaseSpec("dx-mono1-8-dark", "CR", "MONOCHROME1", 8, (512, 512), "dark"),
    CaseSpec("mg-mono2-16-anatomy", "MG", "MONOCHROME2", 16, (512, 640), "anatomy"),
    CaseSpec("ot-rgb-planar0-mid", "OT", "RGB", 8, (640, 480), "mid"),
    CaseSpec("es-ybr-full-mid", "ES", "YBR_FULL", 8, (640, 480), "mid"),
    CaseSpec("sc-palette-mid", "OT", "PALETTE COLOR", 8, (640, 480), "mid"),
    CaseSpec("ct-rgb-planar1-dark", "CT", "RGB", 8, (512, 512), "dark", planar=1),
    CaseSpec("us-ybr-full-422-anatomy", "US", "YBR_FULL_422", 8, (640, 480), "anatomy"),
)


@dataclass
class TruthWord:
    text: str
    label: str  # phi | tech | label
    box: tuple[int, int, int, int]  # ink box x, y, w, h
    ink: np.ndarray = field(repr=False)  # bool (rows, cols): this word's glyph pixels


@dataclass
class Case:
    spec: CaseSpec
    dataset: object  # pydicom Dataset as read back from its written bytes
    truth: list[list[TruthWord]]  # per frame


def font_path(name: str) -> Path:
    for d in FONT_DIRS:
        p = Path(d) / name
        if p.is_file():
            return p
    package = dict(FONTS)[name]
    raise FileNotFoundError(f"font {name} missing: install the Debian package {package}")


# ---- what is written ------------------------------------------------------------------------------------
def _date(rng: random.Random, year_lo: int, year_hi: int) -> tuple[int, int, int]:
    return rng.randint(year_lo, year_hi), rng.randint(1, 12), rng.randint(1, 28)


def written_date(rng: random.Random, y: int, m: int, d: int) -> str:
    form = rng.randrange(8)
    return (f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{d} {MONTHS[m - 1]} {y}",
            f"{MONTHS[m - 1].title()} {d}, {y}", f"{m:02d}/{d:02d}/{y % 100:02d}", f"{d:02d}-{MONTHS[m - 1]}-{y}",
            f"{y}{m:02d}{d:02d}")[form]


def written_name(rng: random.Random, first: str, last: str) -> str:
    return (f"{last}, {first}", f"{last}^{first}", f"{first} {last}", f"{last} {first}")[rng.randrange(4)]


@dataclass
class Person:
    first: str
    last: str
    mrn: str
    birth: tuple[int, int, int]
    study: tuple[int, int, int]
    place: str
    accession: str
    age: int


def person(rng: random.Random) -> Person:
    birth = _date(rng, 1930, 2010)
    study = _date(rng, 2015, 2025)
    mrn = str(rng.randint(10 ** 6, 10 ** 10 - 1))
    accession = rng.choice(("A", "ACC", "RX", "E")) + str(rng.randint(10 ** 5, 10 ** 8))
    return Person(rng.choice(FIRST), rng.choice(LAST), mrn, birth, study, rng.choice(PLACES), accession,
                  study[0] - birth[0])


def banner_lines(rng: random.Random, p: Person, frame_clock: str) -> list[list[tuple[str, str]]]:
    """PHI lines as [(text, label)] runs; a run of several words keeps its label for every word."""
    lines = [
        [("Name:", "label"), (written_name(rng, p.first, p.last), "phi")],
        [(rng.choice(("ID:", "MRN:", "PID")), "label"), (p.mrn, "phi"),
         (rng.choice(("DOB:", "Birth:", "DOB")), "label"), (written_date(rng, *p.birth), "phi")],
        [(p.place, "phi")],
        [(frame_clock, "phi")],
    ]
    extra = rng.randrange(4)
    if extra == 0:
        lines[1].append((f"{p.age}Y", "phi"))
    elif extra == 1:
        lines.append([("Acc#", "label"), (p.accession, "phi")])
    elif extra == 2:
        lines.append([("Tel", "label"), (f"({rng.randint(201, 989)}) 555-{rng.randint(100, 9999):04d}", "phi")])
    else:
        lines.append([(f"{p.first[0].lower()}.{p.last.lower()}@example.org", "phi")])
    return lines


def clock(rng_form: int, p: Person, second: int) -> str:
    y, m, d = p.study
    hh, mm = 9 + p.age % 8, (p.age * 7) % 60
    return (f"{y}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{second:02d}",
            f"{m:02d}/{d:02d}/{y} {hh:02d}:{mm:02d}:{second:02d}",
            f"{d:02d}.{m:02d}.{y} {hh:02d}:{mm:02d}:{second:02d}",
            f"{d:02d}-{MONTHS[m - 1]}-{y} {hh % 12 or 12}:{mm:02d}:{second:02d} {'PM' if hh >= 12 else 'AM'}")[rng_form]


# ---- drawing --------------------------------------------------------------------------------------------
def _background(rng: random.Random, kind: str, width: int, height: int, frame: int, seed: int) -> np.ndarray:
    """RGB float image 0..255."""
    g = np.random.default_rng(seed * 1000 + frame)
    if kind == "mid":
        base = np.full((height, width), 96 + seed % 32, dtype=np.float64) + g.normal(0, 2, (height, width))
    else:
        base = g.uniform(0, 10, (height, width))
    if kind == "band":
        base[: 36 + seed % 12, :] = 70.0
    if kind in ("anatomy", "band"):
        yy, xx = np.mgrid[0:height, 0:width]
        cx, cy = width / 2 + 10 * np.sin(frame / 2), height / 2
        ellipse = ((xx - cx) / (0.36 * width)) ** 2 + ((yy - cy) / (0.36 * height)) ** 2 <= 1
        tissue = 60 + 40 * np.sin(xx / 23.0 + frame / 3) * np.cos(yy / 31.0) + g.gamma(2.0, 18, (height, width))
        base = np.where(ellipse, np.clip(tissue, 0, 200), base)
    rgb = np.stack([base, base, base], axis=-1)
    if kind == "anatomy" and seed % 2:  # a colour-flow blob, as on a Doppler frame
        rgb[height // 2 - 30:height // 2 + 10, width // 2 - 40:width // 2 + 20] = (200, 40, 30)
    return np.clip(rgb, 0, 255)


def _draw_runs(canvas: np.ndarray, ink_all: np.ndarray, lines, origin, font, colour, gap: int,
               truth: list[TruthWord]) -> None:
    from PIL import Image, ImageDraw

    height, width = canvas.shape[:2]
    x0, y = origin
    space = int(font.getlength(" "))
    for line in lines:
        x = x0
        for run_text, label in line:
            for k, word in enumerate(run_text.split(" ")):
                layer = Image.new("L", (width, height), 0)
                draw = ImageDraw.Draw(layer)
                draw.text((x, y), word, fill=255, font=font)
                alpha = np.asarray(layer, dtype=np.float64) / 255.0
                ink = alpha >= 0.5
                if ink.any():
                    ys, xs = np.nonzero(ink)
                    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
                    truth.append(TruthWord(word, label, box, ink))
                    a = alpha[..., None]
                    canvas[:] = canvas * (1 - a) + np.asarray(colour, dtype=np.float64) * a
                    ink_all |= ink
                x += int(font.getlength(word)) + space
            x += space  # runs are a little further apart than words
        y += font.size + gap


def _scene(spec: CaseSpec, index: int, frame: int, p: Person, choice: dict):
    from PIL import ImageFont

    width, height = spec.size
    canvas = _background(random.Random(SEED + index), spec.background, width, height, frame, index)
    ink = np.zeros((height, width), dtype=bool)
    truth: list[TruthWord] = []
    rng = random.Random(choice["text_seed"])  # the same words on every frame; only the clock moves
    second = (7 * index + frame) % 60
    lines = banner_lines(rng, p, clock(choice["clock_form"], p, second))
    font = ImageFont.truetype(str(font_path(choice["font"])), choice["size"])
    small = ImageFont.truetype(str(font_path(choice["tech_font"])), choice["tech_size"])
    # Corners and bands: the banner at the top left, the clock alone at the top right, settings in columns at
    # the bottom left and down the right side, one measurement over the image content.
    banner, clock_line, extra = lines[:3], lines[3], lines[4:]
    _draw_runs(canvas, ink, banner, (6, 4), font, choice["colour"], 3, truth)
    clock_w = int(font.getlength(clock_line[0][0])) + 8
    first_w = int(font.getlength(" ".join(t for t, _ in banner[0]))) + 3 * int(font.getlength(" "))
    # The clock at the top right, or under the banner where the first line would run into it.
    clock_y = 4 if first_w + 16 < width - clock_w else 4 + 3 * (font.size + 3)
    _draw_runs(canvas, ink, [clock_line], (width - clock_w, clock_y), font, choice["colour"], 3, truth)
    tech = choice["tech"]
    rows = [[(t, "tech")] for t in tech[:4]]
    y0 = height - 8 - small.size // 2 - len(rows) * (small.size + 4)
    _draw_runs(canvas, ink, rows, (6, y0), small, choice["tech_colour"], 4, truth)
    right = [[(t, "tech")] for t in tech[4:7]]
    wmax = max(int(small.getlength(t)) for t in tech[4:7]) + 10
    _draw_runs(canvas, ink, right, (width - wmax, height // 3), small, choice["tech_colour"], 6, truth)
    if extra:
        _draw_runs(canvas, ink, extra, (width // 3, height - 4 - 2 * (font.size + 4)), font, choice["colour"], 3,
                   truth)
    _draw_runs(canvas, ink, [[(tech[7], "tech")]], (width // 2 - 20, height // 2 + 30), small,
               choice["tech_colour"], 0, truth)
    return canvas, truth


def _choices(spec: CaseSpec, index: int) -> dict:
    rng = random.Random(SEED * 7 + index)
    colour_names = GRAY_COLOURS if spec.photometric.startswith("MONO") else tuple(COLOURS)
    pool = TECH[spec.modality] if spec.modality in TECH else TECH["US"]
    tech = rng.sample(pool, min(8, len(pool)))
    while len(tech) < 8:
        tech.append(rng.choice(pool))
    return {"font": rng.choice(FONTS)[0], "size": rng.choice(SIZES), "tech_font": rng.choice(FONTS)[0],
            "tech_size": rng.choice(SIZES), "colour": COLOURS[rng.choice(colour_names)],
            "tech_colour": COLOURS[rng.choice(colour_names)], "tech": tech, "clock_form": rng.randrange(4),
            "text_seed": rng.randrange(1 << 30), "person_seed": rng.randrange(1 << 30)}


# ---- DICOM ----------------------------------------------------------------------------------------------
def _header(ds, spec: CaseSpec, p: Person) -> None:
    from pydicom.uid import generate_uid

    ds.SOPClassUID = {"US": "1.2.840.10008.5.1.4.1.1.3.1" if spec.frames > 1 else "1.2.840.10008.5.1.4.1.1.6.1",
                      "CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4",
                      "XA": "1.2.840.10008.5.1.4.1.1.12.1", "NM": "1.2.840.10008.5.1.4.1.1.20",
                      "CR": "1.2.840.10008.5.1.4.1.1.1", "MG": "1.2.840.10008.5.1.4.1.1.1.2",
                      "ES": "1.2.840.10008.5.1.4.1.1.77.1.1"}.get(spec.modality, "1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    uid_rng = random.Random(spec.name)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[spec.name])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[spec.name, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[spec.name, "series", str(uid_rng.random())])
    ds.Modality = spec.modality
    ds.PatientName = f"{p.last}^{p.first}"
    ds.PatientID = p.mrn
    ds.PatientBirthDate = "%04d%02d%02d" % p.birth
    ds.StudyDate = "%04d%02d%02d" % p.study
    ds.AccessionNumber = p.accession
    ds.InstitutionName = p.place
    # Burned In Annotation is absent, as on many real captures (and on the peer's sample data).


def _to_dataset(spec: CaseSpec, frames_rgb: list[np.ndarray], p: Person):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.pixels import convert_color_space
    from pydicom.uid import UID

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ts = "1.2.840.10008.1.2.1"  # Explicit VR Little Endian unless JPEG below
    rgb = np.stack([np.clip(f + 0.5, 0, 255).astype(np.uint8) for f in frames_rgb])
    n, rows, cols = rgb.shape[:3]
    _header(ds, spec, p)
    ds.Rows, ds.Columns = rows, cols
    if n > 1:
        ds.NumberOfFrames = n
        ds.FrameTime = 40
    pi = spec.photometric
    ds.PhotometricInterpretation = pi
    ds.PixelRepresentation = 0
    if pi.startswith("MONO"):
        gray = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
        ds.SamplesPerPixel = 1
        if spec.bits == 16:
            values = (gray * 16).astype(np.uint16)  # 12 bits stored
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
            top = 4095
        else:
            values = gray.astype(np.uint8)
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
            top = 255
        if pi == "MONOCHROME1":
            values = (top - values).astype(values.dtype)
        if spec.modality == "CT":
            ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        data = values.astype(values.dtype.newbyteorder("<")).tobytes()
    elif pi == "PALETTE COLOR":
        from PIL import Image

        ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 8, 8, 7
        strip = Image.fromarray(rgb.reshape(n * rows, cols, 3))
        q = strip.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        pal = np.asarray(q.getpalette()[:768] + [0] * max(0, 768 - len(q.getpalette())), dtype=np.uint16)
        pal = pal.reshape(256, 3) * 257
        for k, name in enumerate(("Red", "Green", "Blue")):
            setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [256, 0, 16])
            setattr(ds, f"{name}PaletteColorLookupTableData", pal[:, k].astype("<u2").tobytes())
        data = np.asarray(q, dtype=np.uint8).tobytes()
    else:
        ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 3, 8, 8, 7
        ds.PlanarConfiguration = spec.planar
        if spec.jpeg:
            from PIL import Image

            ts = "1.2.840.10008.1.2.4.50"
            fragments = []
            for f in rgb:
                out = io.BytesIO()
                Image.fromarray(f).save(out, "JPEG", quality=92, subsampling="4:2:2")
                fragments.append(out.getvalue())
            data = encapsulate(fragments)
            ds.PlanarConfiguration = 0
        elif pi == "RGB":
            arr = np.moveaxis(rgb, -1, -3) if spec.planar == 1 else rgb
            data = np.ascontiguousarray(arr).tobytes()
        else:
            ybr = np.stack([convert_color_space(f, "RGB", "YBR_FULL") for f in rgb])
            if pi == "YBR_FULL_422":
                # Y0 Y1 Cb Cr per pair of pixels; chroma of the pair is their mean
                pairs = ybr.reshape(n, rows, cols // 2, 2, 3).astype(np.float64)
                chroma = pairs[..., 1:].mean(axis=3)
                out = np.concatenate([pairs[..., 0, 0:1], pairs[..., 1, 0:1], chroma], axis=-1)
                data = np.clip(out + 0.5, 0, 255).astype(np.uint8).tobytes()
            else:
                data = ybr.tobytes()
    ds.file_meta.TransferSyntaxUID = UID(ts)
    ds.PixelData = data
    if spec.jpeg:
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
    return _reread(ds)


def _reread(ds):
    import pydicom

    buf = io.BytesIO()
    ds.preamble = b"\0" * 128
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def build(spec: CaseSpec, index: int) -> Case:
    choice = _choices(spec, index)
    p = person(random.Random(choice["person_seed"]))
    frames, truth = [], []
    for f in range(spec.frames):
        canvas, words = _scene(spec, index, f, p, choice)
        frames.append(canvas)
        truth.append(words)
    return Case(spec, _to_dataset(spec, frames, p), truth)


def cases(names=None) -> list[Case]:
    return [build(s, i) for i, s in enumerate(CASES) if names is None or s.name in names]
