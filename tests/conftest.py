"""Shared fixtures: the real sample files (fetched, hash-checked) and small helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
import fetch as _fetch  # noqa: E402  (tests/data/fetch.py, also a stand-alone script)


class Samples:
    """Look up real sample files by name (or by the tail of their path in the package they come from)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.all = _fetch.load_manifest()

    def path(self, name: str) -> Path:
        hits = [s for s in self.all if s.relpath.endswith("/" + name) or s.relpath == name]
        if not hits:
            raise KeyError(f"no sample {name!r}")
        if len(hits) > 1:
            exact = [s for s in hits if s.name == name and s.source.startswith("pypi:pydicom==3")]
            if len(exact) != 1:
                raise KeyError(f"sample {name!r} is ambiguous: {[s.relpath for s in hits]}")
            hits = exact
        return self.root / hits[0].relpath

    def paths(self, predicate=lambda s: True) -> list[Path]:
        return [self.root / s.relpath for s in self.all if predicate(s)]

    def bytes(self, name: str) -> bytes:
        return self.path(name).read_bytes()


@pytest.fixture(scope="session")
def samples() -> Samples:
    return Samples(_fetch.fetch(quiet=True))


@pytest.fixture(scope="session")
def sample_manifest():
    return _fetch.load_manifest()
