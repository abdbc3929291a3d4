// STOW-RS (PS3.18 10.5): POST {endpoint}/studies, multipart/related; type="application/dicom", bearer token.
// Instances go in batches, one request at a time, with retries and exponential backoff. The endpoint is
// idempotent and what it acknowledged is remembered (acks.js), so a failed network or a reload neither loses nor
// duplicates an instance. Only DeidentifiedInstance objects (made by the worker pool) are accepted.
// The bearer token is a string or comes from an async provider (a portal's short-lived tokens): the provider is
// asked before each request ({reason: 'upload'}) and once more after a 401 ({reason: 'unauthorized'}).
// A plain token that is missing or refused does not fail the files: they wait (event 'token-needed') until
// setCredentials() gives one, then the same batch is sent again.
import { DeidentifiedInstance } from './pool.js';
import { NamedError } from './protocol.js';

const REFERENCED = '00081199';
const FAILED = '00081198';
const SOP_INSTANCE = '00081155';
const FAILURE_REASON = '00081197';

/** A retry delay that ends early when the browser says it is online again. */
const backoff = (ms) => new Promise((resolve) => {
  const done = () => { clearTimeout(timer); removeEventListener('online', done); resolve(); };
  const timer = setTimeout(done, ms);
  addEventListener('online', done);
});
const TOKEN_TIMEOUT_MS = 30000;

/** The token from a provider, checked (a header value must be one printable word), within a deadline. */
async function askProvider(provider, reason) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new NamedError('TokenError', 'the token provider did not answer in time')), TOKEN_TIMEOUT_MS);
  });
  try {
    const token = await Promise.race([Promise.resolve().then(() => provider({ reason })), deadline]);
    if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) {
      throw new NamedError('TokenError', 'the token provider did not return a token (printable text)');
    }
    return token;
  } catch (err) {
    throw err?.name === 'TokenError' ? err : new NamedError('TokenError', 'the token provider failed');
  } finally {
    clearTimeout(timer);
  }
}

export class StowUploader extends EventTarget {
  #waiting = '';

  constructor({ endpoint, token, tokenProvider = null, acks, outbox = null, maxBatchBytes = 8 << 20, maxBatchCount = 25, maxAttempts = 8,
    baseDelayMs = 500, maxDelayMs = 15000, lingerMs = 150 }) {
    super();
    this.url = String(endpoint).replace(/\/+$/, '') + '/studies';
    this.token = token;
    this.tokenProvider = tokenProvider;
    this.acks = acks;
    this.outbox = outbox;  // released instances not yet acknowledged, kept across reloads (outbox.js)
    this.maxBatchBytes = maxBatchBytes;
    this.maxBatchCount = maxBatchCount;
    this.maxAttempts = maxAttempts;
    this.baseDelayMs = baseDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.lingerMs = lingerMs;
    this.queue = [];
    this.pendingBytes = 0;
    this.running = false;
    this.timer = null;
    this.tokenWaiters = [];
  }

  /** A new token (or provider): uploads waiting for one go on. */
  setCredentials(token, tokenProvider = null) {
    this.token = token || null;
    this.tokenProvider = tokenProvider || null;
    if (this.#hasToken()) this.tokenWaiters.splice(0).forEach((resolve) => resolve());
  }

  #hasToken() { return !!(this.tokenProvider || this.token); }

  /** What the uploads wait for, if not for the endpoint's answer: 'token' (none given, or the one given was
   * refused), 'network' (the last request got no answer: retried when online again), or ''. Event 'waiting' on
   * every change, so that the page's rows never say "Uploading" while nothing is sent. */
  get waiting() { return this.#waiting; }

  #setWaiting(why) {
    if (why === this.#waiting) return;
    this.#waiting = why;
    this.dispatchEvent(new CustomEvent('waiting', { detail: { why } }));
  }

  async #untilToken(reason) {
    if (this.#hasToken()) return;
    this.#setWaiting('token');
    this.dispatchEvent(new CustomEvent('token-needed', { detail: { reason, count: this.queue.length } }));
    while (!this.#hasToken()) await new Promise((resolve) => this.tokenWaiters.push(resolve));
    this.#setWaiting('');
  }

  /** Resolves 'uploaded' or 'already-uploaded'; rejects with a named error (never retried past maxAttempts). */
  async send(instance) {
    if (!(instance instanceof DeidentifiedInstance)) throw new TypeError('only de-identifier output can be uploaded');
    const { sopUid } = instance.record;
    if (await this.acks.get(sopUid)) { await this.outbox?.delete(sopUid); return 'already-uploaded'; }
    await this.outbox?.put(instance.record, instance.bytes);
    return new Promise((resolve, reject) => {
      this.queue.push({ instance, resolve, reject });
      this.pendingBytes += instance.bytes.byteLength;
      this.#schedule();
    });
  }

  #schedule() {
    if (this.running) return;
    const full = this.queue.length >= this.maxBatchCount || this.#queuedBytes() >= this.maxBatchBytes;
    clearTimeout(this.timer);
    if (full) this.#pump();
    else if (this.queue.length) this.timer = setTimeout(() => this.#pump(), this.lingerMs);
  }

  #queuedBytes() { return this.queue.reduce((n, q) => n + q.instance.bytes.byteLength, 0); }

  async #pump() {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = [];
        let bytes = 0;
        while (this.queue.length && batch.length < this.maxBatchCount
               && (batch.length === 0 || bytes + this.queue[0].instance.bytes.byteLength <= this.maxBatchBytes)) {
          const item = this.queue.shift();
          bytes += item.instance.bytes.byteLength;
          batch.push(item);
        }
        await this.#sendBatch(batch);
      }
    } finally {
      this.running = false;
    }
  }

  #settle(item, ok, value) {
    this.pendingBytes -= item.instance.bytes.byteLength;
    // Acknowledged or refused for good: out of the outbox. (A token refusal never gets here: it waits.)
    this.outbox?.delete(item.instance.record.sopUid);
    if (ok) item.resolve(value); else item.reject(value);
  }

  async #sendBatch(batch) {
    let waiting = batch;
    let reason = 'upload';
    for (let attempt = 1; waiting.length; attempt += 1) {
      await this.#untilToken('missing');
      /** @type {{status?: number, acked?: Set<string>, failed?: Map<string, number>, tokenError?: Error, network?: boolean}} */
      let reply;
      try {
        reply = await this.#post(waiting, reason);
      } catch (err) {
        reply = err?.name === 'TokenError' ? { tokenError: err } : { network: true };
      }
      reason = 'upload';
      this.#setWaiting(reply.network ? 'network' : '');
      if (reply.status === 401 && this.tokenProvider && !waiting.refreshed) {
        waiting.refreshed = true;  // one fresh token per batch: a provider that keeps failing is not asked forever
        reason = 'unauthorized';
        attempt -= 1;
        continue;
      }
      if ((reply.status === 401 || reply.status === 403) && !this.tokenProvider) {
        // A person typed it: they can type the right one. The batch waits for it (untilToken) and goes again.
        this.token = null;
        this.dispatchEvent(new CustomEvent('error', { detail: new NamedError('Unauthorized', 'the endpoint refused the upload token') }));
        attempt = 0;
        continue;
      }
      if (reply.status === 401 || reply.status === 403) {
        const error = new NamedError('Unauthorized', 'the endpoint refused the upload token');
        this.dispatchEvent(new CustomEvent('error', { detail: error }));
        waiting.forEach((item) => this.#settle(item, false, error));
        return;
      }
      if (reply.status === 413 && waiting.length > 1) {
        const half = Math.ceil(waiting.length / 2);
        await this.#sendBatch(waiting.slice(0, half));
        await this.#sendBatch(waiting.slice(half));
        return;
      }
      if (reply.status === 413 || reply.status === 415) {
        const error = new NamedError('UploadRejected', reply.status === 413
          ? 'the instance is larger than the endpoint accepts' : 'the endpoint does not accept application/dicom');
        waiting.forEach((item) => this.#settle(item, false, error));
        return;
      }
      const retry = [];
      for (const item of waiting) {
        const sop = item.instance.record.sopUid;
        if (reply.acked?.has(sop)) {
          await this.acks.put(sop, item.instance.record.sha256);
          this.#settle(item, true, 'uploaded');
        } else if (reply.failed?.has(sop)) {
          this.#settle(item, false, new NamedError('UploadRejected',
            `the endpoint refused the instance (failure reason ${reply.failed.get(sop)})`));
        } else {
          retry.push(item);
        }
      }
      // The endpoint does not answer (offline, down): wait as long as it takes, the outbox keeps the instances.
      if (reply.network) attempt = Math.min(attempt, this.maxAttempts - 1);
      if (retry.length && attempt >= this.maxAttempts) {
        const error = reply.tokenError
          || new NamedError('UploadFailed', `the endpoint did not acknowledge after ${attempt} attempts`);
        if (reply.tokenError) this.dispatchEvent(new CustomEvent('error', { detail: error }));
        retry.forEach((item) => this.#settle(item, false, error));
        return;
      }
      if (retry.length) {
        this.dispatchEvent(new CustomEvent('retry', { detail: { attempt, count: retry.length, status: reply.status || 0 } }));
        const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        await backoff(delay * (0.75 + Math.random() * 0.5));
      }
      waiting = Object.assign(retry, { refreshed: waiting.refreshed });
    }
  }

  async #post(items, reason) {
    const token = this.tokenProvider ? await askProvider(this.tokenProvider, reason) : this.token;
    const boundary = `py-deid-${crypto.randomUUID()}`;
    const parts = [];
    for (const { instance } of items) {
      parts.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, instance.bytes, '\r\n');
    }
    parts.push(`--${boundary}--\r\n`);
    const response = await fetch(this.url, {
      method: 'POST',
      headers: {
        'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
        Accept: 'application/dicom+json',
        Authorization: `Bearer ${token}`,
      },
      body: new Blob(parts),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
    const out = { status: response.status, acked: new Set(), failed: new Map() };
    if (![200, 202, 409].includes(response.status)) return out;
    let json;
    try { json = await response.json(); } catch { return out; }
    for (const item of json?.[REFERENCED]?.Value || []) {
      const uid = item?.[SOP_INSTANCE]?.Value?.[0];
      if (uid) out.acked.add(String(uid));
    }
    for (const item of json?.[FAILED]?.Value || []) {
      const uid = item?.[SOP_INSTANCE]?.Value?.[0];
      if (uid) out.failed.set(String(uid), Number(item?.[FAILURE_REASON]?.Value?.[0] || 0));
    }
    return out;
  }
}
