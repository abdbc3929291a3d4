// Several OCR engines for one de-identification worker. The core asks for the readings of an image that do not
// depend on each other all at once (py_deid.hosts.services.OcrBatch). They wait here and an engine takes the next
// one only when it is free, the largest image first: how long a reading takes depends on the text in it, not
// only on its size (a frame and its painted-over copy are the same size, and the copy reads in half the time),
// so handing out a batch up front left one engine reading while the other idled. Engines are made by a factory
// (ocr.js's OcrBridge: each its own tesseract.js worker, created once and reused), the first at start, the
// others once the first can read, so that they do not compete with the worker's own start.

/** @typedef {{start: () => Promise<void>, reset: () => Promise<void>,
 *   recognize: (pgm: Uint8Array, psm?: number) => Promise<any[]>, readMs?: number, reads?: number,
 *   ready?: boolean}} Engine */

/** @typedef {{pgm: Uint8Array, psm: number, resolve: (words: any[]) => void, reject: (err: any) => void}} Job */

export class OcrPool {
  /** @param {number} engines @param {() => Engine} makeEngine */
  constructor(engines, makeEngine) {
    /** @type {Engine[]} */
    this.engines = Array.from({ length: Math.max(1, Math.floor(engines) || 1) }, () => makeEngine());
    /** @type {number[]} readings in hand per engine (0 or 1) */
    this.load = this.engines.map(() => 0);
    /** @type {Job[]} */
    this.waiting = [];
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

  /** Words of one image, read by the first engine free (the first engine when several are). */
  recognize(pgm, psm = 11) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ pgm, psm, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch() {
    for (let i = 0; i < this.engines.length && this.waiting.length; i += 1) {
      if (this.load[i]) continue;
      let pick = 0;  // the largest image waiting (the first of equals): the long readings start first
      for (let j = 1; j < this.waiting.length; j += 1) if (this.waiting[j].pgm.length > this.waiting[pick].pgm.length) pick = j;
      const [job] = this.waiting.splice(pick, 1);
      this.load[i] = 1;
      this.engines[i].recognize(job.pgm, job.psm).then(job.resolve, job.reject).finally(() => {
        this.load[i] = 0;
        this.#dispatch();
      });
    }
  }
}

/** Engines for one worker: two where the machine has a core for each beyond the pool's workers, else one
 * (every engine holds its own copy of the model, ~40 MB of wasm memory). */
export function enginesPerWorker(cores, workers) {
  return Math.max(1, Math.min(2, Math.floor((cores || 2) / Math.max(1, workers))));
}
