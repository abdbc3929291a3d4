"""Syntaxes read through the host codec service (natively: pydicom + pylibjpeg/openjpeg, pyjpegls).

Lossless ones are re-encoded losslessly where the host can (JPEG-LS, JPEG 2000), else written as Explicit
VR Little Endian (JPEG Lossless); lossy ones are never compressed again: Explicit VR Little Endian with the
decoded pixels, Lossy Image Compression kept truthful, Photometric Interpretation what the pixels are."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGLSLossless, JPEGLSNearLossless

from py_deid.hosts.native_codecs import NativeCodecs
from py_deid.pixels import encapsulation
from py_deid.pixels.frames import FrameStore
from py_deid.pixels.info import EXPLICIT_LE, PixelCodecError, PixelInfo


def _mask(boxes, shape):
    m = np.zeros(shape, bool)
    for x, y, w, h in boxes:
        m[y:y + h, x:x + w] = True
    return m


def _frames(ds):
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))


def _check_exact(px_factory, before, after_ds, done, background):
    after = px_factory.rgb(after_ds)
    for i, boxes in done.items():
        mask = _mask(boxes, before.shape[1:3])
        assert np.array_equal(after[i][~mask], before[i][~mask]), f"frame {i}: pixels outside the masks changed"
        assert (after[i][mask] == np.array(background)).all(), f"frame {i}: masked pixels are not the background"


LOSSLESS_REAL = [
    ("MR_small_jp2klossless.dcm", JPEG2000Lossless),
    ("emri_small_jpeg_2k_lossless.dcm", JPEG2000Lossless),
    ("GDCMJ2K_TextGBR.dcm", JPEG2000Lossless),
    ("RG1_J2KR.dcm", JPEG2000Lossless),
    ("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless),
    ("emri_small_jpeg_ls_lossless.dcm", JPEGLSLossless),
    ("jpeg_lossless_sel1.dcm", EXPLICIT_LE),
    ("SC_rgb_jpeg_gdcm.dcm", EXPLICIT_LE),
    ("JPGLosslessP14SV1_1s_1f_8b.dcm", EXPLICIT_LE),
]


@pytest.mark.parametrize("name,expected_ts", LOSSLESS_REAL)
def test_lossless_real_files(samples, px_factory, px_process, name, expected_ts):
    ds = pydicom.dcmread(samples.path(name))
    n = int(ds.get("NumberOfFrames", 1) or 1)
    original, stated = _frames(ds), ds.PhotometricInterpretation
    # what the pixel step keeps of a frame it does not mask: the codestream without comments, APPn data or
    # bytes after its end (encapsulation.sanitized), otherwise byte for byte
    original = encapsulation.sanitized(original, str(ds.file_meta.TransferSyntaxUID)) or original
    before = px_factory.rgb(ds)
    masked = [0] if n == 1 else [0, n // 2]
    box = (ds.Columns // 4, ds.Rows // 4, ds.Columns // 3, ds.Rows // 5)
    after_ds, out_ts, done, store = px_process(ds, [box], frames=masked)
    assert out_ts == expected_ts
    assert str(after_ds.file_meta.TransferSyntaxUID) == expected_ts
    bg = store.info.decoded().samples == 3 and (0, 0, 0) or store.info.background
    full = {i: done.get(i, []) for i in range(n)}
    _check_exact(px_factory, before, after_ds, full, bg)
    assert after_ds.PhotometricInterpretation == (stated if expected_ts != EXPLICIT_LE or stated != "YBR_RCT"
                                                  else "RGB")
    if expected_ts != EXPLICIT_LE and n > 1:
        kept = _frames(after_ds)
        assert all(kept[i] == original[i] for i in range(n) if i not in masked), "unmasked frames were re-encoded"
    assert "LossyImageCompressionMethod" not in after_ds or ds.get("LossyImageCompression") == "01"


LOSSY_REAL = [
    ("US1_J2KI.dcm", "ISO_15444_1"),
    ("RG1_J2KI.dcm", "ISO_15444_1"),
    ("jpeg_2000.dcm", "ISO_15444_1"),
    ("JPEGLSNearLossless_08.dcm", "ISO_14495_1"),
    ("SC_rgb_jls_lossy_line.dcm", "ISO_14495_1"),
]


@pytest.mark.parametrize("name,method", LOSSY_REAL)
def test_lossy_real_files_written_native(samples, px_factory, px_process, name, method):
    original = pydicom.dcmread(samples.path(name))
    had_history = "LossyImageCompressionMethod" in original or "LossyImageCompressionRatio" in original
    before = px_factory.rgb(original)
    ds = pydicom.dcmread(samples.path(name))
    box = (3, 2, ds.Columns // 3, ds.Rows // 4)
    after_ds, out_ts, done, store = px_process(ds, [box])
    assert out_ts == EXPLICIT_LE
    assert after_ds.LossyImageCompression == "01"
    if not had_history:
        assert after_ds.LossyImageCompressionMethod == method
        assert float(after_ds.LossyImageCompressionRatio) > 1
    else:
        assert after_ds.get("LossyImageCompressionMethod") == original.get("LossyImageCompressionMethod")
    if original.SamplesPerPixel == 3:
        assert after_ds.PhotometricInterpretation == "RGB" and after_ds.PlanarConfiguration == 0
    else:
        assert after_ds.PhotometricInterpretation == original.PhotometricInterpretation
    assert "ExtendedOffsetTable" not in after_ds and not after_ds["PixelData"].is_undefined_length
    bg = (0, 0, 0) if original.SamplesPerPixel == 3 else store.info.background
    _check_exact(px_factory, before, after_ds, done, bg)


@pytest.mark.parametrize("ts,photometric,dtype,extra", [
    (JPEGLSLossless, "MONOCHROME2", "u2", {}),
    (JPEGLSLossless, "RGB", "u1", {}),
    (JPEG2000Lossless, "MONOCHROME2", "i2", {}),
    (JPEG2000Lossless, "MONOCHROME1", "u2", {}),
    (JPEG2000Lossless, "YBR_RCT", "u1", {}),
    (JPEG2000, "MONOCHROME2", "u2", {"j2k_cr": [10]}),
    (JPEG2000, "YBR_ICT", "u1", {"j2k_cr": [10]}),
    (JPEGLSNearLossless, "MONOCHROME2", "u1", {"jls_error": 3}),
])
def test_generated_compressed(px_factory, px_process, ts, photometric, dtype, extra):
    rng = np.random.default_rng(11)
    colour = photometric.startswith("YBR") or photometric == "RGB"
    bits = 12 if dtype.endswith("2") else 8
    shape = (2, 48, 40) + ((3,) if colour else ())
    lo = -(1 << (bits - 1)) if dtype.startswith("i") else 0
    arr = rng.integers(lo, lo + (1 << bits), size=shape).astype(dtype)
    ds = px_factory.dataset(arr, "RGB" if colour else photometric, bits_stored=bits, signed=dtype.startswith("i"),
                            frames=True)
    ds.compress(ts, arr, photometric_interpretation=photometric, **extra)
    ds = px_factory.reread(ds)
    before = px_factory.rgb(ds)
    original, stated = _frames(ds), ds.PhotometricInterpretation
    original = encapsulation.sanitized(original, ts) or original  # the encoder's comment segment goes
    after_ds, out_ts, done, store = px_process(ds, [(5, 6, 20, 9)], frames=[1])
    lossless = ts in (JPEGLSLossless, JPEG2000Lossless)
    assert out_ts == (ts if lossless else EXPLICIT_LE)
    if lossless:
        assert _frames(after_ds)[0] == original[0]
        assert after_ds.PhotometricInterpretation == stated
    else:
        assert after_ds.LossyImageCompression == "01"
        assert after_ds.PhotometricInterpretation == ("RGB" if colour else photometric)
    bg = (0, 0, 0) if colour else store.info.background
    _check_exact(px_factory, before, after_ds, {0: [], 1: done[1]}, bg)


class _Without(NativeCodecs):
    """The native service on a host missing everything (or one half)."""

    def __init__(self, decode=False, encode=False):
        self._dec, self._enc = decode, encode

    def can_decode(self, ts):
        return self._dec and super().can_decode(ts)

    def can_encode(self, ts):
        return self._enc and super().can_encode(ts)


def test_missing_decoder_names_the_package(samples):
    ds = pydicom.dcmread(samples.path("MR_small_jp2klossless.dcm"))
    info = PixelInfo.from_dataset(ds, JPEG2000Lossless)
    with pytest.raises(PixelCodecError) as e:
        FrameStore.open(ds, info, _Without())
    assert "pylibjpeg-openjpeg" in str(e.value) and e.value.code == "codec-missing"
    with pytest.raises(PixelCodecError) as e:
        FrameStore.open(ds, info, None)
    assert "JPEG 2000" in str(e.value)
    assert "pyjpegls" in NativeCodecs().requirement(JPEGLSLossless)


def test_no_encoder_writes_native(samples, px_factory, px_process):
    ds = pydicom.dcmread(samples.path("MR_small_jpeg_ls_lossless.dcm"))
    before = px_factory.rgb(ds)
    after_ds, out_ts, done, store = px_process(ds, [(10, 10, 20, 20)], codecs=_Without(decode=True))
    assert out_ts == EXPLICIT_LE
    _check_exact(px_factory, before, after_ds, done, store.info.background)


class _Broken(NativeCodecs):
    def __init__(self, short=False):
        self.short = short

    def decode(self, frame, ts, info):
        if self.short:
            return super().decode(frame, ts, info)[:100]
        raise RuntimeError("corrupt")


@pytest.mark.parametrize("short", [False, True])
def test_undecodable_frame_fails_the_instance(samples, short):
    ds = pydicom.dcmread(samples.path("emri_small_jpeg_2k_lossless.dcm"))
    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, JPEG2000Lossless), _Broken(short))
    with pytest.raises(PixelCodecError) as e:
        store.mask(3, [(0, 0, 5, 5)])
    assert e.value.code == "decode" and "frame 4" in str(e.value)


def test_codec_service_contract(samples, px_codecs):
    """decode() gives little-endian planar-0 samples in the stated photometric; encode() inverts it."""
    ds = pydicom.dcmread(samples.path("GDCMJ2K_TextGBR.dcm"))
    info = PixelInfo.from_dataset(ds, JPEG2000Lossless)
    frame = _frames(ds)[0]
    pixels = px_codecs.decode(frame, JPEG2000Lossless, info.codec_info())
    assert len(pixels) == info.rows * info.columns * 3
    assert np.array_equal(np.frombuffer(pixels, np.uint8).reshape(info.rows, info.columns, 3), ds.pixel_array)
    again = px_codecs.encode(pixels, JPEG2000Lossless, info.codec_info())
    assert px_codecs.decode(again, JPEG2000Lossless, info.codec_info()) == pixels


def test_ybr_frames_convert_to_rgb_exactly_as_pydicom_in_bounded_memory(samples):
    """A 2048x1536 YBR_FULL_422 JPEG (deid-data's image6.dcm): the same RGB bytes as pydicom's own conversion,
    without pydicom's whole-frame float32 copies (85 MB for this frame; the peak of a folder's run)."""
    import tracemalloc

    ds = pydicom.dcmread(samples.path("image6.dcm"))
    info = PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID))
    frame = _frames(ds)[0]
    expected = ds.pixel_array  # pydicom: YBR_FULL_422 decoded, converted to RGB as a whole
    codecs = NativeCodecs()
    codecs.decode(frame, str(ds.file_meta.TransferSyntaxUID), info.codec_info())  # imports outside the trace
    tracemalloc.start()
    try:
        got = codecs.decode(frame, str(ds.file_meta.TransferSyntaxUID), info.codec_info())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == np.ascontiguousarray(expected).tobytes()
    frame_bytes = ds.Rows * ds.Columns * 3
    assert peak < 4 * frame_bytes, f"{peak / 2**20:.0f} MiB traced to decode a {frame_bytes / 2**20:.0f} MiB frame"
