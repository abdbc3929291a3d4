"""One uncompressed frame -> 8-bit gray for OCR, in pure Python (bytes.translate, slicing, array, big ints).

Polarity: the image as a viewer shows it ("display" polarity). MONOCHROME1 is inverted so that high stored
values are light, exactly like MONOCHROME2; annotation text that a scanner draws at the top of the value range
(the usual case) therefore comes out light on dark. `invert=True` gives the negative (dark text on light),
which Tesseract tends to prefer.

Colour and palette images render as BT.601 luminance; a (center, width) window, in 0..255 luminance units,
can stretch it (e.g. to lift dim text). Window for grayscale: "auto" (default) maps the lowest and highest value present in the frame (after rescale)
to 0 and 255, so text drawn at the extreme values is pure white/black whatever the modality's value range
(a narrow clinical window can saturate the anatomy around text and hide it). The mask fill value is left out
of that range so that a re-read after masking sees the image the same way. "header" uses Window Center/Width;
a (center, width) pair in modality units is used as given.

`numpy`: the numpy module, when the host has it (the native host's codec service hands it over as `arrays`;
the core imports no host library). Grayscale then renders with one table look-up per pixel in numpy, the same
bytes as the pure-Python path (tests/pixels/test_render.py compares them); without it (the browser) the
pure-Python path runs.
"""

from __future__ import annotations

import math
from array import array
from functools import lru_cache

from . import compiled
from .info import PixelInfo
from .layout import Box, Layout

_NATIVE_LITTLE = array("H", b"\x01\x00")[0] == 1
# BT.601 luma weights as byte tables; their per-pixel sum never exceeds 255, so three planes can be added
# as big integers (one C-level addition per plane, no carries between bytes).
_LUMA_R = bytes(round(v * 0.299) for v in range(256))
_LUMA_G = bytes(round(v * 0.587) for v in range(256))
_LUMA_B = bytes(round(v * 0.114) for v in range(256))
SATURATED = 96  # max - min channel: the pure colours of annotation (green, yellow, cyan, orange, red, blue)
# Colour decoded from a YBR coding (JPEG, JPEG 2000): the chroma is coarser than the luminance, and the fringes
# it leaves around white text (140 measured on a bluish ground) would thicken the glyphs.
CODED_SATURATED = 160
SPARSE = 0.2  # annotation is sparse: a frame more saturated than this is coloured content (luminance kept)
# A palette frame's colour is more often content: colour Doppler is 3-5% of each frame of US-PAL-8-10x-echo, and
# there the farthest rule changed the cine's readings enough to leave a date's "30" unmasked on frame 7; the
# palette annotation of the evaluation set and the real samples is 0.04-1.9% of a frame.
PALETTE_SPARSE = 0.025


def gray_frame(buf, offset: int, layout: Layout, info: PixelInfo, *, window="auto", invert: bool = False,
               exclude: int | None = None, numpy=None, saturated: int = SATURATED) -> bytes:
    """The whole frame as rows*columns bytes of 8-bit gray. `exclude`: a stored value left out of "auto";
    `saturated`: see farthest (CODED_SATURATED for colour that came through a YBR coding)."""
    photometric = info.photometric
    if numpy is not None and info.samples == 1 and photometric != "PALETTE COLOR":
        # numpy reads the frame where it lies (no copy; the result is new bytes)
        out = _mono_numpy(numpy, memoryview(buf)[offset:offset + layout.frame_length], layout, info, window,
                          exclude)
        return out.translate(_INVERT) if invert else out
    if (numpy is not None and photometric == "RGB" and layout.samples == 3 and layout.bps == 1
            and info.shift + info.bits_stored == 8):
        # The planes as views of the frame where it lies, the luminance in bands: a copy of the frame, its
        # three planes and the luminance's big integers were ~40 MB at once for a 2048 x 1536 frame, the peak
        # of a folder's process (the same bytes as below: tests/pixels/test_render.py)
        r, g, b = _rgb_planes_numpy(numpy, buf, offset, layout)
        out = farthest(_luma_numpy(numpy, r, g, b), r, g, b, numpy, saturated)
    else:
        frame = bytes(memoryview(buf)[offset:offset + layout.frame_length])
        if photometric == "PALETTE COLOR":
            out = _palette(frame, layout, info, numpy, saturated)
        elif info.samples == 1:
            out = _mono(frame, layout, info, window, exclude)
        elif photometric.startswith("YBR"):
            out = _ybr_gray(frame, layout, info, numpy, saturated)
        else:
            r, g, b = (_plane8(frame, layout, info, s) for s in range(3))
            out = farthest(luma(r, g, b), r, g, b, numpy, saturated)
    if isinstance(window, tuple) and (photometric == "PALETTE COLOR" or info.samples > 1):
        out = out.translate(_window_table(*window))  # on the 0..255 luminance, e.g. to lift dim text
    if invert:
        out = out.translate(_INVERT)
    return out


_INVERT = bytes(range(255, -1, -1))
_BYTES = [bytes([v]) for v in range(256)]


def _window_table(center: float, width: float) -> bytes:
    lo, hi = center - width / 2, center + width / 2
    return bytes(0 if v <= lo else 255 if v >= hi else int((v - lo) * 255 / (hi - lo) + 0.5) for v in range(256))


def _rgb_planes_numpy(np, buf, offset: int, layout: Layout):
    """The three 8-bit planes of an RGB frame as views of it (no copy), interleaved or planar."""
    n = layout.rows * layout.columns
    px = np.frombuffer(buf, np.uint8, 3 * n, offset)
    planes = px.reshape(n, 3).T if layout.planar == 0 else px.reshape(3, n)
    return planes[0], planes[1], planes[2]


def _luma_numpy(np, r, g, b) -> bytes:
    """luma() of three uint8 arrays, a band of pixels at a time (the tables' sum never exceeds 255)."""
    n = len(r)
    tables = [np.frombuffer(t, np.uint8) for t in (_LUMA_R, _LUMA_G, _LUMA_B)]
    out = np.empty(n, np.uint8)
    for s in range(0, n, _FARTHEST_BAND):
        e = min(n, s + _FARTHEST_BAND)
        band = out[s:e]
        np.take(tables[0], r[s:e], out=band)
        band += tables[1][g[s:e]]
        band += tables[2][b[s:e]]
    return out.tobytes()


def luma(r: bytes, g: bytes, b: bytes) -> bytes:
    n = len(r)
    total = (int.from_bytes(r.translate(_LUMA_R), "little") + int.from_bytes(g.translate(_LUMA_G), "little")
             + int.from_bytes(b.translate(_LUMA_B), "little"))
    return total.to_bytes(n, "little")


# Which side is farther, compared in one max: above as odd, below as even codes (0 for none), to 2 levels.
_ODD = bytes(0 if v == 0 else (v & 0xFE) | 1 for v in range(256))
_EVEN = bytes(0 if v == 0 else max(2, v & 0xFE) for v in range(256))
_LOW_BIT = bytes(0xFF if v & 1 else 0 for v in range(256))


@lru_cache(maxsize=None)
def _saturated_table(threshold: int) -> bytes:
    return bytes(0xFF if v >= threshold else 0 for v in range(256))


@lru_cache(maxsize=None)
def _tables(m: int) -> tuple[bytes, bytes, bytes, bytes]:
    """For ground m: how far above it, how far below it, m + d and m - d (clipped), per byte value."""
    return (bytes(max(0, v - m) for v in range(256)), bytes(max(0, m - v) for v in range(256)),
            bytes(min(255, m + v) for v in range(256)), bytes(max(0, m - v) for v in range(256)))


def ground(gray: bytes) -> int:
    """The frame's usual value: the median of every 7th pixel."""
    sample = sorted(gray[::7])
    return sample[len(sample) // 2] if sample else 0


def farthest(gray: bytes, r: bytes, g: bytes, b: bytes, numpy=None, saturated: int = SATURATED,
             sparse: float = SPARSE) -> bytes:
    """The luminance `gray`, except that saturated pixels (the pure colours of annotation) take the value of
    their channel farthest from the frame's ground (its median luminance), above or below. Luminance alone
    hides coloured text: green (20, 230, 20) on a mid-gray ground is 143 against 111, and beside white
    settings at 230 Tesseract's one threshold for the image drops it (a fresh draw of the evaluation set lost a
    whole instance's PHI so); its green channel stands 117 above the ground, as far as the white text. Gray and
    weakly coloured pixels (anatomy, photographs) keep their luminance, and so does a frame whose content is
    colour (more than SPARSE of it saturated). Both hosts alike: numpy when there is one, the same bytes."""
    if numpy is not None:
        return _farthest_numpy(numpy, gray, r, g, b, saturated, sparse)
    if r == g == b:
        return gray
    up_t, down_t, plus, minus = _tables(ground(gray))
    mx, mn = bytes(map(max, r, g, b)), bytes(map(min, r, g, b))
    n = len(gray)
    # mx >= mn in every byte: one subtraction of the two as integers has no borrow between bytes
    colour = ((int.from_bytes(mx, "little") - int.from_bytes(mn, "little")).to_bytes(n, "little")
              .translate(_saturated_table(saturated)))
    if colour.count(0) == n or n - colour.count(0) > sparse * n:
        return gray
    up, down = mx.translate(up_t), mn.translate(down_t)
    # which side wins, as a byte mask (the low bit of the larger code says "above")
    side = int.from_bytes(bytes(map(max, up.translate(_ODD), down.translate(_EVEN))).translate(_LOW_BIT), "little")
    every = (1 << (8 * n)) - 1
    far = (int.from_bytes(up.translate(plus), "little") & side) | (
        int.from_bytes(down.translate(minus), "little") & (side ^ every))
    mask = int.from_bytes(colour, "little")
    return ((far & mask) | (int.from_bytes(gray, "little") & (mask ^ every))).to_bytes(n, "little")


_FARTHEST_BAND = 1 << 20  # pixels


def _farthest_numpy(np, gray: bytes, r, g, b, saturated: int, sparse: float = SPARSE) -> bytes:
    """farthest() with numpy; r, g, b as bytes or as uint8 arrays (views of a frame)."""
    r, g, b = (c if isinstance(c, np.ndarray) else np.frombuffer(c, np.uint8) for c in (r, g, b))
    n = len(gray)
    # In bands of pixels (every step is per pixel): a dozen temporaries the size of the whole frame were
    # ~40 MB at once for a 2048 x 1536 colour frame, the peak of a folder's process. First the count of
    # saturated pixels (whether the frame is annotated gray or colour content; none where the planes are
    # equal), then the values.
    count = 0
    for s in range(0, n, _FARTHEST_BAND):
        mx, mn = _extremes(np, r, g, b, s, min(n, s + _FARTHEST_BAND))
        count += int(np.count_nonzero(mx - mn >= saturated))  # mx >= mn: no wrap-around
    if not count or count > sparse * n:
        return gray
    up_a, down_a, plus_a, minus_a, odd, even = (np.frombuffer(t, np.uint8)
                                                for t in (*_tables(ground(gray)), _ODD, _EVEN))
    out = bytearray(n)
    for s in range(0, n, _FARTHEST_BAND):
        e = min(n, s + _FARTHEST_BAND)
        mx, mn = _extremes(np, r, g, b, s, e)
        up, down = up_a[mx], down_a[mn]
        far = np.where(odd[up] > even[down], plus_a[up], minus_a[down])
        out[s:e] = np.where(mx - mn >= saturated, far, np.frombuffer(gray, np.uint8, e - s, s)).astype(
            np.uint8).tobytes()
    return bytes(out)


def _extremes(np, r, g, b, start: int, end: int):
    """Each pixel's largest and smallest channel, pixels start to end (r, g, b: uint8 arrays)."""
    ch = (r[start:end], g[start:end], b[start:end])
    return np.maximum(np.maximum(ch[0], ch[1]), ch[2]), np.minimum(np.minimum(ch[0], ch[1]), ch[2])


def crop(gray: bytes, width: int, box: Box) -> bytes:
    x, y, w, h = box
    if x == 0 and w == width:
        return gray[y * width:(y + h) * width]
    return b"".join(gray[r * width + x:r * width + x + w] for r in range(y, y + h))


def enlarge(gray: bytes, width: int, height: int, scale: int, *, smooth: bool = False) -> bytes:
    """Integer enlargement. Nearest neighbour: `scale` slice assignments widen every row at once.
    Smooth: linear interpolation between neighbouring pixels (Tesseract reads small pixel fonts better that
    way), computed per output phase as a sum of two byte-table lookups added as big integers."""
    if scale == 1:
        return gray
    if smooth and width > 1 and height > 1:
        return _linear(gray, width, height, scale)
    wide = bytearray(len(gray) * scale)
    for k in range(scale):
        wide[k::scale] = gray
    w2 = width * scale
    return b"".join(bytes(wide[r * w2:(r + 1) * w2]) * scale for r in range(height))


def _weights(scale: int) -> list[bytes]:
    return [bytes(v * k // scale for v in range(256)) for k in range(scale + 1)]


def _blend(p: bytes, q: bytes, tables: list[bytes], scale: int, k: int) -> bytes:
    # floor(p*(s-k)/s) + floor(q*k/s) <= 255: no carry crosses a byte, so big-int addition adds bytewise
    total = int.from_bytes(p.translate(tables[scale - k]), "little") + int.from_bytes(q.translate(tables[k]), "little")
    return total.to_bytes(len(p), "little")


def _linear(gray: bytes, width: int, height: int, scale: int) -> bytes:
    tables = _weights(scale)
    nxt = bytearray(gray[1:] + gray[-1:])
    nxt[width - 1::width] = gray[width - 1::width]  # the last pixel of a row has no right neighbour
    wide = bytearray(len(gray) * scale)
    for k in range(scale):
        wide[k::scale] = _blend(gray, bytes(nxt), tables, scale, k)
    w2 = width * scale
    below = bytes(wide[w2:]) + bytes(wide[-w2:])
    phases = [_blend(bytes(wide), below, tables, scale, k) for k in range(scale)]
    return b"".join(phase[r * w2:(r + 1) * w2] for r in range(height) for phase in phases)


# ---- grayscale --------------------------------------------------------------------------------------------
def _samples(frame: bytes, layout: Layout, signed: bool = False):
    """The frame's samples as an array (native byte order) or, for unsigned 8 bits, the bytes themselves."""
    if layout.bps == 1:
        return array("b", frame) if signed else frame
    values = array(("h" if signed else "H") if layout.bps == 2 else ("i" if signed else "I"))
    values.frombytes(frame)
    if layout.little != _NATIVE_LITTLE:
        values.byteswap()
    return values


def _decode_value(info: PixelInfo):
    shift, bits, signed = info.shift, info.bits_stored, info.signed
    mask, sign = (1 << bits) - 1, 1 << (bits - 1)

    def value(raw: int) -> int:
        v = (raw >> shift) & mask
        return v - (1 << bits) if signed and v & sign else v
    return value


def _mono(frame: bytes, layout: Layout, info: PixelInfo, window, exclude: int | None) -> bytes:
    if layout.bps == 2 and not info.shift:
        out = _mono16(frame, layout, info, window, exclude)
        if out is not None:
            return out
    values = _samples(frame, layout, signed=info.signed)
    value = _decode_value(info)
    fast = _plain_range(values, layout, info, exclude)
    if fast is not None:
        # Clean samples (no bits outside Bits Stored): a table over the value range, no per-value set.
        vmin, vmax = fast
        raws = range(vmin, vmax + 1)
        modality = None
        lo, hi = _window({vmin: _modality(vmin, info), vmax: _modality(vmax, info)}, window, info, None, int)
    else:
        raws = set(values)
        modality = {raw: _modality(value(raw), info) for raw in raws}
        lo, hi = _window(modality, window, info, exclude, value)
    span = hi - lo
    flip = info.photometric == "MONOCHROME1"
    size = 256 if layout.bps == 1 else 65536 if layout.bps == 2 else 0
    table = bytearray(size) if size else {}
    for raw in raws:
        m = modality[raw] if modality is not None else _modality(raw, info)
        g = 0 if m <= lo else 255 if m >= hi else int((m - lo) * 255 / span + 0.5)
        # Signed samples index from the end: table[-1] is the entry of 0xFFFF, as two's complement has it.
        table[raw if size == 0 or raw >= 0 else raw % size] = 255 - g if flip else g
    if layout.bps == 1 and not info.signed:
        return frame.translate(bytes(table))
    return bytes(map(table.__getitem__, values))


CLIP_TAKE = 1 << 20  # samples: see _mono_numpy


def _mono_numpy(np, frame: bytes, layout: Layout, info: PixelInfo, window, exclude: int | None) -> bytes:
    """_mono with numpy: the gray value of each distinct stored sample by the same formula (float64, the same
    operations in the same order as Python's floats), then one look-up per pixel."""
    kind = "i" if info.signed else "u"
    dtype = np.dtype(f"{'<' if layout.little else '>'}{kind}{layout.bps}")
    raw = np.frombuffer(frame, dtype=dtype, count=layout.rows * layout.columns)
    bits, shift = info.bits_stored, info.shift
    if not raw.size:
        return b""
    if not shift:
        clean = _clean_range_gray(np, raw, info, window, exclude)
        if clean is not None:
            vmin, vmax, gray = clean
            # Every index below lies within its table (vmin..vmax, by construction): take's "clip" mode, which
            # skips the bounds check that is a third of a frame's look-up, gives the same values; but it copies
            # the indices as 8-byte integers first (60 MB for a 15 MB radiograph, the CLI's peak): frames up to
            # CLIP_TAKE samples only.
            clip = raw.size <= CLIP_TAKE
            if vmin >= 0:  # index the table by the samples themselves (no shifted copy of the frame)
                table = gray
                if vmin:
                    table = np.zeros(vmax + 1, dtype=np.uint8)
                    table[vmin:] = gray
                return (np.take(table, raw, mode="clip") if clip else table[raw]).tobytes()
            index = raw.astype(np.int64) - vmin
            return (np.take(gray, index, mode="clip") if clip else gray[index]).tobytes()
    if layout.bps <= 2:
        # a table over every possible container value, indexed by the unsigned view of the samples
        width = 8 * layout.bps
        index = raw.view(f"{dtype.byteorder}u{layout.bps}")
        seen = np.zeros(1 << width, dtype=bool)
        seen[index] = True  # (bincount would first copy the frame into 8-byte integers)
        present = np.flatnonzero(seen)  # unsigned container values present
        values = present.astype(np.int64)
        if info.signed:
            values = np.where(values >= 1 << (width - 1), values - (1 << width), values)
    else:
        present, index = np.unique(raw, return_inverse=True)
        values = present.astype(np.int64)
    decoded = (values >> shift) & ((1 << bits) - 1)
    if info.signed:
        decoded = np.where(decoded & (1 << (bits - 1)), decoded - (1 << bits), decoded)
    gray = _gray_numpy(np, decoded, info, window, exclude)
    if layout.bps <= 2:
        table = np.zeros(1 << (8 * layout.bps), dtype=np.uint8)
        table[present] = gray
        # a table over every container value
        return (np.take(table, index, mode="clip") if index.size <= CLIP_TAKE else table[index]).tobytes()
    index = index.reshape(-1)  # unique's inverse: an index into `present`
    return (np.take(gray, index, mode="clip") if index.size <= CLIP_TAKE else gray[index]).tobytes()


def _plain_samples(raw, info: PixelInfo) -> tuple[int, int] | None:
    """(vmin, vmax) of samples that are plain: every one within Bits Stored (signed or not) and not shifted;
    None otherwise (the frame is then decoded to its values first)."""
    if info.shift:
        return None
    bits = info.bits_stored
    vmin, vmax = compiled.extremes(raw) or (int(raw.min()), int(raw.max()))
    lo_ok, hi_ok = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if info.signed else (0, (1 << bits) - 1)
    return (vmin, vmax) if lo_ok <= vmin and vmax <= hi_ok else None


def _clean_range(raw, info: PixelInfo, exclude: int | None) -> tuple[int, int] | None:
    """(vmin, vmax) of clean samples (plain: _plain_samples, the excluded value not at an end, a range under
    2**20 values: a table over the range, as _plain_range has it); None otherwise."""
    plain = _plain_samples(raw, info)
    if plain is None or exclude in plain or plain[1] - plain[0] >= 1 << 20:
        return None
    return plain


def _clean_range_gray(np, raw, info: PixelInfo, window, exclude: int | None):
    """(vmin, vmax, the gray value of each of vmin..vmax) for clean samples (_clean_range); None otherwise."""
    clean = _clean_range(raw, info, exclude)
    if clean is None:
        return None
    vmin, vmax = clean
    values = np.arange(vmin, vmax + 1, dtype=np.int64)
    return vmin, vmax, _gray_numpy(np, values, info, window, None, ascending=True)


def ink_cuts(buf, offset: int, layout: Layout, info: PixelInfo, thresholds, *, exclude: int | None = None,
             numpy=None):
    """Where a grayscale frame's samples are plain (within Bits Stored, not shifted), its gray value (gray_frame
    with the "auto" window, not inverted) is a monotone function of them: (the samples as a rows x columns array,
    for each t of `thresholds` an (op, cut) with gray >= t exactly where `sample op cut`, op ">=" or "<").
    A caller can then threshold the stored samples as it would the rendered frame, without rendering it.
    None where the frame does not render that way, or a cut does not fit the samples' type (render it)."""
    np = numpy
    if (np is None or info.samples != 1 or info.photometric == "PALETTE COLOR" or info.shift
            or not layout.rows * layout.columns):
        return None
    kind = "i" if info.signed else "u"
    dtype = np.dtype(f"{'<' if layout.little else '>'}{kind}{layout.bps}")
    raw = np.frombuffer(memoryview(buf)[offset:offset + layout.frame_length], dtype=dtype,
                        count=layout.rows * layout.columns)
    kept = _kept_range(raw, info, exclude)
    cuts = None if kept is None else _auto_cuts(kept[0], kept[1], info, thresholds, kept[2], kept[3])
    if cuts is None:
        return None
    # the dtype's limits (np.iinfo's, without making one: ~4 us a frame)
    bits = 8 * dtype.itemsize
    lowest, highest = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if info.signed else (0, (1 << bits) - 1)
    if any(not lowest <= cut <= highest for _, cut in cuts):
        return None
    return raw.reshape(layout.rows, layout.columns), cuts


def _kept_range(raw, info: PixelInfo, exclude: int | None) -> tuple[int, int, int, int] | None:
    """(vmin, vmax, low, high): the samples' range, and the lowest and highest of the values the "auto" window
    spans (all but the mask's fill value, unless it is all there is: _gray_numpy's `kept`, on every path of
    _mono_numpy). None where the samples are not plain (_plain_samples)."""
    plain = _plain_samples(raw, info)
    if plain is None:
        return None
    vmin, vmax = low, high = plain
    if vmin < vmax and exclude == vmin:  # the fill value at an end: the window from the next value present
        low = int(raw.min(where=raw != vmin, initial=vmax))
    if vmin < vmax and exclude == vmax:
        high = int(raw.max(where=raw != vmax, initial=vmin))
    return vmin, vmax, low, high


def _auto_cuts(vmin: int, vmax: int, info: PixelInfo, thresholds, low: int | None = None,
               high: int | None = None) -> list[tuple[str, int]] | None:
    """ink_cuts' (op, cut) for each threshold of samples vmin..vmax, from _gray_numpy's formula for the "auto"
    window over low..high (by default the whole range) evaluated on single values: the same float64
    operations in the same order, so the same gray values as its table, without making the table (a dozen
    numpy calls). The gray value never decreases (or never increases) with the sample: each cut is where it
    crosses its threshold, found from a guess on the straight line and checked on either side. None where
    that path would not take the formula (a span that is not finite)."""
    slope, intercept = info.rescale_slope, info.rescale_intercept
    low, high = vmin if low is None else low, vmax if high is None else high
    ends = (low * slope + intercept, high * slope + intercept)
    if not all(math.isfinite(v) for v in ends):
        return None
    lo, hi = min(ends), max(ends)
    if hi <= lo:
        hi = lo + 1
    span = hi - lo
    if not (span > 0 and math.isfinite(span)):
        return None
    flip = info.photometric == "MONOCHROME1"
    if slope == 1 and float(intercept).is_integer() and float(lo).is_integer() and span <= _WHOLE_SPAN:
        cuts = _whole_cuts(vmin, vmax, int(lo) - int(intercept), int(span), flip, thresholds)
        if cuts is not None:
            return cuts

    def gray(v: int) -> int:
        g = (v * slope + intercept - lo) * 255 / span + 0.5  # clipped to 0..255 and truncated, as there
        g = 0 if g <= 0.0 else 255 if g >= 255.0 else int(g)
        return 255 - g if flip else g

    first, last = gray(vmin), gray(vmax)
    rising = last >= first
    cuts = []
    for t in thresholds:
        # the first sample at which the gray value reaches t (rising) or falls below it (falling)
        at = (lambda v: gray(v) >= t) if rising else (lambda v: gray(v) < t)
        guess = vmin if last == first else vmin + round((t - 0.5 - first) / (last - first) * (vmax - vmin))
        guess = min(max(guess, vmin), vmax)
        # the guess on the straight line is nearly always the cut or the value before it: those two values
        # decide it as _first_true's first steps would; else its search
        if at(guess):
            cut = guess if guess == vmin or not at(guess - 1) else _first_true(at, vmin, vmax + 1, guess)
        elif guess == vmax:
            cut = vmax + 1
        else:
            cut = guess + 1 if at(guess + 1) else _first_true(at, vmin, vmax + 1, guess)
        cuts.append((">=", cut) if rising else ("<", cut))
    return cuts


_WHOLE_SPAN = 1 << 24


def _whole_cuts(vmin: int, vmax: int, base: int, span: int, flip: bool, thresholds) -> list[tuple[str, int]] | None:
    """_auto_cuts where the sample's distance from the window's low end is a whole number d = v - base and the
    span a whole number up to _WHOLE_SPAN (slope 1, whole intercept: most CT and MR): the formula's gray value
    int(d * 255 / span + 0.5) is then floor((510 d + span) / (2 span)) exactly (the float error, under 2**-44,
    is far below the 1 / (2 span) that separates the fraction from a whole number; at a whole number both are
    exact, as _mono16's table has it), so it reaches t from d = ceil((2 t - 1) span / 510) on: each cut in
    whole-number arithmetic, no search. None for a MONOCHROME1 range of one gray value (the search's order of
    cases decides its op there)."""
    if flip and min(255, max(0, (510 * (vmin - base) + span) // (2 * span))) == min(
            255, max(0, (510 * (vmax - base) + span) // (2 * span))):
        return None  # one gray value (after clipping) over the range: the general path
    cuts = []
    for t in thresholds:
        # not flipped: gray >= t from the first such d on; MONOCHROME1 (255 - gray < t): gray >= 256 - t
        at = base - (-(2 * (256 - t if flip else t) - 1) * span // 510)
        cut = vmin if at < vmin else vmax + 1 if at > vmax else at
        cuts.append(("<", cut) if flip else (">=", cut))
    return cuts


def _first_true(at, lo: int, hi: int, guess: int) -> int:
    """The first v of lo..hi - 1 where `at` (false, then true) holds, hi if none: from the guess outwards in
    doubling steps, then halving."""
    guess = min(max(guess, lo), hi - 1)
    if at(guess):
        below, above, step = guess - 1, guess, 1
        while below >= lo and at(below):
            above, step = below, step * 2
            below = above - step
        below = max(below, lo - 1)
    else:
        below, above, step = guess, guess + 1, 1
        while above < hi and not at(above):
            below, step = above, step * 2
            above = below + step
        above = min(above, hi)
    while above - below > 1:
        middle = (below + above) // 2
        if at(middle):
            above = middle
        else:
            below = middle
    return above


def _gray_numpy(np, decoded, info: PixelInfo, window, exclude: int | None, ascending: bool = False):
    """The gray value (uint8) of each decoded sample value in `decoded` (`ascending`: in increasing order)."""
    modality = decoded * info.rescale_slope + info.rescale_intercept
    if window == "header" and info.window is not None:
        window = info.window
    if isinstance(window, tuple):
        center, width = window
        lo, hi = center - width / 2, center + width / 2
    else:
        kept = modality if exclude is None else modality[decoded != exclude]
        if not len(kept):
            kept = modality
        ends = (kept[0].item(), kept[-1].item()) if ascending and exclude is None else (math.nan,)
        if all(math.isfinite(v) for v in ends):
            # v * slope + intercept is monotone in v (IEEE arithmetic), so the extremes are at the ends
            lo, hi = min(ends), max(ends)
        else:
            lo, hi = kept.min().item(), kept.max().item()
        if hi <= lo:
            hi = lo + 1
    span = hi - lo
    m = modality.astype(np.float64, copy=False)  # (a new array: worked on in place below)
    if span > 0 and math.isfinite(span):
        # The same values with fewer passes: the formula never decreases in m (IEEE arithmetic is monotone),
        # gives at most 0.5 at lo and at least 255 at hi, so clipping it to 0..255 and truncating is 0 at or
        # below lo, 255 at or above hi, and the formula's own truncation between (tests/pixels/test_render.py)
        g = m
        g -= lo
        g *= 255
        g /= span
        g += 0.5
        g = np.clip(g, 0.0, 255.0, out=g).astype(np.uint8)
        return 255 - g if info.photometric == "MONOCHROME1" else g
    g = np.where(m <= lo, 0.0, np.where(m >= hi, 255.0, (m - lo) * 255 / span + 0.5)).astype(np.int64)
    if info.photometric == "MONOCHROME1":
        g = 255 - g
    return g.astype(np.uint8)


# ---- 16-bit grayscale by high-byte groups --------------------------------------------------------------
# A frame of 16-bit samples is split into its low and high byte planes (two slices). The samples that share a
# high byte form a group; within a group the gray value is a function of the low byte alone, so the group
# renders with one bytes.translate of the low plane, kept where the high plane holds that byte (a mask from
# another translate, applied as big-integer AND). A frame's values usually span a few high bytes (a 12-bit CT,
# at most 16), so this replaces a Python-level look-up per pixel by a few C-level passes per group; the result
# is the same bytes as the per-pixel table.
_MAX_GROUPS = 24  # more distinct high bytes than this: the per-pixel table is cheaper
_SIGN = bytes(v ^ 0x80 for v in range(256))  # two's complement high byte -> offset binary (order-preserving)
# (made when used, not when the module loads: 0.03 s of a run's start-up that a run with numpy never needs)


def _select(h: int) -> bytes:
    """The table that maps byte h to 255 and every other byte to 0."""
    return bytes(h) + b"\xff" + bytes(255 - h)


def _others(h: int) -> bytes:
    """The table that maps byte h to 0 and every other byte to 255."""
    return b"\xff" * h + b"\0" + b"\xff" * (255 - h)


def _below(m: int) -> bytes:
    return bytes(range(m))  # delete these to keep bytes >= m


def _above(m: int) -> bytes:
    return bytes(range(m + 1, 256))  # delete these to keep bytes <= m
_ZEROS = bytes(256)


def _distinct(plane: bytes, limit: int) -> list[int] | None:
    """The byte values present in `plane`, ascending; None if more than `limit` (one shrinking pass each)."""
    present = []
    rest = plane
    while rest:
        if len(present) == limit:
            return None
        v = rest[0]
        present.append(v)
        rest = rest.translate(None, _BYTES[v])
    return sorted(present)


def _extreme(plane: bytes, highest: bool) -> int:
    """max (or min) of a non-empty bytes object: by iteration when it is short, else by halving the candidate
    range with deleting translates."""
    if len(plane) <= 1024:
        return max(plane) if highest else min(plane)
    lo, hi = 0, 255
    rest = plane
    while lo < hi:
        mid = (lo + hi + 1) // 2 if highest else (lo + hi) // 2
        if highest:
            upper = rest.translate(None, _below(mid))  # the bytes >= mid
            if upper:
                lo, rest = mid, upper
            else:
                hi = mid - 1
        else:
            lower = rest.translate(None, _above(mid))  # the bytes <= mid
            if lower:
                hi, rest = mid, lower
            else:
                lo = mid + 1
    return lo


def _mono16(frame: bytes, layout: Layout, info: PixelInfo, window, exclude: int | None) -> bytes | None:
    """The "auto" or given window of clean 16-bit samples, by high-byte groups; None where it does not apply
    (samples outside Bits Stored, the excluded value at an end of the range, too many groups)."""
    n = layout.rows * layout.columns
    if not n:
        return None
    low, high = (frame[0::2], frame[1::2]) if layout.little else (frame[1::2], frame[0::2])
    offset = 0
    if info.signed:
        high, offset = high.translate(_SIGN), 32768
    groups = _distinct(high, _MAX_GROUPS)
    if groups is None:
        return None
    big = int.from_bytes(low, "little")
    hmin, hmax = groups[0], groups[-1]
    # other pixels are 0 in `top` (no effect on the maximum) and 255 in `bottom` (none on the minimum)
    top = (int.from_bytes(high.translate(_select(hmax)), "little") & big).to_bytes(n, "little")
    vmax = (hmax << 8 | _extreme(top.translate(None, b"\0") or b"\0", True)) - offset
    bottom = (int.from_bytes(high.translate(_others(hmin)), "little") | big).to_bytes(n, "little")
    vmin = (hmin << 8 | _extreme(bottom.translate(None, b"\xff") or b"\xff", False)) - offset
    bits = info.bits_stored
    lo_ok, hi_ok = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if info.signed else (0, (1 << bits) - 1)
    if vmin < lo_ok or vmax > hi_ok or exclude in (vmin, vmax):
        return None  # as _plain_range: the per-value path decides
    lo, hi = _window({vmin: _modality(vmin, info), vmax: _modality(vmax, info)}, window, info, None, int)
    span = hi - lo
    flip = info.photometric == "MONOCHROME1"
    slope, intercept = info.rescale_slope, info.rescale_intercept
    # Integer steps (slope 1, whole intercept and window ends, the usual CT/MR case): the table is runs of each
    # gray value, built once; float(d * 255 / span) + 0.5 truncates to (510 d + span) // (2 span) exactly.
    steps = None
    if slope == 1 and float(intercept).is_integer() and float(lo).is_integer() and float(hi).is_integer():
        whole = int(span)
        starts = [-(-(2 * g - 1) * whole // 510) if g else 0 for g in range(256)] + [whole + 1]
        steps = b"".join(_BYTES[g] * (starts[g + 1] - starts[g]) for g in range(256) if starts[g + 1] > starts[g])
        shift = int(intercept) - int(lo)
    out = 0
    for h in groups:
        base = (h << 8) - offset
        if steps is not None:
            d0 = base + shift  # d of the group's first entry; below 0 is 0, above span is 255
            left = max(0, min(256, -d0))
            right = max(left, min(256, whole + 1 - d0))
            table = bytes(left) + steps[max(0, d0):max(0, d0) + right - left] + b"\xff" * (256 - right)
        else:
            table = bytes(0 if m <= lo else 255 if m >= hi else int((m - lo) * 255 / span + 0.5)
                          for m in [(base + k) * slope + intercept for k in range(256)])
        if flip:
            table = table.translate(_INVERT)
        if table == _ZEROS:
            continue
        out |= int.from_bytes(high.translate(_select(h)), "little") & int.from_bytes(low.translate(table), "little")
    return out.to_bytes(n, "little")


def _modality(v: int, info: PixelInfo) -> float:
    return v * info.rescale_slope + info.rescale_intercept


def _plain_range(values, layout: Layout, info: PixelInfo, exclude: int | None):
    """(min, max) of the stored values when the samples hold nothing but them, else None."""
    if layout.bps == 4 or info.shift or not len(values):
        return None
    if isinstance(values, bytes):  # memchr per candidate beats iterating a million small ints
        vmin = next(v for v in range(256) if _BYTES[v] in values)
        vmax = next(v for v in range(255, -1, -1) if _BYTES[v] in values)
    else:
        vmin, vmax = min(values), max(values)
    bits = info.bits_stored
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if info.signed else (0, (1 << bits) - 1)
    if vmin < lo or vmax > hi or exclude in (vmin, vmax):
        return None
    return vmin, vmax


def _window(modality: dict, window, info: PixelInfo, exclude: int | None, value) -> tuple[float, float]:
    if window == "header" and info.window is not None:
        window = info.window
    if isinstance(window, tuple):
        center, width = window
        return center - width / 2, center + width / 2
    ms = [m for raw, m in modality.items() if exclude is None or value(raw) != exclude] or list(modality.values())
    lo, hi = min(ms), max(ms)
    if hi <= lo:
        hi = lo + 1
    return lo, hi


# ---- colour -----------------------------------------------------------------------------------------------
def _plane8(frame: bytes, layout: Layout, info: PixelInfo, s: int) -> bytes:
    """Sample `s` of every pixel, reduced to its top 8 stored bits."""
    n, bps = layout.rows * layout.columns, layout.bps
    if layout.planar == 0 and layout.samples > 1:
        step = layout.samples * bps
        raw = frame[s * bps::step] if bps == 1 else _interleave([frame[s * bps + k::step] for k in range(bps)])
    else:
        raw = frame[s * n * bps:(s + 1) * n * bps]
    top = info.shift + info.bits_stored - 8  # the lowest of the top 8 stored bits
    if bps == 1:
        return raw if top == 0 else raw.translate(bytes(_top8(v, top) for v in range(256)))
    if bps == 2 and top == 8:
        return raw[1::2] if layout.little else raw[0::2]
    return bytes(_top8(v, top) for v in _samples(raw, layout))


def _top8(v: int, top: int) -> int:
    return (v >> top) & 0xFF if top >= 0 else (v << -top) & 0xFF


def _interleave(parts: list[bytes]) -> bytes:
    out = bytearray(sum(len(p) for p in parts))
    k = len(parts)
    for i, p in enumerate(parts):
        out[i::k] = p
    return bytes(out)


# YBR_FULL to RGB (PS3.3 C.7.6.3.1.2) as whole-number offsets from Y, one table per chroma term: the same
# integers with and without numpy.
_CR_R = tuple(round(1.402 * (v - 128)) for v in range(256))
_CB_G = tuple(round(0.344136 * (v - 128)) for v in range(256))
_CR_G = tuple(round(0.714136 * (v - 128)) for v in range(256))
_CB_B = tuple(round(1.772 * (v - 128)) for v in range(256))
_CLIP = bytes(min(255, max(0, v - 512)) for v in range(1536))  # index v + 512
LEGIBLE = 64  # Y this far from the ground or farther sets coloured text apart without its channel


def _ybr_gray(frame: bytes, layout: Layout, info: PixelInfo, numpy=None, saturated: int = SATURATED) -> bytes:
    """Y, with the pure colours of annotation taken as farthest() takes them in RGB. Y alone hides coloured
    text as luminance does: green 10 px text on a mid-gray YBR_FULL endoscopy frame (held-out draw 20290915)
    was 150 against 112, below the screen's first light threshold, and neither the screen nor OCR saw its
    three lines of PHI. Where no chroma is far enough from neutral for any pixel to be saturated, Y as it is;
    and Y wherever it is LEGIBLE from the ground (see below)."""
    y = _luma_plane(frame, layout, info)
    if info.bits_stored + info.shift != 8 or layout.bps != 1:
        return y
    if layout.subsampled:  # Y0 Y1 Cb Cr: one Cb and one Cr for two pixels
        cb, cr = frame[2::4], frame[3::4]
        cb, cr = _interleave([cb, cb]), _interleave([cr, cr])
    else:
        cb, cr = _plane8(frame, layout, info, 1), _plane8(frame, layout, info, 2)
    reach = max(abs(128 - min(cb)), abs(max(cb) - 128), abs(128 - min(cr)), abs(max(cr) - 128)) if cb else 0
    if 2 * (1.772 + 1.402) * reach < saturated:  # max - min of R, G, B is under 2 (|Cb'| 1.772 + |Cr'| 1.402)
        return y
    if numpy is not None:
        np = numpy
        ya, cba, cra = (np.frombuffer(v, np.uint8).astype(np.int16) for v in (y, cb, cr))
        tables = [np.array(t, np.int16) for t in (_CR_R, _CB_G, _CR_G, _CB_B)]
        clip = np.frombuffer(_CLIP, np.uint8)
        r = clip[ya + tables[0][cra] + 512]
        g = clip[ya - tables[1][cba] - tables[2][cra] + 512]
        b = clip[ya + tables[3][cba] + 512]
        far = farthest(y, r, g, b, numpy, saturated)
    else:
        r = bytes(_CLIP[v + _CR_R[c] + 512] for v, c in zip(y, cr))
        g = bytes(_CLIP[v - _CB_G[d] - _CR_G[c] + 512] for v, d, c in zip(y, cb, cr))
        b = bytes(_CLIP[v + _CB_B[d] + 512] for v, d in zip(y, cb))
        far = farthest(y, r, g, b, None, saturated)
    if far == y:
        return y
    # Only where Y itself stands close to the ground: coloured text Y already sets apart (cyan at 179 on a
    # ground of 9) keeps its Y, which OCR reads as before; the channel is taken where Y hides the text.
    g0 = ground(y)
    keep = int.from_bytes(y.translate(bytes(0xFF if abs(v - g0) >= LEGIBLE else 0 for v in range(256))), "little")
    every = (1 << (8 * len(y))) - 1
    return ((int.from_bytes(y, "little") & keep) | (int.from_bytes(far, "little") & (keep ^ every))).to_bytes(
        len(y), "little")


def _luma_plane(frame: bytes, layout: Layout, info: PixelInfo) -> bytes:
    """Y of YBR is the luminance already."""
    if layout.subsampled:
        if layout.bps != 1:
            raise ValueError("subsampled YBR with more than 8 bits")
        return _interleave([frame[0::4], frame[1::4]])
    return _plane8(frame, layout, info, 0)


def _palette(frame: bytes, layout: Layout, info: PixelInfo, numpy=None, saturated: int = SATURATED) -> bytes:
    """Luminance, with the pure colours of annotation taken as farthest() takes them in RGB: a palette's green
    text on mid gray is 150 against 113 in luminance alone, and a held-out draw (20281120) lost a date-time and
    an accession number that way, neither read nor detected, where the same text in RGB was."""
    pal = info.palette
    planes = (pal.luminance, pal.red, pal.green, pal.blue)
    if layout.bps == 1:
        entries = [pal.entry(v) for v in range(256)]
        gray, r, g, b = (frame.translate(bytes(t[e] for e in entries)) for t in planes)
    else:
        values = _samples(frame, layout)
        entries = {raw: pal.entry(raw) for raw in set(values)}
        gray, r, g, b = (bytes(map({raw: t[e] for raw, e in entries.items()}.__getitem__, values)) for t in planes)
    return farthest(gray, r, g, b, numpy, saturated, PALETTE_SPARSE)
