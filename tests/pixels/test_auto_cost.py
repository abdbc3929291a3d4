"""What makes `--pixels auto` cheap on images without text, checked for sameness with the slower ways.

- PixelInfo reads its few attributes from the raw elements without converting them: the same description (or the
  same refusal) as through pydicom's conversion, on every sample file, and the elements stay raw.
- The numpy screen's popcount without numpy's bitwise_count (numpy < 2) counts what Python counts.
- glyphs.label_runs (every snap to glyphs) gives the runs and pieces of a plain flood fill, numbered as its
  docstring says, on random windows and on the gate's windows of real frames; glyphs.ink_boxes (the text gate's
  pieces of ink, from one big integer) gives ink_pieces' boxes in its order on the same windows.
"""

from __future__ import annotations

import random

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement

from py_deid.pixels import info as info_mod
from py_deid.pixels import glyphs, text_presence
from py_deid.pixels.frames import FrameStore
from py_deid.pixels.info import PixelCodecError, PixelInfo


def _describe(ds, ts):
    try:
        return PixelInfo.from_dataset(ds, ts)
    except PixelCodecError as e:
        return ("refused", e.code, str(e))


def test_pixel_info_from_raw_elements_is_pixel_info_through_pydicom(samples, monkeypatch):
    """On every sample file with Pixel Data: the description read from raw bytes (or from elements converted
    before) equals the one read through pydicom's lookups (the fast reader switched off), and the Image Pixel
    elements are left raw."""
    compared = raw_kept = 0
    for path in samples.paths():
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            continue
        if "PixelData" not in ds:
            continue
        ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "1.2.840.10008.1.2.1")
        fast = _describe(ds, ts)
        rows = ds._dict.get(0x00280010)
        raw_kept += type(rows) is RawDataElement
        with monkeypatch.context() as m:
            m.setattr(info_mod, "_raw", lambda ds, keyword: info_mod._SLOW)  # every value through pydicom
            slow = _describe(pydicom.dcmread(path, force=True), ts)
        converted = pydicom.dcmread(path, force=True)
        for keyword in info_mod._READ:  # converted before (as other steps do): their values read directly
            converted.get(keyword)
        assert fast == slow == _describe(converted, ts), path.name
        compared += 1
    assert compared > 150 and raw_kept > 150


@pytest.mark.parametrize("value, vr, want", [
    (b"\x00\x02", "US", 2), (b"\x02\x00", "US", 512), (b"12", "DS", 12.0), (b"-1024 ", "DS", -1024.0),
    (b"1.5E2", "DS", 150.0), (b"1\\2", "DS", info_mod._SLOW), (b"abc", "DS", info_mod._SLOW),
    (b"\x00\x02\x00\x03", "US", info_mod._SLOW), (b"\x00\x02", "UN", info_mod._SLOW), (b"", "US", info_mod._SLOW)])
def test_the_raw_reader_takes_only_well_formed_values(value, vr, want):
    """Well-formed values are read from the bytes (big endian here for US); anything else goes to pydicom."""
    keyword = "RescaleSlope" if vr == "DS" else "Rows"
    ds = pydicom.Dataset()
    tag = info_mod._TAG[keyword]
    ds._dict[tag] = RawDataElement(tag, vr, len(value), value, 0, False, False, True, False)
    assert info_mod._raw(ds, keyword) == want


def test_popcount_without_bitwise_count_counts_the_set_bits():
    import numpy as np

    class Old:  # numpy without bitwise_count (before 2.0): the SWAR sum
        def __getattr__(self, name):
            if name == "bitwise_count":
                raise AttributeError(name)
            return getattr(np, name)

    rng = random.Random(7)
    words = [0, 1, (1 << 64) - 1, 1 << 63] + [rng.getrandbits(64) for _ in range(500)]
    got = text_presence._popcount(Old(), np.array(words, dtype=np.uint64)).tolist()
    assert got == [bin(w).count("1") for w in words]


def test_the_gating_reads_the_same_text_from_raw_elements(samples, monkeypatch):
    """requirement() reads Burned In Annotation, Modality, SOP Class, Image Type and Conversion Type without
    converting them: on every sample file the same texts as through pydicom, and the same decision."""
    from py_deid.options import Settings
    from py_deid.pixels import step

    keywords = ("BurnedInAnnotation", "Modality", "SOPClassUID", "ImageType", "ConversionType")
    compared = raw_kept = 0
    for path in samples.paths():
        try:
            fast_ds, slow_ds = pydicom.dcmread(path, force=True), pydicom.dcmread(path, force=True)
        except Exception:
            continue
        fast = [step._text(fast_ds, k) for k in keywords] + [step.requirement(fast_ds, Settings())]
        raw_kept += type(fast_ds._dict.get(0x00080060)) is RawDataElement
        with monkeypatch.context() as m:
            m.setattr(step, "raw_text", lambda ds, keyword: None)
            m.setattr(step, "value_of", lambda ds, keyword, default=None: ds.get(keyword, default))
            slow = [step._text(slow_ds, k) for k in keywords] + [step.requirement(slow_ds, Settings())]
        assert fast == slow, path.name
        compared += 1
    assert compared > 250 and raw_kept > 200


def test_the_templates_read_the_same_device_names_from_raw_elements(samples, monkeypatch):
    """Manufacturer and model, looked up for the device templates without converting them: the same texts as
    through pydicom on every sample file."""
    from py_deid.pixels import templates

    compared = 0
    for path in samples.paths():
        try:
            fast_ds, slow_ds = pydicom.dcmread(path, force=True), pydicom.dcmread(path, force=True)
        except Exception:
            continue
        keywords = ("Manufacturer", "ManufacturerModelName", "Modality", "SOPClassUID", "StationName")
        fast = [templates._text(fast_ds, k) for k in keywords] + [templates.boxes_for(fast_ds)]
        with monkeypatch.context() as m:
            m.setattr(templates, "raw_text", lambda ds, keyword: None)
            m.setattr(templates, "value_of", lambda ds, keyword, default=None: ds.get(keyword, default))
            slow = [templates._text(slow_ds, k) for k in keywords] + [templates.boxes_for(slow_ds)]
        assert fast == slow, path.name
        compared += 1
    assert compared > 250


def test_the_ocr_service_is_there_before_the_engine_is_loaded():
    """A run's OCR service says it is available (tesserocr installed, the model present) without importing
    tesserocr or the model download's modules: a run whose images hold no text never loads them."""
    import subprocess
    import sys

    code = ("import sys; from py_deid.hosts import native; ocr = native.ocr_service(); "
            "print(ocr is not None, *(m in sys.modules for m in ('tesserocr', 'tarfile', 'urllib.request')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "False", "False"]


def test_an_auto_run_on_textless_images_loads_neither_ocr_nor_http(samples, tmp_path):
    """`py-deid deidentify --pixels auto` on images without text: each is screened (numpy), none is read, so
    tesserocr is never imported; nor is requests (pydicom's test-data downloader's, no part of a run)."""
    import json
    import subprocess
    import sys

    src = tmp_path / "in"
    src.mkdir()
    for name in ["brain_001.dcm", "brain_002.dcm"]:
        (src / name).write_bytes(samples.bytes(name))
    key = tmp_path / "site.key"
    key.write_text("a-site-secret-for-the-tests-0123456789\n")
    # The files are read in a worker process forked from the command's (py_deid.batch._Lanes): what it loaded
    # is recorded after each group, through a hook set once the command has loaded pydicom its own way.
    record = tmp_path / "worker-modules"
    code = ("import json, sys\nimport py_deid.cli as cli\nfrom py_deid.cli import main\n"
            "def loaded():\n    return [m for m in ('numpy', 'tesserocr', 'requests') if sys.modules.get(m)]\n"
            "load = cli._load_without_pixel_libraries\n"
            "def hooked(*a):\n    load(*a)\n    from py_deid import batch\n    stage = batch._Worker.stage\n"
            "    def recorded(self, *a, **k):\n        commit = stage(self, *a, **k)\n"
            f"        open({str(record)!r}, 'a').write(json.dumps(loaded()) + '\\n')\n        return commit\n"
            "    batch._Worker.stage = recorded\n"
            "cli._load_without_pixel_libraries = hooked\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\nprint(json.dumps(loaded()))")
    p = subprocess.run([sys.executable, "-c", code, "deidentify", str(src), "-o", str(tmp_path / "out"), "--pixels",
                        "auto", "--key-file", str(key), "--report", str(tmp_path / "report.json")],
                       capture_output=True, text=True, check=True)
    assert json.loads(p.stdout.strip().splitlines()[-1]) == ["numpy"]
    workers = [json.loads(line) for line in record.read_text().splitlines()]
    assert workers and all(w == ["numpy"] for w in workers)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["done"] == 2


def _flood_pieces(rows: list[bytes]) -> tuple[list, list]:
    """Oracle for label_runs: runs by scanning each row byte by byte, pieces by an 8-connected flood fill of
    pixels; each run's piece named by its first run (the order label_runs promises)."""
    runs = []
    for y, row in enumerate(rows):
        x = 0
        while x < len(row):
            if row[x] == 1:
                e = x
                while e < len(row) and row[e] == 1:
                    e += 1
                runs.append((y, x, e))
                x = e
            else:
                x += 1
    piece: dict[tuple[int, int], int] = {}
    for y, row in enumerate(rows):
        for x, v in enumerate(row):
            if v == 1 and (y, x) not in piece:
                label, todo = len(set(piece.values())), [(y, x)]
                piece[(y, x)] = label
                while todo:
                    cy, cx = todo.pop()
                    for ny in (cy - 1, cy, cy + 1):
                        for nx in (cx - 1, cx, cx + 1):
                            if (0 <= ny < len(rows) and 0 <= nx < len(rows[ny]) and rows[ny][nx] == 1
                                    and (ny, nx) not in piece):
                                piece[(ny, nx)] = label
                                todo.append((ny, nx))
    first: dict[int, int] = {}
    for k, (y, s, _) in enumerate(runs):
        first.setdefault(piece[(y, s)], k)
    return runs, [first[piece[(y, s)]] for y, s, _ in runs]


def _dilated(rows: list[bytes]) -> list[bytes]:
    """Each pixel of ink grown to its eight neighbours, within the rows (what the gate's joined pass labels)."""
    h, w = len(rows), len(rows[0]) if rows else 0
    return [bytes(int(any(rows[yy][xx] for yy in range(max(0, y - 1), min(h, y + 2))
                          for xx in range(max(0, x - 1), min(w, x + 2)))) for x in range(w)) for y in range(h)]


def _gate_windows(samples) -> list[list[bytes]]:
    """The windows the text gate labels on real frames (the screen's other tests' frames, with text and
    without, and the 20 derived MR frames of the benchmark), at every threshold, plain and joined, as rows."""
    from py_deid.hosts import native
    from py_deid.pixels.frames import FrameStore

    codecs = native.codec_service()
    windows = []
    names = ["CT_small.dcm", "ctbrain1.dcm", "emri_small.dcm", "US1_UNCR.dcm", "SC_rgb.dcm", "GREYSCALE_CINE.dcm"]
    for name in names + [f"brain_{k:03d}.dcm" for k in range(1, 21)]:
        ds = pydicom.dcmread(samples.path(name))
        store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), codecs)
        image = store.render(0)
        w, h = image.width, image.height
        for (x, y, bw, bh), _ in text_presence.candidate_pieces(image)[:6]:
            r0, r1 = max(0, y - text_presence._MARGIN), min(h, y + bh + text_presence._MARGIN)
            c0, c1 = max(0, x - text_presence._REACH * bh), min(w, x + bw + text_presence._REACH * bh)
            for key in text_presence._ORDER:
                rows = [image.pixels[r * w + c0:r * w + c1].translate(text_presence._BINARY[key])
                        for r in range(r0, r1)]
                windows += [rows, _dilated(rows)]
    return windows


def test_label_runs_gives_the_pieces_of_a_flood_fill(samples):
    """label_runs (union-find over runs, the row above's runs in flat lists) against a pixel flood fill: the
    same runs, each named by the first run of its piece, on random windows of every density (speckle, bars,
    diagonals) and on the windows the text gate labels on real frames, at every threshold, plain and joined."""
    from py_deid.pixels import glyphs

    rng = random.Random(11)
    windows = []
    for _ in range(1500):
        h, w, p = rng.randint(0, 24), rng.randint(1, 70), rng.random()
        windows.append([bytes(int(rng.random() < p) for _ in range(w)) for _ in range(h)])
    windows.append([b"\x01\x00" * 20, b"\x00\x01" * 20] * 6)  # only diagonal neighbours: one piece
    windows.append([b"\x01" * 5 + b"\x00" * 5 + b"\x01"] * 3 + [b"\x01" * 11])  # a U: two runs a row, joined below
    windows += _gate_windows(samples)  # (colour frames render to luminance)
    for rows in windows:
        assert glyphs.label_runs(rows) == _flood_pieces(rows)
    assert len(windows) > 1600


def test_ink_boxes_gives_the_pieces_of_ink_pieces(samples):
    """The gate's labeller (glyphs.ink_boxes: flood fill on one big integer) gives ink_pieces' boxes in its
    order, on random windows of every density and shape (one row, one column, bars, diagonals, a U, a
    spiral) and on the gate's windows of real frames, plain and joined."""
    from py_deid.pixels import glyphs

    rng = random.Random(12)
    windows = []
    for _ in range(1500):
        h, w, p = rng.randint(1, 30), rng.randint(1, 120), rng.random()
        windows.append([bytes(int(rng.random() < p) for _ in range(w)) for _ in range(h)])
    windows.append([b"\x01\x00" * 20, b"\x00\x01" * 20] * 6)
    windows.append([b"\x01" * 5 + b"\x00" * 5 + b"\x01"] * 3 + [b"\x01" * 11])
    windows.append([b"\x01"] * 9)
    windows.append([b"\x01\x00\x01\x01"])
    spiral = [bytearray(21) for _ in range(21)]
    x = y = 10
    for step in range(1, 20):  # a square spiral: one piece, found only by following it round
        for _ in range(2):
            dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][(step * 2 + _) % 4]
            for _ in range(step):
                if 0 <= x < 21 and 0 <= y < 21:
                    spiral[y][x] = 1
                x, y = x + dx, y + dy
    windows.append([bytes(r) for r in spiral])
    windows += _gate_windows(samples)
    for rows in windows:
        assert glyphs.ink_boxes(*glyphs.ink_bits(rows)) == glyphs.ink_pieces(rows)
    assert len(windows) > 1600


def test_the_gate_sees_the_windows_it_saw_as_rows(samples):
    """The gate reads a window's ink at a threshold as one big integer, joined ink grown on it: the same pieces
    as the window's rows (and the rows grown eight ways) labelled as before, on random frames, pieces and
    thresholds, at the frame's edges too, and the same decision."""
    from py_deid.hosts.services import GrayImage
    from py_deid.pixels import glyphs

    rng = random.Random(13)
    for trial in range(600):
        w, h = rng.randint(8, 90), rng.randint(6, 50)
        p = rng.random()
        px = bytes(rng.choice((0, 40, 100, 150, 200, 250)) if rng.random() < p else rng.randrange(256) * (trial % 2)
                   for _ in range(w * h))
        image = GrayImage(w, h, px)
        bw, bh = rng.randint(1, w), rng.randint(1, min(h, 16))
        piece = (rng.randint(0, w - bw), rng.randint(0, h - bh), bw, bh)
        key = rng.choice(text_presence._ORDER)
        r0, r1 = max(0, piece[1] - text_presence._MARGIN), min(h, piece[1] + bh + text_presence._MARGIN)
        c0, c1 = max(0, piece[0] - text_presence._REACH * bh), min(w, piece[0] + bw + text_presence._REACH * bh)
        rows = [px[r * w + c0:r * w + c1].translate(text_presence._BINARY[key]) for r in range(r0, r1)]
        seen: dict = {}
        plain = text_presence._glyph_boxes(image, piece, key, seen=seen)
        tall = max(3, (bh + 1) // 2)
        within = [(left, top, cw, ch) for left, top, cw, ch in glyphs.ink_pieces(rows)
                  if not ((top == 0 and r0 > 0) or (top + ch == r1 - r0 and r1 < h))]  # not running on beyond
        # the window's rows: what the joined pass is decided on (their count)
        assert seen[key] == (glyphs.ink_bits(rows)[0], len(within)), trial
        assert plain == [(left + c0, top + r0, cw, ch) for left, top, cw, ch in within
                         if not (top + r0 + ch <= piece[1] or top + r0 >= piece[1] + bh or ch < tall
                                 or cw > 3 * ch + 2)], trial
        bridged = text_presence._glyph_boxes(image, piece, key, bridged=True, seen=seen)
        want = []
        for left, top, cw, ch in glyphs.ink_pieces(_dilated(rows)):
            if (top == 0 and r0 > 0) or (top + ch == r1 - r0 and r1 < h):
                continue
            left, top, cw, ch = left + 1, top + r0 + 1, cw - 2, ch - 2
            if not (top + ch <= piece[1] or top >= piece[1] + bh or ch < tall or cw > 3 * ch + 2):
                want.append((left + c0, top, cw, ch))
        assert bridged == want, trial


def test_pixel_data_is_found_by_its_tag_number_as_by_its_keyword(samples):
    """info.has_pixel_data (the gating and the frame store ask it) answers `"PixelData" in ds` on every sample
    file, with and without the element, and on datasets made in memory."""
    from pydicom.dataset import Dataset

    from py_deid.pixels.info import has_pixel_data

    seen = {True: 0, False: 0}
    for path in samples.paths():
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            continue
        assert has_pixel_data(ds) == ("PixelData" in ds)
        seen[has_pixel_data(ds)] += 1
    made = Dataset()
    assert not has_pixel_data(made)
    made.PixelData = b"\0\0"
    assert has_pixel_data(made)
    assert seen[True] > 100 and seen[False] > 5


def _textless_image(samples, **attributes):
    ds = pydicom.dcmread(samples.path("brain_001.dcm"))
    ds.ImageType = ["DERIVED", "SECONDARY"]
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _steps_without_ocr(steps):
    try:
        next(steps)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("OCR was asked for")


def test_a_screened_frame_without_text_makes_no_frame_reader(samples, monkeypatch):
    """The frame reader and the ultrasound regions are made when a frame is read: a screened image whose
    frames hold nothing like text needs neither, and decides as before (no text found, nothing rewritten)."""
    from py_deid import pixels
    from py_deid.options import Settings
    from py_deid.phi import PhiTerms
    from py_deid.pixels import detect, us_regions

    def no_reader(*args, **kwargs):
        raise AssertionError("a frame reader was made")

    monkeypatch.setattr(detect, "FrameReader", no_reader)
    monkeypatch.setattr(us_regions, "clinical_regions", no_reader)
    ds = _textless_image(samples)
    out = _steps_without_ocr(pixels.clean(ds, Settings(pixels="auto"), PhiTerms(),
                                          transfer_syntax=str(ds.file_meta.TransferSyntaxUID), codecs=None))
    assert (out.reason, out.required, out.cleaned) == ("no-text-found", False, False)
    assert out.counts["frames_screened"] == 1 and out.counts["frames_with_text"] == 0


def test_template_boxes_alone_still_count_the_readers_work(samples, monkeypatch):
    """A screened image without text whose device has a template: its boxes are masked as before, and the
    counts carry the reader's statistics (all zero: nothing was read), as when the reader was made up front."""
    from py_deid import pixels
    from py_deid.options import Settings
    from py_deid.phi import PhiTerms
    from py_deid.pixels import templates
    from py_deid.pixels.detect import FrameReader

    rule = templates.Template(name="test: top rows", manufacturer="philips", model="epiq", boxes=((0, 0, 256, 10),))
    monkeypatch.setattr(templates, "default_templates", lambda: (rule,))
    ds = _textless_image(samples, Manufacturer="Philips", ManufacturerModelName="EPIQ 7")
    out = _steps_without_ocr(pixels.clean(ds, Settings(pixels="auto"), PhiTerms(),
                                          transfer_syntax=str(ds.file_meta.TransferSyntaxUID), codecs=None))
    assert out.cleaned and out.frames == {0: [(0, 0, 256, 10)]}
    stats = {f"ocr_{k}": v for k, v in FrameReader(None, 256, 256).stats.as_dict().items()}
    assert stats and {k: out.counts[k] for k in stats} == stats


def test_the_joined_pass_is_skipped_only_where_it_cannot_pass(px_factory, px_codecs):
    """The glyph test runs its joined pass at a threshold only where the plain pass found GLYPHS_IN_A_ROW pieces of
    ink or more that stay within the rows looked at: a joined piece that stays within them holds one of those. On
    random frames of glyph-like blobs (tests/pixels/test_screen_stored.py) and every piece the screen finds there,
    the answer is that of running every joined pass; the skip fires where counting every piece (edges included)
    would have run the pass, and joined passes pass elsewhere."""
    from tests.pixels.test_screen_stored import _blobs

    rng = np.random.default_rng(20261208)
    count = {"pieces": 0, "text": 0, "joined": 0, "skipped": 0}
    for k in range(500):
        h, w = int(rng.integers(16, 90)), int(rng.integers(20, 150))
        arr = _blobs(rng, h, w, 0, 255).astype(np.uint8)
        ds = px_factory.reread(px_factory.dataset(arr, "MONOCHROME2"))
        store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
        image = store.render(0)
        for piece, key in text_presence.candidate_pieces(image, numpy=np):
            keys = [key] + [k2 for k2 in text_presence._ORDER if k2 != key and k2[0] == key[0]]
            plain = any(text_presence._glyph_line(image, piece, k2) for k2 in keys)
            joined = [text_presence._glyph_line(image, piece, k2, bridged=True) for k2 in keys]
            assert text_presence.looks_like_text(image, piece, key) == (plain or any(joined)), (k, piece)
            count["pieces"] += 1
            count["text"] += plain or any(joined)
            count["joined"] += not plain and any(joined)
            for k2, passed in zip(keys, joined):
                seen: dict = {}
                text_presence._glyph_boxes(image, piece, k2, seen=seen)
                x, y, bw, bh = piece
                r0, r1 = max(0, y - text_presence._MARGIN), min(h, y + bh + text_presence._MARGIN)
                c0, c1 = max(0, x - text_presence._REACH * bh), min(w, x + bw + text_presence._REACH * bh)
                rows = [image.pixels[r * w + c0:r * w + c1].translate(text_presence._BINARY[k2]) for r in range(r0, r1)]
                if seen[k2][1] < text_presence.GLYPHS_IN_A_ROW:
                    assert not passed, (k, piece, k2)
                    count["skipped"] += len(glyphs.ink_pieces(rows)) >= text_presence.GLYPHS_IN_A_ROW
    assert count["pieces"] > 300 and count["text"] > 50 and count["joined"] > 5 and count["skipped"] > 50, count


# The modules that read and decide text, and the RLE and JPEG DCT backends' modules: imported when a frame is read
# (or such a frame store is made), not when the pixel step is (py_deid.pixels.step, backends).
_TEXT_MODULES = ("detect", "text_policy", "phi_text", "line_rest", "overlay_text", "us_regions", "ocr_image",
                 "rle", "jpeg_dct", "jpeg_decode", "jpeg_markers", "jpeg_huffman")
_PROBE = """
import io, json, sys
import pydicom
from py_deid.instance import Deidentifier, run_sync
from py_deid.options import Settings
ds = pydicom.dcmread(sys.argv[1])
ds.ImageType = ["DERIVED", "SECONDARY"]
for tag in [t for t in ds.keys() if t.group == 0]:
    del ds[tag]
buf = io.BytesIO()
pydicom.dcmwrite(buf, ds)
def no_ocr(request):
    raise AssertionError("OCR was asked for")
class Ocr:
    find_text = staticmethod(no_ocr)
result = run_sync(Deidentifier(Settings(pixels="auto"), b"k" * 32).process(buf.getvalue()), Ocr())
loaded = sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("py_deid.pixels."))
print(json.dumps([result.status, result.pixels["reason"], loaded]))
"""


def test_a_textless_image_loads_no_module_that_reads_text(samples):
    """`--pixels auto` on an image the screen clears (its pixel step run in a fresh interpreter) imports none of
    the modules that read and decide text, nor the compressed backends' codecs (~60 ms of a command's start-up),
    and decides as before; an image whose screen finds text loads them where it reads (the evaluation set and
    the other tests of the pixel step run that path)."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _PROBE, str(samples.path("brain_005.dcm"))], capture_output=True,
                         text=True, check=True)
    status, reason, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert (status, reason) == ("done", "no-text-found")
    assert "step" in loaded and "text_presence" in loaded
    assert not set(_TEXT_MODULES) & set(loaded), loaded
