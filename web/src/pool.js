// A pool of module Web Workers, each with its own Pyodide running the same py_deid core. Workers are created once
// and reused; one that crashes, hangs past its file's deadline or reports a broken runtime is terminated and
// replaced, its file fails with a reason, and the rest of the batch goes on.
import { ACTIONS, Channel, NamedError } from './protocol.js';
import { enginesPerWorker } from './ocr-pool.js';

const WORKER_URL = new URL('./worker.js', import.meta.url);
const destroyedError = () => new NamedError('Destroyed', 'the uploader was shut down');

/** A module worker running worker.js. A worker's script must have the page's origin: when the assets are served
 * from another origin (a portal with its own asset host), a one-line module made from a blob (which has the page's
 * origin) imports the real worker from there, over CORS. */
function startWorker(name) {
  if (WORKER_URL.origin === location.origin) return { worker: new Worker(WORKER_URL, { type: 'module', name }), url: null };
  const url = URL.createObjectURL(new Blob([`import ${JSON.stringify(WORKER_URL.href)};\n`], { type: 'text/javascript' }));
  return { worker: new Worker(url, { type: 'module', name }), url };
}
const MINTED = Symbol('minted');

/** A worker's start-up marks (worker.js) as ms since this page's navigation began: when its script ran, when it
 * got the init request, when the runtime, the packages, the core's import and the codecs were done; `snapshot`:
 * whether its runtime was 'restored' from a saved snapshot, is 'saving' one for the next start, or 'none'. */
/** @returns {Record<string, any> | null} */
function startupTimes(timings) {
  if (!timings?.marks) return null;
  const shift = timings.origin - performance.timeOrigin;
  const times = Object.fromEntries(Object.entries(timings.marks).map(([k, v]) => [k, Math.round(v + shift)]));
  return { ...times, snapshot: timings.snapshot || 'none' };
}

/** De-identifier output. Only this module can make one (from a worker's reply): the uploader accepts nothing else,
 * so raw input bytes cannot reach the network. */
export class DeidentifiedInstance {
  constructor(token, record, bytes) {
    if (token !== MINTED) throw new TypeError('DeidentifiedInstance is made by the worker pool only');
    this.record = Object.freeze({ ...record });
    this.bytes = bytes;  // ArrayBuffer; released by the uploader once acknowledged
    Object.freeze(this);
  }
}

/** The hex SHA-256 of `bytes` (an ArrayBuffer or a view), by SubtleCrypto: a de-identified output's, for its
 * record (the worker's core leaves it null where there is SubtleCrypto: SHA-256 in wasm took ~6x the native
 * time). */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** An instance the uploader itself kept in its outbox (outbox.js) before a reload: de-identifier output still. */
export function restoredInstance(record, bytes) {
  return new DeidentifiedInstance(MINTED, record, bytes);
}

export function defaultPoolSize() {
  const cores = navigator.hardwareConcurrency || 2;
  // Leave a core for the page and the OCR engines; every worker costs ~80 MB of wasm memory.
  return Math.max(1, Math.min(cores - 1, 8));
}

// Files a worker may hold at once: the one it is working on and the next, already posted, so that it starts the
// next file as soon as it has answered instead of waiting for the page to hear the answer and post again (that
// round trip, and whatever the page was doing meanwhile, left the worker idle a tenth of a small file's time).
// A file queued on a worker that is then replaced never started: it is read again and sent to the new worker.
// (worker.js stats split what idle time is left: the next file not sent yet, awaitMs, is ~0 with this depth.)
const DEPTH = 2;

class Slot {
  constructor(pool, index) {
    this.pool = pool;
    this.index = index;
    this.load = 0;  // requests given to this worker and not yet settled
    this.tail = Promise.resolve();  // settles when the last file posted to this worker is settled
    this.generation = 0;
    this.ready = null;
    this.spawn();
  }

  spawn() {
    this.generation += 1;
    this.spawned = performance.now();
    const { worker, url } = startWorker(`py_deid-${this.index}`);
    this.worker = worker;
    // Stage reports may arrive after the init request resolved (OCR loads on): they come back unsolicited.
    this.channel = new Channel(this.worker, (msg) => {
      if (msg?.status === 'progress' && msg.data?.stage) this.pool.stage(this.index, msg.data);
    });
    const died = (event) => {
      event.preventDefault?.();
      this.channel.failAll(new NamedError('WorkerCrashed', 'the de-identification worker stopped unexpectedly'));
    };
    this.worker.addEventListener('error', died);
    this.worker.addEventListener('messageerror', died);
    const onProgress = (p) => this.pool.stage(this.index, p);
    this.startup = null;
    this.ready = this.channel.request(ACTIONS.INIT, { ocr: this.pool.ocr, engines: this.pool.ocrEngines }, { onProgress })
      .then((reply) => {
        this.startup = startupTimes(reply?.timings);
        if (this.startup) this.startup.spawn = Math.round(this.spawned);
        return this.pool.configured && this.channel.request(ACTIONS.CONFIGURE, this.pool.configured);
      })
      .then((value) => {
        if (this.startup) this.startup.ready = Math.round(performance.now());
        return value;
      });
    this.ready.catch(() => {}).finally(() => url && URL.revokeObjectURL(url));
  }

  replace() {
    this.worker.terminate();
    if (this.pool.destroyed) return;
    this.channel.failAll(new NamedError('WorkerCrashed', 'the de-identification worker was restarted'));
    this.pool.restarts += 1;
    this.spawn();
  }
}

export class WorkerPool extends EventTarget {
  constructor({ size = defaultPoolSize(), ocr = true } = {}) {
    super();
    this.size = size;
    this.ocr = ocr;
    this.ocrEngines = enginesPerWorker(navigator.hardwareConcurrency || 2, size);
    this.configured = null;
    this.restarts = 0;
    this.stages = {};
    this.perWorker = {};
    this.waiting = [];
    this.destroyed = false;
    this.slots = Array.from({ length: size }, (_, i) => new Slot(this, i));
  }

  /** Aggregate per-worker stage reports: a stage is done when the first worker has it (the page can start). */
  stage(index, { stage, state, ms }) {
    const per = (this.perWorker[stage] ||= {});
    per[index] = state;
    const states = Object.values(per);
    const overall = states.includes('done') ? 'done'
      : states.length === this.size && states.every((s) => s === 'failed') ? 'failed' : 'start';
    if (this.stages[stage] === overall && state !== 'done') return;
    this.stages[stage] = overall;
    this.dispatchEvent(new CustomEvent('stage', { detail: { stage, state: overall, ms, worker: index } }));
  }

  /** Start-up times of each worker that has started (startupTimes; `ready`: when the page heard it was). */
  startupTimes() {
    return this.slots.map((s) => s.startup).filter(Boolean);
  }

  /** Resolves when at least one worker can de-identify. */
  whenReady() {
    return Promise.any(this.slots.map((s) => s.ready));
  }

  async configure(config, key) {
    this.configured = { config, key };
    await Promise.all(this.slots.map(async (s) => {
      await s.ready.catch(() => null);
      return s.channel.request(ACTIONS.CONFIGURE, this.configured);
    }));
  }

  /** A worker with fewer than `depth` requests (the least loaded: every worker gets one before any gets two). */
  async #acquire(depth = 1) {
    for (;;) {
      if (this.destroyed) throw destroyedError();
      let best = null;
      for (const s of this.slots) if (s.load < depth && (!best || s.load < best.load)) best = s;
      if (best) { best.load += 1; return best; }
      await new Promise((resolve) => this.waiting.push(resolve));
    }
  }

  #release(slot) {
    slot.load -= 1;
    // Every waiter looks again (each asks for its own depth); those that find no room wait again.
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** De-identify one file's bytes (the ArrayBuffer is transferred: it is unusable here afterwards).
   * review / edits: see worker.js process (the review screen's data, the reviewer's mask edits).
   * reread: () => Promise<ArrayBuffer>, the same bytes again: given, the file may be queued behind another on a
   * busy worker (DEPTH) and is read again if that worker is replaced before it started it. */
  async process(buffer, { timeoutMs = 120000, review = '', edits = null, onFrame = null, reread = null } = {}) {
    for (;;) {
      const slot = await this.#acquire(reread ? DEPTH : 1);
      try {
        try {
          await slot.ready;
        } catch (err) {
          if (['WorkerTimeout', 'WorkerCrashed'].includes(err.name) || err.fatal) slot.replace();
          throw err;
        }
        return await this.#processOn(slot, buffer, { timeoutMs, review, edits, onFrame });
      } catch (err) {
        if (!err.notStarted || !reread || this.destroyed) throw err;
      } finally {
        this.#release(slot);
      }
      buffer = await reread();
    }
  }

  async #processOn(slot, buffer, { timeoutMs, review, edits, onFrame }) {
    const generation = slot.generation;
    const ahead = slot.tail;
    /** @type {(value?: unknown) => void} */
    let settled = () => {};
    slot.tail = new Promise((resolve) => { settled = resolve; });
    try {
      // sent: when it was posted (absolute ms), for the worker's account of its idle time (worker.js stats)
      const sent = performance.timeOrigin + performance.now();
      const reply = slot.channel.request(ACTIONS.PROCESS, { data: buffer, review, edits, sent },
        { transfer: [buffer], onProgress: (p) => { if (p?.frames) onFrame?.(p); } });
      reply.catch(() => {});  // (looked at below, once the file ahead of it is done)
      await ahead;
      // The worker starts this file once the one ahead of it is settled: unless that worker was replaced (the file
      // ahead crashed or hung it), which this file never reached.
      if (slot.generation !== generation) {
        throw new NamedError('WorkerCrashed', 'the de-identification worker was restarted', { notStarted: true });
      }
      let timer;
      const deadline = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new NamedError('WorkerTimeout', 'the worker did not finish this file in time')), timeoutMs);
      });
      try {
        const answer = await Promise.race([reply, deadline]);
        const record = typeof answer.record === 'string' ? JSON.parse(answer.record) : answer.record;  // worker.js
        // The output's sha256, left null by a worker that has SubtleCrypto (worker.js): digested here, natively
        // and off this thread, while the worker is on the next file. A digest that fails fails the file.
        if (record.sha256 === null && answer.output) record.sha256 = await sha256Hex(answer.output);
        return { record, instance: answer.output ? new DeidentifiedInstance(MINTED, record, answer.output) : null,
          local: answer.local || null };
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      // Replaced before the file queued behind this one looks (settled() below), so that it knows it never started.
      if (!err.notStarted && slot.generation === generation
          && (['WorkerTimeout', 'WorkerCrashed'].includes(err.name) || err.fatal)) slot.replace();
      throw err;
    } finally {
      settled();
    }
  }

  /** Ask any worker something (OCR or decode of one image; stats): used by tests and the review screen. */
  async call(action, payload, transfer = []) {
    const slot = await this.#acquire();
    try {
      await slot.ready;
      return await slot.channel.request(action, payload, { transfer });
    } finally {
      this.#release(slot);
    }
  }

  async statsAll() {
    return Promise.all(this.slots.map(async (s) => { await s.ready; return s.channel.request(ACTIONS.STATS, {}); }));
  }

  /** Terminate every worker (their OCR workers go with them); pending and later requests fail with 'Destroyed'. */
  destroy() {
    this.destroyed = true;
    for (const s of this.slots) {
      s.worker.terminate();
      s.channel.failAll(destroyedError());
    }
    this.slots = [];
    for (const wake of this.waiting.splice(0)) wake();
  }
}
