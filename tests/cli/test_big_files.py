"""Large files are written in parts (py_deid.batch, InstanceResult.parts) from a memory map of the input: the
outputs and the report's hashes must be the bytes of the in-memory path, the one the browser and the receiver
use (the input read whole by pydicom, the output joined into one bytes object).

The oracle is that path with large values read whole (instance.DEFER_LARGE_VALUES off: pydicom's default
reading), computed in the test process; the batch runs with every input memory-mapped (Job.map_from 0)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pydicom
import pytest

from py_deid import batch, instance
from py_deid import report as _report
from py_deid.instance import DONE, Deidentifier, run_sync
from py_deid.options import Settings

KEY = b"a-site-secret-for-the-big-file-tests-0123"


def _reference(paths: list[Path], settings: Settings, monkeypatch) -> dict[str, tuple[str, str | None]]:
    """input name -> (status, sha256 of the output) on the in-memory path, large values read whole."""
    with monkeypatch.context() as m:
        m.setattr(instance, "DEFER_LARGE_VALUES", False)
        deid = Deidentifier(settings, KEY)
        out = {}
        for path in paths:
            result = run_sync(deid.process(path.read_bytes()), None)
            assert result.parts is None
            out[str(path)] = (result.status, hashlib.sha256(result.output).hexdigest() if result.output else None)
    return out


def _batch(paths: list[Path], out: Path, settings: Settings, jobs: int) -> list[dict]:
    job = batch.Job(out=out, settings=settings, key=KEY, jobs=jobs, map_from=0)
    buf = io.StringIO()
    batch.run(batch.iter_inputs([str(p) for p in paths]), job, _report.ReportWriter(buf, {"test": True}))
    return json.loads(buf.getvalue())["files"]


def _check(entries: list[dict], reference: dict, out: Path) -> int:
    done = 0
    for e in entries:
        status, digest = reference[e["input"]]
        if (e.get("error") or {}).get("code") == "conflict":  # two inputs, one UID: the second is refused
            assert status == DONE, e["input"]
            continue
        assert e["status"] == status, (e["input"], e.get("error"))
        if e["status"] == DONE and e.get("output"):
            assert e["sha256"] == digest, e["input"]
            assert hashlib.sha256((out / e["output"]).read_bytes()).hexdigest() == digest, e["input"]
            done += 1
    return done


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_every_sample_file_is_written_as_the_in_memory_path_writes_it(samples, tmp_path, monkeypatch, jobs):
    paths = sorted(samples.paths())
    settings = Settings(pixels="off")
    reference = _reference(paths, settings, monkeypatch)
    entries = _batch(paths, tmp_path / "out", settings, jobs)
    assert len(entries) == len(paths)
    assert _check(entries, reference, tmp_path / "out") > 200
    if jobs == 1:  # and the browser's path: bytes in, Pixel Data left unread, the output joined
        deid = Deidentifier(settings, KEY)
        for path in paths:
            result = run_sync(deid.process(path.read_bytes()), None)
            digest = hashlib.sha256(result.output).hexdigest() if result.output else None
            assert (result.status, digest) == reference[str(path)], path


@pytest.mark.slow
def test_pixel_data_shared_from_the_input_with_planted_phi(samples, tmp_path, monkeypatch):
    """Every Pixel Data is shared (the size from which it is, lowered to 64 bytes), in a corpus whose patient's
    name is planted in an attribute the options keep: every instance goes through the last sweep (residual),
    which looks at the written header from the parts before the view, and is encoded a second time."""
    from tests.benchmarks.corpus import build
    from tests.header.test_real_files import CONFIGS

    (tmp_path / "in").mkdir()
    paths, _ = build(samples, tmp_path / "in", 40)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.InstitutionName = f"{ds.PatientName.family_name} CLINIC"  # kept under retain_institution_identity
        ds.save_as(path)
    settings = Settings(options=CONFIGS["retain-all"], pixels="off")
    with monkeypatch.context() as m:
        m.setattr(instance, "SHARED_PIXELS_MIN", 1 << 62)
        reference = _reference(paths, settings, monkeypatch)
    monkeypatch.setattr(instance, "SHARED_PIXELS_MIN", 64)
    views = []
    real_residual = instance._residual_present

    def spy(parts, found, big_endian):
        views.append(any(type(p) is memoryview for p in parts))
        return real_residual(parts, found, big_endian)

    monkeypatch.setattr(instance, "_residual_present", spy)
    entries = _batch(paths, tmp_path / "out", settings, 1)
    swept = [e for e in entries if "a patient term found in a kept attribute was removed" in e["warnings"]]
    assert _check(entries, reference, tmp_path / "out") == len(paths)
    assert sum(views) >= len(paths) // 2 and len(swept) == len(paths)


@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "CT_small.dcm", "MR_small_bigendian.dcm"])
@pytest.mark.parametrize("tail", [b"", b"\xfc\xff\xfc\xff\x0a\x00\x00\x00JOHN^DOE  ", b"\xe0\x7f\x10\x00DOE"])
def test_the_residual_check_from_the_parts_is_the_check_of_the_whole_output(samples, monkeypatch, name, tail):
    """The written header's end (residual.header_end) found from the parts before the Pixel Data view, or from
    the whole output where it lies past them (an element after Pixel Data, in implicit VR): the same answer."""
    from py_deid import residual

    monkeypatch.setattr(instance, "SHARED_PIXELS_MIN", 64)
    data = samples.bytes(name)
    result = run_sync(Deidentifier(Settings(pixels="off"), KEY).process(data, parts=True), None)
    parts = result.parts + ([tail] if tail else [])
    assert any(type(p) is memoryview for p in parts)
    output = b"".join(parts)
    big = result.transfer_syntax == "1.2.840.10008.1.2.2"
    for found in ([b"doe"], [b"zzzz-not-there"], [bytes(output[200:206]).lower()]):
        assert instance._residual_present(parts, found, big) == residual.present(
            output, found, residual.header_end(output, big)), found


def test_parts_are_the_output(samples):
    """process(..., parts=True) hands back the same file in pieces, Pixel Data as a view of the input."""
    data = samples.bytes("ultrasound-multiframe.dcm")
    deid = Deidentifier(Settings(pixels="off"), KEY)
    whole = run_sync(deid.process(data), None)
    parts = run_sync(deid.process(data, parts=True), None)
    assert whole.output is not None and whole.parts is None and parts.output is None
    assert b"".join(parts.parts) == whole.output
    views = [p for p in parts.parts if type(p) is memoryview]
    assert len(views) == 1 and views[0].obj is data and len(views[0]) > 40 * 2**20


@pytest.mark.filterwarnings("ignore:The value length:UserWarning")  # the over-long LO, on purpose
@pytest.mark.parametrize("config", ["basic", "retain-all"])
def test_large_values_other_than_pixel_data_are_judged_as_read(samples, tmp_path, monkeypatch, config):
    """Only Pixel Data is left unread: a large value elsewhere (a 1.2 MB LO in implicit VR, where its length
    is not capped; a 2 MB private value) meets the same checks and repairs as when pydicom reads it whole."""
    from pydicom.dataelem import DataElement
    from tests.header.test_real_files import CONFIGS

    ds = pydicom.dcmread(samples.path("MR_small_implicit.dcm"))
    ds.DeviceSerialNumber = "A" * 1_200_000  # kept with retain_device_identity; far longer than LO allows
    ds.add(DataElement(0x00990010, "LO", "ACME PRIVATE"))
    ds.add(DataElement(0x00991001, "OB", bytes(range(256)) * 8192))
    path = tmp_path / "large-values.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True)
    settings = Settings(options=CONFIGS[config], pixels="off")
    reference = _reference([path], settings, monkeypatch)
    entries = _batch([path], tmp_path / "out", settings, 1)
    assert _check(entries, reference, tmp_path / "out") == 1
