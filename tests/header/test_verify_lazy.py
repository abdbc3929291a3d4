"""The verifier's lazy walk (values converted by pydicom only where a check reads them) against the eager
one it replaced (every element converted before it is judged: `check_dataset(convert_all=True)`, kept as the
oracle). Both must give the same findings - codes, tag paths, messages, in the same order - on every sample
file, on the de-identified output of each, on mutants of those outputs (tests/header/mutate.py), with and
without the PHI terms and original UIDs that `py-deid verify --against` passes, under several option sets,
and on single elements of every VR the lazy walk leaves unconverted, written with edge-case bytes."""

from __future__ import annotations

import random
import warnings
from io import BytesIO

import pydicom
import pytest
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import UID_dictionary

from py_deid import verify
from py_deid.options import Options
from py_deid.phi import PhiTerms
from py_deid.policy import profile_for

from . import mutate
from .helpers import deid

OPTION_SETS = [Options(), Options.from_names(["retain_safe_private", "clean_descriptors", "clean_structured_content"]),
               Options.from_names(["retain_uids", "retain_long_full_dates", "retain_device_identity",
                                   "retain_patient_characteristics", "clean_graphics"])]
MAX_SIZE = 3_000_000  # larger samples add pixel bytes, not header cases
MUTANTS_PER_BASE = 12  # one of each kind of tests/header/mutate.py


def _read(data: bytes):
    return pydicom.dcmread(BytesIO(data), force=True)


def _both(data: bytes, options: Options, **kwargs) -> tuple[list, list]:
    """(eager findings, lazy findings) of the same bytes, each on its own fresh parse (or the exception it
    raised: the receiver refuses a part whose check raises)."""
    def run(convert_all: bool):
        try:
            return verify.check_bytes(data, options, convert_all=convert_all, **kwargs)
        except Exception as e:  # noqa: BLE001 - compared, not hidden
            return [("raised", type(e).__name__)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(True), run(False)


def _against(original: bytes) -> dict:
    """What `py-deid verify --against` passes: the original's PHI terms and UIDs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _read(original)
        uids = {str(e.value).strip("\0 ") for e in ds.iterall() if e.VR == "UI" and isinstance(e.value, str)}
        uids = {u for u in uids if len(u) > 8 and u not in UID_dictionary}  # as py_deid.verify_files does
        return {"terms": PhiTerms.from_dataset(_read(original)), "original_uids": uids}


@pytest.fixture(scope="module")
def small_samples(samples):
    return [(s.name, (samples.root / s.relpath).read_bytes()) for s in sorted(samples.all, key=lambda s: s.relpath)
            if (samples.root / s.relpath).stat().st_size <= MAX_SIZE]


@pytest.fixture(scope="module")
def outputs(small_samples):
    """(name, original, de-identified output) of every small sample that de-identifies."""
    out = []
    for name, data in small_samples:
        result = deid(data)
        if result.status == "done":
            out.append((name, data, result.output))
    assert len(out) >= 100, len(out)
    return out


def test_same_findings_on_every_sample_file(small_samples):
    compared = findings = 0
    for name, data in small_samples:
        for options in OPTION_SETS:
            eager, lazy = _both(data, options)
            assert lazy == eager, (name, options.names)
            compared += 1
            findings += len(eager)
        try:
            against = _against(data)
        except Exception:
            continue
        eager, lazy = _both(data, Options(), **against)
        assert lazy == eager, name
    assert compared >= 3 * 250 and findings > 1000, (compared, findings)  # the originals are full of findings


def test_same_findings_on_every_de_identified_output(outputs):
    clean = 0
    for name, original, output in outputs:
        for options in OPTION_SETS:
            eager, lazy = _both(output, options)
            assert lazy == eager, (name, options.names)
            clean += not eager and options == Options()
        eager, lazy = _both(output, Options(), **_against(original))
        assert lazy == eager, name
    assert clean >= len(outputs) // 2, clean  # most outputs are accepted: the lazy walk's common case


def test_same_findings_on_mutants_of_outputs(outputs):
    bases = outputs[::3]
    tried = refused = 0
    for f, (name, original, output) in enumerate(bases):
        others = bases[(f + 1) % len(bases)][2]
        against = _against(original)
        for j in range(MUTANTS_PER_BASE):
            kind = mutate.MUTATIONS[j % len(mutate.MUTATIONS)]
            mutant = mutate.mutate(output, kind, random.Random(f"lazy:{name}:{j}"), others)
            options = OPTION_SETS[j % len(OPTION_SETS)]
            eager, lazy = _both(mutant, options)
            assert lazy == eager, (name, j, kind)
            if j % 4 == 0:
                eager, lazy = _both(mutant, Options(), **against)
                assert lazy == eager, (name, j, kind, "against")
            tried += 1
            refused += bool(eager)
    assert tried >= 800 and refused >= tried // 4, (tried, refused)


# Single elements: every VR the lazy walk may leave unconverted, with edge-case bytes. ------------------------------

TEXT_CASES = [b"", b" ", b"  ", b"A", b"A ", b" A", b"AB", b"A\\B", b"A\\", b"\\", b"\\\\", b"A\\ \\B", b"abc",
              b"ABC DEF", b"1", b"1 ", b" 1", b"+1", b"-0", b"1.5", b" 1.5 ", b"1e400", b"1.5e-3", b".5", b"1.",
              b"1.0", b"12345678901234567", b"20200101", b"2020010 ", b"20201301", b"123000", b"123000.1234567",
              b"2020-01-01", b"035Y", b"1.2.3", b"1.2.3\0", b"1.2.03", b"1.2.3 \0", b"1.2.3\0\0", b"ABC\0",
              b"\0", b"A\0B", b"A\r\nB", b"A\tB", b"\x1b$B", b"\xe9t\xe9", b"X" * 17, b"X" * 65, b"x" * 1025,
              b"JOHN^DOE", b"JOHN^DOE=J", b"a^b^c^d^e^f", b"A\x7f", b"http://a.b/c d", b"ZQX\\ZQX\\ZQX"]
BINARY_LENGTHS = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 1000]


def _tags_of(vr: str, count: int = 2) -> list[int]:
    """Standard tags of this VR: some the profile keeps (the lazy walk's skip), one it acts on (converted)."""
    profile = profile_for(Options())
    kept, acted = [], []
    for tag, entry in sorted(DicomDictionary.items()):
        if entry[0] != vr or tag >> 16 in (0x0002, 0x0008) or tag & 0xFFFF == 0 or entry[3] == "Retired" \
                or tag >> 16 & 1 or 0x5000 <= tag >> 16 <= 0x60FF or tag >> 16 == 0x7FE0:
            continue
        (acted if profile.for_standard(tag, vr) else kept).append(tag)
    return kept[:count] + acted[:1]


def _dataset(tag: int, vr: str | None, value: bytes, *, implicit: bool) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientIdentityRemoved = "YES"
    ds._dict[BaseTag(tag)] = RawDataElement(BaseTag(tag), vr, len(value), value, 0, implicit, True)
    ds.set_original_encoding(implicit, True, None)
    return ds


@pytest.mark.parametrize("vr", sorted(verify._LAZY_VRS))
def test_same_findings_on_edge_case_values(vr):
    cases = TEXT_CASES if vr in verify._TEXTUAL_VRS else \
        [bytes(i % 251 + 1 for i in range(n)) for n in BINARY_LENGTHS] + [b"\x10\x00\x10\x00PN\x04\x00ZQX " + b"\0" * 8]
    tags = _tags_of(vr)
    assert tags, vr
    lazily = 0
    for tag in tags:
        for value in cases:
            for implicit in (False, True):
                for options, kwargs in ((Options(), {}), (OPTION_SETS[1], {"terms": _terms(),
                                                                           "original_uids": {"1.2.3"}})):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        eager = verify.check_dataset(_dataset(tag, None if implicit else vr, value, implicit=implicit),
                                                     options, convert_all=True, **kwargs)
                        ds = _dataset(tag, None if implicit else vr, value, implicit=implicit)
                        lazy = verify.check_dataset(ds, options, **kwargs)
                    assert lazy == eager, (vr, hex(tag), value, implicit, options.names)
                    lazily += isinstance(ds._dict[BaseTag(tag)], RawDataElement)
    if profile_for(Options()).for_standard(tags[0], vr) is None:
        assert lazily > 0, vr  # the lazy path was taken for some of them (a VR with a kept attribute)


def _terms() -> PhiTerms:
    ds = Dataset()
    ds.PatientName = "ZQX^JOHN"
    ds.PatientID = "ZQX123"
    return PhiTerms.from_dataset(ds)
