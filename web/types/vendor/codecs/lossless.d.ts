// jpeg-lossless-decoder-js, bundled by the build.
export class Decoder {
  decode(buffer: ArrayBuffer, offset: number, length: number, numBytes: number): Uint8Array | Uint16Array;
}
