"""Host adapters. The one place that knows which platform it runs on.

    from py_deid.hosts import IS_BROWSER, native_host

The core (everything outside hosts/, cli, batch and receiver) imports nothing from here but
py_deid.hosts.services, which only defines the service protocols and data types.
"""

from __future__ import annotations

import sys

IS_BROWSER = sys.platform == "emscripten"
