"""Fixtures of the pixel tests. OCR-side fixtures are prefixed `ocr_`."""

from __future__ import annotations

import hashlib

import pytest

from py_deid.hosts.services import GrayImage, ServiceUnavailable


@pytest.fixture(scope="session")
def ocr_engine():
    """The native OCR service with the pinned model (fetched once into the user cache if missing)."""
    from py_deid.hosts import tessdata
    from py_deid.hosts.native_ocr import NativeOcr

    pytest.importorskip("tesserocr", reason="native OCR needs tesserocr (pip install 'py_deid[native]')")
    folder = tessdata.ensure()
    ocr = NativeOcr(folder)
    assert ocr.available(), ocr.missing()
    return ocr


def _drive(steps, ocr):
    """Run a pixel-step generator to its end, answering its OcrRequests (ocr=None: as a host without OCR)."""
    try:
        request = next(steps)
        while True:
            if ocr is None:
                request = steps.throw(ServiceUnavailable("no OCR on this host"))
            else:
                request = steps.send(ocr.find_text(request))
    except StopIteration as stop:
        return stop.value


@pytest.fixture(scope="session")
def ocr_drive():
    return _drive


class ImageFrames:
    """Frames given as 8-bit gray Pillow images, with the FrameStore reading interface (render, region_digest).

    For tests of detection alone; the real FrameStore (frames.py) is tested with it in test_clean_*.
    """

    def __init__(self, images) -> None:
        self.images = [im.convert("L") for im in images]
        self.count = len(self.images)
        self.renders = 0

    def render(self, i, *, box=None, scale=1):
        from PIL import Image

        im = self.images[i]
        if box is not None:
            x, y, w, h = box
            im = im.crop((x, y, x + w, y + h))
        if scale != 1:
            im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
        self.renders += 1
        return GrayImage(im.width, im.height, im.tobytes())

    def region_digest(self, i, box):
        x, y, w, h = box
        return hashlib.sha256(self.images[i].crop((x, y, x + w, y + h)).tobytes()).digest()


@pytest.fixture(scope="session")
def ocr_image_frames():
    return ImageFrames


def _draw(size, items, background=0, font_size=14):
    """A gray image with text drawn at known places: items are (x, y, text, value)."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("L", size, background)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=font_size)
    boxes = []
    for x, y, text, value in items:
        draw.text((x, y), text, fill=value, font=font)
        boxes.append(draw.textbbox((x, y), text, font=font))
    return im, boxes


@pytest.fixture(scope="session")
def ocr_draw():
    return _draw


# ---- pixel-buffer fixtures (prefix px_) ------------------------------------------------------------------
class PxFactory:
    """Builds real DICOM instances (written by pydicom, read back from bytes) around numpy pixel arrays."""

    EXPLICIT_LE = "1.2.840.10008.1.2.1"

    @staticmethod
    def dataset(arr, photometric, *, bits_stored=None, signed=False, planar=0, frames=None, palette=None,
                ts="1.2.840.10008.1.2.1", pixel_bytes=None, vr=None):
        """arr: (frames, rows, cols[, 3]) or (rows, cols[, 3]) numpy array of stored values."""
        import numpy as np
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import UID, generate_uid

        arr = np.asarray(arr)
        samples = 3 if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") else 1
        multi = arr.ndim == (4 if samples == 3 else 3)
        nframes = arr.shape[0] if multi else 1
        rows, cols = arr.shape[(1 if multi else 0):(3 if multi else 2)]
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = UID(ts)
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.Modality = "OT"
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = samples
        ds.PhotometricInterpretation = photometric
        allocated = arr.dtype.itemsize * 8
        ds.BitsAllocated = allocated
        ds.BitsStored = bits_stored or allocated
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = int(signed)
        if samples == 3:
            ds.PlanarConfiguration = planar
        if multi or frames:
            ds.NumberOfFrames = nframes
        if palette is not None:
            first, red, green, blue = palette
            for name, lut in (("Red", red), ("Green", green), ("Blue", blue)):
                lut = np.asarray(lut, dtype="<u2")
                setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [len(lut) % 65536, first, 16])
                setattr(ds, f"{name}PaletteColorLookupTableData", lut.tobytes())
        big = ts == "1.2.840.10008.1.2.2"
        if pixel_bytes is None:
            out = arr
            if samples == 3 and planar == 1:
                out = np.moveaxis(arr, -1, -3)  # (..., 3, rows, cols)
            if photometric == "YBR_FULL_422":
                flat = arr.reshape(nframes, rows, cols // 2, 2, 3)
                out = np.concatenate([flat[..., 0:1, 0], flat[..., 1:2, 0], flat[..., 0:1, 1], flat[..., 0:1, 2]],
                                     axis=-1)
            out = out.astype(out.dtype.newbyteorder(">" if big else "<"))
            pixel_bytes = out.tobytes()
        ds.PixelData = pixel_bytes
        ds["PixelData"].VR = vr or ("OB" if allocated == 8 else "OW")
        return ds

    @staticmethod
    def reread(ds, **kw):
        """Write to bytes (with the dataset's transfer syntax) and read back: the real encode/decode path."""
        from io import BytesIO

        import pydicom

        buf = BytesIO()
        ts = str(ds.file_meta.TransferSyntaxUID)
        little = ts != "1.2.840.10008.1.2.2"
        implicit = ts == "1.2.840.10008.1.2"
        ds.preamble = b"\0" * 128
        pydicom.dcmwrite(buf, ds, implicit_vr=implicit, little_endian=little, **kw)
        return pydicom.dcmread(BytesIO(buf.getvalue()))

    @staticmethod
    def raw(ds):
        """Stored values as numpy (frames, rows, cols[, samples]), no colour conversion, sub-sampling removed."""
        from pydicom.pixels import pixel_array

        arr = pixel_array(ds, raw=True)
        n = int(ds.get("NumberOfFrames", 1) or 1)
        return arr.reshape((n,) + arr.shape[-3:] if ds.SamplesPerPixel == 3 else (n,) + arr.shape[-2:])

    @staticmethod
    def rgb(ds):
        """What a viewer gets: pydicom's pixel_array (YBR converted to RGB) as (frames, rows, cols[, 3])."""
        arr = ds.pixel_array
        n = int(ds.get("NumberOfFrames", 1) or 1)
        return arr.reshape((n,) + arr.shape[-3:] if ds.SamplesPerPixel == 3 else (n,) + arr.shape[-2:])


@pytest.fixture(scope="session")
def px_factory():
    return PxFactory


@pytest.fixture(scope="session")
def px_codecs():
    from py_deid.hosts.native_codecs import NativeCodecs

    codecs = NativeCodecs()
    assert codecs.available(), "the native codec service needs numpy and pydicom's pixel plugins"
    return codecs


@pytest.fixture(scope="session")
def px_artifacts():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "test-artifacts" / "pixels"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def px_process(px_codecs):
    """Open a dataset's FrameStore (with the native codecs unless codecs=None is given), mask `boxes` on the
    given frames, finish, write and read back."""
    def run(ds, boxes, frames=None, codecs=px_codecs, factory=PxFactory):
        from py_deid.pixels.frames import FrameStore
        from py_deid.pixels.info import PixelInfo

        ts = str(ds.file_meta.TransferSyntaxUID)
        info = PixelInfo.from_dataset(ds, ts)
        store = FrameStore.open(ds, info, codecs)
        done = {i: store.mask(i, boxes) for i in (range(store.count) if frames is None else frames)}
        out_ts = store.finish(ds)
        ds.file_meta.TransferSyntaxUID = out_ts
        return factory.reread(ds), out_ts, done, store
    return run


def _gray_frames(ds, window=None):
    """Every frame of ds as 8-bit gray numpy arrays, rendered by pydicom/numpy (not by py_deid): what a viewer
    shows (palette to RGB, YBR to RGB by pydicom, then luminance; grayscale stretched from window[0] to
    window[1], by default the frame's own range)."""
    import numpy as np
    from pydicom.pixels import apply_color_lut

    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames == 1:
        arr = arr[None]
    pi = str(ds.PhotometricInterpretation)
    out = []
    for f in arr:
        if pi == "PALETTE COLOR":
            f = apply_color_lut(f, ds)
        f = f.astype(np.float64)
        if f.ndim == 3:
            top = 65535.0 if f.max() > 255 else 255.0
            f = (f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114) * 255.0 / top
        else:
            # One window for an original and its cleaned copy (a mask's fill value must not restretch it).
            lo, hi = window if window is not None else (f.min(), f.max())
            f = (f - lo) * 255.0 / max(hi - lo, 1)
            if pi == "MONOCHROME1":
                f = 255.0 - f
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


def _independent_words(gray, ocr):
    """Everything an independent reading finds on one frame: the whole frame (Lanczos 2x, sparse text) and
    overlapping 64-row strips (Lanczos 3x, single block), so that text on a grey title bar is not lost to a
    global threshold. Words as (text, x, y, w, h) in frame pixels."""
    from PIL import Image, ImageOps

    from py_deid.hosts.services import OcrRequest

    def read(im, scale, psm, dx, dy):
        big = ImageOps.expand(im.resize((im.width * scale, im.height * scale), Image.LANCZOS), 20, fill=0)
        found = ocr.find_text(OcrRequest(GrayImage(big.width, big.height, big.tobytes()), psm))
        return [(w.text, dx + (w.left - 20) // scale, dy + (w.top - 20) // scale, w.width // scale,
                 w.height // scale, w.confidence) for w in found]

    im = Image.fromarray(gray)
    words = read(im, 2, 11, 0, 0)
    for y in range(0, im.height, 32):
        strip = im.crop((0, y, im.width, min(im.height, y + 64)))
        words += read(strip, 3, 6, 0, y)
    return words


def _readable(expected: str, words) -> bool:
    """Whether OCR words contain the expected string, allowing OCR's usual confusions."""
    from py_deid.phi import fold_ocr
    from py_deid.pixels.phi_text import within_edits

    e = fold_ocr(expected)
    for w in words:
        f = fold_ocr(w[0])
        if f == e or (len(e) >= 4 and e in f) or (len(e) >= 5 and within_edits(e, f, 1)):
            return True
    return False


@pytest.fixture(scope="session")
def ocr_gray_frames():
    return _gray_frames


@pytest.fixture(scope="session")
def ocr_independent_words(ocr_engine):
    cache: dict = {}

    def words(gray):
        key = (gray.shape, hashlib.sha256(gray.tobytes()).digest())
        if key not in cache:
            cache[key] = _independent_words(gray, ocr_engine)
        return cache[key]
    return words


@pytest.fixture(scope="session")
def ocr_readable():
    return _readable
