"""HTJ2K (1.2.840.10008.1.2.4.201/.202/.203) natively: instances made by a real encoder (OpenJPH's ojph_compress,
tests/htj2k.py) from real samples with burned-in text, decoded by the native codec service (pylibjpeg-openjpeg) and
de-identified end to end by the CLI with `--pixels all`.

Oracles independent of py_deid: the samples' own pixels (a lossless codestream must give them back exactly), the
codestream's markers (ISO/IEC 15444-15: Rsiz bit 14 and a CAP segment), and the extent of the glyphs of the PHI
printed on each image, measured on the original (the boxes below), which must be gone from the output.
Neither host has an HTJ2K encoder, so a masked instance is written as Explicit VR Little Endian."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

from tests import htj2k

EXPLICIT_LE = "1.2.840.10008.1.2.1"

@pytest.fixture(scope="module")
def made(samples, tmp_path_factory):
    htj2k.require_encoder()
    return htj2k.make_all(samples, tmp_path_factory.mktemp("htj2k") / "in")


def _main_header(codestream: bytes) -> dict[int, bytes]:
    """Marker -> segment body (after the length) of the main header's marker segments."""
    out, pos = {}, 2
    while codestream[pos:pos + 2] != b"\xff\x90":
        marker, length = struct.unpack(">HH", codestream[pos:pos + 4])
        out[marker] = codestream[pos + 4:pos + 2 + length]
        pos += 2 + length
    return out


@pytest.mark.parametrize("name", [r.name for r in htj2k.RECIPES])
def test_the_encoder_wrote_htj2k(made, name):
    recipe, path, arr = made[name]
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == recipe.ts
    frames = list(generate_frames(ds.PixelData, number_of_frames=len(arr)))
    assert len(frames) == len(arr) and ds["PixelData"].is_undefined_length
    for f in frames:
        header = _main_header(f)
        rsiz = struct.unpack(">H", header[0xFF51][:2])[0]
        assert rsiz & 0x4000 and 0xFF50 in header, "not an HTJ2K codestream (Rsiz bit 14, CAP marker)"
        cod = header[0xFF52]
        progression, transform = cod[1], cod[9]
        assert transform == (1 if recipe.lossless else 0), "5/3 reversible for lossless, 9/7 for lossy"
        if recipe.ts == htj2k.HTJ2K_LOSSLESS_RPCL:
            assert progression == 2 and 0xFF55 in header, "4.202 needs RPCL progression and a TLM marker"


@pytest.mark.parametrize("name", [r.name for r in htj2k.RECIPES])
def test_native_decode_gives_the_original_pixels(made, px_codecs, name):
    """Through the native codec service: lossless bit-exact against the sample's own pixels; lossy close."""
    from py_deid.pixels.info import PixelInfo

    recipe, path, arr = made[name]
    ds = pydicom.dcmread(path)
    assert px_codecs.can_decode(recipe.ts)
    info = PixelInfo.from_dataset(ds, recipe.ts)
    for i, frame in enumerate(generate_frames(ds.PixelData, number_of_frames=len(arr))):
        got = np.frombuffer(px_codecs.decode(frame, recipe.ts, info.codec_info()), arr.dtype.newbyteorder("<"))
        got = got.reshape(arr.shape[1:])
        if recipe.lossless:
            assert np.array_equal(got, arr[i]), f"frame {i}: lossless HTJ2K did not decode to the original"
        else:
            err = np.abs(got.astype(int) - arr[i].astype(int))
            assert err.max() <= 16 and err.mean() < 1.0, (err.max(), err.mean())
            assert not np.array_equal(got, arr[i])  # really lossy: the check above is not vacuous


@pytest.fixture(scope="module")
def deidentified(made, tmp_path_factory):
    """`py-deid deidentify --pixels all` over the made instances, as a user runs it."""
    root = tmp_path_factory.mktemp("htj2k-out")
    key, report, out = root / "site.key", root / "report.json", root / "out"
    key.write_text("a-site-secret-for-the-htj2k-tests-0123\n")
    folder = next(iter(made.values()))[1].parent
    cmd = [sys.executable, "-m", "py_deid", "deidentify", str(folder), "-o", str(out), "--pixels", "all",
           "--key-file", str(key), "--report", str(report)]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 0, p.stderr
    rows = {os.path.basename(f["input"]): f for f in json.loads(report.read_text())["files"]}
    return {name: (rows[name], out / rows[name]["output"]) for name in made}


@pytest.mark.parametrize("name", [r.name for r in htj2k.RECIPES])
def test_cli_masks_the_burned_in_phi(made, deidentified, name):
    recipe, src, arr = made[name]
    row, out = deidentified[name]
    assert row["status"] == "done", row["error"]
    assert row["pixels"]["cleaned"] and row["pixels"]["reason"] == "pixels-all"
    # No HTJ2K encoder in the host: a masked frame is written uncompressed, never re-encoded lossy.
    assert row["transfer_syntax"] == EXPLICIT_LE == row["pixels"]["transfer_syntax"]
    ds = pydicom.dcmread(out)
    original = pydicom.dcmread(src)
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE and not ds["PixelData"].is_undefined_length
    colour = arr.ndim == 4
    assert ds.PhotometricInterpretation == ("RGB" if colour else "MONOCHROME2")
    if colour:
        assert ds.PlanarConfiguration == 0
    assert int(ds.get("NumberOfFrames", 1) or 1) == len(arr)
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.PixelRepresentation) == (
        original.Rows, original.Columns, original.BitsAllocated, original.PixelRepresentation)
    if recipe.lossless:
        assert ds.get("LossyImageCompression") in (None, "00")
        assert "LossyImageCompressionMethod" not in ds
    else:  # the history stays truthful: once lossy, always lossy, with the method of the first compression
        assert ds.LossyImageCompression == "01"
        assert ds.LossyImageCompressionMethod == "ISO_15444_15"
        assert ds.LossyImageCompressionRatio == original.LossyImageCompressionRatio

    after = htj2k.frames_of(ds)
    before = htj2k.frames_of(original)  # the decoded input (for lossless: the sample's own pixels, checked above)
    if recipe.lossless:
        assert np.array_equal(before, arr)
    boxes, threshold = htj2k.PHI_GLYPHS[name]
    background = 0 if colour or not original.PixelRepresentation else -(1 << (original.BitsStored - 1))
    masked = row["pixels"]["boxes"]
    for i in range(len(arr)):
        for word, box in boxes.items():
            had, left = htj2k.glyph_pixels(before[i], box, threshold), htj2k.glyph_pixels(after[i], box, threshold)
            assert had > 100, f"frame {i} {word}: the check does not see the text on the original"
            assert left == 0, f"frame {i} {word}: {left} of its {had} glyph pixels left unmasked"
        inside = np.zeros(after.shape[1:3], bool)
        for x, y, w, h in masked.get(str(i), []):
            inside[y:y + h, x:x + w] = True
        assert inside.any(), f"frame {i}: no mask"
        assert (after[i][inside] == background).all(), f"frame {i}: masked pixels are not black"
        assert np.array_equal(after[i][~inside], before[i][~inside]), f"frame {i}: pixels outside the masks changed"


def test_missing_decoder_names_the_package(made):
    """A host without an HTJ2K decoder fails the instance closed, naming what to install."""
    from py_deid.hosts.native_codecs import NativeCodecs
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelCodecError, PixelInfo

    class NoDecoder(NativeCodecs):
        def can_decode(self, ts):
            return False

    for recipe, path, _ in made.values():
        ds = pydicom.dcmread(path)
        with pytest.raises(PixelCodecError) as e:
            FrameStore.open(ds, PixelInfo.from_dataset(ds, recipe.ts), NoDecoder())
        assert e.value.code == "codec-missing" and "pylibjpeg-openjpeg" in str(e.value)
