"""Small builders shared by the header tests."""

from __future__ import annotations

from io import BytesIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info

from py_deid.instance import Deidentifier, InstanceResult, run_sync
from py_deid.options import Options, Settings, Trial

KEY = b"header-tests-key-0123456789abcdef"


def encode(ds: Dataset, *, implicit: bool = False) -> bytes:
    """Write ds as a Part 10 file, element by element (lets tests write what dcmwrite refuses)."""
    fp = DicomBytesIO()
    fp.write(b"\0" * 128 + b"DICM")
    ds.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit
                                      else pydicom.uid.ExplicitVRLittleEndian)
    write_file_meta_info(fp, ds.file_meta)
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def deid(data: bytes, *, options: Options | None = None, trial: Trial | None = None, key: bytes = KEY,
         record: bool = False) -> InstanceResult:
    settings = Settings(options=options or Options(), trial=trial or Trial(), pixels="off")
    return run_sync(Deidentifier(settings, key, record=record).process(data), None)


def read(result: InstanceResult) -> Dataset:
    assert result.status == "done", result.problem
    return pydicom.dcmread(BytesIO(result.output))
