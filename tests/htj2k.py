"""HTJ2K test instances made at test time by a real encoder (OpenJPH's ojph_compress, Debian's openjph-tools) from
the pixels of real samples that carry burned-in text, wrapped as DICOM with the HTJ2K transfer syntaxes.

No HTJ2K sample ships in the packages the tests fetch, and neither host encodes HTJ2K, so the instances are made
here: each frame is written as raw planar samples, compressed by `ojph_compress`, and encapsulated one fragment
per frame with a Basic Offset Table. The RPCL syntax (4.202) asks for RPCL progression and a TLM marker segment;
ojph_compress 0.9 writes RPCL but no TLM, so one (a single tile-part: Stlm 0x40, a 32-bit Ptlm) is added to the
main header before the first SOT.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
ENCODER = "ojph_compress"


def encoder_available() -> bool:
    return shutil.which(ENCODER) is not None


def require_encoder() -> None:
    """Skip without the encoder on a developer's machine; fail in CI, whose .ci/test installs it."""
    import os

    import pytest

    if not encoder_available():
        if os.environ.get("CI"):
            pytest.fail(f"{ENCODER} is missing: .ci/test installs Debian's openjph-tools")
        pytest.skip(f"the HTJ2K test encoder {ENCODER} is missing (apt-get install openjph-tools)")


def encode_frame(arr, *, reversible: bool, colour_transform: bool = True, rpcl: bool = False,
                 qstep: float | None = None) -> bytes:
    """One frame (rows, cols) or (rows, cols, 3) of stored values -> an HTJ2K codestream (J2C)."""
    import numpy as np

    arr = np.asarray(arr)
    rows, cols = arr.shape[:2]
    comps = 1 if arr.ndim == 2 else arr.shape[2]
    signed = arr.dtype.kind == "i"
    bits = arr.dtype.itemsize * 8
    with tempfile.TemporaryDirectory(prefix="htj2k-") as tmp:
        out = Path(tmp) / "frame.j2c"
        if comps == 3:
            # ojph_compress applies its colour transform to PPM input only (8-bit RGB, interleaved)
            if arr.dtype != np.uint8:
                raise ValueError("colour test frames are 8-bit RGB")
            src = Path(tmp) / "frame.ppm"
            src.write_bytes(f"P6\n{cols} {rows}\n255\n".encode() + np.ascontiguousarray(arr).tobytes())
            cmd = [ENCODER, "-i", str(src), "-colour_trans", "true" if colour_transform else "false"]
        else:  # raw ("yuv") input: little-endian samples of the given depth and signedness
            src = Path(tmp) / "frame.yuv"
            np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tofile(src)
            cmd = [ENCODER, "-i", str(src), "-dims", f"{{{cols},{rows}}}", "-num_comps", "1",
                   "-signed", "true" if signed else "false", "-bit_depth", str(bits), "-downsamp", "{1,1}"]
        cmd += ["-o", str(out), "-reversible", "true" if reversible else "false",
                "-prog_order", "RPCL" if rpcl else "LRCP"]
        if qstep is not None:
            cmd += ["-qstep", str(qstep)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0 or not out.is_file():
            raise RuntimeError(f"{ENCODER} failed ({p.returncode}): {p.stderr.strip() or p.stdout.strip()}")
        data = out.read_bytes()
    if not data.startswith(b"\xff\x4f\xff\x51"):
        raise RuntimeError(f"{ENCODER} wrote no J2K codestream (no SOC/SIZ)")
    return add_tlm(data) if rpcl else data


def add_tlm(codestream: bytes) -> bytes:
    """Insert a TLM marker segment (one tile-part, its length from the SOT's Psot) before the first SOT."""
    sot = _first_sot(codestream)
    psot = struct.unpack(">I", codestream[sot + 6:sot + 10])[0]
    if psot == 0:  # the last tile-part runs to the EOC marker
        psot = len(codestream) - 2 - sot
    tlm = b"\xff\x55" + struct.pack(">HBBI", 8, 0, 0x40, psot)
    return codestream[:sot] + tlm + codestream[sot:]


def _first_sot(codestream: bytes) -> int:
    """Offset of the first SOT marker: the main header's marker segments walked one by one (after SOC)."""
    pos = 2
    while pos + 4 <= len(codestream):
        marker = codestream[pos:pos + 2]
        if marker == b"\xff\x90":
            return pos
        if marker[0] != 0xFF:
            break
        pos += 2 + struct.unpack(">H", codestream[pos + 2:pos + 4])[0]
    raise ValueError("no SOT marker in the codestream's main header")


def has_marker(codestream: bytes, marker: int) -> bool:
    """A marker segment in the main header (before the first SOT)."""
    pos, end = 2, _first_sot(codestream)
    while pos < end:
        if struct.unpack(">H", codestream[pos:pos + 2])[0] == marker:
            return True
        pos += 2 + struct.unpack(">H", codestream[pos + 2:pos + 4])[0]
    return False


@dataclass(frozen=True)
class Recipe:
    """What to make: a sample (frames to take), the transfer syntax, how to encode."""

    name: str            # the file written
    sample: str          # tests/data/samples.tsv name
    ts: str
    frames: int | None   # None: a single-frame instance (no Number of Frames kept from a multi-frame source)
    qstep: float | None = None

    @property
    def lossless(self) -> bool:
        return self.ts != HTJ2K


# A 16-bit signed CT and 8-bit MONOCHROME2 / RGB ultrasound, each with real text burned into the pixels.
RECIPES = [
    Recipe("ct16s_lossless.dcm", "CT-MONO2-16-ankle.dcm", HTJ2K_LOSSLESS, None),
    Recipe("us8_cine_rpcl.dcm", "GREYSCALE_CINE.dcm", HTJ2K_LOSSLESS_RPCL, 3),
    Recipe("rgb_lossy.dcm", "RGB_IMAGE.dcm", HTJ2K, None, qstep=0.004),
    Recipe("rgb_cine_lossless.dcm", "RGB_CINE.dcm", HTJ2K_LOSSLESS, 2),
]


# The PHI printed on each image: (x, y, w, h) glyph extents on the original and the threshold that tells glyph
# from background (luminance). Every frame of the multi-frame ones carries the same banner.
PHI_GLYPHS = {
    "ct16s_lossless.dcm": ({"date": (2, 11, 200, 11), "institution": (356, 11, 150, 11)}, 2000),
    "us8_cine_rpcl.dcm": ({"name": (8, 6, 112, 10), "id": (144, 6, 66, 10), "birth date": (306, 6, 228, 10)}, 128),
    "rgb_lossy.dcm": ({"name": (4, 8, 222, 18), "id": (5, 36, 130, 15), "accession": (776, 8, 105, 15),
                       "institution": (505, 36, 263, 15)}, 128),
    "rgb_cine_lossless.dcm": ({"name": (112, 5, 128, 18), "id": (113, 29, 108, 15), "birth date": (407, 4, 157, 19)},
                              150),
}


def glyph_pixels(frame, box, threshold) -> int:
    x, y, w, h = box
    region = frame[y:y + h, x:x + w].astype(float)
    lum = region.mean(axis=2) if region.ndim == 3 else region
    return int((lum > threshold).sum())


def frames_of(ds):
    """pydicom's reading of an instance as (frames, rows, cols[, 3])."""
    arr = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return arr.reshape((n,) + arr.shape[-3:] if ds.SamplesPerPixel == 3 else (n,) + arr.shape[-2:])


def source_pixels(ds, frames: int | None):
    """The sample's stored values as (frames, rows, cols[, 3])."""
    import numpy as np

    arr = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1) or 1)
    arr = arr.reshape((n,) + arr.shape[-3:] if ds.SamplesPerPixel == 3 else (n,) + arr.shape[-2:])
    arr = arr[:frames or 1]
    dtype = np.dtype(f"{'i' if ds.PixelRepresentation else 'u'}{ds.BitsAllocated // 8}")
    return np.ascontiguousarray(arr.astype(dtype, copy=False))


def make(recipe: Recipe, sample_path: Path, out: Path) -> tuple[Path, object]:
    """Write the instance; returns its path and the original stored values (frames, rows, cols[, 3])."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID, generate_uid

    ds = pydicom.dcmread(sample_path)
    arr = source_pixels(ds, recipe.frames)
    colour = arr.ndim == 4
    frames = [encode_frame(f, reversible=recipe.lossless, rpcl=recipe.ts == HTJ2K_LOSSLESS_RPCL, qstep=recipe.qstep)
              for f in arr]
    ds.file_meta.TransferSyntaxUID = UID(recipe.ts)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    if colour:
        ds.PhotometricInterpretation = "YBR_RCT" if recipe.lossless else "YBR_ICT"
        ds.PlanarConfiguration = 0
    if recipe.frames is None:
        for keyword in ("NumberOfFrames", "FrameIncrementPointer", "FrameTime", "CineRate"):
            if keyword in ds:
                delattr(ds, keyword)
    else:
        ds.NumberOfFrames = len(frames)
    for keyword in ("LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod"):
        if keyword in ds:
            delattr(ds, keyword)
    if not recipe.lossless:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_15444_15"
        ds.LossyImageCompressionRatio = f"{arr.nbytes / sum(len(f) for f in frames):.2f}"[:16]
    ds.PixelData = encapsulate([f + b"\0" if len(f) % 2 else f for f in frames], has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    return out, arr


def make_all(samples, folder: Path) -> dict[str, tuple[Recipe, Path, object]]:
    """Every recipe: name -> (recipe, path, original stored values)."""
    made = {}
    for r in RECIPES:
        path, arr = make(r, samples.path(r.sample), folder / r.name)
        made[r.name] = (r, path, arr)
    return made
