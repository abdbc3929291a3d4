// The worker's OCR engines (src/ocr-pool.js): a batch of readings is spread over the engines, answers come back
// to their own callers, a failure stays with its call, and the second engine waits for the first to start.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { OcrPool, enginesPerWorker } from '../src/ocr-pool.js';

function fakeEngine(log, name, { failOn = null, startFails = false } = {}) {
  return {
    started: 0,
    async start() { this.started += 1; log.push(`${name}:start`); if (startFails) throw new Error('no'); },
    async reset() { log.push(`${name}:reset`); },
    async recognize(pgm, psm) {
      log.push(`${name}:read:${pgm[0]}`);
      await new Promise((resolve) => { setTimeout(resolve, 5 + pgm[0]); });
      if (failOn === pgm[0]) throw new Error('engine failed');
      return [{ text: `w${pgm[0]}`, psm, by: name }];
    },
  };
}

test('a batch is spread over the engines and each answer reaches its caller', async () => {
  const log = [];
  let n = 0;
  const pool = new OcrPool(2, () => fakeEngine(log, `e${n++}`));
  const answers = await Promise.all([1, 2, 3, 4].map((k) => pool.recognize(new Uint8Array([k]), 11)));
  assert.deepEqual(answers.map((a) => a[0].text), ['w1', 'w2', 'w3', 'w4']);
  const by = answers.map((a) => a[0].by);
  assert.ok(by.includes('e0') && by.includes('e1'), `both engines read: ${by}`);
  assert.deepEqual(pool.load, [0, 0]);
});

test('a failed reading rejects its own call only', async () => {
  const log = [];
  let n = 0;
  const pool = new OcrPool(2, () => fakeEngine(log, `e${n++}`, { failOn: 2 }));
  const results = await Promise.allSettled([1, 2, 3].map((k) => pool.recognize(new Uint8Array([k]))));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.deepEqual(pool.load, [0, 0]);
});

test('the second engine starts after the first, and not at all when the first fails', async () => {
  const log = [];
  let n = 0;
  const pool = new OcrPool(2, () => fakeEngine(log, `e${n++}`));
  await pool.start();
  await new Promise((resolve) => { setTimeout(resolve, 0); });
  assert.deepEqual(log, ['e0:start', 'e1:start']);
  const failing = [];
  let m = 0;
  const broken = new OcrPool(2, () => fakeEngine(failing, `f${m++}`, { startFails: true }));
  await assert.rejects(broken.start());
  await new Promise((resolve) => { setTimeout(resolve, 0); });
  assert.deepEqual(failing, ['f0:start']);
});

test('engines per worker: two only where the cores allow', () => {
  assert.equal(enginesPerWorker(2, 1), 2);
  assert.equal(enginesPerWorker(4, 3), 1);
  assert.equal(enginesPerWorker(8, 4), 2);
  assert.equal(enginesPerWorker(0, 1), 2);
  assert.equal(enginesPerWorker(1, 1), 1);
});

test('an engine takes the next reading only when it is free, the largest image first', async () => {
  const log = [];
  let n = 0;
  // e0's first reading is long (the value in pgm[0] sets the time: 255 ms against e1's 21 ms for the other
  // three, a margin that a loaded machine's late timers do not use up): e1 reads everything else meanwhile
  const pool = new OcrPool(2, () => fakeEngine(log, `e${n++}`));
  const images = [new Uint8Array(60).fill(250), new Uint8Array(2).fill(1), new Uint8Array(1).fill(2),
    new Uint8Array(3).fill(3)];
  const answers = await Promise.all(images.map((pgm) => pool.recognize(pgm)));
  assert.deepEqual(answers.map((a) => a[0].text), ['w250', 'w1', 'w2', 'w3']);
  assert.deepEqual(answers.map((a) => a[0].by), ['e0', 'e1', 'e1', 'e1']);
  assert.deepEqual(log, ['e0:read:250', 'e1:read:1', 'e1:read:3', 'e1:read:2']);
  assert.deepEqual(pool.load, [0, 0]);
  assert.equal(pool.waiting.length, 0);
});
