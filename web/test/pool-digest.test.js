// The output's sha256 the page puts in a record the worker left without one (src/pool.js sha256Hex): the same
// hex digest as the core's hashlib.sha256(output).hexdigest().
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { sha256Hex } from '../src/pool.js';

test('sha256Hex is the lowercase hex SHA-256 of the bytes, from a buffer or a view', async () => {
  for (const size of [0, 1, 63, 64, 65, 39276]) {
    const bytes = randomBytes(size);
    const want = createHash('sha256').update(bytes).digest('hex');
    const copy = new Uint8Array(bytes);
    assert.equal(await sha256Hex(copy.buffer), want);
    const inner = new Uint8Array(size + 8);
    inner.set(copy, 4);
    assert.equal(await sha256Hex(inner.subarray(4, 4 + size)), want);
  }
  assert.equal(await sha256Hex(new TextEncoder().encode('abc')),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});
