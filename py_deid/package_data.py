"""The package's own data files (py_deid/config/*.toml), read through importlib.resources.

The one place where core code reads anything: only files that ship inside the package, wherever the package
lives (a wheel on disk, a zip, Pyodide's in-memory file system). Never a path given by a user or a host.
"""

from __future__ import annotations

from importlib import resources


def config_text(name: str) -> str:
    """py_deid/config/<name> as text (UTF-8)."""
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError("a package data file is named by its file name only")
    return resources.files("py_deid").joinpath("config", name).read_text(encoding="utf-8")
