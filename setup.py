"""The one compiled part of py_deid: the text screen's count (py_deid/pixels/_lines.c), for native builds.

Everything else is in pyproject.toml. The extension is optional: where it cannot be built (no C compiler),
text_presence counts with numpy, the same pieces a little slower. The browser's wheel is pure Python:
build_wasm.py builds it from a copy of the package without this file or the C source, and Pyodide runs the
numpy path.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("py_deid.pixels._lines", ["py_deid/pixels/_lines.c"], optional=True)])
