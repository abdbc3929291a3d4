"""Mutation fuzzing of the header path on real files written by others, with markers planted where PHI lives.

Fixed seeds; the base files and the mutation mix were chosen before any result was looked at (every
sample under 200 KB that de-identifies cleanly unmutated, sorted by name, every third one). Each base file
gets markers in Patient's Name, Patient ID, Institution Name, a nested person name and a private attribute,
then 16 mutants (PY_DEID_FULL=1: 120; PY_DEID_FUZZ_PER_FILE=N: N) over the classes of tests/header/mutate.py.

A leak is a marker that reaches an output anywhere PS3.15 requires it cleaned: in an attribute of Table
E.1-1 that the profile does not keep, a person name, a private or unknown attribute, a value that pydicom's
own validation (an implementation independent of ours) finds invalid for its VR, or outside any element.
A marker that a mutation moved into the valid value of a standard attribute the profile keeps (say, a tag
changed into Manufacturer) is counted and reported, not a leak: the file then says that is the manufacturer.
"""

from __future__ import annotations

import os
import random
import warnings
import zlib
from collections import Counter
from io import BytesIO

import pydicom
import pytest
from pydicom.config import RAISE
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import validate_value

from py_deid.options import Options
from py_deid.elements import dictionary_vr
from py_deid.policy import Profile
from py_deid.verify import check_bytes

from . import mutate
from .helpers import deid

FULL = os.environ.get("PY_DEID_FULL") == "1"
PER_FILE = int(os.environ.get("PY_DEID_FUZZ_PER_FILE", 120 if FULL else 16))
MARK = b"ZQX"
MAX_BASE_SIZE = 200_000


def _plant(ds: Dataset, i: int) -> None:
    ds.PatientName = f"ZQXNAME{i}^MARK"
    ds.PatientID = f"ZQXPID{i}"
    ds.InstitutionName = f"ZQX INST {i}"
    item = Dataset()
    item.ScheduledPerformingPhysicianName = f"ZQXNEST{i}^DOC"
    ds.RequestAttributesSequence = Sequence([item])
    block = ds.private_block(0x0009, "ZQXCREATOR", create=True)
    block.add_new(0x01, "LO", f"ZQXPRIV{i}")


def _base_files(samples) -> list[tuple[str, bytes]]:
    chosen = []
    candidates = sorted((s for s in samples.all if (samples.root / s.relpath).stat().st_size <= MAX_BASE_SIZE),
                        key=lambda s: s.relpath)
    for s in candidates:
        data = (samples.root / s.relpath).read_bytes()
        if deid(data).status != "done":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(BytesIO(data), force=True)
            _plant(ds, len(chosen))
            out = BytesIO()
            try:
                ds.save_as(out, enforce_file_format=True)
            except Exception:
                continue
        chosen.append((s.name, out.getvalue()))
    return chosen[::3]


@pytest.fixture(scope="module")
def bases(samples):
    found = _base_files(samples)
    assert len(found) >= 30, len(found)
    return found


class Oracle:
    """Where a marker in an output sits, judged from pydicom's parse of the output and pydicom's validation."""

    def __init__(self) -> None:
        self.profile = Profile(Options())
        self.moved = False  # the last output held a marker only in kept, valid standard attributes

    def leaks(self, output: bytes) -> list[str]:
        self.moved = False
        meta_end = mutate.meta_end(output)
        body = output[meta_end:]
        if b"1.2.840.10008.1.2.1.99" in output[:meta_end]:
            body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body)  # a deflated output hides nothing
        found: list[str] = []
        if MARK in output[:meta_end]:
            found.append("preamble or file meta")
        if MARK not in body:
            return found
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(BytesIO(output), force=True)
            except Exception:
                return [*found, "unreadable output holds a marker"]
            inside = self._walk(ds, found)
        if inside < body.count(MARK):
            found.append("outside any element")
        self.moved = not found
        return found

    def _walk(self, ds: Dataset, found: list[str]) -> int:
        seen = 0
        for elem in _elements(ds):
            raw = elem.value
            data = raw if isinstance(raw, (bytes, bytearray)) else str(raw).encode("utf-8", "replace")
            n = bytes(data).count(MARK)
            if not n:
                continue
            seen += n
            tag = int(elem.tag)
            if tag >> 16 & 1 or dictionary_vr(tag) is None:
                found.append(f"private or unknown {tag:08X}")
                continue
            resolved = self.profile.for_standard(tag, elem.VR)
            if resolved is not None and resolved.action != "K":
                found.append(f"profile attribute {tag:08X}")
                continue
            if elem.VR == "PN":
                found.append(f"person name {tag:08X}")
                continue
            try:
                validate_value(dictionary_vr(tag), raw, RAISE)
            except Exception:
                found.append(f"invalid value {tag:08X}")
        return seen


def _elements(ds: Dataset):
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                yield from _elements(item)
        else:
            yield elem


def test_mutants_of_real_files_leak_nothing_and_never_crash(bases):
    oracle = Oracle()
    outcome: Counter = Counter()
    by_kind: Counter = Counter()
    leaks, crashes, relocated = [], [], 0
    tried = 0
    for f, (name, data) in enumerate(bases):
        others = bases[(f + 1) % len(bases)][1]
        for j in range(PER_FILE):
            kind = mutate.MUTATIONS[j % len(mutate.MUTATIONS)]
            rng = random.Random(f"{name}:{j}")
            mutant = mutate.mutate(data, kind, rng, others)
            tried += 1
            result = deid(mutant)
            status = result.status if result.status == "done" else f"{result.status}:{result.problem.code}"
            outcome[status] += 1
            by_kind[(kind, result.status)] += 1
            if result.status != "done":
                assert result.problem and result.problem.message  # every input accounted for, with a reason
                assert "ZQX" not in result.problem.message
                if result.problem.code == "internal":
                    crashes.append((name, j, kind))
                continue
            where = oracle.leaks(result.output)
            if where:
                leaks.append((name, j, kind, where))
            elif oracle.moved:
                relocated += 1
    print(f"\nfuzz: {tried} mutants, {outcome['done']} outputs, {len(leaks)} leaks, {len(crashes)} crashes, "
          f"{relocated} markers moved into kept valid attributes; outcomes {dict(outcome)}")
    assert tried >= 1000
    assert crashes == []
    assert leaks == []


# The findings planted back into clean outputs: verify must flag every one. -----------------------------------------

def _clean_output(bases) -> bytes:
    result = deid(bases[0][1])
    assert result.status == "done"
    return result.output


def _reencode(ds: Dataset) -> bytes:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


PLANTED = {
    "name swallowed by a kept element": lambda ds: _swallow(ds),
    "unknown attribute": lambda ds: ds.add_new(0x00700999, "LO", "ZQXUNKNOWN"),
    "private attribute": lambda ds: ds.private_block(0x0011, "ZQXCREATOR", create=True).add_new(0x01, "LO", "ZQX"),
    "real name as Patient's Name": lambda ds: setattr(ds, "PatientName", "ZQXNAME^MARK"),
    "real ID as Patient ID": lambda ds: setattr(ds, "PatientID", "ZQX88812"),
    "name in a removed attribute": lambda ds: setattr(ds, "OtherPatientNames", "ZQXNAME^OTHER"),
    "nested person name": lambda ds: setattr(ds, "RequestAttributesSequence", Sequence([_nested()])),
    "private code in a replaced sequence": lambda ds: setattr(ds, "PersonIdentificationCodeSequence",
                                                              Sequence([_private_code()])),
    "name in a code string": lambda ds: setattr(ds, "BodyPartExamined", "ZQX^NAME"),
    "source AE title in file meta": lambda ds: setattr(ds.file_meta, "SourceApplicationEntityTitle", "ZQXAE"),
}


def _nested() -> Dataset:
    item = Dataset()
    item.ScheduledPerformingPhysicianName = "ZQXNEST^DOC"
    return item


def _private_code() -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "EMP7788", "99HOSP", "Dr ZQX Smith"
    return item


def _swallow(ds: Dataset) -> None:
    ds.Modality = "CT"


def _swallowed(data: bytes) -> bytes:
    modality = mutate.find(data, 0x00080060)
    start = modality.offset + modality.header
    forged = b"\x10\x00\x10\x00PN\x0c\x00ZQXNAME^MARK"
    data = data[:start] + b"CT" + forged + data[start + modality.length:]
    return mutate.set_length(data, modality, 2 + len(forged))


@pytest.mark.parametrize("case", list(PLANTED))
def test_verify_flags_every_planted_back_leak(bases, case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(BytesIO(_clean_output(bases)))
        assert check_bytes(_reencode(ds), Options()) == []
        PLANTED[case](ds)
        data = _reencode(ds)
    if case == "name swallowed by a kept element":
        data = _swallowed(data)
    assert check_bytes(data, Options()) != [], case


def test_verify_flags_text_in_the_preamble(bases):
    data = _clean_output(bases)
    assert {f.code for f in check_bytes(b"ZQX PREAMBLE".ljust(128, b"\0") + data[128:], Options())} == {"preamble"}
