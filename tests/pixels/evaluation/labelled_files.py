"""Run the CLI on DICOM files written by others whose burned-in PHI is listed, and say what stays readable.

    .venv/bin/python tests/pixels/evaluation/labelled_files.py LABELS.json FILE.dcm... [--mode strict phi]

LABELS.json lists, per file name, the PHI words burned into its pixels, in the form of Presidio's public sample
data (`{"any/folder/NAME.dcm": [{"label": "DAVIDSON", ...}, ...]}`; the boxes are not used: they need not match
the copy at hand). A file is matched to its entry by name, with a suffix such as "_compressed" ignored. Each
file goes through `py-deid deidentify` with the defaults and `--text MODE`; the independent OCR pass of the
evaluation (eval_score.IndependentReader) reads the frame before and after, and every listed word it reads
before is looked for after. The files and their labels are not part of the project (they are another
project's test data and are not on a package registry): this is a check to run by hand.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_score  # noqa: E402


def gray(ds) -> np.ndarray:
    """The frame as 8-bit grey for the independent reader, windowed on its 0.5-99.5 percentiles, light text on
    dark whatever the photometric interpretation."""
    a = ds.pixel_array.astype(np.float64)
    if a.ndim == 4 or (a.ndim == 3 and ds.get("SamplesPerPixel", 1) == 1):
        a = a[0]
    if a.ndim == 3:
        a = a.mean(axis=2)
    lo, hi = np.percentile(a, 0.5), np.percentile(a, 99.5)
    g = np.clip((a - lo) / max(hi - lo, 1.0) * 255, 0, 255).astype(np.uint8)
    return 255 - g if ds.PhotometricInterpretation == "MONOCHROME1" else g


def labels_for(path: Path, labels: dict) -> list[str]:
    stem = path.stem.removesuffix("_compressed")
    for key, items in labels.items():
        if Path(key).stem == stem:
            return [item["label"] for item in items]
    return []


def main(argv=None) -> int:
    import pydicom

    from py_deid.hosts import tessdata

    ap = argparse.ArgumentParser()
    ap.add_argument("labels")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--mode", nargs="+", default=["strict", "phi"])
    args = ap.parse_args(argv)
    labels = json.loads(Path(args.labels).read_text())
    reader = eval_score.IndependentReader(str(tessdata.ensure()))
    failed = 0
    for mode in args.mode:
        for name in args.files:
            path = Path(name)
            words = labels_for(path, labels)
            with tempfile.TemporaryDirectory() as tmp:
                key = Path(tmp) / "site.key"
                key.write_bytes(bytes(range(32)))
                run = subprocess.run([sys.executable, "-m", "py_deid", "deidentify", str(path), "-o", f"{tmp}/out",
                                      "--key-file", str(key), "--subject-id", "S01", "--text", mode],
                                     capture_output=True, text=True)
                outs = list(Path(tmp, "out").rglob("*.dcm"))
                if run.returncode or len(outs) != 1:
                    print(f"{mode:6s} {path.name}: not de-identified (exit {run.returncode}): {run.stderr.strip()}")
                    failed += 1
                    continue
                before = [eval_score._fold(t) for t in reader.words(gray(pydicom.dcmread(path)))]
                after = [eval_score._fold(t) for t in reader.words(gray(pydicom.dcmread(outs[0])))]
            seen = [w for w in words if eval_score.readable(w, before)]
            left = [w for w in seen if eval_score.readable(w, after)]
            failed += bool(left)
            print(f"{mode:6s} {path.name}: {len(words)} PHI words listed, {len(seen)} readable before, "
                  f"{len(left)} readable after{': ' + ' '.join(left) if left else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
