// Several OCR engines for one de-identification worker. The core asks for the readings of an image that do not
// depend on each other all at once (py_deid.hosts.services.OcrBatch); each goes to the engine with the fewest
// calls in hand, so that on a machine with a core to spare two engines read at the same time. Engines are made
// by a factory (ocr.js's OcrBridge: each its own tesseract.js worker, created once and reused), the first at
// start, the others once the first can read, so that they do not compete with the worker's own start.

/** @typedef {{start: () => Promise<void>, reset: () => Promise<void>,
 *   recognize: (pgm: Uint8Array, psm?: number) => Promise<any[]>}} Engine */

export class OcrPool {
  /** @param {number} engines @param {() => Engine} makeEngine */
  constructor(engines, makeEngine) {
    /** @type {Engine[]} */
    this.engines = Array.from({ length: Math.max(1, Math.floor(engines) || 1) }, () => makeEngine());
    /** @type {number[]} */
    this.load = this.engines.map(() => 0);
  }

  /** Start the first engine (resolves when it can read); the others start once it has, failures ignored (an
   * engine that did not start is started again on its first call, and that call fails closed if it cannot). */
  start() {
    const first = this.engines[0].start();
    first.then(() => { for (const e of this.engines.slice(1)) e.start().catch(() => {}); }, () => {});
    return first;
  }

  async reset() {
    await Promise.all(this.engines.map((e) => e.reset()));
  }

  /** Words of one image, read by the engine with the fewest calls in hand (the first on a tie). */
  recognize(pgm, psm = 11) {
    let best = 0;
    for (let i = 1; i < this.engines.length; i += 1) if (this.load[i] < this.load[best]) best = i;
    this.load[best] += 1;
    return this.engines[best].recognize(pgm, psm).finally(() => { this.load[best] -= 1; });
  }
}

/** Engines for one worker: two where the machine has a core for each beyond the pool's workers, else one
 * (every engine holds its own copy of the model, ~40 MB of wasm memory). */
export function enginesPerWorker(cores, workers) {
  return Math.max(1, Math.min(2, Math.floor((cores || 2) / Math.max(1, workers))));
}
