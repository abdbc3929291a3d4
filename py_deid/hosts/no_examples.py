"""Stands in for pydicom.examples in the browser: the same module name, no datasets.

pydicom imports its examples module whenever it is imported, and that module looks up thirteen test files as it
is imported (about a tenth of the Python import time of a browser worker's first start, measured in Pyodide 314)
for datasets the de-identifier never reads. The browser host puts this module in its place before pydicom is
first imported; asking it for an example raises.
"""

from __future__ import annotations


def __getattr__(name: str):
    raise AttributeError(f"pydicom.examples is not loaded in the browser (asked for {name!r})")
