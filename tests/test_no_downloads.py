"""The browser's stand-in for pydicom.data.download carries every name pydicom imports from it, and each refuses.

If a pydicom upgrade imported a new name from its downloader, the browser worker would fail to start; this test
fails first, natively.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from py_deid.hosts import no_downloads


def _imported_from_download() -> set[str]:
    names: set[str] = set()
    for module in ("pydicom.data.data_manager", "pydicom.data"):
        source = Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("download"):
                names |= {alias.name for alias in node.names}
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "download":
                names.add(node.attr)
    return names


def test_every_name_pydicom_imports_is_there():
    names = _imported_from_download()
    assert names, "pydicom no longer imports its downloader: the stand-in can go"
    assert names <= set(dir(no_downloads)), sorted(names - set(dir(no_downloads)))


@pytest.mark.parametrize("name", ["data_path_with_download", "calculate_file_hash", "get_cached_filehash",
                                  "get_url_map", "get_data_dir"])
def test_nothing_downloads(name):
    with pytest.raises(RuntimeError, match="no downloads"):
        getattr(no_downloads, name)("anything")
