// The uploader without a token (src/upload.js): its files wait, it says so ('token-needed', waitingForToken) and
// says when a token came ('token-given'); nothing is sent before that. fetch is a stand-in answering like a
// STOW-RS endpoint.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { restoredInstance } from '../src/pool.js';
import { StowUploader } from '../src/upload.js';

const acks = () => {
  const kept = new Map();
  return { get: async (uid) => kept.get(uid), put: async (uid, sha) => { kept.set(uid, sha); } };
};

/** An endpoint that acknowledges every instance of a request, and remembers the Authorization headers. */
function endpoint() {
  const seen = [];
  const fetch = async (url, { headers, body }) => {
    seen.push(headers.Authorization);
    const text = new TextDecoder().decode(await body.arrayBuffer());
    const uids = [...text.matchAll(/uid=([0-9.]+)/g)].map((m) => m[1]);
    const json = { '00081199': { vr: 'SQ', Value: uids.map((uid) => ({ '00081155': { vr: 'UI', Value: [uid] } })) } };
    return new Response(JSON.stringify(json), { status: 200, headers: { 'Content-Type': 'application/dicom+json' } });
  };
  return { seen, fetch };
}

const instance = (uid) => restoredInstance({ sopUid: uid, sha256: 'ab' }, new TextEncoder().encode(`uid=${uid};`).buffer);

test('without a token the files wait, and the uploader says so until one is given', async () => {
  const { seen, fetch } = endpoint();
  const saved = globalThis.fetch;
  globalThis.fetch = fetch;
  try {
    const up = new StowUploader({ endpoint: 'https://example.test/dicomweb', token: null, acks: acks(), lingerMs: 0 });
    const events = [];
    up.addEventListener('token-needed', (e) => events.push(['token-needed', /** @type {CustomEvent} */ (e).detail.reason, up.waitingForToken]));
    up.addEventListener('token-given', () => events.push(['token-given', up.waitingForToken]));
    assert.equal(up.waitingForToken, false);
    const sent = [up.send(instance('2.25.1')), up.send(instance('2.25.2'))];
    await new Promise((resolve) => up.addEventListener('token-needed', resolve, { once: true }));
    assert.equal(up.waitingForToken, true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(seen, []);  // nothing sent without a token
    up.setCredentials('the-token');
    assert.deepEqual(await Promise.all(sent), ['uploaded', 'uploaded']);
    assert.equal(up.waitingForToken, false);
    assert.deepEqual(events, [['token-needed', 'missing', true], ['token-given', false]]);
    assert.deepEqual(seen, ['Bearer the-token']);
  } finally {
    globalThis.fetch = saved;
  }
});

test('with a token nothing waits and no token event is sent', async () => {
  const { seen, fetch } = endpoint();
  const saved = globalThis.fetch;
  globalThis.fetch = fetch;
  try {
    const up = new StowUploader({ endpoint: 'https://example.test/dicomweb', token: 'the-token', acks: acks(), lingerMs: 0 });
    let said = 0;
    for (const type of ['token-needed', 'token-given']) up.addEventListener(type, () => { said += 1; });
    assert.equal(await up.send(instance('2.25.3')), 'uploaded');
    assert.equal(said, 0);
    assert.equal(up.waitingForToken, false);
    assert.deepEqual(seen, ['Bearer the-token']);
  } finally {
    globalThis.fetch = saved;
  }
});
