"""Our sequential DCT JPEG decoder (py_deid.pixels.jpeg_decode) against independent decoders.

Oracles: pylibjpeg-libjpeg (Thomas Richter's libjpeg; hands back the coded components without colour conversion,
so it checks gray and RGB-coded frames) and Pillow (libjpeg-turbo; YCbCr -> RGB with its default "fancy" chroma
up-sampling, so it checks colour frames). For pydicom's JPEG-lossy.dcm, which neither reads (pylibjpeg-libjpeg
rejects the zeros in its scan header's Ss/Se bytes, Pillow is 8-bit only): the pixel values pydicom's own test
suite publishes for this file (tests/test_gdcm_pixel_data.py, test_JPEGlossyPixelArray: a[420, 140] == 244 and
a[230, 120] == 95, "manually identified in Osirix viewer"), and, where python-gdcm is installed, GDCM's whole
frame. python-gdcm is not in the test extra: pydicom tries GDCM first for every compressed syntax once it is
importable, which would silently change the decoder every other test and the native codec service use.

The bound, MAX_DIFF = 3 levels: the T.81 IDCT is exact in real arithmetic, which we compute in floating point;
libjpeg's integer IDCT rounds at 13-bit fixed point (T.81 / IEEE 1180 accuracy allows it a level), libjpeg-turbo's
colour conversion rounds each term of R, G and B from tables (one more level), and fancy up-sampling rounds the
chroma before that (one more). Measured: at most 1 on gray and RGB-coded frames, at most 3 on 4:2:x colour.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames

from py_deid.pixels import jpeg_decode
from py_deid.pixels.info import JPEG_BASELINE, PixelCodecError, PixelInfo
from py_deid.pixels.jpeg_markers import JpegUnsupported, parse

Image = pytest.importorskip("PIL.Image")
libjpeg = pytest.importorskip("libjpeg")

MAX_DIFF = 3
# Real files of tests/data/samples.tsv: gray 8-bit (multi-frame XA), gray 12-bit Extended, RGB-coded colour
# (no colour transform), YCbCr 4:4:4, 4:2:2 (h2v1) and 4:2:0 (h2v2) chroma, an odd 3x3 image.
REAL = ["jpeg_baseline_8bit.dcm", "JPGExtended.dcm", "SC_jpeg_no_color_transform.dcm", "SC_rgb_jpeg_dcmtk.dcm",
        "SC_rgb_dcmtk_+eb+cy+s2.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", "examples_ybr_color.dcm",
        "SC_rgb_small_odd_jpeg.dcm", "ctbrain1.dcm"]


def _first_frame(ds) -> bytes:
    return next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))


def _ours(ds, frame: bytes, array_module) -> np.ndarray:
    info = PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID))
    raw = jpeg_decode.decode_frame(frame, info.codec_info(), numpy=array_module)
    dtype = "<u1" if info.bits_allocated == 8 else "<u2"
    return np.frombuffer(raw, dtype).reshape(info.rows, info.columns, info.samples).astype(int)


def _oracle(frame: bytes, photometric: str) -> np.ndarray:
    img = parse(frame)
    if len(img.components) == 3 and not img.rgb_coded(photometric):
        return np.asarray(Image.open(io.BytesIO(frame)).convert("RGB")).astype(int)
    out = libjpeg.decode(frame).astype(int)
    return out if out.ndim == 3 else out[..., None]


@pytest.mark.parametrize("array_module", [np, None], ids=["numpy", "pure-python"])
@pytest.mark.parametrize("name", REAL)
def test_real_files_match_independent_decoders(samples, name, array_module):
    ds = pydicom.dcmread(samples.path(name))
    frame = _first_frame(ds)
    got = _ours(ds, frame, array_module)
    want = _oracle(frame, ds.PhotometricInterpretation)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= MAX_DIFF


def _pillow_jpeg(arr: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB" if arr.ndim == 3 else "L").save(buf, "JPEG", **save)
    return buf.getvalue()


def _picture(rows: int, cols: int, colour: bool, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(rows // 6 + 1, cols // 6 + 1) + ((3,) if colour else ()), dtype=np.uint8)
    im = Image.fromarray(base, "RGB" if colour else "L").resize((cols, rows), Image.BILINEAR)
    arr = np.asarray(im).copy()
    arr[4:9, 3:40] = 255
    return arr


def _decode_bytes(frame: bytes, rows: int, cols: int, samples: int, photometric: str, array_module=None):
    info = {"rows": rows, "columns": cols, "samples_per_pixel": samples, "bits_allocated": 8,
            "photometric_interpretation": photometric}
    raw = jpeg_decode.decode_frame(frame, info, numpy=array_module)
    return np.frombuffer(raw, np.uint8).reshape(rows, cols, samples).astype(int)


@pytest.mark.parametrize("array_module", [np, None], ids=["numpy", "pure-python"])
@pytest.mark.parametrize("colour,subsampling", [(False, 0), (True, 0), (True, 1), (True, 2)])
def test_restart_intervals(colour, subsampling, array_module):
    arr = _picture(53, 77, colour)
    frame = _pillow_jpeg(arr, quality=90, subsampling=subsampling, restart_marker_blocks=3)
    assert b"\xff\xdd" in frame and b"\xff\xd0" in frame, "the encoder must write restart markers for this test"
    got = _decode_bytes(frame, 53, 77, 3 if colour else 1, "YBR_FULL", array_module)
    assert np.abs(got - _oracle(frame, "YBR_FULL")).max() <= MAX_DIFF


@pytest.mark.parametrize("subsampling", [0, 2])
def test_non_interleaved_scans(subsampling):
    """One scan per component, with restarts (re-written by test_jpeg_dct's helper from the same coefficients);
    the oracle is Pillow on the interleaved original."""
    from test_jpeg_dct import _non_interleaved

    arr = _picture(45, 75, True, seed=7)
    frame = _pillow_jpeg(arr, quality=85, subsampling=subsampling)
    multi = _non_interleaved(frame, restart=5)
    assert multi.count(b"\xff\xda") == 3
    for array_module in (np, None):
        got = _decode_bytes(multi, 45, 75, 3, "YBR_FULL", array_module)
        assert np.abs(got - _oracle(frame, "YBR_FULL")).max() <= MAX_DIFF


def test_jpeg_lossy_12_bit_published_values(samples):
    """pydicom's JPEG-lossy.dcm (NM, 12-bit JPEG Extended, zeros in Ss/Se): the values pydicom publishes for
    it, within one level (we read 94 where OsiriX showed 95; GDCM reads 95 there, see the next test)."""
    ds = pydicom.dcmread(samples.path("JPEG-lossy.dcm"))
    frame = _first_frame(ds)
    with pytest.raises(RuntimeError):
        libjpeg.decode(frame)  # why we need our own decoder natively: pylibjpeg-libjpeg rejects this file
    for array_module in (np, None):
        a = _ours(ds, frame, array_module)[..., 0]
        assert a.shape == (1024, 256)
        assert abs(a[420, 140] - 244) <= 1 and abs(a[230, 120] - 95) <= 1
        assert a.max() < 4096


def test_jpeg_lossy_12_bit_matches_gdcm(samples):
    gdcm = pytest.importorskip("gdcm", reason="python-gdcm not installed (an optional oracle, see the docstring)")
    path = samples.path("JPEG-lossy.dcm")
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    assert reader.Read()
    image = reader.GetImage()
    want = np.frombuffer(image.GetBuffer().encode("utf-8", "surrogateescape"), "<u2").reshape(1024, 256)
    ds = pydicom.dcmread(path)
    got = _ours(ds, _first_frame(ds), np)[..., 0]
    assert np.abs(got - want.astype(int)).max() <= MAX_DIFF


def test_unsupported_processes_raise(samples):
    arr = _picture(32, 40, True)
    with pytest.raises(JpegUnsupported):
        jpeg_decode.decode(_pillow_jpeg(arr, progressive=True))
    ds = pydicom.dcmread(samples.path("JPEG-LL.dcm"))  # lossless (SOF3)
    with pytest.raises(JpegUnsupported):
        jpeg_decode.decode(_first_frame(ds))
    with pytest.raises(JpegUnsupported, match="differ from the image description"):
        _decode_bytes(_pillow_jpeg(arr), 33, 40, 3, "YBR_FULL")


def _fuzz_cases(frame: bytes, seed: int, count: int):
    rng = random.Random(seed)
    for i in range(count):
        data = bytearray(frame)
        if i % 2:
            data = data[:rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                p = rng.randrange(200 if i % 4 == 0 else len(data))  # every other flip in the headers
                data[p] ^= 1 << rng.randrange(8)
        yield bytes(data)


@pytest.mark.parametrize("name", ["JPEG-lossy.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm"])
def test_fuzz_truncated_and_bit_flipped_frames(samples, name):
    """A clear error (JpegUnsupported) or a decode of the right size, for every damaged frame; never another
    exception, and no hang: the work is bounded by the MCU count the (checked) frame header gives."""
    ds = pydicom.dcmread(samples.path(name))
    info = PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)).codec_info()
    length = info["rows"] * info["columns"] * info["samples_per_pixel"] * info["bits_allocated"] // 8
    outcomes = {"decoded": 0, "refused": 0}
    for data in _fuzz_cases(_first_frame(ds), seed=11, count=120):
        try:
            out = jpeg_decode.decode_frame(data, info, numpy=np)
        except JpegUnsupported:
            outcomes["refused"] += 1
        else:
            assert len(out) == length
            outcomes["decoded"] += 1
    assert outcomes["refused"] > 0


def test_decoder_behind_the_codec_service(samples):
    """JPEG frames decode with no codec service at all, and when the service rejects the frame."""
    from py_deid.pixels.frames import FrameStore

    class Rejecting:
        def can_decode(self, ts):
            return True

        def decode(self, frame, ts, info):
            raise RuntimeError("rejected")

        def can_encode(self, ts):
            return False

    ds = pydicom.dcmread(samples.path("JPEG-lossy.dcm"))
    info = PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID))
    for codecs in (None, Rejecting()):
        store = FrameStore.open(ds, info, codecs)
        gray = store.render(0)
        assert (gray.width, gray.height) == (256, 1024) and max(gray.pixels) > 0


def test_broken_frame_error_names_the_frame(samples):
    ds = pydicom.dcmread(samples.path("SC_rgb_dcmtk_+eb+cy+np.dcm"))
    frame = _first_frame(ds)
    ds.PixelData = encapsulate([frame[:len(frame) // 2] + b"\xff\xd9"])
    from py_deid.pixels.frames import FrameStore

    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, JPEG_BASELINE), None)
    with pytest.raises(PixelCodecError) as e:
        store.render(0)
    assert e.value.code == "decode" and "frame 1" in str(e.value)


def test_native_codec_service_falls_back_to_our_decoder(samples):
    """pydicom's plugins refuse JPEG-lossy.dcm; the native codec service hands the frame to our decoder (with
    numpy), so it says it can decode every JPEG Baseline/Extended frame."""
    from py_deid.hosts.native_codecs import NativeCodecs

    ds = pydicom.dcmread(samples.path("JPEG-lossy.dcm"))
    ts = str(ds.file_meta.TransferSyntaxUID)
    info = PixelInfo.from_dataset(ds, ts).codec_info()
    codecs = NativeCodecs()
    assert codecs.can_decode(ts)
    frame = _first_frame(ds)
    assert codecs.decode(frame, ts, info) == jpeg_decode.decode_frame(frame, info, numpy=np)
