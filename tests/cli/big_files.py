"""Large multi-frame instances for the memory tests, written in pieces (never whole in memory).

A real cine's header (RGB_CINE.dcm, 672 x 1016 RGB, explicit VR little endian) with more frames: its own frames
repeated. The file is written as a user's would be: preamble, file meta and dataset by pydicom, then the Pixel
Data element header and the frames one after another.
"""

from __future__ import annotations

import struct
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.filewriter import dcmwrite

BASE = "RGB_CINE.dcm"


def multiframe(samples, path: Path, size_mb: int) -> Path:
    """A native multi-frame instance of about size_mb MiB at path (frames of the base file, repeated)."""
    src = samples.path(BASE)
    ds = pydicom.dcmread(src)
    assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"
    frame_len = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * int(ds.BitsAllocated) // 8
    pixels = ds.PixelData
    frames = [pixels[i * frame_len:(i + 1) * frame_len] for i in range(int(ds.NumberOfFrames))]
    count = max(1, size_mb * 2**20 // frame_len)
    vr = ds["PixelData"].VR
    del ds.PixelData, pixels
    ds.NumberOfFrames = count
    ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[str(src), str(count)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    head = BytesIO()
    dcmwrite(head, ds, enforce_file_format=True)
    length = frame_len * count
    with open(path, "wb") as fh:
        fh.write(head.getvalue())
        fh.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, vr.encode(), 0, length + length % 2))
        for i in range(count):
            fh.write(frames[i % len(frames)])
        if length % 2:
            fh.write(b"\0")
    return path
