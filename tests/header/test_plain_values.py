"""py_deid.elements.plain_value reads a value from its bytes, leaving the element as read, only where that is
exactly what pydicom's conversion gives and where the element, written back as read, is what pydicom would
write of the converted value. The oracle is pydicom itself: its conversion of the same element, and its writer.
"""

from __future__ import annotations

import struct
import warnings

import pydicom
import pytest
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

from py_deid.elements import dictionary_vr, plain_value

from .test_real_files import MAX_SIZE

VRS = ("US", "UI", "DA", "CS", "IS", "LO")
# (tag, VR, value bytes): plain ones, and ones that must be left to pydicom (None expected).
CASES = [
    (0x00080016, "UI", b"1.2.840.10008.5.1.4.1.1.2\0", "1.2.840.10008.5.1.4.1.1.2"),
    (0x00080018, "UI", b"1.2.3.45", "1.2.3.45"),
    (0x00080018, "UI", b"1.2.3.4", None),  # an odd length: pydicom writes it padded
    (0x00080018, "UI", b"1.2.03.4", None),  # a leading zero: not a valid UID
    (0x00080018, "UI", b"1.2.3 ", None),  # space-padded UID
    (0x00080018, "UI", b"1.2.3\\1.2.4", None),  # two values
    (0x00080020, "DA", b"20200131", "20200131"),
    (0x00080020, "DA", b"2020013 ", None),
    (0x00080020, "DA", b"20200131\\20200201", None),
    (0x00080020, "DA", b"", None),
    (0x00280004, "CS", b"MONOCHROME2 ", "MONOCHROME2"),
    (0x00280004, "CS", b"RGB ", "RGB"),
    (0x00280004, "CS", b" RGB", None),
    (0x00280004, "CS", b"rgb ", None),
    (0x00280004, "CS", b"YBR_FULL_422", "YBR_FULL_422"),
    (0x00280008, "IS", b"12", "12"),
    (0x00280008, "IS", b"7 ", "7"),
    (0x00280008, "IS", b" 7", None),
    (0x00280008, "IS", b"+7", None),
    (0x00100020, "LO", b"PLNTID00001 ", "PLNTID00001"),
    (0x00100020, "LO", b"A-1.b_2 ", "A-1.b_2"),
    (0x00100020, "LO", b"A-1.b_2", None),
    (0x00100020, "LO", b"ID 42 ", None),  # inner space
    (0x00100020, "LO", b"\\x", None),
    (0x00100020, "LO", b"M\xfcller", None),  # not ASCII: depends on the character set
    (0x00280010, "US", struct.pack("<H", 512), 512),
    (0x00280010, "US", struct.pack("<HH", 512, 2), None),  # two values
    (0x00280010, "US", b"", None),
]


def _raw_ds(tag: int, vr: str | None, value: bytes, *, little: bool = True) -> Dataset:
    ds = Dataset()
    ds._dict[tag] = RawDataElement(pydicom.tag.Tag(tag), vr, len(value), value, 0, vr is None, little)
    return ds


def _converted(ds: Dataset, tag: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_raw_data_element(ds._dict[tag], encoding=ds._character_set, ds=ds)


def _written(elem, implicit: bool, little: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_data_element(fp, elem)
    return fp.getvalue()


def _same_as_pydicom(ds: Dataset, tag: int, got) -> None:
    raw = ds._dict[tag]
    elem = _converted(ds, tag)
    value = elem.value
    assert got == (int(value) if isinstance(got, int) else str(value).strip())
    assert type(ds._dict[tag]) is RawDataElement  # left as read
    implicit, little = raw.is_implicit_VR, raw.is_little_endian
    assert _written(raw, implicit, little) == _written(elem, implicit, little)


@pytest.mark.parametrize("tag,vr,value,expected", CASES)
@pytest.mark.parametrize("encoding", ["explicit-le", "implicit-le", "explicit-be"])
def test_plain_value_is_pydicoms_value_or_none(tag, vr, value, expected, encoding):
    if encoding == "explicit-be" and vr == "US":
        value = value[::-1] if len(value) == 2 else value
    ds = _raw_ds(tag, None if encoding == "implicit-le" else vr, value, little=encoding != "explicit-be")
    got = plain_value(ds, tag)
    assert got == expected
    if got is not None:
        _same_as_pydicom(ds, tag, got)


def test_a_converted_or_absent_element_is_left_to_pydicom():
    ds = Dataset()
    assert plain_value(ds, 0x00280010) is None
    ds.Rows = 512
    assert plain_value(ds, 0x00280010) is None


def test_every_plain_value_of_the_real_files_is_pydicoms(samples):
    """Each top-level element of the VRs plain_value reads, in every real sample file: where it reads one, the
    value is pydicom's and the element, written as read, is what pydicom writes of it."""
    read = 0
    for path in [p for p in samples.paths() if p.stat().st_size <= MAX_SIZE]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
            tags = [t for t, e in ds._dict.items() if type(e) is RawDataElement and (e.VR or dictionary_vr(t)) in VRS]
        except Exception:
            continue  # not a dataset pydicom reads: the instance tests cover these
        for tag in tags:
            got = plain_value(ds, tag)
            if got is not None:
                _same_as_pydicom(ds, tag, got)
                read += 1
    assert read > 2000  # the samples hold thousands of such values; a drop means the reader stopped applying
