// Codec bridge: the wasm decoders OHIF uses (@cornerstonejs/codec-*) and a JPEG Lossless decoder, loaded once per
// worker; after loading, decode() is synchronous so the Python core can call it in the middle of its pipeline.
// Output: native pixel bytes, little endian, colour interleaved (planar configuration 0).
import { Decoder as LosslessDecoder } from '../vendor/codecs/lossless.js';

const VENDOR = new URL('../vendor/codecs/', import.meta.url);

export class CodecError extends Error {
  constructor(message) { super(message); this.name = 'CodecError'; }
}

const EMSCRIPTEN = {
  jpeg: { module: 'libjpegturbowasm_decode.mjs', wasm: 'libjpegturbowasm_decode.wasm', cls: 'JPEGDecoder' },
  jpegls: { module: 'charlswasm_decode.mjs', wasm: 'charlswasm_decode.wasm', cls: 'JpegLSDecoder' },
  j2k: { module: 'openjpegwasm_decode.mjs', wasm: 'openjpegwasm_decode.wasm', cls: 'J2KDecoder' },
};
// Transfer syntax -> decoder. 12-bit JPEG (4.51) is not in the 8-bit libjpeg-turbo build: not listed, so the core
// decodes it with its own sequential DCT decoder (py_deid/pixels/jpeg_decode.py) instead of getting it wrong here.
const SYNTAXES = {
  '1.2.840.10008.1.2.4.50': 'jpeg',
  '1.2.840.10008.1.2.4.57': 'lossless',
  '1.2.840.10008.1.2.4.70': 'lossless',
  '1.2.840.10008.1.2.4.80': 'jpegls',
  '1.2.840.10008.1.2.4.81': 'jpegls',
  '1.2.840.10008.1.2.4.90': 'j2k',
  '1.2.840.10008.1.2.4.91': 'j2k',
  // HTJ2K (ISO/IEC 15444-15): the OpenJPEG build above decodes High-Throughput codestreams too, bit for bit as the
  // native OpenJPEG (pylibjpeg-openjpeg) does, lossy ones included (tests/browser/test_htj2k.py).
  '1.2.840.10008.1.2.4.201': 'j2k',
  '1.2.840.10008.1.2.4.202': 'j2k',
  '1.2.840.10008.1.2.4.203': 'j2k',
};

async function loadEmscripten(spec) {
  const factory = (await import(new URL(spec.module, VENDOR).href)).default;
  const wasmUrl = new URL(spec.wasm, VENDOR).href;
  const module = await factory({ locateFile: () => wasmUrl, print: () => {}, printErr: () => {} });
  return module;
}

export class Codecs {
  constructor() {
    this.modules = {};
    this.syntaxes = [];
  }

  /** Load every decoder; a decoder that fails to load is left out (its syntaxes then fail closed). */
  async load() {
    const loaded = ['lossless'];
    await Promise.all(Object.entries(EMSCRIPTEN).map(async ([name, spec]) => {
      try {
        this.modules[name] = { module: await loadEmscripten(spec), cls: spec.cls };
        loaded.push(name);
      } catch (err) {
        // left out on purpose: can_decode() says no, and the core reports the instance
      }
    }));
    this.syntaxes = Object.keys(SYNTAXES).filter((ts) => loaded.includes(SYNTAXES[ts]));
    return this.syntaxes;
  }

  decode(frame, transferSyntax, info) {
    const kind = SYNTAXES[transferSyntax];
    if (!kind || !this.syntaxes.includes(transferSyntax)) throw new CodecError('no decoder for this transfer syntax');
    const bytes = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
    return kind === 'lossless' ? decodeLossless(bytes, info) : this.#decodeWasm(kind, bytes, info);
  }

  #decodeWasm(kind, bytes, info) {
    const { module, cls } = this.modules[kind];
    const decoder = new module[cls]();
    try {
      decoder.getEncodedBuffer(bytes.length).set(bytes);
      decoder.decode();
      const frameInfo = decoder.getFrameInfo();
      checkGeometry(frameInfo.width, frameInfo.height, info);
      return decoder.getDecodedBuffer().slice();  // copy out of the wasm heap before the decoder is freed
    } catch (err) {
      if (err instanceof CodecError) throw err;
      throw new CodecError('the decoder rejected the frame');
    } finally {
      decoder.delete();
    }
  }
}

function checkGeometry(width, height, info) {
  if (info && info.columns && info.rows && (width !== info.columns || height !== info.rows)) {
    throw new CodecError('decoded frame size differs from the image description');
  }
}

function decodeLossless(bytes, info) {
  try {
    const copy = bytes.slice().buffer;  // the decoder reads a whole ArrayBuffer
    const numBytes = info && info.bitsAllocated ? Math.ceil(info.bitsAllocated / 8) : undefined;
    const out = new LosslessDecoder().decode(copy, 0, copy.byteLength, numBytes);
    const little = out instanceof Uint16Array ? new Uint8Array(out.buffer, out.byteOffset, out.byteLength) : out;
    return little.slice();
  } catch (err) {
    throw new CodecError('the JPEG Lossless decoder rejected the frame');
  }
}
