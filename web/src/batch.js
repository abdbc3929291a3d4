// One run of files through the pipeline: sniff, read, de-identify (worker pool), hold for review if the policy
// says so, upload, release. Streaming: at most `pool.size` files are read at a time and the upload queue is
// bounded in bytes, so memory does not grow with the size of the study.
import { readEntry } from './files.js';
import { NamedError } from './protocol.js';
import { REASONS } from './review/reasons.js';
import { ReviewState } from './review/state.js';

export const TERMINAL = new Set(['uploaded', 'already-uploaded', 'deidentified', 'skipped', 'failed', 'excluded']);

const PREFETCH_MAX = 4 << 20;  // files read ahead of their run only up to this size (the first few, see prefetch)
const READ = Symbol('read');  // an entry's read started by prefetch (a symbol: entries may be a caller's objects)

/** Start reading the first `count` entries (those up to 4 MB) now, before their run exists: the page resolves the
 * key and configures the workers first (0.03-0.07 s on the loaded 2-core machine), and the first files were only
 * read after that, then posted (another 0.05-0.1 s before the first worker had a file). The run takes the read
 * over (Run.add); a larger file, or one past `count`, is read by the run as before. */
export function prefetch(entries, count) {
  return entries.map((entry, i) => {
    if (i >= count || entry[READ] || !entry.file || !(entry.file.size <= PREFETCH_MAX)) return entry;
    const read = readEntry(entry.file);
    read.catch(() => {});  // looked at by the run, which reports an unreadable file
    return { ...entry, [READ]: read };  // (a copy: addFiles() may have been given the caller's own objects)
  });
}

export class Run extends EventTarget {
  // limits: {maxFileSize, maxBatchSize (bytes, 0 = none), modalities: ['CT', ...] or null}: files outside them
  // are listed as skipped with a reason, never uploaded.
  // (Types named structurally: a type imported by name in a comment would survive into the one-file embed module.)
  /** @param {{pool: {size: number, process: Function, call: Function}, uploader: {send: Function, pendingBytes: number, setCredentials: Function, waiting?: string} | null,
   *   review?: string, fileTimeoutMs?: number, maxPendingBytes?: number,
   *   limits?: {maxFileSize?: number, maxBatchSize?: number, modalities?: string[] | null}}} options */
  constructor({ pool, uploader, review = 'never', fileTimeoutMs = 0, maxPendingBytes = 64 << 20, limits = {} }) {
    super();
    this.pool = pool;
    this.uploader = uploader;
    this.review = review;
    this.fileTimeoutMs = fileTimeoutMs;
    this.maxPendingBytes = maxPendingBytes;
    this.limits = limits;
    this.admittedBytes = 0;
    this.cancelled = false;
    this.rows = [];
    this.queue = [];
    this.held = [];
    this.active = 0;
    this.uploads = new Set();
    this.started = 0;
    this.ended = 0;
    this.inputBytes = 0;  // read and de-identified so far
    this.totalBytes = 0;  // of every file added
    this.reviewMs = 0;  // time spent waiting for a reviewer, not counted as processing time
    this.reviewSince = 0;
    this.idleMs = 0;
    this.resumed = 0;  // rows from an earlier page's outbox: not read or de-identified here
    this.signoff = null;
    this.progressTimer = null;
    this.state = 'idle';
    this.workers = 0;
    this.reviewing = new ReviewState(this);  // the review of held instances, exclusions, the certificate
    this.attestation = '';
  }

  /** Queue entries; returns their rows (in order, for the table). */
  add(entries) {
    if (this.state === 'complete') { this.signoff = null; this.reviewing.nextBatch(); }  // a new batch, a new review
    const added = [];
    for (const entry of entries) {
      const { file, path } = entry;
      const row = { index: this.rows.length, path, size: file.size, status: 'queued', code: '', message: '', file,
        read: entry[READ] || null };  // read: the file's read, started by prefetch()
      this.rows.push(row);
      this.totalBytes += file.size;
      added.push(row);
      const refused = this.#admit(row);
      if (refused) this.#update(row, 'skipped', refused);
      else this.queue.push(row);
    }
    if (!this.started) this.started = performance.now();
    if (this.ended) { this.idleMs += performance.now() - this.ended; this.ended = 0; }  // between batches: not processing
    this.#setState('processing');
    this.#progress();
    // Two more readers than workers: the next file is read while the workers de-identify (bounded prefetch).
    // (Counted first: a loop that finds the queue empty ends synchronously and decrements `workers`.)
    const start = Math.max(0, this.pool.size + 2 - this.workers);
    for (let i = 0; i < start; i += 1) { this.workers += 1; this.#loop(); }
    return added;
  }

  /** Instances kept in the outbox by an earlier page (outbox.js): uploaded as rows of this run, named by `label`. */
  resume(instances, label) {
    const added = [];
    for (const instance of instances) {
      const { record } = instance;
      const row = { index: this.rows.length, path: label(this.rows.length + 1), size: instance.bytes.byteLength,
        status: 'queued', code: '', message: '', file: null };
      this.rows.push(row);
      added.push(row);
      this.resumed += 1;
      this.#upload(row, instance, { modality: record.modality, sopUid: record.sopUid, pixels: record.pixels,
        outputBytes: record.size, record });
    }
    if (!this.started) this.started = performance.now();
    if (this.ended) { this.idleMs += performance.now() - this.ended; this.ended = 0; }
    this.#setState('uploading');
    this.#progress();
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

  #admit(row) {
    const { maxFileSize, maxBatchSize } = this.limits;
    const mb = (n) => `${Math.round(n / 1e5) / 10} MB`;
    if (maxFileSize && row.size > maxFileSize) {
      return { code: 'too-large', message: `larger than the limit of ${mb(maxFileSize)} per file` };
    }
    if (maxBatchSize && this.admittedBytes + row.size > maxBatchSize) {
      return { code: 'batch-too-large', message: `over the limit of ${mb(maxBatchSize)} per batch` };
    }
    this.admittedBytes += row.size;
    return null;
  }

  /** Stop: queued and held files are dropped, files in flight finish but are neither uploaded nor reported. */
  cancel() {
    this.cancelled = true;
    this.queue.length = 0;
    this.held.length = 0;
    clearTimeout(this.progressTimer);
    this.state = 'cancelled';
  }

  #update(row, status, fields = {}) {
    if (this.cancelled) return;
    Object.assign(row, { status }, fields);
    if (TERMINAL.has(status) || status === 'awaiting-review') { row.file = null; row.read = null; }  // release the File handle
    this.dispatchEvent(new CustomEvent('file', { detail: row }));
    this.#progress();
  }

  async #one(row) {
    while (this.uploader && this.uploader.pendingBytes > this.maxPendingBytes) {
      await new Promise((resolve) => setTimeout(resolve, 50));  // backpressure: let uploads drain
    }
    let read;
    try {
      const started = row.read;
      row.read = null;
      read = await (started || readEntry(row.file));
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
      // (transferred, not copied) With a review policy the worker also returns what the review screen shows.
      // reread: the file may wait on a busy worker behind another; if that one brings the worker down, this one is
      // read again for the new worker (src/pool.js DEPTH).
      const reread = async () => {
        const again = row.file ? await readEntry(row.file) : {};
        if (!again.buffer) throw new NamedError('ReadError', 'the browser could not read the file again');
        return again.buffer;
      };
      result = await this.pool.process(buffer, { timeoutMs, review: this.review, reread, onFrame: ({ frame, frames }) => {
        Object.assign(row, { frame, frames });  // frames read for text so far: the row shows it, no deid-file event
        this.dispatchEvent(new CustomEvent('row-progress', { detail: row }));
      } });
    } catch (err) {
      this.#update(row, 'failed', { code: err.name === 'WorkerTimeout' || err.name === 'WorkerCrashed' ? 'worker-crashed' : 'internal',
        message: err.message });
      return;
    } finally {
      this.inputBytes += row.size;
    }
    const { record, instance, local } = result;
    if (record.status !== 'done' || !instance) {
      this.#update(row, record.status === 'skipped' ? 'skipped' : 'failed',
        { code: record.problem?.code || 'internal', message: record.problem?.message || 'not de-identified' });
      return;
    }
    const fields = { modality: record.modality, sopUid: record.sopUid, code: '', message: '',
      pixels: record.pixels, outputBytes: record.size, record };  // record: PHI-free, for the certificate
    const allowed = this.limits.modalities;
    if (allowed && !allowed.includes(record.modality)) {
      this.#update(row, 'skipped', { ...fields, sopUid: '', code: 'modality',
        message: 'the modality is not among those accepted here' });
      return;
    }
    if (local && !this.signoff) {  // the worker sends `local` exactly when the policy holds it (py_deid.review.held)
      this.held.push(this.reviewing.hold({ row, instance, record, local, file: row.file }));
      this.#update(row, 'awaiting-review', fields);
      return;
    }
    this.#upload(row, instance, fields);
  }

  #upload(row, instance, fields = {}) {
    if (this.cancelled) return;
    if (!this.uploader) { this.#update(row, 'deidentified', fields); return; }
    this.#update(row, 'uploading', fields);
    const p = this.uploader.send(instance).then(
      (how) => this.#update(row, how),
      (err) => this.#update(row, 'failed', { code: 'upload', message: err.message }),
    ).finally(() => { this.uploads.delete(p); this.#maybeDone(); });
    this.uploads.add(p);
  }

  signOff({ reviewer, role, attestation = '' }) {
    if (!String(reviewer || '').trim() || !String(role || '').trim()) {
      throw new TypeError('sign-off needs the reviewer and their role');
    }
    this.reviewing.check();  // edited images cleaned again, none failed
    this.signoff = { reviewer: String(reviewer).trim(), role: String(role).trim(), at: new Date().toISOString() };
    this.attestation = String(attestation || '');
    const held = this.held.splice(0);
    for (const { row, instance, excluded } of held) {
      if (excluded) this.#update(row, 'excluded', { code: excluded, message: REASONS[excluded] });
      else this.#upload(row, instance);
    }
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
    if (this.state === 'complete' || this.state === 'idle' || this.cancelled) return;
    if (this.signoff && !this.reviewing.certificate) {  // a signed batch completes once its certificate is stored
      if (!this.reviewing.certifying) this.reviewing.certify(this.signoff, this.attestation).finally(() => this.#maybeDone());
      return;
    }
    clearTimeout(this.progressTimer);  // deid-complete is the last event of a run: no throttled progress after it
    this.progressTimer = null;
    this.ended = performance.now();
    this.#setState('complete');
    this.emitProgress();
    this.dispatchEvent(new CustomEvent('complete', { detail: this.summary() }));
  }

  #setState(state) {
    if (this.state === state) return;
    const now = performance.now();
    if (this.state === 'awaiting-review' && this.reviewSince) { this.reviewMs += now - this.reviewSince; this.reviewSince = 0; }
    if (state === 'awaiting-review') this.reviewSince = now;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state } }));
  }

  counts() {
    const c = { total: this.rows.length, processed: 0, uploaded: 0, alreadyUploaded: 0, deidentified: 0,
      awaitingReview: 0, skipped: 0, failed: 0, excluded: 0 };
    for (const r of this.rows) {
      if (r.status === 'uploaded') c.uploaded += 1;
      else if (r.status === 'already-uploaded') c.alreadyUploaded += 1;
      else if (r.status === 'deidentified') c.deidentified += 1;
      else if (r.status === 'awaiting-review') c.awaitingReview += 1;
      else if (r.status === 'skipped') c.skipped += 1;
      else if (r.status === 'failed') c.failed += 1;
      else if (r.status === 'excluded') c.excluded += 1;
      if (TERMINAL.has(r.status) || r.status === 'awaiting-review' || r.status === 'uploading') c.processed += 1;
    }
    return c;
  }

  #progress() {
    // Throttled: counting thousands of rows on every change would cost more than the work itself.
    if (this.progressTimer) return;
    this.progressTimer = setTimeout(() => { this.progressTimer = null; this.emitProgress(); }, 100);
  }

  /** [seconds of processing, seconds waiting for review] since the batch started. */
  times() {
    if (!this.started) return [0, 0];
    const now = this.ended || performance.now();
    const review = this.reviewMs + (this.reviewSince ? now - this.reviewSince : 0);
    return [Math.max(0, now - this.started - this.idleMs - review) / 1000, review / 1000];
  }

  emitProgress() {
    const [seconds, reviewSeconds] = this.times();
    const c = this.counts();
    const detail = { state: this.state, counts: c, inputBytes: this.inputBytes, totalBytes: this.totalBytes, seconds, reviewSeconds,
      filesPerSecond: seconds ? Math.max(0, c.processed - this.resumed) / seconds : 0, bytesPerSecond: seconds ? this.inputBytes / seconds : 0 };
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
    const [seconds, reviewSeconds] = this.times();
    return { counts: this.counts(), skipped: reasons('skipped'), failed: reasons('failed'),
      excluded: reasons('excluded'), seconds, reviewSeconds, inputBytes: this.inputBytes, signoff: this.signoff,
      certificate: this.reviewing.summary() };
  }
}
