"""Score py_deid's pixel step on the evaluation set and print one table per text mode.

    .venv/bin/python tests/pixels/evaluation/run_eval.py [--mode strict phi] [--read] [--cases NAME ...]
                                                        [--pixels auto] [--json FILE]
                                                        [--engine native|tesseract.js]

--read adds the independent OCR pass (slow: about 5 s per frame read; cines are read on three frames).
Failures are listed with the word's text: the set is synthetic (and the real files' text is public sample data).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_real  # noqa: E402
import eval_scenes  # noqa: E402
import eval_score  # noqa: E402


def drive(steps, ocr, pool=None):
    from py_deid.hosts.services import OcrBatch, ServiceUnavailable

    try:
        request = next(steps)
        while True:
            if not ocr:
                request = steps.throw(ServiceUnavailable("none"))
            elif isinstance(request, OcrBatch):  # read on the pool's threads, an engine each
                request = steps.send(list(pool.map(ocr.find_text, request.requests)))
            else:
                request = steps.send(ocr.find_text(request))
    except StopIteration as stop:
        return stop.value


def clean_with_py_deid(ds, mode: str, pixels: str = "auto", ocr=None, pool=None):
    """Run the pixel step on ds (in place) as the pipeline does; returns (output dataset, seconds, outcome).
    `ocr`: the OCR service (default: the native host's); `pool`: threads reading OCR batches (--ocr-threads)."""
    from py_deid import pixels as px
    from py_deid.hosts import native
    from py_deid.options import Settings
    from py_deid.phi import PhiTerms

    ocr, codecs = ocr or native.ocr_service(), native.codec_service()
    ts = str(ds.file_meta.TransferSyntaxUID)
    start = time.perf_counter()
    outcome = drive(px.clean(ds, Settings(pixels=pixels, text=mode), PhiTerms.from_dataset(ds),
                             transfer_syntax=ts, codecs=codecs, batch=pool is not None), ocr, pool)
    seconds = time.perf_counter() - start
    if outcome.transfer_syntax:
        ds.file_meta.TransferSyntaxUID = outcome.transfer_syntax
    return eval_score.copy(ds), seconds, outcome


def all_cases(names=None, real=True):
    out = eval_scenes.cases(names)
    if real:
        out += eval_real.cases(names)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", nargs="+", default=["strict", "phi"])
    ap.add_argument("--pixels", default="auto")
    ap.add_argument("--read", action="store_true")
    ap.add_argument("--cases", nargs="*")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--seed", type=int, default=eval_scenes.SEED,
                    help="another draw of the generated set with the same parameters (a held-out round: the "
                         "default seed is the set the pixel step's rules were last measured and adjusted on)")
    ap.add_argument("--engine", choices=["native", "tesseract.js"], default="native",
                    help="tesseract.js: the browser's OCR engine, run by Node (browser_ocr.js)")
    ap.add_argument("--ocr-threads", type=int, default=1,
                    help="OCR engines reading an image's independent readings at once (py-deid --ocr-threads)")
    args = ap.parse_args(argv)
    eval_scenes.SEED = args.seed
    engine = None
    if args.engine == "tesseract.js":
        import browser_ocr

        engine = browser_ocr.BrowserEngineOcr()
    cases = all_cases(args.cases, real=not args.no_real)
    reader = None
    if args.read:
        from py_deid.hosts import tessdata

        reader = eval_score.IndependentReader(str(tessdata.ensure()))
    pool = ThreadPoolExecutor(args.ocr_threads) if args.ocr_threads > 1 else None
    results = {}
    for mode in args.mode:
        total = eval_score.Score()
        per_case = {}
        for case in cases:
            out, seconds, outcome = clean_with_py_deid(eval_score.copy(case.dataset), mode, args.pixels, engine, pool)
            s = eval_score.score(case, out, seconds, reader)
            per_case[case.spec.name] = {**s.row(), "checked": outcome.required}
            total.add(s)
            row = " ".join(f"{k}={v}" for k, v in per_case[case.spec.name].items())
            print(f"{mode:6s} {case.spec.name:28s} {row}", flush=True)
        results[mode] = {"total": total.row(), "cases": per_case, "missed": total.missed, "cut": total.cut}
        print(f"== {mode}: {total.row()}")
        for m in total.missed:
            print("   PHI not hidden:", m)
        for c in total.cut:
            print("   technical cut:", c)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
