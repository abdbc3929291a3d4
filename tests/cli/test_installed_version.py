"""pydicom's version read from its dist-info while the CLI imports it (py_deid.hosts.installed_version): the
same version importlib.metadata gives, importlib.metadata not loaded for it, and nothing of the stand-in left
behind."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

from py_deid.hosts import installed_version

FRESH = """
import json, sys
from py_deid import cli
cli._load_without_pixel_libraries()
import pydicom
loaded = "importlib.metadata" in sys.modules or "email" in sys.modules
import importlib.metadata as m
print(json.dumps([pydicom.__version__, list(pydicom.__version_info__), loaded, m.version("pydicom"),
                  hasattr(m, "distributions"), type(m).__name__]))
"""


def test_the_version_is_importlib_metadata_s():
    assert installed_version.dist_info_version("pydicom") == importlib.metadata.version("pydicom")


def test_the_cli_loads_pydicom_without_importlib_metadata_and_leaves_the_real_one():
    out = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, check=True).stdout
    version, info, loaded, real, full, kind = json.loads(out.strip().splitlines()[-1])
    assert version == real == importlib.metadata.version("pydicom")
    assert info == version.split(".")[:3]
    assert not loaded and full and kind == "module"


def test_without_a_dist_info_beside_the_package_nothing_stands_in(tmp_path, monkeypatch):
    (tmp_path / "lonely").mkdir()
    (tmp_path / "lonely" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "importlib.metadata")
    assert installed_version.dist_info_version("lonely") is None
    with installed_version.while_importing("lonely"):
        assert "importlib.metadata" not in sys.modules
    # Two dist-info folders (an upgrade left one behind), or one whose METADATA says another version: none.
    (tmp_path / "lonely-1.0.dist-info").mkdir()
    (tmp_path / "lonely-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: lonely\nVersion: 1.0\n")
    assert installed_version.dist_info_version("lonely") == "1.0"
    (tmp_path / "lonely-1.0.dist-info" / "METADATA").write_text("Name: lonely\nVersion: 1.1\n")
    assert installed_version.dist_info_version("lonely") is None
    (tmp_path / "lonely-1.0.dist-info" / "METADATA").write_text("Name: lonely\nVersion: 1.0\n")
    (tmp_path / "lonely-0.9.dist-info").mkdir()
    assert installed_version.dist_info_version("lonely") is None


def test_the_stand_in_hands_anything_else_to_the_real_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "importlib.metadata")
    with installed_version.while_importing("pydicom"):
        stand_in = sys.modules["importlib.metadata"]
        assert type(stand_in).__name__ == "_Metadata"
        assert stand_in.version("pydicom") == installed_version.dist_info_version("pydicom")
        assert stand_in.version("pytest") == importlib.metadata.version("pytest")  # the real one, loaded now
        assert type(sys.modules["importlib.metadata"]).__name__ == "module"
    assert type(sys.modules["importlib.metadata"]).__name__ == "module"


# The browser host as a worker imports it (sys.platform "emscripten"; pydicom without its pixel libraries, as
# in Pyodide): pydicom's version from its dist-info there too.
BROWSER = """
import json, sys
sys.platform = "emscripten"
from py_deid.cli import PIXEL_LIBRARIES
for name in PIXEL_LIBRARIES:
    sys.modules[name] = None
import py_deid.hosts.browser
import pydicom
loaded = sorted(m for m in ("importlib.metadata", "email") if m in sys.modules)
print(json.dumps([pydicom.__version__, loaded]))
"""


def test_the_browser_host_loads_pydicom_without_importlib_metadata():
    out = subprocess.run([sys.executable, "-c", BROWSER], capture_output=True, text=True, check=True).stdout
    version, loaded = json.loads(out.strip().splitlines()[-1])
    assert version == importlib.metadata.version("pydicom")
    assert loaded == []
