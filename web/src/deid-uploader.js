// <deid-uploader>: drop DICOM files or folders; they are de-identified here, in this browser, and only the
// de-identified instances are uploaded (STOW-RS) to the configured endpoint.
// The embedding guide (settings, events and their payloads, the CSP a portal needs) is docs/embedding.md.
import { AckStore } from './acks.js';
import { Run, prefetch } from './batch.js';
import { ATTRIBUTES, SETTINGS, ConfigError, coreConfig, resolveKey, resolveSettings } from './config.js';
import { fromDataTransfer, fromFileList } from './files.js';
import { translator } from './i18n/index.js';
import { Outbox } from './outbox.js';
import { WorkerPool, defaultPoolSize, restoredInstance } from './pool.js';
import { NamedError } from './protocol.js';
import { exportKeyFile, importKeyFile, keyScope, siteKey, storeSiteKey } from './site-key.js';
import { mountReview } from './review/screen.js';
import { StowUploader } from './upload.js';
import { countsText, localize, renderRow, renderSummary, setStage, TEMPLATE } from './view.js';

const STYLES = new URL('./uploader.css', import.meta.url).href;
const ASSET_BASE = new URL('../', import.meta.url).href;  // the folder the build wrote (app/ is in it)
// Settings that apply at once, even during a run; any other change applies to the next run.
const LIVE = new Set(['token', 'tokenProvider', 'lang', 'strings']);
const BUSY = new Set(['processing', 'uploading', 'awaiting-review']);
const ERROR_CODES = { ConfigError: 'config', TokenError: 'token', Unauthorized: 'unauthorized', Destroyed: 'destroyed',
  UploadRejected: 'upload', UploadFailed: 'upload', StartupError: 'startup', StylesheetError: 'stylesheet',
  CspError: 'csp', DropError: 'drop' };
const KEPT_ERRORS = 50;  // `errors` keeps the last ones (each is a short PHI-free record)

/** Resolves once the page's own deferred and module scripts ran (DOMContentLoaded fired) and one task more: a
 * portal that configures the element from such a script, or from a task it queues there, is heard before the
 * workers start and before any error is sent. readyState alone cannot tell: it is already 'interactive' while those
 * scripts still run (or still download). */
function pageScriptsRan() {
  const nav = /** @type {PerformanceNavigationTiming | undefined} */ (performance.getEntriesByType?.('navigation')?.[0]);
  const fired = document.readyState === 'complete'
    || (nav ? nav.domContentLoadedEventStart > 0 : document.readyState !== 'loading');
  const loaded = fired ? Promise.resolve()
    : new Promise((resolve) => document.addEventListener('DOMContentLoaded', resolve, { once: true }));
  return loaded.then(() => new Promise((resolve) => setTimeout(resolve, 0)));
}

export class DeidUploader extends HTMLElement {
  static get observedAttributes() { return ATTRIBUTES; }

  #props = {};
  #configKeys = [];
  #settings = null;
  #configError = null;
  #checkQueued = false;
  #version = 0;
  #runVersion = -1;
  #destroyed = false;
  #t = translator('en');
  #lastProgress = null;
  #countsDirty = false;  // a progress event waiting for the rows it counts to be drawn
  #dirtyRows = new Map();  // rows changed since the table was last drawn
  #rowsTimer = null;
  #cspSeen = new Set();
  #starting = null;
  #refusedToken = null;  // the token the endpoint refused: the field is shown again until another one is given
  #tokenErrorShown = false;
  #outboxChecked = false;
  #errors = [];          // every error raised, for portals that look after the fact
  #started = false;      // the page's scripts ran (pageScriptsRan): events go out from then on
  #heldErrors = [];      // deid-error events raised before that, sent then in order
  #startup = pageScriptsRan().then(() => {
    this.#started = true;
    for (const detail of this.#heldErrors.splice(0)) this.#emit('deid-error', detail);
  });
  #onUnload = (e) => { if (this.run && BUSY.has(this.run.state)) e.preventDefault(); };
  #onViolation = (e) => this.#violation(e);

  constructor() {
    super();
    // Parsed in a detached <template>: set on the shadow root directly, the parser would drop the inner <form>s
    // when a portal puts the element inside its own form.
    const template = document.createElement('template');
    template.innerHTML = TEMPLATE(STYLES);
    this.attachShadow({ mode: 'open' }).append(template.content);
    this.pool = null;
    this.run = null;
    this.rowsEl = new Map();
    this.$ = (sel) => this.shadowRoot.querySelector(sel);
    this.#wire();
    // Properties a portal set before this module loaded sit on the instance and hide the accessors: re-apply them.
    for (const name of ['config', ...Object.keys(SETTINGS)]) {
      if (name === 'lang' || !Object.hasOwn(this, name)) continue;
      const value = this[name];
      delete this[name];
      this[name] = value;
    }
  }

  connectedCallback() {
    if (this.#destroyed) return;
    this.#check();
    // Workers start once the page's own scripts ran: a portal sets `config`, with the pool size, from a script
    // that may run (or arrive) after this module. Then uploads an earlier page left in the outbox go on.
    this.#startup.then(() => {
      if (!this.isConnected || this.#destroyed) return;
      this.#ensurePool();
      this.#resumeOutbox().catch(() => {});  // reported in the element already
    });
  }

  disconnectedCallback() { /* kept alive: a portal may move the element; destroy() frees the workers */ }

  attributeChangedCallback(name) { this.#changed(Object.keys(SETTINGS).find((k) => SETTINGS[k].attr === name)); }

  // ---- configuration ----
  /** Settings given by script ({endpoint, tokenProvider, ...}); they win over attributes. See docs/embedding.md. */
  get config() { return { ...this.#props }; }

  set config(value) {
    const before = this.#props;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.#props = {};
      this.#configKeys = ['config'];
    } else {
      this.#props = { ...value };
      this.#configKeys = Object.keys(value);
    }
    const keys = new Set([...Object.keys(before), ...Object.keys(this.#props)]);
    if ([...keys].some((k) => !LIVE.has(k) && before[k] !== this.#props[k])) this.#version += 1;
    this.#scheduleCheck();
  }

  // Properties for the settings (el.endpoint = ..., el.tokenProvider = async () => ...), each a key of `config`.
  // `lang` stays HTMLElement's own: it reflects the attribute, which is observed.
  static {
    for (const name of Object.keys(SETTINGS)) {
      if (name === 'lang') continue;
      Object.defineProperty(this.prototype, name, {
        configurable: true,
        get() { return this.#get(name) ?? undefined; },
        set(value) {
          const next = { ...this.#props };
          if (value === undefined || value === null) delete next[name]; else next[name] = value;
          this.config = next;
        },
      });
    }
  }

  /** The current configuration problem ({name, code, message, settings}) or null. */
  get configError() { return this.#configError ? this.#detail(this.#configError) : null; }

  /** Every error this element raised, oldest first (the last 50): the `detail`s of its deid-error events, for a
   * portal that attached its listener late. */
  get errors() { return this.#errors.map((d) => ({ ...d, ...(d.settings ? { settings: [...d.settings] } : {}) })); }

  #get(name) {
    const v = this.#props[name];
    if (v !== undefined && v !== null) return v;
    const { attr } = SETTINGS[name];
    return attr ? this.getAttribute(attr) : undefined;
  }

  #changed(name) {
    if (name && !LIVE.has(name)) this.#version += 1;
    this.#scheduleCheck();
  }

  #scheduleCheck() {
    if (this.#checkQueued) return;
    this.#checkQueued = true;
    queueMicrotask(() => this.#check());  // one check for the attributes a script sets together
  }

  /** Resolve and check every setting; report a problem in the element and as deid-error (unless the caller
   * reports it itself). */
  #check({ report = true } = {}) {
    this.#checkQueued = false;
    if (this.#destroyed) return this.#settings;
    try {
      this.#settings = resolveSettings((n) => this.#get(n), this.#configKeys.filter((k) => k !== 'config'));
      if (this.#configKeys.includes('config')) throw new ConfigError('config must be an object', ['config']);
      if (this.#configError) this.#hideError();
      this.#configError = null;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.#settings = null;
      this.#configError = err;
      if (report) this.#error(err);
    }
    const s = this.#settings;
    const scope = /** @type {HTMLElement | null} */ (this.closest('[lang]'));
    const lang = (s && s.lang) || scope?.lang || document.documentElement.lang || navigator.language;
    this.#t = translator(lang, (s && s.strings) || {});
    this.#render();
    this.#passCredentials();
    // A pool size or OCR setting given after the workers started, before any file: start them again to fit.
    if (s && !this.run && !this.#starting) this.#refitPool(s);
    return s;
  }

  /** The current token (or provider) to the run's uploader. Called on every check and once more when a run
   * is made: a run is made from the settings its files came with, and a token given while it was being set up
   * (the key read, the workers configured) must still reach it, or its uploads would wait for a token the form
   * no longer asks for. */
  #passCredentials() {
    const s = this.#settings;
    if (s && this.run?.uploader) this.run.uploader.setCredentials(this.#usableToken(s), s.tokenProvider);
  }

  #refitPool(s) {
    if (!this.pool || (this.pool.size === (s.poolSize || defaultPoolSize()) && this.pool.ocr === (s.ocr !== 'off'))) return;
    this.pool.destroy();
    this.pool = null;
    this.#ensurePool();
  }

  // ---- public API (docs/embedding.md) ----
  /** Files (FileList, File[] or [{file, path}]) to de-identify and upload; resolves to how many were queued. */
  addFiles(files) {
    const list = Array.from(files || []);
    const entries = list.map((f) => (f instanceof File ? { file: f, path: f.webkitRelativePath || f.name } : f));
    return this.#enqueue(entries);
  }

  /** @param {{reviewer?: string, role?: string, attestation?: string}} [signer] */
  signOff({ reviewer, role, attestation } = {}) {
    if (!this.run) throw new ConfigError('nothing to sign off');
    // The attestation is the sponsor's text (setting `attestation`); py_deid.certificate has a default.
    const record = this.run.signOff({ reviewer, role, attestation: attestation ?? this.#settings?.attestation ?? '' });
    this.$('[part=review]').hidden = true;
    return record;
  }

  /** Forget the current run (queued and held files are dropped, nothing more is uploaded); workers stay. */
  reset() {
    if (this.#destroyed) throw new NamedError('Destroyed', 'the uploader was shut down');
    this.run?.cancel();
    this.run = null;
    this.#runVersion = -1;
    this.#lastProgress = null;
    this.#dropRows();
    this.$('tbody').replaceChildren();
    for (const part of ['summary', 'review', 'review-screen', 'key-notice']) this.$(`[part=${part}]`).hidden = true;
    if (!this.#configError) this.#hideError();
    const bar = this.$('progress');
    bar.value = 0;
    this.#render();
    this.#check();  // pool size or OCR changed since the workers started: they start again with the new values
  }

  /** Free everything: workers (and their OCR workers) are terminated, listeners removed. Final. */
  destroy() {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.run?.cancel();
    this.#flushRows();
    this.pool?.destroy();
    this.pool = null;
    removeEventListener('beforeunload', this.#onUnload);
    document.removeEventListener('securitypolicyviolation', this.#onViolation);
    this.$('[part=dropzone]').hidden = true;
    this.$('[part=token-form]').hidden = true;
    this.#showError(this.#t('destroyed'));
  }

  /** The site key this browser keeps for the endpoint, as a passphrase-protected key file (JSON text) that
   * importSiteKey() on another computer and the CLI's --key-file read. */
  async exportSiteKey(passphrase) {
    const s = this.#check({ report: false });
    const site = s && await siteKey(keyScope(s.endpoint, s.siteId));
    if (!site) throw new NamedError('KeyFileError', 'this browser cannot keep a site key');
    return exportKeyFile(site.key, passphrase);
  }

  /** Replace the site key by the one in a key file; runs started from now on use it. */
  async importSiteKey(text, passphrase) {
    const s = this.#check({ report: false });
    if (!s) throw this.#configError;
    await storeSiteKey(keyScope(s.endpoint, s.siteId), await importKeyFile(text, passphrase));
    this.#version += 1;  // a finished run starts afresh with the new key
  }

  get state() { return this.#destroyed ? 'destroyed' : this.run ? this.run.state : 'idle'; }
  summary() { return this.run ? this.run.summary() : null; }
  whenReady() { return this.#ensurePool().whenReady(); }
  async stats() { return this.#ensurePool().statsAll(); }
  /** Ask a worker directly (OCR of a PGM, decode of a frame): the review screen and tests use it. */
  call(action, payload, transfer) { return this.#ensurePool().call(action, payload, transfer); }

  // ---- internals ----
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  #detail(err) {
    const name = err.name || 'Error';
    const detail = { name, code: ERROR_CODES[name] || 'internal', message: err.message || String(err) };
    if (err.settings?.length) detail.settings = [...err.settings];
    return detail;
  }

  #error(err) {
    const detail = this.#detail(err);
    this.#showError(detail.code === 'config' ? this.#t('error.config', detail) : this.#t('error.other', detail));
    this.#report(err, detail);
  }

  /** Record and send a deid-error (the element shows its own text for it). */
  #report(err, detail = this.#detail(err)) {
    this.#errors.push(detail);
    if (this.#errors.length > KEPT_ERRORS) this.#errors.shift();
    if (this.#started) this.#emit('deid-error', detail);
    else this.#heldErrors.push(detail);
  }

  #showError(text) {
    const el = this.$('[part=error]');
    el.textContent = text;
    el.hidden = false;
  }

  #hideError() { this.$('[part=error]').hidden = true; }

  #violation(e) {
    // Only what concerns this element: its assets, its workers (blob:), its endpoint. Origins only, no paths.
    const blocked = String(e.blockedURI || '');
    const endpoint = this.#settings?.endpoint;
    const ours = blocked.startsWith(ASSET_BASE) || blocked === 'blob' || blocked.startsWith('blob:')
      || (endpoint && blocked.startsWith(new URL(endpoint).origin));
    const key = `${e.effectiveDirective}|${blocked.split('/').slice(0, 3).join('/')}`;
    if (!ours || this.#cspSeen.has(key)) return;
    this.#cspSeen.add(key);
    const what = blocked.startsWith('blob') ? 'blob:' : blocked.split('/').slice(0, 3).join('/');
    this.#error(new NamedError('CspError', `the page's Content-Security-Policy blocked ${what} (${e.effectiveDirective}); see the embedding guide`));
  }

  #ensurePool() {
    if (this.#destroyed) throw new NamedError('Destroyed', 'the uploader was shut down');
    if (this.pool) return this.pool;
    const s = this.#settings || {};
    this.pool = new WorkerPool({ size: s.poolSize || defaultPoolSize(), ocr: s.ocr !== 'off' });
    const pool = this.pool;
    pool.addEventListener('stage', (/** @type {CustomEvent} */ { detail }) => {
      setStage(this.shadowRoot, this.#t, detail.stage, detail.state);
      this.#emit('deid-progress', { phase: 'startup', stage: detail.stage, state: detail.state, ms: detail.ms ?? null });
    });
    pool.whenReady().catch(() => {
      if (pool !== this.pool) return;  // destroyed or replaced on purpose
      this.#error(new NamedError('StartupError', 'the de-identification workers could not start (a Content-Security-Policy'
        + ' of this page may block them: see the embedding guide for worker-src, script-src and connect-src)'));
    });
    return pool;
  }

  #render() {
    localize(this.shadowRoot, this.#t);
    for (const [stage, state] of Object.entries(this.pool?.stages || {})) setStage(this.shadowRoot, this.#t, stage, state);
    const s = this.#settings;
    const needToken = !!s?.endpoint && !s.tokenProvider && !this.#usableToken(s);
    this.$('[part=token-form]').hidden = !needToken || this.#destroyed;
    this.$('[part=local-notice]').hidden = !s || !!s.endpoint;
    this.$('[part=site-key]').hidden = !s || !!s.pseudonymKey || !!s.pseudonymKeyProvider;
    for (const row of this.run?.rows || []) this.#row(row);
    if (this.#lastProgress) this.$('[part=counts]').textContent = countsText(this.#lastProgress, this.#t);
    if (this.run?.state === 'complete') renderSummary(this.$('[part=summary]'), this.run.summary(), this.#t);
    if (this.run?.held?.length) this.#reviewText(this.run.held.length);
    if (this.#destroyed) this.#showError(this.#t('destroyed'));
  }

  #usableToken(s) { return s.token && s.token !== this.#refusedToken ? s.token : null; }

  #tokenRefused() {
    const s = this.#settings;
    if (!s || s.tokenProvider) return false;  // a portal's provider was asked again already: its files failed
    this.#refusedToken = s.token || null;
    this.#render();
    this.#showError(this.#t('token.refused'));
    this.#tokenErrorShown = true;
    const input = this.$('#token');
    const active = this.shadowRoot.activeElement;
    // The next step is the field: focus it unless the person is typing elsewhere (a reviewer's name...).
    if (!active || !['INPUT', 'TEXTAREA', 'SELECT'].includes(active.tagName)) input.focus();
    return true;
  }

  #clearTokenError() {
    if (this.#tokenErrorShown && !this.#configError) this.#hideError();
    this.#tokenErrorShown = false;
  }

  #wire() {
    const link = this.$('link');
    const panel = this.$('[part=panel]');
    // Shown once styled (no flash of unstyled markup); a blocked stylesheet is reported, the panel shown anyway.
    link.addEventListener('load', () => { panel.hidden = false; });
    link.addEventListener('error', () => {
      panel.hidden = false;
      this.#error(new NamedError('StylesheetError', 'the stylesheet of the uploader could not be loaded (style-src)'));
    });
    const drop = this.$('[part=dropzone]');
    const files = this.$('#files');
    const folder = this.$('#folder');
    const quietly = (p) => p.catch(() => {});  // reported in the element and as deid-error already
    drop.addEventListener('click', (e) => { if (e.target === drop || e.target.closest('.hint')) files.click(); });
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', async (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      let entries;
      try { entries = await fromDataTransfer(e.dataTransfer); } catch (err) {
        this.#error(new NamedError('DropError', 'the dropped files could not be read'));
        return;
      }
      quietly(this.#enqueue(entries));
    });
    for (const input of [files, folder]) {
      input.addEventListener('change', () => { quietly(this.#enqueue(fromFileList(input.files))); input.value = ''; });
    }
    this.$('[part=token-form]').addEventListener('submit', (e) => {
      e.preventDefault();
      const value = this.$('#token').value.trim();
      if (!value) return;
      this.$('#token').value = '';
      this.#refusedToken = null;
      this.#clearTokenError();  // its cause, the refused token, is gone; a refusal of this one says so again
      this.token = value;
      // The form hides: focus goes where the work goes on, not to the top of the page.
      const next = this.run ? this.$('[part=counts]') : this.$('[part=dropzone]');
      next.focus();
    });
    this.$('[part=review] form').addEventListener('submit', (e) => {
      e.preventDefault();
      try {
        this.signOff({ reviewer: this.$('#reviewer').value, role: this.$('#role').value });
      } catch (err) { this.#error(err); }
    });
    const keyStatus = (text) => { this.$('#key-status').textContent = text; };
    this.$('#key-export').addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const text = await this.exportSiteKey(this.$('#export-pass').value);
        const file = 'py-deid-site-key.json';
        const a = document.createElement('a');
        a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
        a.download = file;
        a.hidden = true;
        this.shadowRoot.append(a);
        a.click();
        setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
        this.$('#export-pass').value = '';
        keyStatus(this.#t('siteKey.exported', { file }));
      } catch (err) { keyStatus(err.message); }
    });
    this.$('#key-import').addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const [file] = this.$('#import-file').files;
        await this.importSiteKey(await file.text(), this.$('#import-pass').value);
        this.$('#import-pass').value = '';
        this.$('#import-file').value = '';
        keyStatus(this.#t('siteKey.imported'));
      } catch (err) { keyStatus(err.message); }
    });
    addEventListener('beforeunload', this.#onUnload);
    document.addEventListener('securitypolicyviolation', this.#onViolation);
  }

  async #enqueue(entries) {
    const refuse = (err) => { this.#error(err); throw err; };
    if (this.#destroyed) refuse(new NamedError('Destroyed', 'the uploader was shut down'));
    if (!entries.length) return 0;
    const s = this.#check({ report: false });
    if (!s) refuse(this.#configError);
    // Without a token the files are de-identified now and wait for it (the token form says where it comes from).
    if (!this.#tokenErrorShown) this.#hideError();
    const pool = this.#ensurePool();
    // The first files are read while the key is resolved and the workers configured (batch.js prefetch).
    const ahead = prefetch(entries, pool.size + 2);
    await this.#ensureRun(s, pool, refuse);
    const rows = this.run.add(ahead);
    for (const row of rows) this.#row(row);
    return rows.length;
  }

  /** Instances an earlier page released and the endpoint never acknowledged (outbox.js): uploaded now, or as
   * soon as there is a token and the endpoint answers. */
  async #resumeOutbox() {
    if (this.#outboxChecked) return;
    this.#outboxChecked = true;
    const s = this.#check({ report: false });
    if (!s?.endpoint) return;
    const waiting = await new Outbox(s.endpoint).all();
    if (!waiting.length || this.#destroyed) return;
    await this.#ensureRun(s, this.#ensurePool(), (err) => { this.#error(err); throw err; });
    const rows = this.run.resume(waiting.map(({ record, bytes }) => restoredInstance(record, bytes)),
      (n) => this.#t('outbox.name', { n }));
    for (const row of rows) this.#row(row);
  }

  async #ensureRun(s, pool, refuse) {
    // Files given while a run is being set up join it (two quick drops make one run, not two).
    while (this.#starting) await this.#starting.catch(() => {});
    if (!this.run || (this.run.state === 'complete' && this.#runVersion !== this.#version)) {
      const version = this.#version;
      let key;
      this.#starting = this.#startRun(s, pool);
      try {
        ({ key } = await this.#starting);
      } catch (err) {
        refuse(err.name === 'ConfigError' ? err : new NamedError(err.name || 'Error', err.message));
      } finally {
        this.#starting = null;
      }
      this.$('[part=key-notice]').hidden = !key.session;
      this.#runVersion = version;
    } else if (this.#runVersion !== this.#version) {
      refuse(new ConfigError('the configuration changed during a run: wait for it to finish, or call reset()'));
    }
  }

  async #startRun(s, pool) {
    const key = await resolveKey(s);
    if (this.#destroyed || pool !== this.pool) throw new NamedError('Destroyed', 'the uploader was shut down');
    await pool.configure(coreConfig(s), key.key.buffer.slice(0));
    this.#newRun(s);
    this.#passCredentials();
    return { key };
  }

  #row(row) {
    let tr = this.rowsEl.get(row.index);
    if (!tr) { tr = document.createElement('tr'); this.rowsEl.set(row.index, tr); this.$('tbody').append(tr); }
    renderRow(tr, row, this.#t, { waiting: this.run?.uploader?.waiting || '' });
  }

  // A status change redraws the table at most a few times a second: drawing a long table on every change cost
  // the page more than de-identifying the file (measured: layout and paint took a core on a 500-file batch).
  #rowLater(row) {
    this.#dirtyRows.set(row.index, row);
    this.#rowsTimer ??= setTimeout(() => this.#flushRows(), 250);
  }

  #flushRows() {
    clearTimeout(this.#rowsTimer);
    this.#rowsTimer = null;
    for (const row of this.#dirtyRows.values()) this.#row(row);
    this.#dirtyRows.clear();
    if (this.#countsDirty) this.#drawCounts();  // in the same frame as the rows: a count never runs ahead of its rows
  }

  #dropRows() {
    clearTimeout(this.#rowsTimer);
    this.#rowsTimer = null;
    this.#dirtyRows.clear();
    this.rowsEl.clear();
  }

  #reviewText(count) {
    this.$('#review-count').textContent = String(count);
    this.$('#review-text').textContent = this.#t('review.text', { count });
  }

  #newRun(s) {
    const uploader = s.endpoint ? new StowUploader({ endpoint: s.endpoint, token: this.#usableToken(s),
      tokenProvider: s.tokenProvider || null, acks: new AckStore(s.endpoint), outbox: new Outbox(s.endpoint) }) : null;
    uploader?.addEventListener('error', (e) => {
      const detail = /** @type {CustomEvent} */ (e).detail;
      if (detail?.name === 'Unauthorized' && this.#tokenRefused()) this.#report(detail);
      else this.#error(detail);
    });
    const run = new Run({ pool: this.pool, uploader, review: s.review, fileTimeoutMs: s.fileTimeout || 0,
      limits: { maxFileSize: s.maxFileSize || 0, maxBatchSize: s.maxBatchSize || 0, modalities: s.modalities || null } });
    this.run?.cancel();
    this.run = run;
    this.#dropRows();
    // Rows being uploaded say so only while something is sent: waiting for a token or the network, they say that.
    uploader?.addEventListener('waiting', () => {
      if (this.run === run) for (const row of run.rows) if (row.status === 'uploading') this.#rowLater(row);
    });
    this.$('tbody').replaceChildren();
    this.$('[part=summary]').hidden = true;
    const mine = (fn) => (e) => { if (this.run === run) fn(e.detail); };  // a reset run says nothing more
    run.addEventListener('file', mine((row) => {
      this.#rowLater(row);
      const { index, status, code, message, modality, sopUid } = row;  // never the file name or path
      this.#emit('deid-file', { index, status, code, message, modality: modality || '', sopUid: sopUid || '' });
      if (status === 'uploaded' || status === 'already-uploaded') {
        if (status === 'uploaded') this.#clearTokenError();  // the endpoint took the token
        this.#emit('deid-uploaded', { index, sopUid, status });
      }
    }));
    run.addEventListener('progress', mine((d) => this.#progress(d)));
    run.addEventListener('row-progress', mine((row) => this.#rowLater(row)));
    run.addEventListener('review-required', mine((detail) => {
      this.#flushRows();
      this.$('[part=review]').hidden = false;
      mountReview(this.$('[part=review-screen]'), { run, call: (...a) => this.call(...a), t: (k, p) => this.#t(k, p),
        attestation: () => this.#settings?.attestation });  // issue 6: the review screen (web/src/review/)
      this.#reviewText(detail.count);
      this.#emit('deid-review-required', detail);
    }));
    run.addEventListener('complete', mine((detail) => {
      this.#flushRows();
      renderSummary(this.$('[part=summary]'), detail, this.#t);
      this.$('[part=summary]').hidden = false;
      this.#emit('deid-complete', detail);
    }));
  }

  #progress(d) {
    this.#lastProgress = d;
    this.#emit('deid-progress', { phase: 'run', ...d });
    // Rows not drawn yet: the counter waits for them (it would count files the table does not show so yet).
    if (this.#rowsTimer) this.#countsDirty = true;
    else this.#drawCounts();
  }

  #drawCounts() {
    const d = this.#lastProgress;
    this.#countsDirty = false;
    if (!d) return;
    const bar = this.$('progress');
    bar.max = Math.max(1, d.counts.total);
    bar.value = d.counts.processed;
    this.$('[part=counts]').textContent = countsText(d, this.#t);
  }
}

if (!customElements.get('deid-uploader')) customElements.define('deid-uploader', DeidUploader);
