"""Where the OCR seconds of an evaluation run go, by kind of reading, and whether a kind decides anything.

    .venv/bin/python tests/pixels/evaluation/ocr_costs.py --seed N [--mode strict phi] [--drop KIND ...]
                                                          [--log FILE.jsonl] --out FILE.json

Every OCR request of the pixel step is logged with its kind (whole: the frame; quiet: the frame with image
content or bands painted over; band; strip: a line across a band's edge; second: a second look at a block of
lines; closer_doubt / closer_unread: strict mode's closer looks at a doubtful word / at unread ink), the frame
area it covers, the words found and the CPU the engine took (thread time: run with OMP_THREAD_LIMIT=1).
`--drop KIND` answers no words to that kind's requests: compare --out with a run without it (per instance the
sha256 of the output pixel data and of the mask boxes) to see whether the kind's words decide anything.
A diagnostic: the kinds are told apart from the reader's call stack (FrameReader's private methods).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_scenes  # noqa: E402
import eval_score  # noqa: E402
import run_eval  # noqa: E402


def _kind(reader, rect, image) -> str:
    f = sys._getframe(3)  # _kind <- _prepare <- _read_many <- its caller
    if f.f_code.co_name == "_read":
        f = f.f_back
    name = f.f_code.co_name
    if name == "_read_area":
        if "blocks" in f.f_locals:  # the first readings are made before the second look's blocks
            return "second"
        if image is None:
            return "band"
        if rect not in reader._cost_rects:
            return "strip"
        reader._cost_rects[rect] += 1
        return "whole" if reader._cost_rects[rect] == 1 else "quiet"
    if name == "look_closer_many":
        g = f.f_back
        while g is not None and g.f_code.co_name in ("look_closer", "_closer_looks"):
            g = g.f_back
        return "closer_doubt" if g is not None and g.f_code.co_name == "_look_closer" else "closer_unread"
    return name


def instrument() -> dict:
    """Tag every request FrameReader makes with its kind; returns id(request) -> (request, kind, rect)."""
    from py_deid.pixels import detect

    tags: dict = {}
    pending: dict = {}
    prepare, request, read_area = (detect.FrameReader._prepare, detect.FrameReader._request,
                                   detect.FrameReader._read_area)

    def _prepare(self, i, rect, factor, psm, image=None):
        kind = _kind(self, rect, image)
        job = prepare(self, i, rect, factor, psm, image)
        pending[job.key] = (kind, rect)
        return job

    def _read_area(self, i, rects, full):
        self._cost_rects = dict.fromkeys(rects, 0)
        return (yield from read_area(self, i, rects, full))

    def _request(self, i, job):
        r = request(self, i, job)
        tags[id(r)] = (r, *pending.get(job.key, ("?", None)))
        return r

    detect.FrameReader._prepare, detect.FrameReader._request = _prepare, _request
    detect.FrameReader._read_area = _read_area
    return tags


class LoggedOcr:
    def __init__(self, inner, tags: dict, log: list, drop: set, case: tuple) -> None:
        self.inner, self.tags, self.log, self.drop, self.case = inner, tags, log, drop, case

    def available(self) -> bool:
        return self.inner.available()

    def find_text(self, request):
        _, kind, rect = self.tags.get(id(request), (None, "?", None))
        start = time.thread_time()
        words = self.inner.find_text(request)
        cpu = time.thread_time() - start
        self.log.append({"case": self.case[0], "mode": self.case[1], "kind": kind,
                         "area": rect[2] * rect[3] if rect else 0, "words": len(words), "cpu": cpu})
        return [] if kind in self.drop else words


def table(log: list) -> list[str]:
    agg = defaultdict(lambda: [0, 0, 0, 0.0])
    for r in log:
        a = agg[r["kind"]]
        a[0] += 1
        a[1] += r["area"]
        a[2] += r["words"]
        a[3] += r["cpu"]
    total = sum(a[3] for a in agg.values()) or 1.0
    out = ["| kind | requests | frame Mpx | words | CPU s | share |", "|---|---|---|---|---|---|"]
    for k, a in sorted(agg.items(), key=lambda x: -x[1][3]):
        out.append(f"| {k} | {a[0]} | {a[1] / 1e6:.1f} | {a[2]} | {a[3]:.1f} | {100 * a[3] / total:.0f}% |")
    return out


def main(argv=None) -> int:
    from py_deid.hosts import native

    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=eval_scenes.SEED)
    ap.add_argument("--mode", nargs="+", default=["strict", "phi"])
    ap.add_argument("--cases", nargs="*")
    ap.add_argument("--drop", nargs="*", default=[])
    ap.add_argument("--log")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    eval_scenes.SEED = args.seed
    tags = instrument()
    inner = native.ocr_service()
    cases = run_eval.all_cases(args.cases)
    log: list = []
    results: dict = {}
    for mode in args.mode:
        total = eval_score.Score()
        for case in cases:
            ocr = LoggedOcr(inner, tags, log, set(args.drop), (case.spec.name, mode))
            out, seconds, outcome = run_eval.clean_with_py_deid(eval_score.copy(case.dataset), mode, "auto", ocr)
            tags.clear()
            s = eval_score.score(case, out, seconds)
            total.add(s)
            boxes = outcome.summary()["boxes"]
            results[f"{mode} {case.spec.name}"] = {
                "pixels": hashlib.sha256(bytes(out.PixelData)).hexdigest(),
                "boxes": hashlib.sha256(json.dumps(boxes, sort_keys=True).encode()).hexdigest(),
                "phi_missed": len(s.missed), "technical_cut": len(s.cut), "damaged": s.damaged}
        results[f"== {mode}"] = total.row()
        print(mode, total.row(), flush=True)
    print("\n".join(table(log)))
    Path(args.out).write_text(json.dumps(results, indent=0))
    if args.log:
        Path(args.log).write_text("\n".join(json.dumps(r) for r in log))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
