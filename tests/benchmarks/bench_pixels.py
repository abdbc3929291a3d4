"""Burned-in text cleaning: seconds per frame against plain OCR of the same frames in the same run, PHI recall
and technical-text retention.

Cases (generated with Pillow, text at known places, so recall is measured on the drawn glyph pixels):
- 512x512 MONOCHROME2 16-bit single frames, 640x480 RGB single frames, a 50-frame 640x480 cine (changing
  speckle and clock under a fixed title line), and the real 27-frame deid-data GREYSCALE_CINE.
The baseline is one Tesseract call (sparse text, psm 11) per frame at its own size on the same engine: what
"just OCR the frame" costs. Ratio = py_deid clean (render, readings, policy, masks, re-write) / baseline.
PHI recall: share of planted PHI words all of whose glyph pixels end up under a mask (target 100 %).
Technical retention (--text strict): share of planted measurement/setting words left wholly unmasked
(target > 90 %). Printed, and written to test-artifacts/bench_pixels.json. PY_DEID_BENCH_QUICK=1: few frames.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont

from py_deid import pixels
from py_deid.hosts import native
from py_deid.hosts.services import GrayImage, OcrRequest, ServiceUnavailable
from py_deid.options import Settings
from py_deid.phi import PhiTerms

QUICK = os.environ.get("PY_DEID_BENCH_QUICK") == "1"
ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "bench_pixels.json"
FIRST = ["JOHN", "MARY", "AHMED", "LINDA", "KOFI", "SVETLANA", "PEDRO", "AIKO", "GRACE", "OMAR"]
LAST = ["DOE", "SMITH", "OKAFOR", "NGUYEN", "KOWALSKI", "GARCIA", "TANAKA", "MULLER", "OBRIEN", "HASSAN"]
PLACES = ["ST MARY HOSPITAL", "RIVERSIDE CLINIC", "NORTHGATE IMAGING", "CITY MEDICAL CTR"]
TECH = ["GAIN 82", "12MHz", "TIS0.4", "MI 1.1", "4.0cm", "DR 60", "19fps", "2D", "60%", "L12-5", "C5-1",
        "Depth 16cm", "PRF 2.5kHz", "WF 100Hz", "Gn 55", "3.2 cm", "AO=100%", "x3", "PWR", "THI"]


class Timed:
    def __init__(self, ocr):
        self.ocr, self.seconds, self.calls = ocr, 0.0, 0

    def find_text(self, request):
        t = time.perf_counter()
        out = self.ocr.find_text(request)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return out


def _drive(steps, ocr):
    try:
        request = next(steps)
        while True:
            request = steps.send(ocr.find_text(request)) if ocr else steps.throw(ServiceUnavailable("none"))
    except StopIteration as stop:
        return stop.value


def _scene(rng: random.Random, width: int, height: int, frame: int = 0, person=None):
    """One frame: title line (name, ID, birth date, institution, date/time), settings in a side column, a
    measurement under the image, speckle in the middle. Returns gray image and [(glyph mask, kind)]."""
    np_rng = np.random.default_rng(rng.randrange(1 << 30) + frame)
    base = np.zeros((height, width), dtype=np.uint8)
    x0, y0, x1, y1 = width // 4, height // 6, width - width // 5, height - height // 6
    base[y0:y1, x0:x1] = np_rng.integers(0, 110, size=(y1 - y0, x1 - x0))
    im = Image.fromarray(base)
    draw = ImageDraw.Draw(im)
    size = person["size"]
    font = ImageFont.load_default(size=size)
    items = [((6, 4), f"{person['last']} {person['first']}", "phi"),
             ((width // 3, 4), person["id"], "phi"),
             ((width // 3 + 11 * size // 2 + 20, 4), person["dob"], "phi"),
             ((6, 8 + size + 4), person["place"], "phi"),
             ((width - 11 * size, 8 + size + 4), f"{person['date']} 10:{frame % 60:02d}", "phi")]
    y = y0 + 4
    for t in person["tech"][:6]:
        items.append(((6, y), t, "tech"))
        y += size + 8
    items.append(((x1 + 6, y0 + 4), person["tech"][6], "tech"))
    items.append(((x1 + 6, y0 + 12 + size), person["tech"][7], "tech"))
    items.append(((x0 + 20, y1 + 6), person["tech"][8], "tech"))
    glyphs = []
    for (x, yy), text, kind in items:
        one = Image.new("L", (width, height), 0)
        ImageDraw.Draw(one).text((x, yy), text, fill=255, font=font)
        draw.text((x, yy), text, fill=255, font=font)
        glyphs.append((np.asarray(one) > 96, kind, text))
    return np.asarray(im), glyphs


def _person(rng: random.Random):
    d = f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1930, 2005)}"
    return {"first": rng.choice(FIRST), "last": rng.choice(LAST), "id": str(rng.randint(10 ** 6, 10 ** 9)),
            "dob": d, "place": rng.choice(PLACES),
            "date": f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/2021",
            "tech": rng.sample(TECH, 9), "size": rng.choice([10, 12, 14, 16])}


def _dataset(frames, photometric: str, person, modality="US"):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    arr = np.stack(frames)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality = modality
    ds.PatientName = f"{person['last']}^{person['first']}"
    ds.PatientID = person["id"]
    m, d, y = person["dob"].split("/")
    ds.PatientBirthDate = f"{y}{m}{d}"
    m, d, y = person["date"].split("/")
    ds.StudyDate = f"{y}{m}{d}"
    ds.InstitutionName = person["place"]
    ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
    if photometric == "RGB":
        arr = np.stack([np.stack([f // 2, f // 2 + f // 4, f], axis=-1) for f in arr]).astype(np.uint8)
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.BitsAllocated = ds.BitsStored = 8
    elif photometric == "MONOCHROME2-16":
        arr = arr.astype(np.uint16) * 16
        photometric = "MONOCHROME2"
        ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored = 1, 16, 12
    else:
        ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored = 1, 8, 8
    ds.PhotometricInterpretation = photometric
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
    ds.PixelData = arr.tobytes()
    return ds


def _measure(datasets_and_glyphs, ocr, codecs) -> dict:
    clean_s = base_s = 0.0
    frames = phi = phi_ok = tech = tech_ok = 0
    requests = 0
    for ds, glyphs in datasets_and_glyphs:
        rows, cols = ds.Rows, ds.Columns
        gray_frames = _gray(ds)
        for g in gray_frames:  # baseline: one plain OCR call per frame
            t = time.perf_counter()
            ocr.find_text(OcrRequest(GrayImage(cols, rows, g.tobytes()), 11))
            base_s += time.perf_counter() - t
        timed = Timed(ocr)
        t = time.perf_counter()
        out = _drive(pixels.clean(ds, Settings(text="strict"), PhiTerms.from_dataset(ds),
                                  transfer_syntax=str(ds.file_meta.TransferSyntaxUID), codecs=codecs), timed)
        clean_s += time.perf_counter() - t
        requests += timed.calls
        frames += len(gray_frames)
        for f, frame_glyphs in enumerate(glyphs):
            masks = np.zeros((rows, cols), dtype=bool)
            for x, y, w, h in out.frames.get(f, []):
                masks[y:y + h, x:x + w] = True
            for g, kind, _text in frame_glyphs:
                share = masks[g].mean()
                if kind == "phi":
                    phi += 1
                    phi_ok += share == 1.0
                else:
                    tech += 1
                    tech_ok += share == 0.0
    return {"frames": frames, "clean_s_per_frame": clean_s / frames, "plain_ocr_s_per_frame": base_s / frames,
            "ratio": clean_s / base_s, "ocr_requests_per_frame": requests / frames,
            "phi_recall": phi_ok / phi, "phi_words": phi, "technical_retention": tech_ok / tech,
            "technical_words": tech}


def _gray(ds):
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        arr = arr[None]
    out = []
    for f in arr:
        if f.ndim == 3:
            f = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
        f = f.astype(np.float64)
        out.append(((f - f.min()) * 255 / max(1.0, f.max() - f.min())).astype(np.uint8))
    return out


@pytest.mark.benchmark
def test_bench_pixels(samples):
    ocr, codecs = native.ocr_service(), native.codec_service()
    assert ocr is not None, "native OCR (tesserocr + python -m py_deid.hosts.tessdata) is needed"
    rng = random.Random(20261125)
    n_single = 3 if QUICK else 10
    n_cine = 8 if QUICK else 50
    results: dict = {"quick": QUICK}

    cases = []
    for _ in range(n_single):
        person = _person(rng)
        g, glyphs = _scene(rng, 512, 512, 0, person)
        cases.append((_dataset([g], "MONOCHROME2-16", person, modality="OT"), [glyphs]))
    results["gray_512"] = _measure(cases, ocr, codecs)

    cases = []
    for _ in range(n_single):
        person = _person(rng)
        g, glyphs = _scene(rng, 640, 480, 0, person)
        cases.append((_dataset([g], "RGB", person), [glyphs]))
    results["rgb_640x480"] = _measure(cases, ocr, codecs)

    person = _person(rng)
    scenes = [_scene(rng, 640, 480, k, person) for k in range(n_cine)]
    results[f"cine_{n_cine}_frames"] = _measure(
        [(_dataset([g for g, _ in scenes], "MONOCHROME2", person), [gl for _, gl in scenes])], ocr, codecs)

    if not QUICK:  # a real cine: deid-data GREYSCALE_CINE (27 frames 800x600, banner with PHI on every frame)
        ds = pydicom.dcmread(samples.path("GREYSCALE_CINE.dcm"))
        base = sum(_time(lambda g=g: ocr.find_text(OcrRequest(GrayImage(ds.Columns, ds.Rows, g.tobytes()), 11)))
                   for g in _gray(ds))
        timed = Timed(ocr)
        t = time.perf_counter()
        out = _drive(pixels.clean(ds, Settings(), PhiTerms.from_dataset(ds), transfer_syntax=str(
            ds.file_meta.TransferSyntaxUID), codecs=codecs), timed)
        seconds = time.perf_counter() - t
        n = out.counts["frames"]
        results["real_greyscale_cine_27"] = {
            "frames": n, "clean_s_per_frame": seconds / n, "plain_ocr_s_per_frame": base / n,
            "ratio": seconds / base, "ocr_requests_per_frame": timed.calls / n,
            "share_of_pixels_reused": out.counts["ocr_pixels_reused"] / (n * ds.Rows * ds.Columns)}

    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(results, indent=2))
    for name, r in results.items():
        if isinstance(r, dict):
            print(f"{name:26s} " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in r.items()))
    for name, r in results.items():
        if isinstance(r, dict) and "phi_recall" in r:
            assert r["phi_words"] > 0 and r["technical_words"] > 0  # measured, not asserted against a time


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@pytest.mark.benchmark
def test_bench_auto_against_off_on_textless_images(samples):
    """`--pixels auto` checks every image; on images without burned-in text (derived MR, Image Type
    DERIVED\\SECONDARY, no indication) the OCR-free screen must keep it close to `--pixels off`: the whole
    instance pipeline (header included) timed both ways on the same bytes, ratio reported (target <= 1.3)."""
    from io import BytesIO

    from py_deid.instance import Deidentifier, run_sync

    names = [f"brain_{k:03d}.dcm" for k in range(1, 21)]
    corpus = []
    for name in names:
        ds = pydicom.dcmread(samples.path(name))
        ds.ImageType = ["DERIVED", "SECONDARY"]
        for tag in [t for t in ds.keys() if t.group == 0]:  # a stray command element: not in a stored file
            del ds[tag]
        buf = BytesIO()
        pydicom.dcmwrite(buf, ds)
        corpus.append(buf.getvalue())
    corpus = corpus * (1 if QUICK else 25)  # 20 or 500 images
    ocr, codecs = native.ocr_service(), native.codec_service()
    timed = Timed(ocr)
    seconds, cpu, outcomes = {}, {}, {}
    for mode in ("off", "auto", "off", "auto"):  # twice each, the second pair counted (warm caches)
        engine = Deidentifier(Settings(pixels=mode), b"k" * 32, codecs=codecs)
        t, c = time.perf_counter(), time.process_time()
        results = [run_sync(engine.process(data), timed) for data in corpus]
        seconds[mode], cpu[mode] = time.perf_counter() - t, time.process_time() - c
        outcomes[mode] = [r.pixels["reason"] if r.pixels else "" for r in results]
    ratio = seconds["auto"] / seconds["off"]
    screened_with_text = sum(reason != "no-text-found" for reason in outcomes["auto"])
    minima = _per_image_minima(corpus[:20], timed, codecs, rounds=8 if QUICK else 30)
    # CPU time as well: on a shared machine it moves less with the load than the wall clock does
    out = {"images": len(corpus), "off_s_per_image": seconds["off"] / len(corpus),
           "auto_s_per_image": seconds["auto"] / len(corpus), "ratio_auto_to_off": ratio,
           "cpu_ratio_auto_to_off": cpu["auto"] / cpu["off"],
           "images_sent_to_ocr": screened_with_text, "ocr_requests": timed.calls, **minima}
    print("textless_derived_mr " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in out.items()))
    path = ARTIFACT.with_name("bench_pixels_auto_off.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    assert set(outcomes["off"]) == {"pixels-off"} and all(r in ("no-text-found", "screen-secondary")
                                                           for r in outcomes["auto"])


def _per_image_minima(corpus, ocr, codecs, rounds: int) -> dict:
    """The same comparison made steady under load: each image through `off` and `auto` in turn (order turning
    round by round), each right after another image's `off` pipeline (the caches as in a batch, not as in a
    loop over one image), the least time of each image over the rounds summed per mode. A run on a shared
    machine moves each mode's total by up to 1.8x; these sums moved by about 1% between runs."""
    from py_deid.instance import Deidentifier, run_sync

    engines = {mode: Deidentifier(Settings(pixels=mode), b"k" * 32, codecs=codecs) for mode in ("off", "auto")}
    best = {mode: [float("inf")] * len(corpus) for mode in engines}
    for r in range(rounds):
        for i, data in enumerate(corpus):
            for mode in (("off", "auto") if r % 2 == 0 else ("auto", "off")):
                run_sync(engines["off"].process(corpus[(i + 7) % len(corpus)]), ocr)
                t = time.perf_counter()
                run_sync(engines[mode].process(data), ocr)
                best[mode][i] = min(best[mode][i], time.perf_counter() - t)
    off, auto = sum(best["off"]), sum(best["auto"])
    return {"minima_rounds": rounds, "minima_off_s_per_image": off / len(corpus),
            "minima_auto_s_per_image": auto / len(corpus), "minima_ratio_auto_to_off": auto / off}


@pytest.mark.benchmark
def test_bench_auto_against_off_through_the_cli(samples, tmp_path):
    """The same textless corpus as above, as a site runs it: `py-deid deidentify FOLDER -o OUT --jobs 1` with
    `--pixels off` and with `--pixels auto` (files read and written, durable commit, report), interleaved
    rounds, median wall and CPU time of each. The outside evaluation that found auto 32 times slower than off
    measured this way, on 500 derived MR images: the quick form runs the same 500 (auto's one-time start, numpy
    and the codec plugins that off never loads, is ~0.1 s: over the 100 images the quick form once had it was a
    third of the ratio). That start is also reported on its own: each mode on one image."""
    import statistics
    import sys

    from tests.cli.resources import measure

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    copies = 25  # 500 images, as the outside evaluation had
    for name in [f"brain_{k:03d}.dcm" for k in range(1, 21)]:
        ds = pydicom.dcmread(samples.path(name))
        ds.ImageType = ["DERIVED", "SECONDARY"]
        for tag in [t for t in ds.keys() if t.group == 0]:
            del ds[tag]
        for c in range(copies):
            ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[name, str(c)])
            ds.save_as(corpus / f"{c:02d}_{name}", enforce_file_format=True)
    key = tmp_path / "site.key"
    key.write_text("benchmark-key-0123456789abcdef")
    one = tmp_path / "one"
    one.mkdir()
    (one / "image.dcm").write_bytes(next(corpus.iterdir()).read_bytes())
    runs: dict[str, list[dict]] = {"off": [], "auto": [], "off one": [], "auto one": []}
    for r in range(3):
        for mode in ("off", "auto"):
            for label, folder in ((mode, corpus), (f"{mode} one", one)):
                out = tmp_path / f"{label}-{r}".replace(" ", "-")
                m = measure([sys.executable, "-m", "py_deid", "deidentify", str(folder), "-o", str(out), "--pixels",
                             mode, "--key-file", str(key), "--jobs", "1"], log=tmp_path / f"{mode}.log")
                assert m["returncode"] == 0, (tmp_path / f"{mode}.log").read_text()[-2000:]
                runs[label].append(m)
    wall = {mode: statistics.median(m["seconds"] for m in ms) for mode, ms in runs.items()}
    cpu = {mode: statistics.median(m["cpu"] for m in ms) for mode, ms in runs.items()}
    n = len(list(corpus.iterdir()))
    out = {"images": n, "off_s_per_image": wall["off"] / n, "auto_s_per_image": wall["auto"] / n,
           "ratio_auto_to_off": wall["auto"] / wall["off"], "cpu_ratio_auto_to_off": cpu["auto"] / cpu["off"],
           # one image: the command's start and end, each mode
           "one_image_off_s": wall["off one"], "one_image_auto_s": wall["auto one"],
           # each image after the first: the runs less the one-image runs
           "ratio_auto_to_off_after_start": (wall["auto"] - wall["auto one"]) / (wall["off"] - wall["off one"])}
    print("textless_derived_mr_cli " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                                 for k, v in out.items()))
    path = ARTIFACT.with_name("bench_pixels_auto_off_cli.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    assert len(list((tmp_path / "auto-0").rglob("*.dcm"))) == n  # every image went through, none refused


@pytest.mark.benchmark
def test_bench_auto_stages_on_textless_images(samples, monkeypatch):
    """Where `--pixels auto` spends its time on the textless corpus of the tests above: CPU time of each stage
    of the pixel step (each wrapped where it is called), ms per image, medians of 3 rounds of `off` and `auto`
    over the same images (20 with PY_DEID_BENCH_QUICK=1, else 500). Printed and written to
    test-artifacts/bench_pixels_auto_stages.json."""
    import functools
    import statistics
    from io import BytesIO

    import py_deid.pixels as pixels_package
    from py_deid.instance import Deidentifier, run_sync
    from py_deid.pixels import backends, frames, info, render, step, text_presence

    corpus = []
    for name in [f"brain_{k:03d}.dcm" for k in range(1, 21)]:
        ds = pydicom.dcmread(samples.path(name))
        ds.ImageType = ["DERIVED", "SECONDARY"]
        for tag in [t for t in ds.keys() if t.group == 0]:
            del ds[tag]
        buf = BytesIO()
        pydicom.dcmwrite(buf, ds)
        corpus.append(buf.getvalue())
    corpus = corpus * (1 if QUICK else 25)
    spent: dict[str, float] = {}

    def timed(label, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - t
        return wrapper

    def timed_steps(label, fn):
        def wrapper(*args, **kwargs):
            t = time.process_time()
            try:
                return (yield from fn(*args, **kwargs))
            finally:  # no OCR request is answered on this corpus: the generator's time is the step's
                spent[label] = spent.get(label, 0.0) + time.process_time() - t
        return wrapper

    monkeypatch.setattr(pixels_package, "clean", timed_steps("pixel step in all", pixels_package.clean))
    monkeypatch.setattr(step, "requirement", timed("gating (requirement)", step.requirement))
    monkeypatch.setattr(info.PixelInfo, "from_dataset", classmethod(timed("PixelInfo.from_dataset",
                                                                          info.PixelInfo.from_dataset.__func__)))
    monkeypatch.setattr(frames.FrameStore, "open", classmethod(timed("FrameStore.open",
                                                                     frames.FrameStore.open.__func__)))
    monkeypatch.setattr(backends.Native, "__init__", timed("  of which backends.Native", backends.Native.__init__))
    monkeypatch.setattr(render, "gray_frame", timed("render 16 -> 8 bit", render.gray_frame))
    monkeypatch.setattr(text_presence, "candidate_pieces", timed("screen (candidate_pieces)",
                                                                 text_presence.candidate_pieces))
    # the screen on the stored samples (a frame it clears is never rendered): its cuts, and its count
    monkeypatch.setattr(frames.FrameStore, "stored_ink", timed("cuts on stored samples", frames.FrameStore.stored_ink))
    monkeypatch.setattr(text_presence, "candidate_pieces_stored", timed("screen (candidate_pieces)",
                                                                        text_presence.candidate_pieces_stored))
    monkeypatch.setattr(text_presence, "text_like_pieces", timed("text-likeness gate", text_presence.text_like_pieces))
    codecs, ocr = native.codec_service(), native.ocr_service()
    rounds: dict[str, list] = {"off": [], "auto": []}
    for r in range(4):  # the first round warms up
        for mode in ("off", "auto"):
            engine = Deidentifier(Settings(pixels=mode), b"k" * 32, codecs=codecs)
            spent.clear()
            t = time.process_time()
            results = [run_sync(engine.process(data), ocr) for data in corpus]
            whole = time.process_time() - t
            assert all((r.pixels or {}).get("reason", "pixels-off") in ("pixels-off", "no-text-found", "screen-secondary")
                       for r in results)
            if r:
                rounds[mode].append(dict(spent, **{"whole instance": whole}))
    n = len(corpus)
    table = {}
    for mode, runs in rounds.items():
        for label in runs[0]:
            table.setdefault(label, {})[mode] = 1000 * statistics.median(run.get(label, 0.0) for run in runs) / n
    out = {"images": n, "ms_per_image": table,
           "cpu_ratio_auto_to_off": table["whole instance"]["auto"] / table["whole instance"]["off"]}
    for label, row in table.items():
        print(f"{label:28s} " + "  ".join(f"{mode} {row.get(mode, 0.0):.3f}" for mode in ("off", "auto")))
    print(f"textless_stages images={n} cpu_ratio_auto_to_off={out['cpu_ratio_auto_to_off']:.3f}")
    path = ARTIFACT.with_name("bench_pixels_auto_stages.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
