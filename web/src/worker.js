// One de-identification worker: its own Pyodide running the py_deid core, its own OCR engine and codecs.
// Created once by the pool and reused for every file. Speaks only the protocol of protocol.js.
import { BUILD } from './build-info.js';
import { ACTIONS, NamedError, serve } from './protocol.js';
import { loadCore, saveSnapshot, startRuntime } from './runtime.js';
// runtime.js's own imports, named here too so that the module loader asks for them with the ones above (one
// round trip through the service worker before the script runs, not two).
import '../vendor/pyodide/pyodide.mjs';
import './site-files.js';
import './snapshot-pages.js';

let pyodide = null;
let session = null;
let fatal = null;
// The codecs and the OCR bridge are imported once the worker is ready (with tesseract.js, ~0.1 MB of scripts the
// start does not need). `codecs` is what the core holds (py_deid.hosts.browser.JsCodecs): it answers for the
// decoders once they are loaded, and no file is processed before that.
let ocr = null;
let decoders = null;
// The outputs' sha256 is left to the page (src/pool.js digests them with SubtleCrypto, not in wasm) where there is
// SubtleCrypto, as there is in every secure context.
const hostDigests = Boolean(self.crypto?.subtle);
const codecs = {
  get syntaxes() { return decoders ? decoders.syntaxes : []; },
  decode(frame, transferSyntax, info) {
    if (!decoders) throw new NamedError('CodecError', 'no decoder for this transfer syntax');
    return decoders.decode(frame, transferSyntax, info);
  },
};
let codecsReady = null;
let ocrReady = null;
let ocrWanted = true;
let ocrEngines = 1;  // tesseract.js workers this worker reads with (the pool decides: src/ocr-pool.js)
// Start-up marks (ms on this worker's clock; `origin` places them on the page's): reported with the init reply so
// the page and the benchmark can break "ready" down (tests/benchmarks/bench_browser.py). No file data in them.
const marks = { script: Math.round(performance.now()) };
const mark = (name) => { marks[name] = Math.round(performance.now()); };

async function timed(stage, progress, fn) {
  const t0 = performance.now();
  progress({ stage, state: 'start' });
  try {
    const value = await fn();
    progress({ stage, state: 'done', ms: Math.round(performance.now() - t0) });
    return value;
  } catch (err) {
    progress({ stage, state: 'failed', ms: Math.round(performance.now() - t0), error: err.name || 'Error' });
    throw err;
  }
}

// The runtime's snapshot (stats, for the benchmark: it waits until a first start's saving is over before timing)
let snapshotState = 'none';
let frameProgress = null;  // the current file's progress reporter (one file at a time per worker)
// Where a worker's time on files goes, for the benchmark (stats; numbers only): files done, ms from a file's turn
// to its answer, ms of that in the call into Python (with OCR, its waits too), ms from one answer to the next
// file's turn (idle; between batches too), the first file's ms, the warm-up's.
const work = { files: 0, fileMs: 0, callMs: 0, idleMs: 0, awaitMs: 0, dispatchMs: 0, lastEnd: 0, firstMs: 0, warmMs: 0 };

async function recognize(pgm, psm, frame = -1, frames = 0) {
  if (frameProgress && frame >= 0 && frames > 0) frameProgress(frame + 1, frames);
  return readText(pgm, psm);
}

/** OCR of one image, once the engine's warm-up (started after "ready") is over: if that failed (a transient load
 * failure must not turn OCR off for the worker's life), the engine is started again here; if that fails too the
 * call rejects and the core fails closed for that file. */
async function readText(pgm, psm) {
  await ocrReady.catch(() => {});
  if (!ocrWanted) throw new NamedError('OcrError', 'OCR is turned off');
  return (await ocrBridge()).recognize(pgm, psm);
}

async function ocrBridge() {
  if (!ocr) {
    try {
      const [{ OcrBridge }, { OcrPool }] = await Promise.all([import('./ocr.js'), import('./ocr-pool.js')]);
      ocr ||= new OcrPool(ocrEngines, () => new OcrBridge());
    } catch {
      throw new NamedError('OcrError', 'the OCR engine could not be loaded');
    }
  }
  return ocr;
}

async function loadDecoders() {
  try {
    const { Codecs } = await import('./codecs.js');
    const loaded = new Codecs();
    await loaded.load();
    decoders = loaded;
  } catch {
    // left out: can_decode() says no for every compressed syntax and the core reports such instances
  }
  return codecs.syntaxes;
}

async function init({ ocr: wantOcr = true, engines = 1 } = {}, progress) {
  if (pyodide) return { ready: true };
  mark('init');
  ocrWanted = wantOcr;
  ocrEngines = engines;
  // Staged: the codecs (three wasm decoders) and OCR (the heaviest: a 4 MB engine and a 3 MB model) load once the
  // de-identifier is ready, so that nothing competes with its start and tags-only work can begin first. A file
  // waits for the codecs in process(); one that needs OCR waits for it in recognize().
  let startCodecs;
  codecsReady = new Promise((resolve) => { startCodecs = resolve; }).then(() => timed('codecs', progress, loadDecoders));
  let startOcr;
  ocrReady = new Promise((resolve) => { startOcr = resolve; }).then(() => (wantOcr
    ? timed('ocr', progress, async () => (await ocrBridge()).start()) : Promise.reject(new NamedError('OcrError', 'OCR is turned off'))));
  ocrReady.catch(() => {});
  const runtime = await timed('runtime', progress, () => startRuntime(mark));
  pyodide = runtime.py;
  mark('runtime');
  let snapshot = null;
  await timed('packages', progress, async () => {
    snapshot = await loadCore(runtime, mark);
    const browser = pyodide.pyimport('py_deid.hosts.browser');
    session = browser.Session(recognize, codecs, hostDigests);
    browser.destroy();
    mark('session');
  }).finally(() => { startCodecs(); startOcr(); });
  mark('ready');
  // Before the first file (files queue behind it, as behind each other): a made-up instance through the header
  // path, so that the user's first file does not pay for the imports and the compilation of the code on its path.
  processing = processing.then(() => codecsReady).then(() => { work.warmMs = Math.round(session.warm_up() * 1000); })
    .catch(() => {});
  // Saved once the worker is ready: the interpreter before configure or any file reached it.
  const saving = snapshot ? saveSnapshot(snapshot) : null;
  snapshotState = runtime.restored ? 'restored' : saving ? 'saving' : 'none';
  saving?.then((kept) => { snapshotState = kept ? 'saved' : 'not-saved'; }, () => { snapshotState = 'not-saved'; });
  return { ready: true,
    timings: { origin: performance.timeOrigin, marks, snapshot: runtime.restored ? 'restored' : saving ? 'saving' : 'none' } };
}

function unwrap(reply) {
  if (reply.error) throw new NamedError(reply.error.name, reply.error.message);
  return reply;
}

async function configure({ config, key }) {
  if (!session) throw new NamedError('NotReady', 'the worker has not finished starting');
  return unwrap(session.configure(JSON.stringify(config), new Uint8Array(key)));
}

async function testHook(bytes) {
  // Only in builds made with --test-hooks (never deployed): lets tests kill a worker mid-file.
  if (!BUILD.testHooks || bytes.length < 24) return;
  const tag = new TextDecoder().decode(bytes.subarray(0, 24));
  if (tag.startsWith('PY-DEID-TEST-HANG')) { for (;;) { /* a worker that never answers */ } }
  if (tag.startsWith('PY-DEID-TEST-EXIT')) {
    self.close();
    await new Promise((resolve) => { setTimeout(resolve, 0); });  // the closed worker never gets this turn
  }
}

// One file at a time, in the order posted: the page may post the next file while this worker is on one
// (src/pool.js DEPTH), and a file waiting for OCR yields to the event loop, where that next request arrives.
/** @type {Promise<unknown>} */
let processing = Promise.resolve();

function process(payload, progress, transfer) {
  // Idle because the page had not sent the next file yet (`sent`: when the pool posted it, on the shared clock);
  // the rest of idleMs is the file waiting in this worker's queue for its turn to be dispatched.
  const sent = Number(payload?.sent) - performance.timeOrigin;
  const now = performance.now();
  if (work.lastEnd && Number.isFinite(sent) && sent > work.lastEnd) work.awaitMs += Math.min(sent, now) - work.lastEnd;
  else if (work.lastEnd && now > work.lastEnd) work.dispatchMs += now - work.lastEnd;
  const run = processing.then(() => processOne(payload, progress, transfer));
  processing = run.catch(() => {});
  return run;
}

// review: the review policy; for an instance it holds, also return what the review screen shows (`local`: may
// hold PHI, kept in the page's memory only);
// edits: the reviewer's mask edits, carried out on the original bytes (py_deid.review).
async function processOne({ data, review = '', edits = null }, progress, transfer) {
  if (fatal) throw fatal;
  if (!session) throw new NamedError('NotReady', 'the worker has not finished starting');
  const t0 = performance.now();
  if (work.lastEnd) work.idleMs += t0 - work.lastEnd;
  const bytes = new Uint8Array(data);
  if (BUILD.testHooks) await testHook(bytes);
  await codecsReady;  // never rejects: a decoder that failed to load is left out (codecs.js)
  let reply;
  let last = 0;
  // Frames read for text, reported once per frame (a frame is read in several OCR requests).
  frameProgress = (frame, frames) => { if (frame !== last) { last = frame; progress({ frame, frames }); } };
  try {
    const args = [bytes, String(review || ''), edits ? JSON.stringify(edits) : null];
    const t1 = performance.now();
    // Without OCR an instance is done at once; only one that asks for OCR goes through the event loop.
    reply = session.process_now(...args) ?? await session.resume();
    work.callMs += performance.now() - t1;
  } catch (err) {
    // Only a broken runtime gets here (the Python side returns its own errors): this worker must be replaced.
    fatal = new NamedError('WorkerCrashed', 'the de-identification runtime failed', { fatal: true });
    throw fatal;
  } finally {
    frameProgress = null;
  }
  unwrap(reply);
  // The record stays the JSON string Session._finish made (not a to_js tree): the page parses it (pool.js), so that
  // this thread, which every file waits for, neither parses it nor clones the object tree into the message.
  const record = String(reply.record);
  let output = null;
  if (reply.output) {
    output = reply.output.buffer.byteLength === reply.output.byteLength
      ? reply.output.buffer : reply.output.slice().buffer;
    transfer.push(output);
  }
  work.lastEnd = performance.now();
  if (!work.files) work.firstMs = work.lastEnd - t0;
  work.files += 1;
  work.fileMs += work.lastEnd - t0;
  return { record, output, local: reply.local || null };
}

/** The batch's certificate (py_deid.certificate) from PHI-free records: {json, html, parts, batch}. */
async function certificate({ request }) {
  if (!session) throw new NamedError('NotReady', 'the worker has not finished starting');
  return unwrap(session.certificate(JSON.stringify(request)));
}

function stats() {
  const gc = pyodide.runPython('import gc; gc.collect(); len(gc.get_objects())');
  const { files, fileMs, callMs, idleMs, awaitMs, dispatchMs, firstMs, warmMs } = work;
  return { wasmBytes: pyodide._module.HEAP8.buffer.byteLength, pythonObjects: gc, spent: session.timings(),
    work: { files, fileMs: Math.round(fileMs), callMs: Math.round(callMs), idleMs: Math.round(idleMs), awaitMs: Math.round(awaitMs), dispatchMs: Math.round(dispatchMs),
      firstMs: Math.round(firstMs), warmMs },
    snapshot: snapshotState,
    engines: ocr ? ocr.engines.map((e) => ({ readMs: Math.round(e.readMs || 0), reads: e.reads || 0, ready: Boolean(e.ready) })) : [] };
}

async function ocrOnly({ pgm, psm }) {
  return readText(new Uint8Array(pgm), psm);
}

async function decodeOnly({ frame, transferSyntax, info }, progress, transfer) {
  await codecsReady;
  const out = codecs.decode(new Uint8Array(frame), transferSyntax, info);
  transfer.push(out.buffer);
  return out.buffer;
}

serve(self, {
  [ACTIONS.INIT]: init,
  [ACTIONS.CONFIGURE]: configure,
  [ACTIONS.PROCESS]: process,
  [ACTIONS.STATS]: stats,
  [ACTIONS.OCR]: ocrOnly,
  [ACTIONS.DECODE]: decodeOnly,
  [ACTIONS.CERTIFICATE]: certificate,
});
