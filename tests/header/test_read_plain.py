"""The plain read (py_deid.instance._read_plain): one walk over the bytes that checks the structure and lists the
elements, in place of pydicom's reader and the structure check each walking them.

The oracle is pydicom: for every real sample file under 1 MiB, the benchmark's kind of planted file, and mutants
of them (tests/header/mutate.py), the plain read either declines (None) or gives the dataset that
dcmread(BytesIO(data), force=True) gives, attribute by attribute (every element, in order, with its value,
position and encoding; the file meta; the dataset's own state), and only where structure.check passes; and
instance._read gives the same outcome (dataset or the same problem) with it as without it.
"""

from __future__ import annotations

import random
import warnings
import weakref
from collections import Counter
from io import BytesIO

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from py_deid import instance, structure

from . import mutate

MAX = instance.SHARED_PIXELS_MIN


def _state(ds: Dataset) -> dict:
    """Everything a Dataset holds: its elements in order (raw ones as their fields, others by value), and the
    attributes pydicom sets on it (the buffer by its bytes and position)."""
    out = {}
    for key, value in vars(ds).items():
        if key == "_dict":
            out[key] = [(type(k).__name__, int(k), _element(e)) for k, e in value.items()]
        elif key == "buffer":
            out[key] = (type(value).__name__, value.getvalue(), value.tell()) if value is not None else None
        elif key == "file_meta":
            out[key] = _state(value)
        elif isinstance(value, Dataset):
            out[key] = _state(value)
        else:
            out[key] = _attribute(value)
    return out


def _element(e):
    if type(e) is RawDataElement:
        return ("raw", tuple((type(f).__name__, f) for f in e))
    value = e.value
    value = [_state(item) for item in value] if isinstance(value, Sequence) else repr(value)
    return (type(e).__name__, int(e.tag), type(e.VR).__name__, e.VR, e.is_undefined_length, e.file_tell, value,
            {k: _attribute(v) for k, v in vars(e).items() if k != "_value"})


def _attribute(value):
    if isinstance(value, weakref.ReferenceType):  # a parent: compared from the parent
        return (type(value).__name__, type(value()).__name__)
    return (type(value).__name__, value)


def _checked(data: bytes, ds: Dataset) -> bool:
    implicit, little = ds.original_encoding
    try:
        structure.check(data, structure.meta_end(data), implicit=implicit, little=little)
        return True
    except structure.StructureError:
        return False


def _compare(data: bytes) -> str:
    """'plain' (the same dataset as dcmread's, structure whole), 'declined', or raises AssertionError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # _read takes the plain read only past a whole file meta
            plain = instance._read_plain(data, structure.meta_end(data)) if data[128:132] == b"DICM" else None
        except structure.StructureError:
            plain = None
        if plain is None:
            return "declined"
        expected = pydicom.dcmread(BytesIO(data), force=True)
    assert _state(plain) == _state(expected)
    assert _checked(data, expected)  # the plain read never takes a file whose structure is broken
    return "plain"


def _same_outcome(data: bytes, monkeypatch) -> None:
    def outcome():
        try:
            ds, _ = instance._read(data)
            return ("read", _state(ds))
        except instance.InstanceProblem as p:
            return ("problem", p.code, p.message, p.status)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monkeypatch.setattr(instance, "FAST_READ", True)
        fast = outcome()
        monkeypatch.setattr(instance, "FAST_READ", False)
        slow = outcome()
        monkeypatch.setattr(instance, "FAST_READ", True)
    assert fast == slow


def _samples(samples) -> list[tuple[str, bytes]]:
    out = []
    for s in sorted(samples.all, key=lambda s: s.relpath):
        path = samples.root / s.relpath
        if path.stat().st_size < MAX:
            out.append((s.relpath, path.read_bytes()))
    return out


def test_the_plain_read_is_dcmreads_dataset_for_every_real_file(samples, monkeypatch):
    assert instance.FAST_READ  # pydicom's VR tables agree with the structure walk's
    kinds = Counter()
    for name, data in _samples(samples):
        try:
            kinds[_compare(data)] += 1
        except AssertionError:
            raise AssertionError(name) from None
        if kinds["plain"] % 3 == 0:
            _same_outcome(data, monkeypatch)
    # Most sample files are the plain case (299 of 313 when written); the others (deflated, no file meta, an
    # undefined-length value that is not a sequence...) are read by dcmread as before.
    assert kinds["plain"] >= 280, kinds
    assert kinds["declined"] >= 10, kinds


def test_the_benchmark_corpus_kind_of_file(samples, tmp_path, monkeypatch):
    from tests.benchmarks.corpus import build

    paths, _ = build(samples, tmp_path, 20, patients=4)
    kinds = Counter()
    for p in paths:
        data = p.read_bytes()
        kinds[_compare(data)] += 1
        _same_outcome(data, monkeypatch)
    assert kinds["plain"] == 20, kinds  # undefined-length sequences (JPEG2000.dcm's) parsed by pydicom's parser


@pytest.mark.parametrize("seed", range(4))
def test_mutants_read_alike_or_declined(samples, seed, monkeypatch):
    """Broken lengths, tags, VRs and truncations of real files: the plain read declines them or reads what
    dcmread reads, and _read's outcome (the dataset, or the problem and its message) is the same."""
    rng = random.Random(seed)
    bases = [d for _, d in _samples(samples) if len(d) < 200_000][seed::4][:12]
    kinds = Counter()
    for data in bases:
        for kind in (*mutate.MUTATIONS, "flip", "cut"):
            if kind in ("flip", "cut"):
                mutant = _flip(data, rng, cut=kind == "cut")
            else:
                mutant = mutate.mutate(data, kind, rng, other=rng.choice(bases))
            kinds[_compare(mutant)] += 1
            _same_outcome(mutant, monkeypatch)
    assert kinds["declined"] and kinds["plain"], kinds


def _flip(data: bytes, rng: random.Random, cut: bool) -> bytes:
    """A byte changed, or the file cut short, somewhere after the file meta."""
    start = structure.meta_end(data) if data[128:132] == b"DICM" else 0
    if cut:
        return data[:rng.randrange(start, len(data))]
    b = bytearray(data)
    i = rng.randrange(start, len(b))
    b[i] = rng.randrange(256)
    return bytes(b)


def test_cases_left_to_dcmread():
    """Each case the plain read does not take goes to dcmread (None)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    def part10(body: bytes, ts=ExplicitVRLittleEndian) -> bytes:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ts
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
        buf = BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        return buf.getvalue() + body

    uid = b"\x08\x00\x18\x00UI\x06\x001.2.3\0"
    sequence = b"\x08\x00\x15\x11SQ\0\0\xff\xff\xff\xff\xfe\xff\xdd\xe0\0\0\0\0"  # undefined length, empty
    for body in (uid, sequence + uid):
        data = part10(body)
        assert _compare(data) == "plain"
    cases = {
        "unknown VR": b"\x08\x00\x18\x00QQ\x06\x001.2.3\0",
        "undefined-length value not a sequence": b"\x09\x00\x10\x10OB\0\0\xff\xff\xff\xff\xfe\xff\xdd\xe0\0\0\0\0" + uid,
        "undefined-length UN": b"\x08\x00\x15\x11UN\0\0\xff\xff\xff\xff\xfe\xff\xdd\xe0\0\0\0\0" + uid,
        "NUL padding read as group 0000": uid + b"\0" * 16,
        "command set first": b"\x00\x00\x00\x01\x02\x00\x00\x00\x01\x00" + uid,
        "implicit data under an explicit syntax": b"\x08\x00\x18\x00\x06\x00\x00\x001.2.3\0",
        "truncated": uid[:-2],
    }
    for what, body in cases.items():
        data = part10(body)
        assert instance._read_plain(data, structure.meta_end(data)) is None, what
    explicit_under_implicit = part10(uid, ImplicitVRLittleEndian)
    assert instance._read_plain(explicit_under_implicit, structure.meta_end(explicit_under_implicit)) is None
