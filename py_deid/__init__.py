"""py_deid: de-identification of DICOM instances (PS3.15 Annex E and burned-in text), one core for the
browser (Pyodide) and the command line."""

__version__ = "0.1.0"
