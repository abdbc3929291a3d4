"""Generated ultrasound instances whose pixels the tests control: a planted name OCR reads, a faint planted name
OCR misses (only a narrow window shows it), and a labelled measurement that --text strict masks although it is
not PHI. Real DICOM written with pydicom; the planted values are those of tests/browser/corpus.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
ROWS, COLUMNS = 480, 640
NAME = "ZQXPLANT, JOHANNA"
PATIENT_ID = "ZQX-PID-739164"
FAINT = "JOHANNA ZQXPLANT"
MEASUREMENT = "Lesion 12.3 mm"
# Where things are drawn (x, y, width, height): the tests assert on these regions.
NAME_AT = (12, 8)
FAINT_AT = (20, 446)
FAINT_BOX = (14, 440, 190, 26)  # the rectangle the reviewer draws over the faint name
MEASUREMENT_AT = (452, 446)
MEASUREMENT_REGION = (440, 436, 190, 36)  # the measurement text lies inside


@dataclass(frozen=True)
class Generated:
    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    frames: int


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def frame(index: int, seed: int = 7) -> np.ndarray:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed + index)
    im = Image.new("L", (COLUMNS, ROWS), 0)
    draw = ImageDraw.Draw(im)
    # An ultrasound-like sector of speckle (changes from frame to frame, like a cine).
    mask = Image.new("L", (COLUMNS, ROWS), 0)
    ImageDraw.Draw(mask).pieslice((120, -220, 520, 420), 55, 125, fill=255)
    speckle = Image.fromarray(rng.integers(25, 140, (ROWS, COLUMNS), dtype=np.uint8))
    im.paste(speckle, (0, 0), mask)
    draw.text(NAME_AT, f"{NAME}   {PATIENT_ID}", fill=255, font=_font(18))
    draw.text(MEASUREMENT_AT, MEASUREMENT, fill=235, font=_font(18))
    draw.text(FAINT_AT, FAINT, fill=5, font=_font(13))  # 5 grey levels above black: no OCR reads it
    return np.asarray(im, dtype=np.uint8)


def write(path: Path, *, frames: int = 1, study_uid: str | None = None, series_uid: str | None = None,
          instance: int = 1, seed: int = 7) -> Generated:
    from tests.browser import corpus

    meta = FileMetaDataset()
    sop_class = US_MULTIFRAME if frames > 1 else US_IMAGE
    sop_uid = generate_uid()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    for keyword, value in corpus.PLANTED.items():
        setattr(ds, keyword, value)
    ds.PatientBirthDate = "19610704"
    ds.StudyDate, ds.StudyTime, ds.ContentDate = "20250312", "101500", "20250312"
    ds.StudyDescription, ds.SeriesDescription = "US ABDOMEN", "LIVER LESION"
    ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = "US", "ZQX Sonics", "Vista 3"
    ds.SeriesNumber, ds.InstanceNumber, ds.StudyID = 3, instance, "1"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = ROWS, COLUMNS, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
        ds.FrameTime = 40
    ds.BurnedInAnnotation = "YES"
    ds.PixelData = b"".join(frame(i, seed).tobytes() for i in range(frames))
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return Generated(path, ds.StudyInstanceUID, ds.SeriesInstanceUID, sop_uid, frames)


def series(folder: Path) -> list[Generated]:
    """Two instances of one series (same device and geometry): a 2-frame cine and a single image."""
    study, series_uid = generate_uid(), generate_uid()
    return [write(folder / "us_cine.dcm", frames=2, study_uid=study, series_uid=series_uid, instance=1),
            write(folder / "us_still.dcm", frames=1, study_uid=study, series_uid=series_uid, instance=2, seed=11)]


def pixels(data: bytes) -> np.ndarray:
    """Frames of an 8-bit MONOCHROME2 instance as an array (frames, rows, columns)."""
    from io import BytesIO

    ds = pydicom.dcmread(BytesIO(data))
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return np.frombuffer(ds.PixelData, dtype=np.uint8)[:n * ds.Rows * ds.Columns].reshape(n, ds.Rows, ds.Columns)


def region(a: np.ndarray, box) -> np.ndarray:
    x, y, w, h = box
    return a[..., y:y + h, x:x + w]
