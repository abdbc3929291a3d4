"""pydicom's pixel plugins (Pillow and the codec packages), registered when a compressed frame first needs them.

pydicom decides at import which of its decoders and encoders are available: each plugin module tries to
import its package then, and the registry of a transfer syntax lists the plugins in a fixed order (the first
that decodes a frame is used). The command line loads pydicom with these packages hidden (`DEFERRED`): a run
of native, uncompressed images without text then never imports them (~0.05 s of CPU at each process's start,
measured). `load()`, called by the native codec service before any codec question, imports the packages
that are installed and were hidden, and has pydicom run its own registration again (its modules reloaded,
plugin modules first), so the registry is the one a normal import gives: the same plugins, in the same
order, the same "install ..." errors for what is missing. Where pydicom was imported with everything (py_deid
as a library, the tests), nothing was hidden and `load()` does nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading

# The packages pydicom imports for its pixel plugins when it loads, and only uses to decode or encode.
DEFERRED = ("PIL", "pylibjpeg", "openjpeg", "libjpeg", "rle", "jpeg_ls", "gdcm")
# pydicom's modules that look for them at import, the plugin modules before the registries that import them.
_PLUGIN_MODULES = (
    "pydicom.pixels.processing",
    "pydicom.pixels.decoders.gdcm", "pydicom.pixels.decoders.pillow", "pydicom.pixels.decoders.pyjpegls",
    "pydicom.pixels.decoders.pylibjpeg",
    "pydicom.pixels.encoders.gdcm", "pydicom.pixels.encoders.pyjpegls", "pydicom.pixels.encoders.pylibjpeg",
    "pydicom.pixels.decoders.base", "pydicom.pixels.encoders.base",
    "pydicom.pixels.decoders", "pydicom.pixels.encoders",
    "pydicom.pixel_data_handlers.pillow_handler", "pydicom.pixel_data_handlers.pylibjpeg_handler",
    "pydicom.pixel_data_handlers.jpeg_ls_handler", "pydicom.pixel_data_handlers.gdcm_handler",
)
_LOCK = threading.Lock()
_DONE: list[bool] = []  # [True] once load() has run in this process (a fork keeps it: pydicom's state with it)


def hidden() -> list[str]:
    """The deferred packages that are installed but not imported (pydicom was loaded without them)."""
    return [name for name in DEFERRED if name not in sys.modules and importlib.util.find_spec(name) is not None]


def load() -> None:
    """Make pydicom's pixel plugins what a normal import of pydicom makes them (see above). Idempotent."""
    if _DONE:
        return
    with _LOCK:
        if _DONE:
            return
        if "pydicom.pixels.decoders.base" not in sys.modules:
            return  # pydicom's pixel modules are not loaded yet: their own import will find the packages
        names = hidden()
        _DONE.append(True)
        if not names:
            return
        for name in names:
            try:
                importlib.import_module(name)
            except ImportError:
                pass  # installed but broken: pydicom's own import of it fails the same way, and says so
        for module in _PLUGIN_MODULES:
            if module in sys.modules:
                importlib.reload(sys.modules[module])
