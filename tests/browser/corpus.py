"""The files the browser tests drop: real samples (some with planted PHI), laid out like a site would have them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom

# Values planted in the inputs: none may appear in any request the browser makes nor in what the receiver stores.
PLANTED = {
    "PatientName": "ZQXPLANT^JOHANNA",
    "PatientID": "ZQX-PID-739164",
    "OtherPatientIDs": "ZQX-OTHER-55821",
    "InstitutionName": "ZQX MEMORIAL HOSPITAL",
    "ReferringPhysicianName": "ZQXDOC^WALTER",
    "AccessionNumber": "ZQXACC9917",
    "PatientAddress": "42 ZQXSTREET SPRINGFIELD",
}
PLANTED_FILE_NAME = "ZQXPLANT_JOHANNA_chest.dcm"  # file names can be PHI too
PLANTED_STRINGS = list(PLANTED.values()) + ["ZQXPLANT", "ZQX-PID-739164", "JOHANNA"]


def plant(src: Path, dest: Path) -> Path:
    ds = pydicom.dcmread(src)
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest)
    return dest


def cd_layout(samples, root: Path) -> Path:
    """A burned CD: DICOMDIR at the top, images in folders, a viewer executable and an autorun file."""
    src = samples.path("CT_small.dcm").parent / "dicomdirtests"  # pydicom's dicomdirtests: a real DICOMDIR with its image tree
    cd = root / "CD"
    cd.mkdir(parents=True)
    shutil.copyfile(src / "DICOMDIR", cd / "DICOMDIR")
    shutil.copytree(src / "77654033", cd / "77654033")
    shutil.copytree(src / "98892003" / "MR1", cd / "98892003" / "MR1")
    # A Windows executable starts with "MZ"; a few bytes are enough for the reader to see it is not DICOM.
    (cd / "VIEWER.EXE").write_bytes(b"MZ\x90\x00\x03\x00\x00\x00" + bytes(248))
    (cd / "AUTORUN.INF").write_text("[autorun]\r\nopen=VIEWER.EXE\r\n")
    return cd


def loose_files(samples, root: Path) -> list[Path]:
    """CT (planted PHI, PHI in the file name), MR with private tags, JPEG Baseline, burned-in US, a text file."""
    out = root / "loose"
    out.mkdir(parents=True)
    files = [
        plant(samples.path("CT_small.dcm"), out / PLANTED_FILE_NAME),
        plant(samples.path("siemens_dwi_1000.dcm"), out / "mr_private.dcm"),
        shutil.copyfile(samples.path("ctbrain1.dcm"), out / "jpeg_baseline.dcm"),
        shutil.copyfile(samples.path("GREYSCALE_IMAGE.dcm"), out / "us_burned_in.dcm"),
    ]
    notes = out / "notes.txt"
    notes.write_text("scanned at the clinic; see the report\n")
    files.append(notes)
    return [Path(f) for f in files]


def ct_series(samples, root: Path, count: int) -> list[Path]:
    """`count` instances of one CT series made from a real CT sample: new SOP Instance UIDs, same study/series."""
    from pydicom.uid import generate_uid

    base = pydicom.dcmread(samples.path("CT_small.dcm"))
    study, series = generate_uid(), generate_uid()
    out = root / "series"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        base.StudyInstanceUID, base.SeriesInstanceUID = study, series
        base.SOPInstanceUID = generate_uid()
        base.file_meta.MediaStorageSOPInstanceUID = base.SOPInstanceUID
        base.InstanceNumber = i + 1
        path = out / f"IM{i:05d}.dcm"
        base.save_as(path)
        paths.append(path)
    return paths


def crash_file(root: Path, mode: str) -> Path:
    """A file that reaches the worker (DICM at 128) and, in a --test-hooks build only, makes it hang or exit."""
    path = root / f"crash_{mode.lower()}.dcm"
    path.write_bytes(f"PY-DEID-TEST-{mode}".encode().ljust(128, b"\0") + b"DICM" + bytes(256))
    return path
