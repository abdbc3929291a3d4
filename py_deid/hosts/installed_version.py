"""pydicom's version for its import, read from its installed metadata without importlib.metadata.

pydicom._version asks importlib.metadata for pydicom's version as pydicom is imported. importlib.metadata loads
the email package and searches sys.path for the distribution: 40-55 ms of CPU of a command's ~0.3 s start-up
(measured here), serial before a batch's first file, for a string the de-identifier never writes (the file
meta it writes names py_deid). While pydicom is imported (`while_importing`), a stand-in for importlib.metadata
answers version("pydicom") from the one `pydicom-VERSION.dist-info` beside the package, whose METADATA must
say the same version; anything else it is asked, and any other layout (none or several such folders, an
egg, a version that disagrees), goes to the real importlib.metadata, loaded then. The stand-in leaves
sys.modules once pydicom is loaded.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from contextlib import contextmanager

_NAME = "importlib.metadata"


def dist_info_version(package: str) -> str | None:
    """The version of `package` from the only `package-VERSION.dist-info` folder beside it, when its METADATA's
    Version says the same; None otherwise (the caller then asks importlib.metadata)."""
    try:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.origin or not spec.submodule_search_locations:
            return None
        site = os.path.dirname(os.path.dirname(spec.origin))
        prefix = package + "-"
        found = [n for n in os.listdir(site) if n.startswith(prefix) and n.endswith(".dist-info")]
        if len(found) != 1:
            return None
        named = found[0][len(prefix):-len(".dist-info")]
        with open(os.path.join(site, found[0], "METADATA"), encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    return None  # the end of the headers, and no Version
                if line.startswith("Version:"):
                    version = line[len("Version:"):].strip()
                    return version if version == named else None
    except (OSError, ValueError, ImportError):
        return None
    return None


class _Metadata(types.ModuleType):
    """importlib.metadata as far as pydicom's import asks it: version() of a known package; the rest is the
    real module's."""

    def __init__(self, known: dict[str, str]) -> None:
        super().__init__(_NAME)
        self._known = known

    def version(self, name: str) -> str:
        if name in self._known:
            return self._known[name]
        return _real().version(name)

    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # what the import system looks for (__path__: a package?): as a module has
            raise AttributeError(attr)
        return getattr(_real(), attr)


def _real() -> types.ModuleType:
    """The real importlib.metadata (loaded now if it is not), in sys.modules from here on."""
    if isinstance(sys.modules.get(_NAME), _Metadata):
        del sys.modules[_NAME]
    import importlib.metadata as real
    return real


@contextmanager
def while_importing(package: str):
    """Within the block, importlib.metadata.version(package) is answered from its dist-info (when it can be,
    and importlib.metadata is not loaded already); after it, sys.modules holds no stand-in."""
    version = None if _NAME in sys.modules else dist_info_version(package)
    if version is None:
        yield
        return
    stand_in = _Metadata({package: version})
    sys.modules[_NAME] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(_NAME) is stand_in:
            del sys.modules[_NAME]
        if getattr(importlib, "metadata", None) is stand_in:
            del importlib.metadata
