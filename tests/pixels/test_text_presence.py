"""The OCR-free text screen: it finds lines of glyphs in every usual colour and polarity, where they are, and
stays quiet on image content without text (real CT and MR sample files)."""

from __future__ import annotations

import pytest

from py_deid.hosts.services import GrayImage
from py_deid.pixels import geometry, text_presence


def _gray(im) -> GrayImage:
    return GrayImage(im.width, im.height, im.convert("L").tobytes())


@pytest.mark.parametrize("background, ink", [(0, 255), (0, 150), (110, 226), (110, 40), (235, 20), (70, 255)])
@pytest.mark.parametrize("size", [10, 16, 24])
def test_a_line_of_text_is_found_where_it_is(background, ink, size):
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("L", (320, 200), background)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(im)
    draw.text((40, 90), "DOE^JOHN 02/24/1953", fill=ink, font=font)
    box = draw.textbbox((40, 90), "DOE^JOHN 02/24/1953", font=font)
    text = (box[0], box[1], box[2] - box[0], box[3] - box[1])
    lines = text_presence.candidate_lines(_gray(im))
    assert lines and all(geometry.intersects(line, geometry.grow(text, 4)) for line in lines)
    regions = text_presence.regions_to_read(lines, im.width, im.height)
    assert any(geometry.contains(r, text) for r in regions)


def test_no_line_in_flat_frames_gradients_and_noise():
    import random

    rng = random.Random(7)
    flat = GrayImage(256, 256, bytes([40]) * 256 * 256)
    ramp = GrayImage(256, 256, bytes(x for _ in range(256) for x in range(256)))
    noise = GrayImage(256, 256, bytes(rng.randrange(256) for _ in range(256 * 256)))
    assert [text_presence.candidate_lines(g) for g in (flat, ramp, noise)] == [[], [], []]


def test_textless_real_ct_and_mr_frames_need_no_ocr(samples, px_codecs):
    import pydicom

    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    names = ["CT_small.dcm", "ctbrain1.dcm", "emri_small.dcm", "brain_001.dcm", "brain_006.dcm", "bad_sequence.dcm",
             "eCT_Supplemental.dcm", "693_J2KI.dcm"]
    found = {}
    for name in names:
        ds = pydicom.dcmread(samples.path(name))
        store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
        found[name] = text_presence.has_text(store.render(0))
    assert found == {n: False for n in names}


def test_a_real_frame_with_burned_in_text_is_found(samples, px_codecs):
    import pydicom

    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    ds = pydicom.dcmread(samples.path("CT-MONO2-16-ankle.dcm"))  # "Fri Apr 30 06:27:24 1993" burned in
    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
    assert any(line[1] < 40 for line in text_presence.candidate_lines(store.render(0)))


def test_ink_that_no_word_covers_is_found_tightly_and_gaps_give_nothing():
    from PIL import Image, ImageDraw, ImageFont

    from py_deid.hosts.services import Word
    from py_deid.pixels.text_policy import Decision, settled_boxes

    im = Image.new("L", (320, 120), 0)
    draw, font = ImageDraw.Draw(im), ImageFont.load_default(size=16)
    draw.text((20, 50), "GARCIA", fill=255, font=font)
    draw.text((150, 50), "1951", fill=255, font=font)
    first = draw.textbbox((20, 50), "GARCIA", font=font)
    second = draw.textbbox((150, 50), "1951", font=font)
    gray = _gray(im)
    pieces = text_presence.candidate_pieces(gray)
    assert pieces
    # OCR boxed the first word only: the second word's ink is returned, tight, and the gap is not
    read = [Word("GARCIA", first[0], first[1], first[2] - first[0], first[3] - first[1], 0.0)]
    boxes = settled_boxes([read], [[Decision(0, False, "technical")]])
    left = text_presence.ink_outside(gray, pieces, boxes)
    want = (second[0], second[1], second[2] - second[0], second[3] - second[1])
    assert left and all(geometry.contains(geometry.grow(want, 1), b) for b in left)
    # boxed whole: nothing left; boxed nowhere: both words
    both = read + [Word("1951", *want, 0.0)]
    assert text_presence.ink_outside(gray, pieces, settled_boxes([both], [[Decision(0, False, "technical"),
                                                                           Decision(1, True, "phi-term")]])) == []
    # a read taken for noise settles its ink far from masked text, not beside it on its line (the rest of a
    # name OCR half read: strict mode then masks it unless a closer reading says technical)
    g0 = both[0]
    sure = [Word("GARCIA", g0.left, g0.top, g0.width, g0.height, 60.0), both[1]]
    far = settled_boxes([sure], [[Decision(0, False, "noise"), Decision(1, True, "phi-term")]])
    assert text_presence.ink_outside(gray, pieces, far) == []
    # but not when the read is garbage (three letters or more at confidence under 30: OCR did not read those
    # glyphs) or a sliver of them (a box less than 0.6 of their height), when a snap is given
    from py_deid.pixels.glyphs import Glyphs

    garbage = settled_boxes([both], [[Decision(0, False, "noise"), Decision(1, True, "phi-term")]])
    assert any(b[0] <= first[0] + 1 for b in text_presence.ink_outside(gray, pieces, garbage))
    top = both[0]
    sliver = [Word("GARCIA", top.left, top.top, top.width, max(1, top.height // 3), 60.0), both[1]]
    cut = settled_boxes([sliver], [[Decision(0, False, "noise"), Decision(1, True, "phi-term")]],
                        Glyphs(gray).snap)
    assert any(b[0] <= first[0] + 1 for b in text_presence.ink_outside(gray, pieces, cut))
    beside = read + [Word("J", first[2] + 4, first[1], 8, first[3] - first[1], 90.0), both[1]]
    near = settled_boxes([beside], [[Decision(0, False, "noise"), Decision(1, True, "phi-term"),
                                     Decision(2, True, "phi-term")]])
    assert any(b[0] <= first[0] + 1 for b in text_presence.ink_outside(gray, pieces, near))
    everything = text_presence.ink_outside(gray, pieces, [])
    assert any(b[0] <= first[0] + 1 for b in everything) and any(b[0] + b[2] >= second[2] - 3 for b in everything)
    import numpy as np

    for given in (boxes, garbage, cut, near, [], [(0, 0, 30, 200), (first[0] + 5, 0, 3, 120)]):
        for share in (0.15, 0.0, 0.9):
            assert text_presence.ink_outside(gray, pieces, given, share, numpy=np) == text_presence.ink_outside(
                gray, pieces, given, share), (given, share)


@pytest.mark.parametrize("name", ["brain_002.dcm", "brain_004.dcm", "jpeg_lossless_sel1.dcm"])
def test_a_false_alarm_of_the_screen_costs_ocr_not_pixels(name, samples, px_codecs, ocr_engine, ocr_drive):
    """Real MR/CT frames without text where the screen finds line-like anatomy: the lines are read, OCR finds no
    text there, and no pixel changes (strict mode masks unread ink only where text is expected)."""
    import pydicom

    from py_deid import pixels
    from py_deid.options import Settings
    from py_deid.phi import PhiTerms
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    ds = pydicom.dcmread(samples.path(name))
    ts = str(ds.file_meta.TransferSyntaxUID)
    before = FrameStore.open(ds, PixelInfo.from_dataset(ds, ts), px_codecs).render(0).pixels
    out = ocr_drive(pixels.clean(ds, Settings(), PhiTerms.from_dataset(ds), transfer_syntax=ts, codecs=px_codecs),
                    ocr_engine)
    assert out.reason in ("screen", "no-text-found") and not out.frames
    after = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
    assert after.render(0).pixels == before


# ---- the screen's edges: text it must find, and exactness of its shortcut -----------------------------------
def _oracle_pieces(gray: GrayImage) -> list:
    """The screen's definition counted out with numpy, row by row, with no shortcut (independent of the module's
    byte and big-integer arithmetic): pieces (box, threshold) in the module's order."""
    import numpy as np

    w, h = gray.width, gray.height
    if w < 8 or h < text_presence.MIN_LINE + 2:
        return []
    a = np.frombuffer(gray.pixels, np.uint8).reshape(h, w)
    columns = [(x, min(w, x + 64)) for x in range(0, w, 64)]
    if len(columns) > 1 and columns[-1][1] - columns[-1][0] < 32:
        columns = columns[:-2] + [(columns[-2][0], w)]
    keys = [("light", t) for t in text_presence.LIGHT] + [("dark", t) for t in text_presence.DARK]
    out = []
    for kind, t in keys:
        ink = (a >= t) if kind == "light" else (a < t)
        if ink.all() or not ink.any():
            continue
        for x0, x1 in columns:
            seg = ink[:, x0:x1].astype(np.int8)
            strokes = (np.diff(seg, axis=1) == 1).sum(axis=1) + seg[:, 0]  # 0 -> 1 steps, and ink at the edge
            busy = strokes >= 3
            y = 0
            while y < h:
                if not busy[y]:
                    y += 1
                    continue
                end = y  # the run: busy rows, never two non-busy rows in a row, ending on a busy row
                while end + 1 < h and (busy[end + 1] or (end + 2 < h and busy[end + 2])):
                    end += 1 if busy[end + 1] else 2
                start, y = y, end + 1
                if not 4 <= end - start + 1 <= 48:
                    continue
                quiet = [strokes[r] == 0 if 0 <= r < h else True for r in range(start - 6, start)]
                quiet_below = [strokes[r] == 0 if 0 <= r < h else True for r in range(end + 1, end + 7)]
                if sum(quiet) < 2 or sum(quiet_below) < 2:
                    continue
                cols = np.flatnonzero(seg[start:end + 1].any(axis=0))
                box = ((x0 + int(cols[0]), start, int(cols[-1] - cols[0]) + 1, end - start + 1) if cols.size
                       else (x0, start, x1 - x0, end - start + 1))
                out.append((box, (kind, t)))
    return out


def _scene(draws, size=(320, 160), background=0, mode="L", speckle=False):
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new(mode, size, background)
    if speckle:
        rng = np.random.default_rng(5)
        noise = rng.integers(0, 110, size=(size[1], size[0]), dtype=np.uint8)
        im = Image.fromarray(noise).convert(mode)
    draw = ImageDraw.Draw(im)
    boxes = []
    for (x, y), text, ink, px in draws:
        font = ImageFont.load_default(size=px)
        draw.text((x, y), text, fill=ink, font=font)
        b = draw.textbbox((x, y), text, font=font)
        boxes.append((b[0], b[1], b[2] - b[0], b[3] - b[1]))
    return im, boxes


EDGES = {  # text at the edges of what the screen is built for
    "10px-white-on-black": _scene([((40, 70), "DOE^JOHN 1953", 255, 10)]),
    "10px-light-grey-on-mid-grey": _scene([((40, 70), "LINDA HASSAN 02/04/1960", 170, 10)], background=128),
    "light-grey-on-mid-grey": _scene([((40, 70), "RIVERSIDE CLINIC", 176, 14)], background=120),
    "yellow-on-dark": _scene([((30, 60), "OKAFOR^AHMED", (255, 255, 0), 12)], mode="RGB", background=(10, 10, 10)),
    "green-on-dark": _scene([((30, 60), "MRN 2755381827", (0, 200, 0), 12)], mode="RGB", background=(0, 0, 0)),
    "cyan-on-dark": _scene([((30, 60), "12/03/2021 10:41", (0, 220, 220), 10)], mode="RGB", background=(0, 0, 0)),
    "orange-on-dark": _scene([((30, 60), "NORTHGATE IMAGING", (255, 140, 0), 12)], mode="RGB", background=(8, 8, 8)),
    "red-on-dark": _scene([((30, 60), "GARCIA PEDRO", (255, 0, 0), 14)], mode="RGB", background=(0, 0, 0)),
    "white-on-speckle": _scene([((90, 70), "SMITH JOHN", 255, 12)], speckle=True),
    "grey-on-speckle": _scene([((90, 70), "ID 88213", 200, 14)], speckle=True),
    "one-word-top-left-corner": _scene([((1, 0), "DOE", 255, 12)], size=(256, 256)),
    "one-word-bottom-right-corner": _scene([((222, 243), "KOFI", 255, 10)], size=(256, 256)),
    "dark-on-light": _scene([((40, 70), "TANAKA AIKO 1971", 0, 10)], background=235),
    "dark-grey-on-light-grey": _scene([((40, 70), "CITY MEDICAL CTR", 70, 12)], background=200),
}


@pytest.mark.parametrize("name", sorted(EDGES))
def test_text_at_the_screens_edges_is_found_where_it_is(name, px_factory):
    """Through the real path (a DICOM instance rendered by the frame store): the screen finds a line on the
    text, and finds exactly what counting every row finds."""
    import numpy as np

    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    im, boxes = EDGES[name]
    if im.mode == "RGB":
        ds = px_factory.reread(px_factory.dataset(np.asarray(im), "RGB"))
    else:  # 12 bits in 16, as CT and MR store it: the 16-bit rendering path
        ds = px_factory.reread(px_factory.dataset(np.asarray(im).astype(np.uint16) * 16, "MONOCHROME2",
                                                  bits_stored=12))
    gray = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), None).render(0)
    lines = text_presence.candidate_lines(gray)
    assert text_presence.has_text(gray)
    assert all(any(geometry.intersects(line, geometry.grow(b, 2)) for line in lines) for b in boxes), lines
    assert text_presence.candidate_pieces(gray) == _oracle_pieces(gray)
    assert text_presence.candidate_pieces(gray, numpy=np) == _oracle_pieces(gray)


def test_the_screen_finds_exactly_what_counting_every_row_finds(samples, px_codecs):
    """The screen counts strokes only on rows its quiet-row rule leaves open: on random images, drawn text of
    every size and real frames its pieces are those of the full count (the numpy oracle above); so does the
    screen given the host's numpy (quiet rows from column extremes, every open column counted at once)."""
    import numpy as np
    import pydicom
    from PIL import Image, ImageDraw, ImageFont

    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.info import PixelInfo

    rng = np.random.default_rng(3)
    images = []
    for k in range(90):
        w, h = int(rng.integers(8, 300)), int(rng.integers(6, 200))
        kind = k % 4
        if kind == 0:
            a = rng.integers(0, 256, (h, w))
        elif kind == 1:
            a = (rng.random((h, w)) < rng.random()) * int(rng.integers(1, 256))
        else:
            im = Image.new("L", (w, h), int(rng.integers(0, 256)))
            draw = ImageDraw.Draw(im)
            for _ in range(int(rng.integers(1, 5))):
                draw.text((int(rng.integers(-10, w)), int(rng.integers(-10, h))), "DOE^JOHN 1953 MRN 88",
                          fill=int(rng.integers(0, 256)), font=ImageFont.load_default(size=int(rng.integers(8, 40))))
            a = np.asarray(im).astype(int)
            if kind == 3:
                a = np.clip(a + rng.integers(-40, 40, a.shape), 0, 255)
        images.append(GrayImage(w, h, a.astype(np.uint8).tobytes()))
    # A run of 49 busy rows (one too many for a line) whose first row is not a start the rule pairs with the
    # run's end (48 rows apart): counting only the rows between that start and end would see a line of 48.
    edge = np.zeros((90, 64), np.uint8)
    edge[16:19, 4:11] = edge[68:72, 4:11] = 255  # rows with one stroke: not quiet, not busy
    edge[19:68, 4:6] = edge[19:68, 20:22] = edge[19:68, 40:42] = 255  # rows 19..67: three strokes
    images.append(GrayImage(64, 90, edge.tobytes()))
    for name in ["CT_small.dcm", "brain_002.dcm", "brain_004.dcm", "brain_007.dcm", "emri_small.dcm",
                 "CT-MONO2-16-ankle.dcm", "US1_UNCR.dcm", "SC_rgb.dcm"]:
        ds = pydicom.dcmread(samples.path(name))
        store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
        images.append(store.render(0))
    found = 0
    for gray in images:
        want = _oracle_pieces(gray)
        assert text_presence.candidate_pieces(gray) == want
        assert text_presence.candidate_pieces(gray, first_only=True) == want[:1]
        assert text_presence.candidate_pieces(gray, numpy=np) == want
        assert text_presence.candidate_pieces(gray, first_only=True, numpy=np) == want[:1]
        found += bool(want)
    assert 10 < found < len(images)  # both kinds are there


def test_a_cine_screens_each_distinct_frame_once_with_the_same_outcome(px_factory, px_codecs, ocr_engine,
                                                                      ocr_drive, monkeypatch):
    """Frames whose stored pixels repeat an earlier frame's take that frame's screen: a cine of a still image
    with one changed frame is screened twice, and the outcome is what screening every frame gives (the text on
    the repeated frames is read and masked on each of them)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from py_deid import pixels
    from py_deid.options import Settings
    from py_deid.phi import PhiTerms
    from py_deid.pixels import step

    rng = np.random.default_rng(11)
    still = rng.integers(0, 90, size=(160, 320)).astype(np.uint8)
    still[60:100, 100:220] = 150  # a plain structure: no line of glyphs
    moved = np.roll(still, 9, axis=1)
    im = Image.fromarray(still.copy())
    ImageDraw.Draw(im).text((20, 20), "OKAFOR AHMED 1961", fill=255, font=ImageFont.load_default(size=14))
    text = np.asarray(im)

    def run(frames, reuse):
        calls = []
        real = text_presence.candidate_pieces

        real_stored = text_presence.candidate_pieces_stored

        def counted(image, **kw):
            calls.append(image.pixels)
            return real(image, **kw)

        def counted_stored(frame, **kw):  # the screen on a frame's stored samples (not rendered)
            calls.append(frame.samples)
            return real_stored(frame, **kw)
        monkeypatch.setattr(text_presence, "candidate_pieces", counted)
        monkeypatch.setattr(text_presence, "candidate_pieces_stored", counted_stored)
        if not reuse:
            monkeypatch.setattr(step, "_screen", lambda store, i, screens: text_presence.candidate_pieces(
                store.render(i), numpy=store.numpy))
        ds = px_factory.dataset(np.stack(frames), "MONOCHROME2", frames=len(frames))
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR: screened
        ds.Modality = "MR"
        ds = px_factory.reread(ds)
        ts = str(ds.file_meta.TransferSyntaxUID)
        out = ocr_drive(pixels.clean(ds, Settings(), PhiTerms.from_dataset(ds), transfer_syntax=ts,
                                     codecs=px_codecs), ocr_engine)
        monkeypatch.undo()
        return out, len(calls)

    out, calls = run([still, still, moved, still, still], True)
    assert out.reason == "no-text-found" and out.counts["frames_screened"] == 5 and calls == 2
    frames = [text, still, text, text, still]
    out, calls = run(frames, True)
    every, every_calls = run(frames, False)
    assert calls == 2 and every_calls == 5
    assert out.counts["frames_with_text"] == every.counts["frames_with_text"] == 3
    assert out.frames == every.frames and sorted(out.frames) == [0, 2, 3]


def test_words_out_of_reach_of_every_piece_change_no_ink_outside(samples, px_codecs):
    """settled_boxes(near=pieces) leaves out the words whose box, snapped or not, cannot touch a piece: the
    unread ink found is the same as with every word snapped, for random reads over a real CT frame (anatomy,
    a burned-in date) and over text drawn beside it."""
    import random

    import pydicom

    from py_deid.hosts.services import Word
    from py_deid.pixels.frames import FrameStore
    from py_deid.pixels.glyphs import Glyphs
    from py_deid.pixels.info import PixelInfo
    from py_deid.pixels.text_policy import Decision, settled_boxes

    ds = pydicom.dcmread(samples.path("CT-MONO2-16-ankle.dcm"))
    store = FrameStore.open(ds, PixelInfo.from_dataset(ds, str(ds.file_meta.TransferSyntaxUID)), px_codecs)
    gray = store.render(0)
    pieces = text_presence.candidate_pieces(gray)
    assert pieces
    near = [box for box, _ in pieces]
    rng = random.Random(20261206)
    reasons = ["technical", "noise", "plain", "phi-term"]
    skipped = 0
    for _ in range(150):
        words, decisions = [], []
        for k in range(rng.randint(1, 12)):
            w, h = rng.randint(3, 90), rng.randint(3, 30)
            x, y = rng.randint(-5, gray.width - 3), rng.randint(-5, gray.height - 3)
            words.append(Word("W" * rng.randint(1, 6), x, y, w, h, rng.uniform(0, 96)))
            reason = rng.choice(reasons)
            decisions.append(Decision(k, reason == "phi-term", reason))
        glyphs = Glyphs(gray)
        every = settled_boxes([words], [decisions], glyphs.snap)
        some = settled_boxes([words], [decisions], glyphs.snap, near=near)
        skipped += len(every) - len(some)
        assert text_presence.ink_outside(gray, pieces, some) == text_presence.ink_outside(gray, pieces, every)
    assert skipped > 100  # most random reads lie far from the few lines of text: the test exercised the skip
