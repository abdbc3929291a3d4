// The review of one batch (a Run's held instances): the reviewer's mask edits and the re-runs that carry them
// out, exclusions by reason code, session templates, and at sign-off the certificate. Everything here stays in
// this page: `local` (the header before and after, OCR text, patient and study labels) is never sent anywhere;
// what leaves is the certificate built by the core from PHI-free records (py_deid.certificate).
import { readEntry } from '../files.js';
import { NamedError } from '../protocol.js';
import { addBox, emptyEdits } from './edits.js';
import { REASONS } from './reasons.js';
import { buildCertificate, storeCertificate } from './certificate.js';

const ALL = 'all';

export class ReviewState extends EventTarget {
  constructor(run) {
    super();
    this.run = run;
    this.entries = [];  // every instance held for review in this batch (excluded ones too)
    this.templates = loadTemplates();  // session templates: {manufacturer, model, rows, columns, boxes}
    this.batch = crypto.randomUUID();
    this.batchStart = 0;
    this.certificate = null;  // {batch, json, html, stored: [{study, url, check}], error}
    this.certifying = false;
  }

  /** A new batch starts when files are added to a run that completed (its sign-off covered the files before). */
  nextBatch() {
    this.entries = [];
    this.batch = crypto.randomUUID();
    this.batchStart = this.run.rows.length;
    this.certificate = null;
    this.certifying = false;
  }

  hold({ row, instance, record, local, file }) {
    const entry = { id: this.entries.length, row, instance, record, file, local: local || {},
      words: local?.words || [], auto: record.pixels?.boxes || {}, edits: emptyEdits(), excluded: null,
      busy: false, error: null, version: 0 };
    this.entries.push(entry);
    for (const t of this.templates) if (matches(t, entry)) addBoxes(entry.edits, ALL, t.boxes);
    if (this.templates.some((t) => matches(t, entry))) this.apply(entry, entry.edits).catch(() => {});
    this.#changed(entry);
    return entry;
  }

  #changed(entry) { this.dispatchEvent(new CustomEvent('change', { detail: { entry } })); }

  /** Clean the instance again from its original file with these edits; resolves when the new output is held. */
  async apply(entry, edits) {
    if (this.run.signoff) throw new NamedError('ReviewError', 'the batch is signed off: it can no longer be edited');
    entry.edits = structuredClone(edits);
    entry.busy = true;
    entry.error = null;
    const version = ++entry.version;
    this.#changed(entry);
    try {
      const read = await readEntry(entry.file);
      if (read.skip) throw new NamedError('ReadError', 'the original file can no longer be read');
      const { record, instance, local } = await this.run.pool.process(read.buffer, {
        timeoutMs: 120000 + Math.ceil(entry.row.size / (1 << 20)) * 5000, review: 'always',
        edits: { auto: entry.auto, added: entry.edits.added, removed: entry.edits.removed } });
      if (version !== entry.version) return;  // a newer edit is on its way
      if (record.status !== 'done' || !instance) {
        throw new NamedError('ReviewError', record.problem?.message || 'the instance could not be cleaned again');
      }
      Object.assign(entry, { record, instance, local: { ...local, words: entry.words }, busy: false });
      Object.assign(entry.row, { record, pixels: record.pixels, sopUid: record.sopUid, outputBytes: record.size });
    } catch (err) {
      if (version !== entry.version) return;
      // Fail closed: the previous output does not carry the reviewer's edit, so the batch cannot be signed.
      entry.busy = false;
      entry.error = { name: err.name || 'Error', message: err.message || 'the re-run failed' };
    }
    this.#changed(entry);
  }

  exclude(entries, reason) {
    if (this.run.signoff) throw new NamedError('ReviewError', 'the batch is signed off: it can no longer be edited');
    if (!Object.hasOwn(REASONS, reason)) throw new NamedError('ReviewError', `exclusion reason must be one of ${Object.keys(REASONS).join(', ')}`);
    for (const e of entries) { e.excluded = reason; this.#changed(e); }
  }

  include(entries) {
    for (const e of entries) { e.excluded = null; this.#changed(e); }
  }

  /** A session template: the boxes on every image of this device and geometry (held now or later this session). */
  async addTemplate(entry, boxes) {
    const d = entry.local.device || {};
    if (!d.manufacturer && !d.model) throw new NamedError('ReviewError', 'the image names no manufacturer or model');
    const template = { manufacturer: d.manufacturer || '', model: d.model || '', rows: d.rows, columns: d.columns,
      boxes: boxes.map((b) => b.map(Math.round)) };
    this.templates.push(template);
    saveTemplates(this.templates);
    const hits = this.entries.filter((e) => matches(template, e));
    await Promise.all(hits.map((e) => {
      const edits = structuredClone(e.edits);
      addBoxes(edits, ALL, template.boxes);
      return this.apply(e, edits);
    }));
  }

  /** Throws unless every held instance is settled: re-runs done, none failed (an instance can be excluded). */
  check() {
    const open = this.entries.filter((e) => !e.excluded && (e.busy || e.error));
    if (open.some((e) => e.busy)) throw new NamedError('ReviewError', 'wait until the edited images are cleaned again');
    if (open.length) {
      throw new NamedError('ReviewError', `${open.length} edited image(s) could not be cleaned again: exclude them or edit again`);
    }
  }

  excludedSummary() {
    const counts = {};
    for (const e of this.entries) if (e.excluded) counts[e.excluded] = (counts[e.excluded] || 0) + 1;
    return Object.entries(counts).map(([reason, instances]) => ({ reason, instances }));
  }

  /** Build the certificate of the batch (in a worker, by the core) and store it with each study at the endpoint. */
  async certify(signoff, attestation) {
    this.certifying = true;
    // Uploaded or excluded by now: the originals, outputs and what the screen showed are no longer needed.
    for (const e of this.entries) Object.assign(e, { file: null, instance: null, local: {}, words: [] });
    const rows = this.run.rows.slice(this.batchStart);
    const sent = rows.filter((r) => ['uploaded', 'already-uploaded'].includes(r.status) && r.record);
    const request = { batch: this.batch, records: sent.map((r) => r.record), excluded: this.excludedSummary(),
      failed: rows.filter((r) => r.status === 'failed').length, skipped: rows.filter((r) => r.status === 'skipped').length,
      signature: { reviewer: signoff.reviewer, role: signoff.role, attestation: attestation || '', signedAt: signoff.at },
      reviewRequired: true };
    try {
      if (!sent.length) throw new NamedError('NothingUploaded', 'no instance of the batch was uploaded: nothing to certify');
      this.certificate = { batch: this.batch, ...(await buildCertificate(this.run.pool, request)), stored: [] };
      if (this.run.uploader) this.certificate.stored = await storeCertificate(this.run.uploader, this.certificate.parts);
    } catch (err) {
      this.certificate = { ...(this.certificate || { batch: this.batch }), error: { name: err.name || 'Error', message: err.message } };
    }
    this.certifying = false;
    this.dispatchEvent(new CustomEvent('certificate', { detail: this.summary() }));
  }

  /** PHI-free: the batch id, how many studies hold it, whether the endpoint found every instance. */
  summary() {
    const c = this.certificate;
    if (!c) return null;
    return { batch: c.batch, studies: c.stored?.length || 0,
      complete: !!c.stored?.length && c.stored.every((s) => s.check?.complete), error: c.error || null };
  }
}

// Kept for this browser tab (device names and rectangles: no PHI), so later batches of the session use them.
const TEMPLATES_KEY = 'py-deid-review-templates';

function loadTemplates() {
  try {
    const list = JSON.parse(sessionStorage.getItem(TEMPLATES_KEY) || '[]');
    return Array.isArray(list) ? list.filter((t) => Array.isArray(t?.boxes)) : [];
  } catch { return []; }
}

function saveTemplates(list) {
  try { sessionStorage.setItem(TEMPLATES_KEY, JSON.stringify(list)); } catch { /* storage blocked: this run only */ }
}

function addBoxes(edits, key, boxes) {
  for (const b of boxes) addBox(edits, key, b);
}

function matches(t, entry) {
  const d = entry.local.device || {};
  return (d.manufacturer || '') === t.manufacturer && (d.model || '') === t.model && d.rows === t.rows && d.columns === t.columns;
}
