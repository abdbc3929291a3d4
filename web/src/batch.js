// One run of files through the pipeline: sniff, read, de-identify (worker pool), hold for review if the policy
// says so, upload, release. Streaming: at most `pool.size` files are read at a time and the upload queue is
// bounded in bytes, so memory does not grow with the size of the study.
import { readEntry } from './files.js';

export const TERMINAL = new Set(['uploaded', 'already-uploaded', 'deidentified', 'skipped', 'failed']);

function needsReview(policy, record) {
  if (policy === 'always') return true;
  if (policy !== 'pixels') return false;
  const px = record.pixels || {};
  return !!(px.cleaned || Object.keys(px.boxes || {}).length);
}

export class Run extends EventTarget {
  constructor({ pool, uploader, review = 'never', fileTimeoutMs = 0, maxPendingBytes = 64 << 20 }) {
    super();
    Object.assign(this, { pool, uploader, review, fileTimeoutMs, maxPendingBytes });
    this.rows = [];
    this.queue = [];
    this.held = [];
    this.active = 0;
    this.uploads = new Set();
    this.started = 0;
    this.inputBytes = 0;
    this.signoff = null;
    this.progressTimer = null;
    this.state = 'idle';
    this.workers = 0;
  }

  /** Queue entries; returns their rows (in order, for the table). */
  add(entries) {
    const added = [];
    for (const { file, path } of entries) {
      const row = { index: this.rows.length, path, size: file.size, status: 'queued', code: '', message: '', file };
      this.rows.push(row);
      this.queue.push(row);
      added.push(row);
    }
    if (!this.started) this.started = performance.now();
    this.#setState('processing');
    this.#progress();
    // Two more readers than workers: the next file is read while the workers de-identify (bounded prefetch).
    // (Counted first: a loop that finds the queue empty ends synchronously and decrements `workers`.)
    const start = Math.max(0, this.pool.size + 2 - this.workers);
    for (let i = 0; i < start; i += 1) { this.workers += 1; this.#loop(); }
    return added;
  }

  async #loop() {
    try {
      while (this.queue.length) {
        const row = this.queue.shift();
        await this.#one(row);
      }
    } finally {
      this.workers -= 1;
      this.#maybeDone();
    }
  }

  #update(row, status, fields = {}) {
    Object.assign(row, { status }, fields);
    if (TERMINAL.has(status) || status === 'awaiting-review') row.file = null;  // release the File handle
    this.dispatchEvent(new CustomEvent('file', { detail: row }));
    this.#progress();
  }

  async #one(row) {
    while (this.uploader && this.uploader.pendingBytes > this.maxPendingBytes) {
      await new Promise((resolve) => setTimeout(resolve, 50));  // backpressure: let uploads drain
    }
    let read;
    try {
      read = await readEntry(row.file);
    } catch {
      this.#update(row, 'failed', { code: 'unreadable', message: 'the browser could not read the file' });
      return;
    }
    if (read.skip) { this.#update(row, 'skipped', read.skip); return; }
    const { buffer } = read;
    this.#update(row, 'deidentifying');  // (no 'reading' state: reads take milliseconds, updates cost as much)
    let result;
    try {
      const timeoutMs = this.fileTimeoutMs || 120000 + Math.ceil(row.size / (1 << 20)) * 5000;
      result = await this.pool.process(buffer, { timeoutMs });  // the buffer is transferred, not copied
    } catch (err) {
      this.#update(row, 'failed', { code: err.name === 'WorkerTimeout' || err.name === 'WorkerCrashed' ? 'worker-crashed' : 'internal',
        message: err.message });
      return;
    } finally {
      this.inputBytes += row.size;
    }
    const { record, instance } = result;
    if (record.status !== 'done' || !instance) {
      this.#update(row, record.status === 'skipped' ? 'skipped' : 'failed',
        { code: record.problem?.code || 'internal', message: record.problem?.message || 'not de-identified' });
      return;
    }
    const fields = { modality: record.modality, sopUid: record.sopUid, code: '', message: '',
      pixels: record.pixels, outputBytes: record.size };
    if (needsReview(this.review, record) && !this.signoff) {
      this.held.push({ row, instance });
      this.#update(row, 'awaiting-review', fields);
      return;
    }
    this.#upload(row, instance, fields);
  }

  #upload(row, instance, fields = {}) {
    if (!this.uploader) { this.#update(row, 'deidentified', fields); return; }
    this.#update(row, 'uploading', fields);
    const p = this.uploader.send(instance).then(
      (how) => this.#update(row, how),
      (err) => this.#update(row, 'failed', { code: 'upload', message: err.message }),
    ).finally(() => { this.uploads.delete(p); this.#maybeDone(); });
    this.uploads.add(p);
  }

  signOff({ reviewer, role }) {
    if (!String(reviewer || '').trim() || !String(role || '').trim()) {
      throw new TypeError('sign-off needs the reviewer and their role');
    }
    this.signoff = { reviewer: String(reviewer).trim(), role: String(role).trim(), at: new Date().toISOString() };
    const held = this.held.splice(0);
    for (const { row, instance } of held) this.#upload(row, instance);
    this.#setState(this.uploads.size ? 'uploading' : this.state);
    this.#maybeDone();
    return this.signoff;
  }

  #maybeDone() {
    if (this.workers || this.queue.length || this.uploads.size) return;
    if (this.held.length) {
      if (this.state !== 'awaiting-review') {
        this.#setState('awaiting-review');
        this.dispatchEvent(new CustomEvent('review-required', { detail: { count: this.held.length } }));
      }
      return;
    }
    if (this.state === 'complete' || this.state === 'idle') return;
    this.#setState('complete');
    this.emitProgress();
    this.dispatchEvent(new CustomEvent('complete', { detail: this.summary() }));
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state } }));
  }

  counts() {
    const c = { total: this.rows.length, processed: 0, uploaded: 0, alreadyUploaded: 0, deidentified: 0,
      awaitingReview: 0, skipped: 0, failed: 0 };
    for (const r of this.rows) {
      if (r.status === 'uploaded') c.uploaded += 1;
      else if (r.status === 'already-uploaded') c.alreadyUploaded += 1;
      else if (r.status === 'deidentified') c.deidentified += 1;
      else if (r.status === 'awaiting-review') c.awaitingReview += 1;
      else if (r.status === 'skipped') c.skipped += 1;
      else if (r.status === 'failed') c.failed += 1;
      if (TERMINAL.has(r.status) || r.status === 'awaiting-review' || r.status === 'uploading') c.processed += 1;
    }
    return c;
  }

  #progress() {
    // Throttled: counting thousands of rows on every change would cost more than the work itself.
    if (this.progressTimer) return;
    this.progressTimer = setTimeout(() => { this.progressTimer = null; this.emitProgress(); }, 100);
  }

  emitProgress() {
    const seconds = this.started ? (performance.now() - this.started) / 1000 : 0;
    const c = this.counts();
    const detail = { state: this.state, counts: c, inputBytes: this.inputBytes, seconds,
      filesPerSecond: seconds ? c.processed / seconds : 0, bytesPerSecond: seconds ? this.inputBytes / seconds : 0 };
    this.dispatchEvent(new CustomEvent('progress', { detail }));
  }

  /** PHI-free: counts and reasons, never file names. */
  summary() {
    const reasons = (status) => {
      const out = {};
      for (const r of this.rows.filter((x) => x.status === status)) {
        const key = `${r.code}: ${r.message}`;
        out[key] = (out[key] || 0) + 1;
      }
      return out;
    };
    return { counts: this.counts(), skipped: reasons('skipped'), failed: reasons('failed'),
      seconds: this.started ? (performance.now() - this.started) / 1000 : 0, signoff: this.signoff };
  }
}
