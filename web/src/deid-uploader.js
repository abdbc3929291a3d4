// <deid-uploader>: drop DICOM files or folders; they are de-identified here, in this browser, and only the
// de-identified instances are uploaded (STOW-RS) to the configured endpoint. Contract: DESIGN.md "Browser widget".
import { AckStore } from './acks.js';
import { Run } from './batch.js';
import { ATTRIBUTES, ConfigError, camel, coreConfig, endpointUrl, pseudonymKey, reviewPolicy } from './config.js';
import { fromDataTransfer, fromFileList } from './files.js';
import { WorkerPool, defaultPoolSize } from './pool.js';
import { StowUploader } from './upload.js';
import { renderRow, renderSummary, STAGE_LABELS, TEMPLATE } from './view.js';

const STYLES = new URL('./uploader.css', import.meta.url).href;

export class DeidUploader extends HTMLElement {
  static get observedAttributes() { return ATTRIBUTES; }

  constructor() {
    super();
    this.attachShadow({ mode: 'open' }).innerHTML = TEMPLATE(STYLES);
    this.props = {};
    this.pool = null;
    this.run = null;
    this.rowsEl = new Map();
    this.configuredFor = null;
    this.$ = (sel) => this.shadowRoot.querySelector(sel);
    this.#wire();
  }

  connectedCallback() {
    if (!this.pool) this.#start();
    this.#showTokenForm();
  }

  disconnectedCallback() { /* kept alive: a portal may move the element; destroy() frees the workers */ }

  attributeChangedCallback(name) { if (name === 'token' || name === 'endpoint') this.#showTokenForm(); }

  #get(name) {
    const prop = this.props[camel(name)];
    return prop !== undefined && prop !== null ? String(prop) : this.getAttribute(name);
  }

  // ---- public API (DESIGN.md) ----
  /** Files (FileList, File[] or [{file, path}]) to de-identify and upload. */
  addFiles(files) {
    const list = Array.from(files || []);
    const entries = list.map((f) => (f instanceof File ? { file: f, path: f.webkitRelativePath || f.name } : f));
    this.#enqueue(entries);
  }

  signOff({ reviewer, role } = {}) {
    if (!this.run) throw new ConfigError('nothing to sign off');
    const record = this.run.signOff({ reviewer, role });
    this.$('[part=review]').hidden = true;
    return record;
  }

  get state() { return this.run ? this.run.state : 'idle'; }
  get pseudonymKey() { return this.props.pseudonymKey; }
  set pseudonymKey(value) { this.props.pseudonymKey = value; this.configuredFor = null; }
  summary() { return this.run ? this.run.summary() : null; }
  whenReady() { return this.pool.whenReady(); }
  async stats() { return this.pool.statsAll(); }
  /** Ask a worker directly (OCR of a PGM, decode of a frame): the review screen and tests use it. */
  call(action, payload, transfer) { return this.pool.call(action, payload, transfer); }

  destroy() {
    this.pool?.destroy();
    this.pool = null;
  }

  // ---- internals ----
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  #error(err) {
    const detail = { name: err.name || 'Error', message: err.message || String(err) };
    this.$('[part=error]').textContent = `${detail.name}: ${detail.message}`;
    this.$('[part=error]').hidden = false;
    this.#emit('deid-error', detail);
  }

  #start() {
    const size = Number(this.#get('pool-size')) || defaultPoolSize();
    this.pool = new WorkerPool({ size, ocr: this.#get('ocr') !== 'off' });
    this.pool.addEventListener('stage', ({ detail }) => {
      const chip = this.$(`[data-stage=${detail.stage}]`);
      if (chip) {
        chip.dataset.state = detail.state;
        chip.querySelector('.state').textContent = { start: 'loading…', done: 'ready', failed: 'unavailable' }[detail.state];
      }
      this.#emit('deid-progress', { stage: detail.stage, state: detail.state, ms: detail.ms });
    });
  }

  #showTokenForm() {
    const needToken = !!this.#get('endpoint') && !this.#get('token');
    this.$('[part=token-form]').hidden = !needToken;
  }

  #wire() {
    const drop = this.$('[part=dropzone]');
    const files = this.$('#files');
    const folder = this.$('#folder');
    drop.addEventListener('click', (e) => { if (e.target === drop || e.target.closest('.hint')) files.click(); });
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', async (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      try { this.#enqueue(await fromDataTransfer(e.dataTransfer)); } catch (err) { this.#error(err); }
    });
    for (const input of [files, folder]) {
      input.addEventListener('change', () => { this.#enqueue(fromFileList(input.files)); input.value = ''; });
    }
    this.$('[part=token-form]').addEventListener('submit', (e) => {
      e.preventDefault();
      const value = this.$('#token').value.trim();
      if (value) { this.props.token = value; this.$('#token').value = ''; this.#showTokenForm(); }
    });
    this.$('[part=review] form').addEventListener('submit', (e) => {
      e.preventDefault();
      try {
        this.signOff({ reviewer: this.$('#reviewer').value, role: this.$('#role').value });
      } catch (err) { this.#error(err); }
    });
    addEventListener('beforeunload', (e) => {
      if (this.run && ['processing', 'uploading', 'awaiting-review'].includes(this.run.state)) e.preventDefault();
    });
  }

  #settings() {
    const config = coreConfig((n) => this.#get(n));
    const review = reviewPolicy((n) => this.#get(n));
    const endpoint = endpointUrl(this.#get('endpoint'));
    const token = this.#get('token');
    if (endpoint && !token) throw new ConfigError('an upload token is needed for the endpoint');
    const { key, session } = pseudonymKey(this.props.pseudonymKey);
    return { config, review, endpoint, token, key, session };
  }

  async #enqueue(entries) {
    if (!entries.length) return;
    this.$('[part=error]').hidden = true;
    let s;
    try { s = this.#settings(); } catch (err) { this.#error(err); return; }
    if (!this.pool) this.#start();
    this.$('[part=key-notice]').hidden = !s.session;
    const fingerprint = JSON.stringify([s.config, Array.from(s.key), s.endpoint, s.token, s.review]);
    if (!this.run || this.run.state === 'complete' && this.configuredFor !== fingerprint) {
      try {
        await this.pool.configure(s.config, s.key.buffer.slice(0));
      } catch (err) { this.#error(err); return; }
      this.configuredFor = fingerprint;
      this.#newRun(s);
    } else if (this.configuredFor !== fingerprint) {
      this.#error(new ConfigError('the configuration changed during a run; wait for it to finish'));
      return;
    }
    for (const row of this.run.add(entries)) this.#row(row);
  }

  #row(row) {
    let tr = this.rowsEl.get(row.index);
    if (!tr) { tr = document.createElement('tr'); this.rowsEl.set(row.index, tr); this.$('tbody').append(tr); }
    renderRow(tr, row);
  }

  #newRun(s) {
    const uploader = s.endpoint
      ? new StowUploader({ endpoint: s.endpoint, token: s.token, acks: new AckStore(s.endpoint) }) : null;
    uploader?.addEventListener('error', (e) => this.#error(e.detail));
    const run = new Run({ pool: this.pool, uploader, review: s.review, fileTimeoutMs: Number(this.#get('file-timeout')) || 0 });
    this.run = run;
    this.rowsEl.clear();
    this.$('tbody').replaceChildren();
    this.$('[part=summary]').hidden = true;
    run.addEventListener('file', ({ detail: row }) => {
      this.#row(row);
      const { index, status, code, message, modality, sopUid } = row;  // never the file name or path
      this.#emit('deid-file', { index, status, code, message, modality: modality || '', sopUid: sopUid || '' });
      if (status === 'uploaded' || status === 'already-uploaded') this.#emit('deid-uploaded', { index, sopUid, status });
    });
    run.addEventListener('progress', ({ detail }) => this.#progress(detail));
    run.addEventListener('review-required', ({ detail }) => {
      this.$('[part=review]').hidden = false;
      this.$('#review-count').textContent = String(detail.count);
      this.#emit('deid-review-required', detail);
    });
    run.addEventListener('complete', ({ detail }) => {
      renderSummary(this.$('[part=summary]'), detail);
      this.$('[part=summary]').hidden = false;
      this.#emit('deid-complete', detail);
    });
  }

  #progress(d) {
    const c = d.counts;
    const bar = this.$('progress');
    bar.max = Math.max(1, c.total);
    bar.value = c.processed;
    const mb = (d.bytesPerSecond / 1e6).toFixed(1);
    this.$('[part=counts]').textContent = `${c.processed} of ${c.total} files · ${c.uploaded + c.alreadyUploaded} uploaded`
      + ` · ${c.skipped} skipped · ${c.failed} failed${c.awaitingReview ? ` · ${c.awaitingReview} awaiting review` : ''}`
      + ` · ${d.filesPerSecond.toFixed(1)} files/s · ${mb} MB/s`;
    this.#emit('deid-progress', d);
  }
}

export { STAGE_LABELS };
if (!customElements.get('deid-uploader')) customElements.define('deid-uploader', DeidUploader);
