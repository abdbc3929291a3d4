// OCR bridge: one tesseract.js 7 worker, created once and reused, reading PGM bytes; never hangs.
// Every call has a timeout; a worker that failed or timed out is terminated and a fresh one is made for the
// next call. Errors carry our own messages (never recognized text).
import Tesseract from '../vendor/tesseract/tesseract.esm.min.js';

const VENDOR = new URL('../vendor/', import.meta.url);

export class OcrError extends Error {
  constructor(message) { super(message); this.name = 'OcrError'; }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new OcrError(`${what} timed out after ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Words of Tesseract's TSV output: level 5 rows (level, page, block, paragraph, line, word, left, top, width,
 * height, confidence, text). */
export function parseTsv(tsv) {
  const words = [];
  for (const row of tsv.split('\n')) {
    const cells = row.split('\t');
    if (cells.length < 12 || cells[0] !== '5') continue;
    const text = cells.slice(11).join('\t');
    if (!text.trim()) continue;
    const [left, top, width, height] = cells.slice(6, 10).map(Number);
    words.push({ text, left, top, width, height, confidence: Number(cells[10]) });
  }
  return words;
}

export class OcrBridge {
  constructor({ loadTimeoutMs = 60000, recognizeTimeoutMs = 60000 } = {}) {
    this.loadTimeoutMs = loadTimeoutMs;
    this.recognizeTimeoutMs = recognizeTimeoutMs;
    this.worker = null;
    this.starting = null;
    this.psm = null;
    this.queue = Promise.resolve();
    this.readMs = 0;  // time spent reading images (the benchmark's breakdown: web/src/worker.js stats)
    this.reads = 0;
  }

  /** Whether the engine can read (started and not reset since). */
  get ready() {
    return this.worker !== null;
  }

  /** Create the tesseract worker (idempotent); resolves when it can read. */
  start() {
    if (this.worker) return Promise.resolve();
    if (!this.starting) {
      let failNow;
      const failure = new Promise((_, reject) => { failNow = reject; });
      const workerPath = new URL('tesseract/worker.min.js', VENDOR);
      const created = Tesseract.createWorker('eng', 1, {
        workerPath: workerPath.href,
        corePath: new URL('tesseract/core/', VENDOR).href,
        langPath: new URL('tessdata/', VENDOR).href,
        // Assets on another origin than the page (an embedding portal): a worker script must have the page's
        // origin, so tesseract.js wraps it in a blob that importScripts it.
        workerBlobURL: workerPath.origin !== self.location.origin,
        cacheMethod: 'none',
        gzip: true,
        // Without an errorHandler a failed model fetch leaves createWorker pending forever: fail at once instead.
        errorHandler: () => failNow(new OcrError('the OCR engine reported an error while loading')),
      });
      this.starting = withTimeout(Promise.race([created, failure]), this.loadTimeoutMs, 'loading OCR').then((worker) => {
        this.worker = worker;
        this.psm = null;
      }).catch((err) => {
        created.then((w) => w.terminate()).catch(() => {});
        throw err instanceof OcrError ? err : new OcrError('the OCR engine could not be loaded');
      }).finally(() => { this.starting = null; });
    }
    return this.starting;
  }

  async reset() {
    const worker = this.worker;
    this.worker = null;
    this.psm = null;
    if (worker) await worker.terminate().catch(() => {});
  }

  /** Words of an image given as PGM bytes: [{text, left, top, width, height, confidence}]. Serialized. */
  recognize(pgm, psm = 11) {
    const run = async () => {
      await this.start();
      try {
        return await withTimeout(this.#read(pgm, psm), this.recognizeTimeoutMs, 'OCR of one image');
      } catch (err) {
        await this.reset();  // a timed-out or failed engine is not trusted with the next image
        throw err instanceof OcrError ? err : new OcrError('the OCR engine failed on an image');
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }

  async #read(pgm, psm) {
    if (this.psm !== psm) {
      // The same parameters as the native host (py_deid/hosts/native_ocr.py): screen renderings, not scans.
      await this.worker.setParameters({ tessedit_pageseg_mode: String(psm), user_defined_dpi: '96' });
      this.psm = psm;
    }
    // TSV (made by Tesseract itself) rather than the nested blocks tree: the words are all the core needs, and
    // building the tree (every symbol and its choices) cost a third of the recognition time.
    const t0 = performance.now();
    const { data } = await this.worker.recognize(pgm, {}, { tsv: true, text: false, blocks: false });
    this.readMs += performance.now() - t0;
    this.reads += 1;
    return parseTsv(data.tsv || '');
  }
}
