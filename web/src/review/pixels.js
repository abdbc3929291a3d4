// The de-identified frames as the reviewer sees them: found in the output bytes where the core said they are
// (py_deid.review.describe), decoded by a worker when compressed, turned into canvas pixels with a window.
import { ACTIONS } from '../protocol.js';

const RLE = '1.2.840.10008.1.2.5';

/** Bytes of frame `index` in their stored layout (native) or decoded (compressed: planar 0, little endian). */
async function frameBytes(entry, index, call) {
  const d = entry.local.display;
  const spans = d.spans?.[index];
  if (!spans) throw new Error('this frame cannot be located in the output');
  const whole = new Uint8Array(entry.instance.bytes);
  if (d.native) return { bytes: whole.slice(spans[0][0], spans[0][0] + spans[0][1]), decoded: false };
  const size = spans.reduce((n, [, len]) => n + len, 0);
  const joined = new Uint8Array(size);
  let at = 0;
  for (const [off, len] of spans) { joined.set(whole.subarray(off, off + len), at); at += len; }
  if (d.transferSyntax === RLE) return { bytes: rleDecode(joined, d), decoded: false, planarRle: true };
  const info = { ...d.codecInfo, bitsAllocated: d.bitsAllocated };
  const out = await call(ACTIONS.DECODE, { frame: joined.buffer, transferSyntax: d.transferSyntax, info }, [joined.buffer]);
  return { bytes: new Uint8Array(out), decoded: true };
}

/** RLE Lossless (PS3.5 Annex G): segments of PackBits, one per byte of each sample; returns planar bytes. */
function rleDecode(data, d) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint32(0, true);
  const offsets = Array.from({ length: count }, (_, i) => view.getUint32(4 + 4 * i, true));
  const pixels = d.rows * d.columns;
  const out = new Uint8Array(pixels * count);
  offsets.forEach((start, s) => {
    const end = s + 1 < count ? offsets[s + 1] : data.length;
    let i = start;
    let o = s * pixels;
    const stop = o + pixels;
    while (i < end && o < stop) {
      const n = view.getInt8(i); i += 1;
      if (n >= 0) { out.set(data.subarray(i, i + n + 1).subarray(0, stop - o), o); o += n + 1; i += n + 1; } else if (n !== -128) {
        out.fill(data[i], o, Math.min(stop, o + 1 - n)); o += 1 - n; i += 1;
      }
    }
  });
  return out;
}

/** {width, height, gray: Float32Array of modality values | null, rgb: Uint8Array | null, min, max}. */
export async function loadFrame(entry, index, call) {
  const d = entry.local.display;
  const { bytes, decoded, planarRle } = await frameBytes(entry, index, call);
  const n = d.rows * d.columns;
  const bps = d.bitsAllocated / 8;
  const photometric = decoded ? d.decoded.photometric : d.photometric;
  const little = decoded || planarRle ? true : d.littleEndian;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // RLE segments are most significant byte first, each sample its own plane.
  const read = planarRle
    ? (k, s) => { let v = 0; for (let b = 0; b < bps; b += 1) v = v * 256 + bytes[(s * bps + b) * n + k]; return v; }
    : (k, s, planar) => {
      const at = (planar ? s * n + k : k * d.samples + s) * bps;
      return bps === 1 ? bytes[at] : bps === 2 ? view.getUint16(at, little) : view.getUint32(at, little);
    };
  if (d.samples === 1 && d.palette && photometric === 'PALETTE COLOR') return paletteFrame(d, n, read);
  if (d.samples === 1) {
    const shift = d.highBit - d.bitsStored + 1;
    const mask = d.bitsStored >= 32 ? 0xffffffff : 2 ** d.bitsStored - 1;
    const gray = new Float32Array(n);
    let min = Infinity; let max = -Infinity;
    for (let k = 0; k < n; k += 1) {
      let v = Math.floor(read(k, 0) / 2 ** shift) % (mask + 1);
      if (d.signed && v >= 2 ** (d.bitsStored - 1)) v -= 2 ** d.bitsStored;
      v = v * d.slope + d.intercept;
      gray[k] = v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    return { width: d.columns, height: d.rows, gray, rgb: null, min, max, inverted: photometric === 'MONOCHROME1',
      palette: photometric === 'PALETTE COLOR' };
  }
  const rgb = new Uint8Array(n * 3);
  const top = (v) => (bps === 1 ? v : v >> (8 * bps - 8));
  const planar = !decoded && d.planar === 1;
  if (photometric === 'YBR_FULL_422' && !decoded) {
    for (let k = 0; k < n; k += 2) {  // pairs: Y1 Y2 Cb Cr
      const at = k * 2;
      for (let j = 0; j < 2 && k + j < n; j += 1) ybr(rgb, (k + j) * 3, bytes[at + j], bytes[at + 2], bytes[at + 3]);
    }
  } else {
    for (let k = 0; k < n; k += 1) {
      const a = top(read(k, 0, planar)); const b = top(read(k, 1, planar)); const c = top(read(k, 2, planar));
      if (photometric.startsWith('YBR')) ybr(rgb, k * 3, a, b, c);
      else { rgb[k * 3] = a; rgb[k * 3 + 1] = b; rgb[k * 3 + 2] = c; }
    }
  }
  return { width: d.columns, height: d.rows, gray: null, rgb, min: 0, max: 255 };
}

/** A PALETTE COLOR frame in its own colours: each stored index looked up in the palette (8 bits an entry). */
function paletteFrame(d, n, read) {
  const { first, red, green, blue } = d.palette;
  const last = red.length - 1;
  const shift = d.highBit - d.bitsStored + 1;
  const mask = d.bitsStored >= 32 ? 0xffffffff : 2 ** d.bitsStored - 1;
  const rgb = new Uint8Array(n * 3);
  for (let k = 0; k < n; k += 1) {
    const i = Math.min(last, Math.max(0, (Math.floor(read(k, 0) / 2 ** shift) % (mask + 1)) - first));
    rgb[k * 3] = red[i]; rgb[k * 3 + 1] = green[i]; rgb[k * 3 + 2] = blue[i];
  }
  return { width: d.columns, height: d.rows, gray: null, rgb, min: 0, max: 255 };
}

function ybr(out, at, y, cb, cr) {
  out[at] = clamp(y + 1.402 * (cr - 128));
  out[at + 1] = clamp(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128));
  out[at + 2] = clamp(y + 1.772 * (cb - 128));
}

const clamp = (v) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** The window a frame opens with: the header's for grayscale, else its whole range. */
export function defaultWindow(frame, display) {
  if (!frame.gray) return null;
  if (display.window) return { center: display.window[0], width: display.window[1] };
  return { center: (frame.min + frame.max) / 2, width: Math.max(1, frame.max - frame.min) };
}

/** RGBA pixels of a frame under a window ({center, width} in modality units; ignored for colour). */
export function toImageData(frame, window) {
  const out = new ImageData(frame.width, frame.height);
  const px = out.data;
  const n = frame.width * frame.height;
  if (frame.gray) {
    const lo = window.center - window.width / 2;
    const scale = 255 / Math.max(window.width, 1e-6);
    for (let k = 0; k < n; k += 1) {
      let v = clamp((frame.gray[k] - lo) * scale);
      if (frame.inverted) v = 255 - v;
      px[k * 4] = v; px[k * 4 + 1] = v; px[k * 4 + 2] = v; px[k * 4 + 3] = 255;
    }
  } else {
    for (let k = 0; k < n; k += 1) {
      px[k * 4] = frame.rgb[k * 3]; px[k * 4 + 1] = frame.rgb[k * 3 + 1]; px[k * 4 + 2] = frame.rgb[k * 3 + 2]; px[k * 4 + 3] = 255;
    }
  }
  return out;
}
