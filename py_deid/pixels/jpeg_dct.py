"""Blank rectangles of a JPEG image in the DCT domain, in pure Python, without decoding any pixel.

Every block of every MCU that touches a box gets the DC value whose flat block decodes to the target colour
and no AC coefficient; every other block keeps its coefficients. The entropy-coded bits of untouched MCUs
are copied as they are; only blanked MCUs and the MCU after each blanked run (whose DC difference changes)
are re-encoded, with the image's own Huffman tables. If those tables lack a code the new data needs,
the scan is re-encoded in full with optimal tables written in front of it (Annex K.2). Restart intervals
without a blanked MCU are copied byte for byte. Frame header, quantisation tables and the transfer
syntax stay: no second lossy compression happens anywhere.
"""

from __future__ import annotations

from .jpeg_huffman import BitWriter, category, optimal_spec, stuff, table, unstuff
from .jpeg_markers import DHT, JpegImage, JpegUnsupported, Scan, intervals, parse
from .layout import Box


class _NeedTables(Exception):
    """A code the new data needs is missing from the image's Huffman tables."""


def blank(data: bytes, boxes: list[Box], *, photometric: str, gray_target: int = 0,
          expect: tuple[int, int, int] | None = None) -> tuple[bytes, list[Box]]:
    """Return the JPEG with every MCU touching a box blanked, and the blanked rectangles (MCU-aligned,
    clipped to the image). `photometric`: the DICOM photometric interpretation (decides RGB vs YCbCr when
    the codestream does not say). `gray_target`: the sample value a single-component image is blanked to
    (colour images go to black). `expect`: (columns, rows, samples) the header declares; a codestream that
    disagrees is not touched. Raises JpegUnsupported when the surgery cannot run on this image."""
    img = parse(data)
    if expect is not None and (img.width, img.height, len(img.components)) != tuple(expect):
        raise JpegUnsupported("codestream size or components differ from the image description")
    cw, ch = 8 * img.hmax, 8 * img.vmax
    cells_x = -(-img.width // cw)
    cells: set[tuple[int, int]] = set()
    done: list[Box] = []
    for x, y, w, h in boxes:
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, img.width), min(y + h, img.height)
        if x1 <= x0 or y1 <= y0:
            continue
        cx0, cy0, cx1, cy1 = x0 // cw, y0 // ch, -(-x1 // cw), -(-y1 // ch)
        cells.update((cx, cy) for cy in range(cy0, cy1) for cx in range(cx0, cx1))
        gx0, gy0 = cx0 * cw, cy0 * ch
        done.append((gx0, gy0, min(cx1 * cw, img.width) - gx0, min(cy1 * ch, img.height) - gy0))
    if not cells:
        return data, []
    targets = _targets(img, photometric, gray_target)
    pieces, pos = [], 0
    for scan in img.scans:
        header, body = _rewrite_scan(img, scan, cells, cells_x, targets)
        if body is None:
            continue
        # New tables (if any) go just before this scan's SOS; the old ones come back after it for later scans.
        pieces += [data[pos:scan.sos], header, data[scan.sos:scan.header_end], body]
        if header:
            pieces.append(_restore_tables(img, scan))
        pos = scan.data_end
    pieces.append(data[pos:])
    return b"".join(pieces), done


def _targets(img: JpegImage, photometric: str, gray_target: int) -> list[int]:
    """Quantised DC per frame component that makes a flat block decode to the target sample value."""
    centre = 1 << (img.precision - 1)
    if len(img.components) == 1:
        values = [min(max(gray_target, 0), (1 << img.precision) - 1)]
    elif len(img.components) == 3 and not img.rgb_coded(photometric):
        values = [0, centre, centre]  # YCbCr black
    elif len(img.components) == 3:
        values = [0, 0, 0]
    else:
        raise JpegUnsupported("only 1 or 3 components")
    return values


def _dc_for(value: int, centre: int, q: int) -> int:
    num = (value - centre) * 8  # a flat block's sample = DC * Q / 8 + centre (F.2.1.5 IDCT of a DC-only block)
    if num < 0:
        return num // q  # round towards the extreme so that clamping lands exactly on it
    return -(-num // q)


def _blocks(img: JpegImage, scan: Scan, cells_x: int):
    """Per-MCU block list [(scan component slot, component)] and a function mcu -> frame cell."""
    comps = [(slot, img.components[index]) for slot, (index, _, _) in enumerate(scan.components)]
    if len(comps) > 1:
        blocks = [slot for slot, c in comps for _ in range(c.h * c.v)]
        cells_y = -(-img.height // (8 * img.vmax))
        return blocks, cells_x * cells_y, lambda m: (m % cells_x, m // cells_x)
    slot, c = comps[0]
    width = -(-(-(-img.width * c.h // img.hmax)) // 8)
    height = -(-(-(-img.height * c.v // img.vmax)) // 8)
    return [slot], width * height, lambda m: ((m % width) // c.h, (m // width) // c.v)


def _rewrite_scan(img, scan, cells, cells_x, targets):
    blocks, total, cell_of = _blocks(img, scan, cells_x)
    blank = [cell_of(m) in cells for m in range(total)]
    if not any(blank):
        return None, None
    centre = 1 << (img.precision - 1)
    dc_specs = [scan.dc_tables[td] for _, td, _ in scan.components]
    ac_specs = [scan.ac_tables[ta] for _, _, ta in scan.components]
    dc_target = [_dc_for(targets[index], centre, scan.quant_dc[img.components[index].tq])
                 for index, _, _ in scan.components]
    ctx = _Context(blocks, [table(s) for s in dc_specs], [table(s) for s in ac_specs], dc_target)
    spans = intervals(img.data, scan.header_end, scan.data_end)
    per = scan.restart or total
    if -(-total // per) != len(spans):
        raise JpegUnsupported("restart intervals do not match the image size")
    try:
        return b"", _encode_intervals(ctx, img.data, spans, per, total, blank, copy=True)
    except _NeedTables:
        pass
    # Full re-encode: decode every MCU, count symbols with the new data, build optimal tables.
    decoded = [_decode_interval(ctx, img.data, s, min(per, total - i * per)) for i, s in enumerate(spans)]
    freq_dc = [dict() for _ in scan.components]
    freq_ac = [dict() for _ in scan.components]
    _count(ctx, decoded, blank, per, freq_dc, freq_ac)
    new_dc, new_ac = _merge_by_id(scan, freq_dc, freq_ac)
    ctx = _Context(blocks, [table(new_dc[td]) for _, td, _ in scan.components],
                   [table(new_ac[ta]) for _, _, ta in scan.components], dc_target)
    body = _encode_intervals(ctx, img.data, spans, per, total, blank, copy=False, decoded=decoded)
    segment = b"".join(bytes([cls << 4 | tid]) + spec for cls, specs in ((0, new_dc), (1, new_ac))
                       for tid, spec in sorted(specs.items()))
    header = b"\xff" + bytes([DHT]) + (len(segment) + 2).to_bytes(2, "big") + segment
    return header, body


def _restore_tables(img: JpegImage, scan: Scan) -> bytes:
    later = img.scans[img.scans.index(scan) + 1:]
    if not later:
        return b""
    segment = b"".join(bytes([cls << 4 | tid]) + spec for cls, specs in ((0, scan.dc_tables), (1, scan.ac_tables))
                       for tid, spec in sorted(specs.items()))
    return b"\xff" + bytes([DHT]) + (len(segment) + 2).to_bytes(2, "big") + segment


class _Context:
    __slots__ = ("blocks", "dc", "ac", "dc_target", "slots")

    def __init__(self, blocks, dc, ac, dc_target):
        self.blocks, self.dc, self.ac, self.dc_target = blocks, dc, ac, dc_target
        self.slots = len(dc)


def _walk(ctx: _Context, d: bytes, count: int):
    """Skim an interval: bit position where every MCU starts (+ the end) and the DC predictors before it."""
    positions, states = [], []
    preds = [0] * ctx.slots
    pos = 0
    dc_lookup = [t.lookup for t in ctx.dc]
    ac_lookup = [t.lookup for t in ctx.ac]
    plan = [(slot, dc_lookup[slot], ac_lookup[slot]) for slot in ctx.blocks]
    frombytes = int.from_bytes
    for _ in range(count):
        positions.append(pos)
        states.append(tuple(preds))
        for slot, dct, act in plan:
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
            k = 1
            while k < 64:
                p = pos >> 3
                e = act[(frombytes(d[p:p + 3], "big") >> (8 - (pos & 7))) & 0xFFFF]
                if not e:
                    raise JpegUnsupported("bad Huffman code")
                rs = e & 0xFF
                s = rs & 15
                pos += (e >> 8) + s
                if s:
                    k += (rs >> 4) + 1
                elif rs == 0xF0:
                    k += 16
                else:
                    break
            if k > 64:
                raise JpegUnsupported("coefficient index past 63")
    if pos > (len(d) - 4) * 8:
        raise JpegUnsupported("entropy-coded data ends early")
    positions.append(pos)
    return positions, states


def _decode_mcu(ctx: _Context, d: bytes, pos: int, preds: list[int]):
    """Fully decode one MCU: [(slot, absolute DC, [(run/size symbol, extra bits), ...])]; preds updated."""
    out = []
    frombytes = int.from_bytes
    for slot in ctx.blocks:
        dct, act = ctx.dc[slot].lookup, ctx.ac[slot].lookup
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
        acs = []
        k = 1
        while k < 64:
            p = pos >> 3
            e = act[(frombytes(d[p:p + 3], "big") >> (8 - (pos & 7))) & 0xFFFF]
            if not e:
                raise JpegUnsupported("bad Huffman code")
            rs = e & 0xFF
            pos += e >> 8
            s = rs & 15
            bits = 0
            if s:
                p = pos >> 3
                bits = ((frombytes(d[p:p + 3], "big") >> (8 - (pos & 7))) & 0xFFFF) >> (16 - s)
                pos += s
                k += (rs >> 4) + 1
            elif rs == 0xF0:
                k += 16
            else:
                acs.append((rs, 0))
                break
            acs.append((rs, bits))
        out.append((slot, preds[slot], acs))
    return out, pos


def _put_dc(w: BitWriter, t, diff: int) -> None:
    s = category(diff)
    code = t.codes.get(s)
    if code is None:
        raise _NeedTables
    w.write(*code)
    if s:
        w.write(diff if diff > 0 else diff + (1 << s) - 1, s)


def _put_block(w: BitWriter, ctx: _Context, slot: int, diff: int, acs) -> None:
    _put_dc(w, ctx.dc[slot], diff)
    codes = ctx.ac[slot].codes
    for rs, bits in acs:
        code = codes.get(rs)
        if code is None:
            raise _NeedTables
        w.write(*code)
        if rs & 15:
            w.write(bits, rs & 15)


_EOB = ((0, 0),)


def _encode_intervals(ctx, data, spans, per, total, blank, *, copy: bool, decoded=None) -> bytes:
    out = []
    for i, (start, stop, marker_end) in enumerate(spans):
        first, count = i * per, min(per, total - i * per)
        flags = blank[first:first + count]
        if copy and not any(flags):
            out.append(data[start:marker_end])
            continue
        d = unstuff(data[start:stop])
        w = BitWriter()
        if copy:
            _splice(ctx, w, d, count, flags)
        else:
            _reencode(ctx, w, decoded[i], flags)
        out.append(stuff(w.finish()))
        out.append(data[stop:marker_end])
    return b"".join(out)


def _splice(ctx: _Context, w: BitWriter, d: bytes, count: int, flags) -> None:
    positions, states = _walk(ctx, d, count)
    preds = [0] * ctx.slots
    copy_from = 0
    after_blank = False
    for m in range(count):
        if flags[m]:
            w.copy(d, copy_from, positions[m])
            if not after_blank:
                preds = list(states[m])
            for slot in ctx.blocks:
                target = ctx.dc_target[slot]
                _put_block(w, ctx, slot, target - preds[slot], _EOB)
                preds[slot] = target
            after_blank = True
            copy_from = positions[m + 1]
        elif after_blank:
            blocks, _ = _decode_mcu(ctx, d, positions[m], list(states[m]))
            for slot, dc, acs in blocks:
                _put_block(w, ctx, slot, dc - preds[slot], acs)
                preds[slot] = dc
            after_blank = False
            copy_from = positions[m + 1]
    w.copy(d, copy_from, positions[count])


def _decode_interval(ctx: _Context, data: bytes, span, count: int):
    d = unstuff(data[span[0]:span[1]])
    preds = [0] * ctx.slots
    pos, mcus = 0, []
    for _ in range(count):
        blocks, pos = _decode_mcu(ctx, d, pos, preds)
        mcus.append(blocks)
    if pos > (len(d) - 4) * 8:
        raise JpegUnsupported("entropy-coded data ends early")
    return mcus


def _blanked(ctx: _Context, mcus, flags):
    """The interval's blocks after blanking, as (slot, DC difference, AC symbols)."""
    preds = [0] * ctx.slots
    for m, blocks in enumerate(mcus):
        for slot, dc, acs in blocks:
            if flags[m]:
                dc, acs = ctx.dc_target[slot], _EOB
            yield slot, dc - preds[slot], acs
            preds[slot] = dc


def _count(ctx, decoded, blank, per, freq_dc, freq_ac) -> None:
    for i, mcus in enumerate(decoded):
        for slot, diff, acs in _blanked(ctx, mcus, blank[i * per:i * per + len(mcus)]):
            fd = freq_dc[slot]
            s = category(diff)
            fd[s] = fd.get(s, 0) + 1
            fa = freq_ac[slot]
            for rs, _ in acs:
                fa[rs] = fa.get(rs, 0) + 1


def _reencode(ctx: _Context, w: BitWriter, mcus, flags) -> None:
    for slot, diff, acs in _blanked(ctx, mcus, flags):
        _put_block(w, ctx, slot, diff, acs)


def _merge_by_id(scan: Scan, freq_dc, freq_ac):
    """One optimal table per table id (components of a scan may share a table)."""
    dc: dict[int, dict] = {}
    ac: dict[int, dict] = {}
    for (_, td, ta), fd, fa in zip(scan.components, freq_dc, freq_ac):
        for merged, tid, f in ((dc, td, fd), (ac, ta, fa)):
            bucket = merged.setdefault(tid, {})
            for sym, n in f.items():
                bucket[sym] = bucket.get(sym, 0) + n
    return ({tid: optimal_spec(f) for tid, f in dc.items()}, {tid: optimal_spec(f) for tid, f in ac.items()})
