// A run's state (src/batch.js) and the review of held instances (src/review/state.js), with a stand-in worker pool
// and uploader: which statuses files go through, limits, review and sign-off, what the events carry.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Run, prefetch } from '../src/batch.js';
import { DEFAULT_ATTESTATION } from '../src/review/certificate.js';

const PATIENT_PATH = 'DOE^JANE/CT/IM0001';  // a path with PHI: it must never reach an event's summary

/** A Part 10 file's first bytes (preamble + DICM) and a tag to tell the stand-in pool what to answer. */
function dicom(tag, size = 200) {
  const bytes = new Uint8Array(size);
  bytes.set([0x44, 0x49, 0x43, 0x4d], 128);
  bytes.set(new TextEncoder().encode(tag), 132);
  return new File([bytes], 'IM0001');
}

const tagOf = (buffer) => new TextDecoder().decode(new Uint8Array(buffer, 132, 8)).replace(/\0+$/, '');

/** The worker pool's interface: process(buffer, {review, edits}) -> {record, instance, local}; call() for the
 * certificate. What it answers depends on the file's tag. */
class StubPool {
  constructor() { this.size = 1; this.calls = []; this.processed = []; }

  async process(buffer, { review = '', edits = null } = {}) {
    const tag = tagOf(buffer);
    this.processed.push({ tag, review, edits });
    if (tag === 'broken') throw Object.assign(new Error('the de-identification worker stopped'), { name: 'WorkerCrashed' });
    const sopUid = `2.25.${this.processed.length}`;
    if (tag === 'bad') return { record: { status: 'failed', problem: { code: 'invalid', message: 'not valid DICOM' } } };
    const record = { status: 'done', modality: tag.startsWith('us') ? 'US' : 'CT', sopUid, size: 10, sha256: 'ab', pixels: {} };
    const held = review === 'always' || (review === 'pixels' && tag.startsWith('us'));
    return { record, instance: { record, bytes: new ArrayBuffer(10) }, local: held ? { labels: {}, words: [] } : undefined };
  }

  async call(action, payload) {
    this.calls.push({ action, payload });
    return { json: '{}', html: '<p></p>', parts: [] };
  }
}

class StubUploader {
  constructor() { this.pendingBytes = 0; this.sent = []; }
  async send(instance) { this.sent.push(instance.record.sopUid); return 'uploaded'; }
}

function run(options = {}) {
  const pool = new StubPool();
  const uploader = 'uploader' in options ? options.uploader : new StubUploader();
  const r = new Run({ pool, uploader, review: options.review, limits: options.limits || {} });
  const events = [];
  for (const type of ['file', 'review-required', 'complete', 'state']) {
    r.addEventListener(type, (e) => events.push({ type, detail: structuredClone(type === 'file'
      ? { index: e.detail.index, status: e.detail.status, code: e.detail.code } : e.detail) }));
  }
  const next = (type) => new Promise((resolve) => r.addEventListener(type, (e) => resolve(e.detail), { once: true }));
  return { r, pool, uploader, events, next };
}

const statuses = (events, index) => events.filter((e) => e.type === 'file' && e.detail.index === index).map((e) => e.detail.status);

test('files go queued -> deidentifying -> uploading -> uploaded; failures and skips say why', async () => {
  const { r, events, next, uploader } = run({ limits: { maxFileSize: 1000, modalities: ['CT'] } });
  const done = next('complete');
  r.add([
    { file: dicom('ct'), path: PATIENT_PATH },
    { file: dicom('bad'), path: 'b' },
    { file: dicom('ct', 5000), path: 'big' },
    { file: new File(['plain text, not DICOM'], 'README.TXT'), path: 'README.TXT' },
    { file: dicom('us1'), path: 'us' },
    { file: dicom('broken'), path: 'c' },
  ]);
  const summary = await done;
  assert.deepEqual(statuses(events, 0), ['deidentifying', 'uploading', 'uploaded']);
  assert.deepEqual(statuses(events, 1), ['deidentifying', 'failed']);
  assert.deepEqual(statuses(events, 2), ['skipped']);
  assert.deepEqual(statuses(events, 3), ['skipped']);
  assert.deepEqual(statuses(events, 4), ['deidentifying', 'skipped']);
  assert.deepEqual(statuses(events, 5), ['deidentifying', 'failed']);
  assert.deepEqual(summary.counts, { total: 6, processed: 6, uploaded: 1, alreadyUploaded: 0, deidentified: 0,
    awaitingReview: 0, skipped: 3, failed: 2, excluded: 0 });
  assert.deepEqual(Object.keys(summary.skipped).map((k) => k.split(':')[0]).sort(), ['modality', 'not-dicom', 'too-large']);
  assert.deepEqual(Object.keys(summary.failed).map((k) => k.split(':')[0]).sort(), ['invalid', 'worker-crashed']);
  assert.deepEqual(uploader.sent, ['2.25.1']);
  assert.ok(!JSON.stringify(events).includes('DOE'), 'a path reached an event');
  assert.equal(r.state, 'complete');
  assert.equal(events.filter((e) => e.type === 'complete').length, 1);
  assert.equal(r.rows.every((row) => row.file === null), true, 'File handles are released');
});

test('without an endpoint files end de-identified; a batch limit skips what goes over it', async () => {
  const { r, next } = run({ uploader: null, limits: { maxBatchSize: 450 } });
  const done = next('complete');
  r.add([{ file: dicom('ct'), path: 'a' }, { file: dicom('ct'), path: 'b' }, { file: dicom('ct'), path: 'c' }]);
  const summary = await done;
  assert.equal(summary.counts.deidentified, 2);
  assert.deepEqual(Object.keys(summary.skipped).map((k) => k.split(':')[0]), ['batch-too-large']);
});

test('review: held files wait for a sign-off; exclusions and the certificate follow the reviewer', async () => {
  const { r, pool, uploader, events, next } = run({ review: 'pixels' });
  const required = next('review-required');
  r.add([{ file: dicom('ct'), path: 'a' }, { file: dicom('us1'), path: 'b' }, { file: dicom('us2'), path: 'c' }]);
  assert.deepEqual(await required, { count: 2 });
  assert.equal(r.state, 'awaiting-review');
  assert.deepEqual(uploader.sent, ['2.25.1']);  // the CT is not held by the `pixels` policy
  const review = r.reviewing;
  assert.equal(review.entries.length, 2);
  assert.throws(() => review.exclude([review.entries[1]], 'because'), /exclusion reason/);
  review.exclude([review.entries[1]], 'duplicate');

  // An edit cleans the instance again from its original file, with the reviewer's boxes.
  const edits = { added: { all: [[1, 2, 3, 4]] }, removed: {} };
  const rerun = review.apply(review.entries[0], edits);
  assert.throws(() => r.signOff({ reviewer: 'Dr. Who', role: 'Radiologist' }), /wait until/);
  await rerun;
  assert.deepEqual(pool.processed.at(-1), { tag: 'us1', review: 'always',
    edits: { auto: {}, added: { all: [[1, 2, 3, 4]] }, removed: {} } });
  assert.throws(() => r.signOff({ reviewer: ' ', role: 'x' }), /reviewer and their role/);

  const done = next('complete');
  const signoff = r.signOff({ reviewer: 'Dr. Who', role: 'Radiologist', attestation: '' });
  assert.deepEqual(Object.keys(signoff).sort(), ['at', 'reviewer', 'role']);
  assert.throws(() => review.exclude([review.entries[0]], 'other'), /signed off/);
  const summary = await done;
  assert.equal(summary.counts.uploaded, 2);
  assert.equal(summary.counts.excluded, 1);
  assert.deepEqual(statuses(events, 2), ['deidentifying', 'awaiting-review', 'excluded']);
  const certificate = pool.calls.find((c) => c.action === 'certificate').payload.request;
  assert.equal(certificate.records.length, 2);
  assert.deepEqual(certificate.excluded, [{ reason: 'duplicate', instances: 1 }]);
  assert.deepEqual(certificate.signature.reviewer, 'Dr. Who');
  assert.equal(certificate.signature.attestation, '');  // the core then records DEFAULT_ATTESTATION
  assert.ok(DEFAULT_ATTESTATION.startsWith('I have reviewed'));
  assert.ok(review.entries.every((e) => e.file === null && e.instance === null), 'originals released after sign-off');
});

test('a failed re-run blocks the sign-off until the image is excluded (fail closed)', async () => {
  const { r, next } = run({ review: 'always' });
  const required = next('review-required');
  r.add([{ file: dicom('ct'), path: 'a' }]);
  await required;
  const entry = r.reviewing.entries[0];
  entry.file = dicom('broken');  // the original cannot be cleaned again
  await r.reviewing.apply(entry, { added: { 0: [[0, 0, 5, 5]] }, removed: {} });
  assert.equal(entry.error.name, 'WorkerCrashed');
  assert.throws(() => r.signOff({ reviewer: 'A', role: 'B' }), /could not be cleaned again/);
  r.reviewing.exclude([entry], 'unreadable');
  const done = next('complete');
  r.signOff({ reviewer: 'A', role: 'B' });
  const summary = await done;
  assert.equal(summary.counts.excluded, 1);
  assert.equal(summary.certificate.error.name, 'NothingUploaded');
});

test('cancel: queued files are dropped and nothing more is reported', async () => {
  const { r, events } = run();
  r.add([{ file: dicom('ct'), path: 'a' }, { file: dicom('ct'), path: 'b' }, { file: dicom('ct'), path: 'c' },
    { file: dicom('ct'), path: 'd' }]);
  r.cancel();
  const before = events.length;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(events.length, before);
  assert.equal(r.state, 'cancelled');
});

test('prefetch: the first files are read before their run exists, once, and only small ones', async () => {
  const reads = [];
  const counted = (file, name) => Object.assign(file, { arrayBuffer: ((real) => async () => {
    reads.push(name);
    return real();
  })(file.arrayBuffer.bind(file)) });
  const caller = [0, 1, 2, 3].map((i) => ({ file: counted(dicom('ct'), `f${i}`), path: `p${i}` }));
  const big = { file: counted(dicom('ct', (4 << 20) + 1), 'big'), path: 'big' };
  const ahead = prefetch([big, ...caller], 3);
  await new Promise((resolve) => { setTimeout(resolve, 10); });
  assert.deepEqual(reads.sort(), ['f0', 'f1']);  // before any run: the first three but the large one
  assert.ok(caller.every((e) => Object.getOwnPropertySymbols(e).length === 0));  // the caller's objects untouched
  const { r, next, pool } = run({ uploader: null });
  const done = next('complete');
  r.add(ahead);
  const summary = await done;
  assert.equal(summary.counts.deidentified, 5);
  assert.equal(pool.processed.length, 5);
  assert.deepEqual(reads.sort(), ['big', 'f0', 'f1', 'f2', 'f3']);  // each file read once, the prefetched ones too
  assert.ok(r.rows.every((row) => row.read === null && row.file === null));  // nothing kept once done
});
