"""The pixel step's one compiled part (_lines.c), where the host has it: the text screen's count and band rule,
and a frame's least and greatest sample, each in one pass.

Native builds compile it (setup.py, an optional extension); the browser's wheel is pure Python, and a build
without a C compiler has none: there `available()` is False, the other functions answer None, and the callers
do the same work with numpy (the same results: tests/pixels/test_lines_compiled.py). It is looked up here
only, once.
"""

from __future__ import annotations

from types import SimpleNamespace

try:  # (its functions by name: the import tests read a module's imports from its source, and this one has none)
    from ._lines import extremes as _extremes, pieces as _pieces
except ImportError:
    _lines = None
else:
    _lines = SimpleNamespace(extremes=_extremes, pieces=_pieces)

_KINDS = {"u1": "B", "i1": "b", "u2": "H", "i2": "h", "u4": "I", "i4": "i"}  # the sample types it has loops for


def available() -> bool:
    return _lines is not None


def _kind(samples) -> str | None:
    """Its code for a numpy array's samples, or None for an array it does not take (another byte order or
    type, not contiguous)."""
    dtype = samples.dtype
    kind = _KINDS.get(f"{dtype.kind}{dtype.itemsize}")
    return kind if kind is not None and dtype.isnative and samples.flags.c_contiguous else None


def extremes(samples) -> tuple[int, int] | None:
    """(least, greatest) of a non-empty numpy array's samples; None where it is not compiled or does not take
    them."""
    if _lines is None or not samples.size:
        return None
    kind = _kind(samples)
    return None if kind is None else _lines.extremes(samples, kind)


def pieces(samples, cuts, edges: list[int], rule: tuple[int, int, int, int], first_only: bool) -> list | None:
    """The text screen's pieces of a rows x columns array (text_presence._pieces_numpy's, as (threshold index,
    x, y, width, height)): ink at threshold k where (sample >= cut) == above for cuts[k] = (above, cut);
    `edges` the columns' (x0, x1) flattened; `rule` (MIN_LINE, MAX_LINE, QUIET_ROWS, BUSY). None where it is
    not compiled or does not take the samples."""
    if _lines is None:
        return None
    kind = _kind(samples)
    if kind is None:
        return None
    h, w = samples.shape
    return _lines.pieces(samples, h, w, kind, cuts, edges, *rule, first_only)
