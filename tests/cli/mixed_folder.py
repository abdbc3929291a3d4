"""The batch tests' input: a folder with every kind of entry."""
from __future__ import annotations

import shutil
from pathlib import Path


def mixed_folder(samples, dest: Path, names: list[str]) -> Path:
    """The named sample files, the first of them again under another name (the same instance twice) and a file
    that is not DICOM."""
    dest.mkdir()
    for name in names:
        shutil.copy(samples.path(name), dest / name)
    shutil.copy(samples.path(names[0]), dest / f"{Path(names[0]).stem} copy.dcm")
    (dest / "notes.txt").write_text("not DICOM")
    return dest
