"""Host adapters. The one place that knows which platform it runs on: IS_BROWSER (Pyodide, where the Python
platform is "emscripten"); py_deid.hosts.native refuses to load there, py_deid.hosts.browser is the browser's host.

The core (everything outside hosts/, cli, batch and receiver) imports nothing from here but
py_deid.hosts.services, which only defines the service protocols and data types.
"""

from __future__ import annotations

import sys

IS_BROWSER = sys.platform == "emscripten"
# Where a process's current resident size can be read (/proc/self/statm): py_deid.hosts.native.resident_mb.
HAS_PROC_STATM = sys.platform.startswith("linux")
