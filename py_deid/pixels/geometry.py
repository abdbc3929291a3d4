"""Boxes and lines of words: grouping OCR words into phrases, and growing, merging and clipping rectangles.

A box is (x, y, w, h) in frame pixels. Pure Python; nothing here looks at pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..hosts.services import Word

Box = tuple[int, int, int, int]


def word_box(w: Word) -> Box:
    return (w.left, w.top, w.width, w.height)


def right(b: Box) -> int:
    return b[0] + b[2]


def bottom(b: Box) -> int:
    return b[1] + b[3]


def intersects(a: Box, b: Box) -> bool:
    # spelled out: called a million times a run (every box against every piece of a frame)
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def intersection_area(a: Box, b: Box) -> int:
    w = min(right(a), right(b)) - max(a[0], b[0])
    h = min(bottom(a), bottom(b)) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


def contains(outer: Box, inner: Box) -> bool:
    return (outer[0] <= inner[0] and outer[1] <= inner[1] and right(inner) <= right(outer)
            and bottom(inner) <= bottom(outer))


def union(boxes: Iterable[Box]) -> Box:
    boxes = list(boxes)
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(right(b) for b in boxes)
    y1 = max(bottom(b) for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def grow(b: Box, dx: int, dy: int | None = None) -> Box:
    dy = dx if dy is None else dy
    return (b[0] - dx, b[1] - dy, b[2] + 2 * dx, b[3] + 2 * dy)


def clip(b: Box, width: int, height: int) -> Box | None:
    x0, y0 = max(0, b[0]), max(0, b[1])
    x1, y1 = min(width, right(b)), min(height, bottom(b))
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def without_contained(boxes: Iterable[Box]) -> list[Box]:
    """The boxes, less duplicates and those inside another (overlapping masks are fine; a union of two
    would cover what lies between them)."""
    unique = sorted({b for b in boxes if b[2] > 0 and b[3] > 0}, key=lambda b: -(b[2] * b[3]))
    out: list[Box] = []
    for b in unique:
        if not any(contains(o, b) for o in out):
            out.append(b)
    return sorted(out, key=lambda b: (b[1], b[0]))


def merge_overlapping(boxes: Iterable[Box]) -> list[Box]:
    """Union of boxes that overlap or touch, repeated until none do (few boxes: quadratic is fine)."""
    out = [b for b in boxes if b[2] > 0 and b[3] > 0]
    changed = True
    while changed:
        changed = False
        merged: list[Box] = []
        for b in out:
            for k, m in enumerate(merged):
                if intersects(grow(m, 1), b):
                    merged[k] = union((m, b))
                    changed = True
                    break
            else:
                merged.append(b)
        out = merged
    return sorted(out, key=lambda b: (b[1], b[0]))


def _same_line(a: Word, b: Word) -> bool:
    overlap = min(a.bottom, b.bottom) - max(a.top, b.top)
    small, big = sorted((a.height, b.height))
    return overlap >= 0.5 * small and big <= 2.5 * max(small, 1)


def same_line(a: Word, b: Word) -> bool:
    """Two words on one text line (half the smaller height shared, heights within 2.5 times)."""
    return _same_line(a, b)


def lines(words: Sequence[Word]) -> list[list[int]]:
    """Indices of words grouped into text lines, each sorted left to right."""
    order = sorted(range(len(words)), key=lambda i: (words[i].top + words[i].height / 2, words[i].left))
    out: list[list[int]] = []
    for i in order:
        for line in out:
            if any(_same_line(words[i], words[j]) for j in line[-3:]):
                line.append(i)
                break
        else:
            out.append([i])
    for line in out:
        line.sort(key=lambda j: words[j].left)
    return out


def segments(words: Sequence[Word], gap: float = 1.6) -> list[list[int]]:
    """Lines cut where the space between two words is wider than `gap` times the text height: phrases."""
    out: list[list[int]] = []
    for line in lines(words):
        current = [line[0]]
        for prev, nxt in zip(line, line[1:]):
            h = max(words[prev].height, words[nxt].height, 1)
            if words[nxt].left - words[prev].right > gap * h:
                out.append(current)
                current = []
            current.append(nxt)
        out.append(current)
    return out


def near(a: Box, b: Box, factor: float = 2.5) -> bool:
    """True when two text boxes are within `factor` text heights of each other (a date above a time)."""
    h = max(a[3], b[3], 1)
    dx = max(0, max(a[0], b[0]) - min(right(a), right(b)))
    dy = max(0, max(a[1], b[1]) - min(bottom(a), bottom(b)))
    return dx <= 4 * factor * h and dy <= factor * h


def shares_a_row(a: Box, b: Box, reach: float = 3) -> bool:
    """Two boxes sharing a row (one is enough: either may be a sliver of a line), within `reach` text heights
    across."""
    shared = min(bottom(a), bottom(b)) - max(a[1], b[1])
    gap = max(a[0], b[0]) - min(right(a), right(b))
    return shared > 0 and gap <= reach * max(a[3], b[3])


def share_within(box: Box, boxes: Sequence[Box]) -> float:
    """The share of `box` that lies in the union of `boxes` (which may overlap: tiles of image content), judged
    on a grid of 8 x 8 points over the box."""
    x, y, w, h = box
    near = [c for c in boxes if intersects(c, box)]
    if not near or w <= 0 or h <= 0:
        return 0.0
    points = [(x + (2 * i + 1) * w / 16, y + (2 * j + 1) * h / 16) for i in range(8) for j in range(8)]
    inside = sum(any(c[0] <= px < c[0] + c[2] and c[1] <= py < c[1] + c[3] for c in near) for px, py in points)
    return inside / len(points)


def mostly_within(box: Box, boxes: Sequence[Box]) -> bool:
    """Whether half of `box` or more lies in the union of `boxes` (image content is many tiles: a word can
    span several, each holding less than half of it)."""
    return share_within(box, boxes) >= 0.5

