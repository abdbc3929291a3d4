"""The raw-element encoder (py_deid.encoder) writes the same bytes as pydicom's write_dataset.

Every real sample file goes through the whole pipeline twice, once with each encoder, under options that keep
much (so that many raw elements, private ones and sequences reach the writer) and under the basic profile; the
outputs must be equal byte for byte, failures must fail the same way. The samples cover explicit and implicit
VR little endian, big endian, deflated, encapsulated pixel data and sequences and items of defined and undefined
length; the test checks that each of those was actually written by the new encoder.
"""

from __future__ import annotations

from collections import Counter

import pydicom
import pytest
from pydicom.dataset import Dataset

from py_deid import encoder, instance
from py_deid.options import Options

from .helpers import deid
from .test_real_files import CONFIGS, MAX_SIZE

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on the long value case
ENCAPSULATED_MIN = 20  # the samples hold dozens of compressed images; a drop means the fast path stopped applying


def _run(data: bytes, options: Options, fast: bool, monkeypatch):
    monkeypatch.setattr(instance, "FAST_ENCODER", fast)
    return deid(data, options=options)


def _features(output: bytes) -> set[str]:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(output), force=True)
    found = set()
    pixels = ds.get_item(0x7FE00010)  # before iterall converts it
    if pixels is not None and getattr(pixels, "length", None) == 0xFFFFFFFF:
        found.add("encapsulated")
    for elem in ds.iterall():
        if elem.VR == "SQ":
            found.add("sequence-undefined" if elem.is_undefined_length else "sequence-defined")
            for item in elem.value:
                found.add("item-undefined" if getattr(item, "is_undefined_length_sequence_item", False)
                          else "item-defined")
    return found


@pytest.mark.parametrize("config", ["basic", "retain-all", "clean-all"])
def test_both_encoders_write_the_same_bytes_for_every_real_file(samples, config, monkeypatch):
    options = CONFIGS[config]
    fast_parts = Counter()
    real = encoder.dataset_parts

    def counting(ds: Dataset, **kw):
        parts = real(ds, **kw)
        fast_parts["fast" if parts is not None else "pydicom"] += 1
        return parts

    monkeypatch.setattr(encoder, "dataset_parts", counting)
    covered = Counter()
    compared = 0
    for s in samples.all:
        path = samples.root / s.relpath
        if path.stat().st_size > MAX_SIZE:
            continue
        data = path.read_bytes()
        before = fast_parts["fast"]
        new = _run(data, options, True, monkeypatch)
        took_fast = fast_parts["fast"] > before
        old = _run(data, options, False, monkeypatch)
        assert new.status == old.status, s.name
        assert (new.problem and new.problem.code) == (old.problem and old.problem.code), s.name
        if new.status != "done":
            continue
        assert new.output == old.output, s.name
        compared += 1
        if took_fast:
            covered[new.transfer_syntax] += 1
            covered.update(_features(new.output))
    assert compared >= 295
    assert fast_parts["fast"] >= 0.9 * compared, fast_parts
    for ts in (instance.EXPLICIT_LE, instance.IMPLICIT_LE, instance.EXPLICIT_BE, instance.DEFLATED):
        assert covered[ts], (ts, covered)
    for feature in ("sequence-defined", "sequence-undefined", "item-defined", "item-undefined"):
        assert covered[feature], (feature, covered)
    assert covered["encapsulated"] >= ENCAPSULATED_MIN, covered


def _both(ds_factory, implicit: bool, little: bool) -> tuple[bytes | None, bytes]:
    """dataset_parts and write_dataset on two fresh copies of the same dataset (writing converts elements)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    parts = encoder.dataset_parts(ds_factory(), implicit=implicit, little=little)
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_dataset(fp, ds_factory())
    return (None if parts is None else b"".join(parts)), fp.getvalue()


def _read(samples, name: str, **kw):
    return lambda: pydicom.dcmread(samples.path(name), force=True, **kw)


def _edited(factory, edit):
    def make():
        ds = factory()
        edit(ds)
        return ds
    return make


def _new_sequence(ds):
    item = Dataset()
    item.CodeValue = "121320"
    item.CodingSchemeDesignator = "DCM"
    ds.add_new(0x00081032, "SQ", pydicom.sequence.Sequence([item, Dataset()]))  # Procedure Code Sequence
    old = next((e for e in ds if e.VR == "SQ" and len(e.value)), None)
    if old is not None:
        old.value[0].PatientComments = "x" * 3  # a converted element inside an item read from the file
        old.value.append(Dataset())  # an item made here: pydicom converts it, so pydicom writes it


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                                  "rtplan.dcm", "JPEG2000.dcm", "emri_small_jpeg_2k_lossless.dcm"])
def test_edited_datasets_are_written_as_pydicom_writes_them(samples, name):
    base = _read(samples, name)
    implicit, little = base().original_encoding
    cases = {
        "as read": base,
        "deferred values": _read(samples, name, defer_size=64),
        "new and changed elements": _edited(base, lambda ds: (setattr(ds, "PatientName", "A^B"),
                                                              ds.add_new(0x00091010, "LO", "private"))),
        "new sequence and items": _edited(base, _new_sequence),
        "long value over 64 KiB": _edited(base, lambda ds: ds.add_new(0x00324000, "LT", "y" * 70_000)),
    }
    for case, factory in cases.items():
        fast, slow = _both(factory, implicit, little)
        assert fast == slow, (name, case)


def test_a_dataset_pydicom_converts_is_left_to_pydicom(samples):
    implicit = _read(samples, "MR_small_implicit.dcm")
    assert encoder.dataset_parts(implicit(), implicit=False, little=True) is None  # new encoding
    charset = _edited(_read(samples, "CT_small.dcm"), lambda ds: setattr(ds, "SpecificCharacterSet", "ISO_IR 192"))
    assert encoder.dataset_parts(charset(), implicit=False, little=True) is None  # new character set
    assert _both(charset, False, True)[1]


def test_undefined_length_pixel_data_that_is_not_encapsulated_is_refused_as_pydicom_refuses_it(samples):
    from pydicom.dataelem import RawDataElement

    ds = pydicom.dcmread(samples.path("CT_small.dcm"))
    raw = ds._dict[0x7FE00010]
    ds._dict[0x7FE00010] = RawDataElement(raw.tag, "OB", 0xFFFFFFFF, b"\0" * 16, 0, False, True)
    with pytest.raises(Exception, match="encapsulated"):
        encoder.dataset_parts(ds, implicit=False, little=True)


def test_both_encoders_write_the_same_bytes_for_a_corpus_with_planted_phi(samples, tmp_path, monkeypatch):
    """The benchmark corpus: PHI planted in standard, nested and private attributes, so that many elements
    are replaced, emptied or converted before they are written (the new encoder's own value writers)."""
    from tests.benchmarks.corpus import build

    paths, _ = build(samples, tmp_path, 60)
    for options in (Options(), CONFIGS["retain-all"], CONFIGS["clean-all"]):
        for path in paths:
            data = path.read_bytes()
            new, old = _run(data, options, True, monkeypatch), _run(data, options, False, monkeypatch)
            assert new.status == old.status == "done", path.name
            assert new.output == old.output, path.name


def test_large_pixel_data_is_written_from_the_input_bytes(samples, monkeypatch):
    """Pixel Data as read is handed to the encoder as a view of the input (no second copy), and the output is
    the same bytes as when pydicom's own copy is written."""
    data = samples.bytes("philips_mprage.dcm")
    shared = []
    real = instance._share_pixel_data

    def spy(ds, source):
        real(ds, source)
        shared.append(type(ds._dict[instance.PIXEL_DATA].value))

    monkeypatch.setattr(instance, "_share_pixel_data", spy)
    new = _run(data, Options(), True, monkeypatch)
    monkeypatch.setattr(instance, "SHARED_PIXELS_MIN", 1 << 62)
    old = _run(data, Options(), False, monkeypatch)
    assert shared == [memoryview, bytes]
    assert new.status == "done" and new.output == old.output


def test_an_empty_element_of_an_ambiguous_vr_fails_as_pydicom_fails(samples):
    """pydicom refuses to write 'US or SS' in explicit VR even when the value is empty; so must the encoder."""
    ds = pydicom.dcmread(samples.path("CT_small.dcm"))
    ds.add_new(0x00283002, "US or SS", None)  # LUT Descriptor, VR left ambiguous
    with pytest.raises(ValueError, match="ambiguous VR"):
        encoder.dataset_parts(ds, implicit=False, little=True)
    implicit = _edited(_read(samples, "MR_small_implicit.dcm"), lambda ds: ds.add_new(0x00283002, "US or SS", None))
    fast, slow = _both(implicit, True, True)
    assert fast == slow
