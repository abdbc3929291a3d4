"""Seconds per frame of py_deid and of the peer on the instances the peer processed.

    python tests/pixels/evaluation/side_by_side.py PEER.json PY_DEID.json

The totals of run_peer.py count an instance the peer fails on (a cine it cannot read, a palette image) with
the few milliseconds it took to fail, which flatters its seconds per frame; this compares both tools on the
same frames: those the peer returned an image for. Run both at the same load (one after the other).
"""

from __future__ import annotations

import json
import sys


def per_frame(cases: dict, names: list[str]) -> tuple[float, int]:
    frames = sum(cases[n]["frames"] for n in names)
    seconds = sum(cases[n]["s_per_frame"] * cases[n]["frames"] for n in names)
    return (seconds / frames if frames else 0.0), frames


def main(argv=None) -> int:
    peer_path, ours_path = (argv or sys.argv[1:])[:2]
    peer, ours = json.load(open(peer_path)), json.load(open(ours_path))
    names = [n for n in peer["cases"] if n not in peer["failed"]]
    spf, frames = per_frame(peer["cases"], names)
    print(f"instances the peer processed: {len(names)} of {len(peer['cases'])} ({frames} frames)")
    print(f"presidio  s/frame {spf:.3f}")
    for mode, result in ours.items():
        missing = [n for n in names if n not in result["cases"]]
        if missing:
            print(f"py_deid {mode}: no result for {missing}")
            continue
        print(f"py_deid {mode:6s} s/frame {per_frame(result['cases'], names)[0]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
