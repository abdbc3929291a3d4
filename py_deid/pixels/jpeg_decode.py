"""Decode a sequential DCT JPEG (ITU-T T.81 | ISO 10918-1): baseline and extended, Huffman coded, 8 or 12-bit
samples, 1 or 3 components, any sampling factors, restart intervals. Progressive, arithmetic-coded, lossless and
hierarchical JPEG raise JpegUnsupported.

The fallback decoder for JPEG Baseline (4.50) and Extended (4.51) frames when the host's codec service has no
decoder or rejects a frame (the browser's libjpeg-turbo build is 8-bit only; pylibjpeg-libjpeg rejects some real
files that libjpeg 6b and GDCM read, e.g. zeros in a sequential scan's Ss/Se bytes). Pure computation, so it lives
in the core: the marker parser and Huffman tables are the ones DCT-domain masking uses (jpeg_markers,
jpeg_huffman). Steps: entropy decoding and dequantisation (F.2.2, F.2.1.4) into one coefficient array per
component; the inverse DCT (A.3.3) and level shift; chroma up-sampling as libjpeg's default "fancy" (triangle)
filter for 2:1 ratios, sample replication for other ratios; YCbCr -> RGB (JFIF / T.871) unless the codestream
says its components are R, G, B. Given numpy (the native host's codec service passes it in: the core imports no
host library) the IDCT is one matrix product over all blocks; without it (Pyodide in the browser has no numpy,
see DESIGN.md) each block sums the basis functions of its non-zero coefficients only.

Every read stays inside the frame: each restart interval is unstuffed and zero-padded, decoding stops after the
number of MCUs the frame header implies, and an interval whose MCUs would need bits past its end raises
JpegUnsupported("entropy-coded data ends early"); so do bad Huffman codes, coefficient runs past 63 and restart
markers that do not match the image size.
"""

from __future__ import annotations

import math
import sys
from array import array
from operator import add
from dataclasses import dataclass

from .jpeg_huffman import table, unstuff
from .jpeg_markers import JpegImage, JpegUnsupported, Scan, intervals, parse

# ZIGZAG[k]: the natural (row-major) position of the k-th coefficient in zig-zag order (T.81 Figure A.6).
ZIGZAG = (0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
          14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39,
          46, 53, 60, 61, 54, 47, 55, 62, 63)

# C[u][x] = C(u)/2 * cos((2x + 1) u pi / 16): f(y, x) = sum_v sum_u C[v][y] C[u][x] F(v, u)  (A.3.3)
_C = [[(math.sqrt(0.5) if u == 0 else 1.0) / 2 * math.cos((2 * x + 1) * u * math.pi / 16) for x in range(8)]
      for u in range(8)]
# The 64 sample values one unit coefficient at natural position v*8+u contributes to.
_BASIS = [tuple(_C[i >> 3][y] * _C[i & 7][x] for y in range(8) for x in range(8)) for i in range(64)]


@dataclass
class Decoded:
    width: int
    height: int
    precision: int
    components: int  # 1 (gray) or 3 (RGB)
    samples: list[int] | object  # interleaved, row-major: a numpy array if numpy was given, else a list of ints


def decode(data: bytes, *, photometric: str = "", expect: tuple[int, int, int] | None = None,
           numpy=None) -> Decoded:
    """Decode one JPEG codestream. `photometric`: the DICOM photometric interpretation (decides RGB vs YCbCr
    when the codestream does not say, as in jpeg_markers.JpegImage.rgb_coded). Three components come back as
    RGB. `expect`: (columns, rows, samples) the header declares, checked before anything is allocated.
    `numpy`: the numpy module, to reconstruct with it (else pure Python). Raises JpegUnsupported for any
    codestream it cannot decode correctly."""
    img = parse(data)
    if img.width == 0:
        raise JpegUnsupported("frame header has no width")
    if expect is not None and (img.width, img.height, len(img.components)) != tuple(expect):
        raise JpegUnsupported("codestream size or components differ from the image description")
    if len(img.components) not in (1, 3):
        raise JpegUnsupported("only 1 or 3 components")
    mcux = -(-img.width // (8 * img.hmax))
    mcuy = -(-img.height // (8 * img.vmax))
    if len(img.components) == 1:  # a single-component frame is never interleaved: its MCU is one block
        c = img.components[0]
        strides = [-(-(-(-img.width * c.h // img.hmax)) // 8)]
        rows = [-(-(-(-img.height * c.v // img.vmax)) // 8)]
    else:
        strides = [mcux * c.h for c in img.components]
        rows = [mcuy * c.v for c in img.components]
    stores = [array("q", [0]) * (s * r * 64) for s, r in zip(strides, rows)]
    coded = [False] * len(img.components)
    for scan in img.scans:
        _scan(img, scan, stores, strides, mcux, mcuy)
        for index, _, _ in scan.components:
            coded[index] = True
    if not all(coded):
        raise JpegUnsupported("a component is in no scan")
    rgb_to_convert = len(img.components) == 3 and not img.rgb_coded(photometric)
    if numpy is not None:
        samples = _finish_numpy(numpy, img, stores, strides, rows, rgb_to_convert)
    else:
        samples = _finish_python(img, stores, strides, rows, rgb_to_convert)
    return Decoded(img.width, img.height, img.precision, len(img.components), samples)


def decode_frame(data: bytes, info: dict, *, numpy=None) -> bytes:
    """The codec service decode contract (py_deid.hosts.native_codecs): `info` as PixelInfo.codec_info() gives
    it; samples little endian in a container of info["bits_allocated"], colour interleaved and RGB."""
    out = decode(data, photometric=info.get("photometric_interpretation", ""), numpy=numpy,
                 expect=(info["columns"], info["rows"], info["samples_per_pixel"]))
    bits = info["bits_allocated"]
    if bits not in (8, 16) or out.precision > bits:
        raise JpegUnsupported("JPEG sample precision does not fit the bits allocated")
    if not isinstance(out.samples, list):
        return out.samples.astype("<u1" if bits == 8 else "<u2").tobytes()
    if bits == 8:
        return bytes(out.samples)
    packed = array("H", out.samples)
    if sys.byteorder == "big":  # pragma: no cover
        packed.byteswap()
    return packed.tobytes()


# ---- entropy decoding -------------------------------------------------------------------------------------
def _scan(img: JpegImage, scan: Scan, stores, strides, mcux: int, mcuy: int) -> None:
    """Decode one scan's coefficients (dequantised, natural order) into the per-component stores."""
    plan, offsets = [], []
    for slot, (index, td, ta) in enumerate(scan.components):
        comp = img.components[index]
        q = scan.quant.get(comp.tq)
        if q is None or len(q) != 64:
            raise JpegUnsupported("scan uses an undefined table")
        zq = [(ZIGZAG[k], q[k]) for k in range(64)]
        entry = (slot, table(scan.dc_tables[td]).lookup, table(scan.ac_tables[ta]).lookup, zq, stores[index])
        if len(scan.components) > 1:
            for by in range(comp.v):
                for bx in range(comp.h):
                    plan.append(entry)
                    offsets.append((index, by * strides[index] + bx))
        else:
            plan.append(entry)
            offsets.append((index, 0))
    # Block index (times 64) in its component's store, for every block of the scan in coding order.
    targets = []
    if len(scan.components) > 1:
        comps = img.components
        for my in range(mcuy):
            for mx in range(mcux):
                for index, off in offsets:
                    c = comps[index]
                    targets.append(((my * c.v * strides[index]) + mx * c.h + off) * 64)
        total = mcux * mcuy
    else:
        index = scan.components[0][0]
        c = img.components[index]
        wide = -(-(-(-img.width * c.h // img.hmax)) // 8)
        high = -(-(-(-img.height * c.v // img.vmax)) // 8)
        stride = strides[index]
        targets = [(y * stride + x) * 64 for y in range(high) for x in range(wide)]
        total = wide * high
    per = scan.restart or total
    spans = intervals(img.data, scan.header_end, scan.data_end)
    if len(spans) != -(-total // per):
        raise JpegUnsupported("restart markers do not match the image size (truncated or corrupt scan)")
    t = 0
    for i, (start, stop, _) in enumerate(spans):
        count = min(per, total - i * per)
        t = _interval(unstuff(img.data[start:stop]), count, plan, targets, t)


def _interval(d: bytes, count: int, plan, targets, t: int) -> int:
    """Decode `count` MCUs of one restart interval (F.2.2); DC predictors start at 0 (F.2.1.3.1)."""
    limit = (len(d) - 4) * 8  # unstuff() appends 4 zero bytes of look-ahead
    preds = [0] * len(plan)
    frombytes = int.from_bytes
    pos = 0
    for _ in range(count):
        for slot, dct, act, zq, store in plan:
            base = targets[t]
            t += 1
            p = pos >> 3
            e = dct[(frombytes(d[p:p + 3], "big") >> (8 - (pos & 7))) & 0xFFFF]
            if not e:
                raise JpegUnsupported("bad Huffman code")
            pos += e >> 8
            s = e & 0xFF
            if s:
                if s > 16:
                    raise JpegUnsupported("bad DC difference category")
                p = pos >> 3
                v = ((frombytes(d[p:p + 3], "big") >> (8 - (pos & 7))) & 0xFFFF) >> (16 - s)
                pos += s
                preds[slot] += v if v >> (s - 1) else v - (1 << s) + 1
            store[base] = preds[slot] * zq[0][1]
            k = 1
            while k < 64:
                p = pos >> 3
                e = act[(frombytes(d[p:p + 3], "big") >> (8 - (pos & 7))) & 0xFFFF]
                if not e:
                    raise JpegUnsupported("bad Huffman code")
                pos += e >> 8
                rs = e & 0xFF
                s = rs & 15
                if s:
                    k += rs >> 4
                    if k > 63:
                        raise JpegUnsupported("coefficient index past 63")
                    p = pos >> 3
                    v = ((frombytes(d[p:p + 3], "big") >> (8 - (pos & 7))) & 0xFFFF) >> (16 - s)
                    pos += s
                    nat, q = zq[k]
                    store[base + nat] = (v if v >> (s - 1) else v - (1 << s) + 1) * q
                    k += 1
                elif rs == 0xF0:
                    k += 16
                else:
                    break
        if pos > limit:
            raise JpegUnsupported("entropy-coded data ends early")
    return t


# ---- reconstruction with numpy ----------------------------------------------------------------------------
def _finish_numpy(np, img: JpegImage, stores, strides, rows, convert: bool):
    c = np.array(_C)
    kernel = np.kron(c, c)  # (v,u) x (y,x)
    top = (1 << img.precision) - 1
    shift = (1 << (img.precision - 1)) + 0.5
    planes = []
    for comp, store, stride, high in zip(img.components, stores, strides, rows):
        coef = np.frombuffer(store, dtype=np.int64).reshape(-1, 64).astype(np.float64)
        px = np.clip(np.floor(coef @ kernel + shift), 0, top).astype(np.int32)
        plane = px.reshape(high, stride, 8, 8).transpose(0, 2, 1, 3).reshape(high * 8, stride * 8)
        cw = -(-img.width * comp.h // img.hmax)
        ch = -(-img.height * comp.v // img.vmax)
        plane = plane[:ch, :cw]
        plane = _upsample_numpy(np, plane, img.hmax // comp.h if img.hmax % comp.h == 0 else 0,
                                img.vmax // comp.v if img.vmax % comp.v == 0 else 0, comp, img)
        planes.append(plane[:img.height, :img.width])
    if len(planes) == 1:
        return planes[0].reshape(-1)
    if convert:
        centre = 1 << (img.precision - 1)
        y, cb, cr = (p.astype(np.float64) for p in planes)
        cb -= centre
        cr -= centre
        planes = [y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb]
        planes = [np.clip(np.floor(p + 0.5), 0, top).astype(np.int32) for p in planes]
    return np.stack(planes, axis=-1).reshape(-1)


def _upsample_numpy(np, plane, rx: int, ry: int, comp, img):
    if rx == 2 and ry == 2:  # libjpeg h2v2 "fancy": vertical 3:1 sums, then horizontal 3:1 with >> 4
        above = np.vstack([plane[:1], plane[:-1]])
        below = np.vstack([plane[1:], plane[-1:]])
        sums = np.empty((plane.shape[0] * 2, plane.shape[1]), np.int32)
        sums[0::2] = 3 * plane + above
        sums[1::2] = 3 * plane + below
        return _h2(np, sums, 8, 7, 4)
    if rx == 2 and ry == 1:
        return _h2(np, plane, 1, 2, 2)
    if rx == 1 and ry == 2:
        above = np.vstack([plane[:1], plane[:-1]])
        below = np.vstack([plane[1:], plane[-1:]])
        out = np.empty((plane.shape[0] * 2, plane.shape[1]), np.int32)
        out[0::2] = (3 * plane + above + 1) >> 2
        out[1::2] = (3 * plane + below + 2) >> 2
        return out
    return _replicate_numpy(np, plane, comp, img)


def _h2(np, a, bias_even: int, bias_odd: int, shift: int):
    left = np.hstack([a[:, :1], a[:, :-1]])
    right = np.hstack([a[:, 1:], a[:, -1:]])
    out = np.empty((a.shape[0], a.shape[1] * 2), np.int32)
    out[:, 0::2] = (3 * a + left + bias_even) >> shift
    out[:, 1::2] = (3 * a + right + bias_odd) >> shift
    return out


def _replicate_numpy(np, plane, comp, img):
    """Any other ratio: each output sample takes the component sample whose area covers it."""
    ys = (np.arange(img.height) * comp.v) // img.vmax
    xs = (np.arange(img.width) * comp.h) // img.hmax
    return plane[ys[:, None], xs[None, :]]


# ---- reconstruction in pure Python ------------------------------------------------------------------------
def _finish_python(img: JpegImage, stores, strides, rows, convert: bool) -> list[int]:
    top = (1 << img.precision) - 1
    shift = (1 << (img.precision - 1)) + 0.5
    basis = _BASIS
    scaled_basis: dict[tuple[int, int], tuple[float, ...]] = {}
    planes = []
    for comp, store, stride, high in zip(img.components, stores, strides, rows):
        cw = -(-img.width * comp.h // img.hmax)
        ch = -(-img.height * comp.v // img.vmax)
        plane = [[0] * (stride * 8) for _ in range(high * 8)]
        for b in range(stride * high):
            by, bx = divmod(b, stride)
            if by * 8 >= ch:
                break
            o = b * 64
            seg = store[o:o + 64]
            acs = [(i, v) for i, v in enumerate(seg) if v and i]
            if not acs:
                value = int(seg[0] * 0.125 + shift)
                value = 0 if value < 0 else top if value > top else value
                vals = [value] * 64
            else:
                out = [seg[0] * 0.125 + shift] * 64  # int() of these floors them: negatives are clamped below
                for key in acs:
                    scaled = scaled_basis.get(key)
                    if scaled is None:  # quantised coefficients repeat: each (position, value) is scaled once
                        if len(scaled_basis) > 65536:
                            scaled_basis.clear()
                        i, v = key
                        scaled = scaled_basis[key] = tuple(v * f for f in basis[i])
                    out = list(map(add, out, scaled))
                vals = list(map(int, out))
                if min(vals) < 0 or max(vals) > top:
                    vals = [0 if x < 0 else top if x > top else x for x in vals]
            x0 = bx * 8
            for r in range(8):
                plane[by * 8 + r][x0:x0 + 8] = vals[r * 8:r * 8 + 8]
        plane = [row[:cw] for row in plane[:ch]]
        rx = img.hmax // comp.h if img.hmax % comp.h == 0 else 0
        ry = img.vmax // comp.v if img.vmax % comp.v == 0 else 0
        plane = _upsample_python(plane, rx, ry, comp, img)
        planes.append([row[:img.width] for row in plane[:img.height]])
    if len(planes) == 1:
        return [v for row in planes[0] for v in row]
    out: list[int] = []
    if not convert:
        for r0, r1, r2 in zip(*planes):
            for a, b, c in zip(r0, r1, r2):
                out += (a, b, c)
        return out
    centre = 1 << (img.precision - 1)
    for r0, r1, r2 in zip(*planes):
        for y, cb, cr in zip(r0, r1, r2):
            cb -= centre
            cr -= centre
            for x in (y + 1.402 * cr + 0.5, y - 0.344136 * cb - 0.714136 * cr + 0.5, y + 1.772 * cb + 0.5):
                v = math.floor(x)
                out.append(0 if v < 0 else top if v > top else v)
    return out


def _h2_row(a: list[int], bias_even: int, bias_odd: int, shift: int) -> list[int]:
    n = len(a)
    out = [0] * (2 * n)
    for i in range(n):
        c3 = 3 * a[i]
        out[2 * i] = (c3 + a[i - 1 if i else 0] + bias_even) >> shift
        out[2 * i + 1] = (c3 + a[i + 1 if i + 1 < n else i] + bias_odd) >> shift
    return out


def _upsample_python(plane: list[list[int]], rx: int, ry: int, comp, img) -> list[list[int]]:
    n = len(plane)
    if rx == 1 and ry == 1:
        return plane
    if ry == 2 and rx in (1, 2):
        out = []
        for i, row in enumerate(plane):
            above = plane[i - 1 if i else 0]
            below = plane[i + 1 if i + 1 < n else i]
            upper = [3 * a + b for a, b in zip(row, above)]
            lower = [3 * a + b for a, b in zip(row, below)]
            if rx == 2:
                out += [_h2_row(upper, 8, 7, 4), _h2_row(lower, 8, 7, 4)]
            else:
                out += [[(v + 1) >> 2 for v in upper], [(v + 2) >> 2 for v in lower]]
        return out
    if rx == 2 and ry == 1:
        return [_h2_row(row, 1, 2, 2) for row in plane]
    xs = [(x * comp.h) // img.hmax for x in range(img.width)]
    return [[plane[(y * comp.v) // img.vmax][x] for x in xs] for y in range(img.height)]
