// What the uploader (src/upload.js) says it waits for: without a token its files wait and it says 'token' until
// one is given; with no answer from the network it says 'network' until a request is answered. Nothing is sent
// without a token. fetch is a stand-in answering like a STOW-RS endpoint.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { restoredInstance } from '../src/pool.js';
import { StowUploader } from '../src/upload.js';

const acks = () => {
  const kept = new Map();
  return { get: async (uid) => kept.get(uid), put: async (uid, sha) => { kept.set(uid, sha); } };
};

/** An endpoint that acknowledges every instance of a request after `down` requests it never answered. */
function endpoint(down = 0) {
  const seen = [];
  const fetch = async (url, { headers, body }) => {
    seen.push(headers.Authorization);
    if (seen.length <= down) throw new TypeError('Failed to fetch');
    const text = new TextDecoder().decode(await body.arrayBuffer());
    const uids = [...text.matchAll(/uid=([0-9.]+)/g)].map((m) => m[1]);
    const json = { '00081199': { vr: 'SQ', Value: uids.map((uid) => ({ '00081155': { vr: 'UI', Value: [uid] } })) } };
    return new Response(JSON.stringify(json), { status: 200, headers: { 'Content-Type': 'application/dicom+json' } });
  };
  return { seen, fetch };
}

const instance = (uid) => restoredInstance({ sopUid: uid, sha256: 'ab' }, new TextEncoder().encode(`uid=${uid};`).buffer);

/** The uploader with a stand-in endpoint (and the window's online events, which its retries listen to). */
async function withEndpoint(down, body) {
  const saved = { fetch: globalThis.fetch, add: globalThis.addEventListener, remove: globalThis.removeEventListener };
  const { seen, fetch } = endpoint(down);
  Object.assign(globalThis, { fetch, addEventListener: () => {}, removeEventListener: () => {} });
  try {
    await body(seen);
  } finally {
    Object.assign(globalThis, { fetch: saved.fetch, addEventListener: saved.add, removeEventListener: saved.remove });
  }
}

const uploader = (token) => new StowUploader({ endpoint: 'https://example.test/dicomweb', token, acks: acks(),
  lingerMs: 0, baseDelayMs: 1, maxDelayMs: 2 });

function said(up) {
  const events = [];
  up.addEventListener('waiting', (e) => events.push(/** @type {CustomEvent} */ (e).detail.why));
  return events;
}

test('without a token the files wait, and the uploader says so until one is given', () => withEndpoint(0, async (seen) => {
  const up = uploader(null);
  const events = said(up);
  assert.equal(up.waiting, '');
  const sent = [up.send(instance('2.25.1')), up.send(instance('2.25.2'))];
  await new Promise((resolve) => up.addEventListener('token-needed', resolve, { once: true }));
  assert.equal(up.waiting, 'token');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(seen, []);  // nothing sent without a token
  up.setCredentials('the-token');
  assert.deepEqual(await Promise.all(sent), ['uploaded', 'uploaded']);
  assert.equal(up.waiting, '');
  assert.deepEqual(events, ['token', '']);
  assert.deepEqual(seen, ['Bearer the-token']);
}));

test('with no answer from the network it says so until a request is answered', () => withEndpoint(2, async (seen) => {
  const up = uploader('the-token');
  const events = said(up);
  assert.equal(await up.send(instance('2.25.3')), 'uploaded');
  assert.equal(up.waiting, '');
  assert.deepEqual(events, ['network', '']);  // said once, however many tries it took
  assert.equal(seen.length, 3);
}));

test('with a token and an answer nothing is said', () => withEndpoint(0, async (seen) => {
  const up = uploader('the-token');
  const events = said(up);
  assert.equal(await up.send(instance('2.25.4')), 'uploaded');
  assert.deepEqual(events, []);
  assert.deepEqual(seen, ['Bearer the-token']);
}));
