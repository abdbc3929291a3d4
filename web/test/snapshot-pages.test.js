// How a runtime's snapshot is kept without its pages of zeros (src/snapshot-pages.js): what is read back is the
// snapshot byte for byte, however the stream cuts it, and anything else is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PAGE, dataRuns, packPages, readPages } from '../src/snapshot-pages.js';

function snapshotLike(pages, tail = 0) {
  // pages of data and of zeros in runs, one page with a single byte set at its end, a partial page at the end
  const bytes = new Uint8Array(pages * PAGE + tail);
  let seed = 7;
  for (let page = 0; page < pages; page += 1) {
    if ([2, 3, 4, 9, 10].includes(page)) continue;
    if (page === 6) { bytes[(page + 1) * PAGE - 1] = 1; continue; }
    for (let i = page * PAGE; i < (page + 1) * PAGE; i += 97) { seed = (seed * 1103515245 + 12345) % 2147483648; bytes[i] = seed & 255 || 1; }
  }
  if (tail) bytes[bytes.length - 1] = 5;
  return bytes;
}

async function stored(bytes) {
  return new Uint8Array(await new Blob(packPages(bytes)).arrayBuffer());
}

function stream(data, cut) {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= data.length) { controller.close(); return; }
      const n = cut(at);
      controller.enqueue(data.slice(at, at + n));
      at += n;
    },
  });
}

test('the runs of pages that hold data, and only those, are kept', async () => {
  const bytes = snapshotLike(12, 100);
  assert.deepEqual(dataRuns(bytes), [[0, 2], [5, 4], [11, 2]]);
  const kept = await stored(bytes);
  assert.equal(kept.length, 8 + 3 * 8 + (2 + 4 + 1) * PAGE + 100);
  assert.deepEqual(dataRuns(new Uint8Array(3 * PAGE)), []);
});

test('what is read back is the snapshot, however the stream cuts it', async () => {
  for (const tail of [0, 100]) {
    const bytes = snapshotLike(12, tail);
    const kept = await stored(bytes);
    for (const cut of [() => 1, () => 5, () => 4093, () => 65536, (at) => 1 + (at % 7919)]) {
      const back = new Uint8Array(bytes.length);
      await readPages(stream(kept, cut), back);
      assert.deepEqual(back, bytes);
    }
  }
  const empty = new Uint8Array(2 * PAGE);
  const back = new Uint8Array(empty.length);
  await readPages(stream(await stored(empty), () => 3), back);
  assert.deepEqual(back, empty);
});

test('a snapshot not whole, longer, of another size or not kept this way is refused', async () => {
  const bytes = snapshotLike(12, 100);
  const kept = await stored(bytes);
  const read = (data, size = bytes.length) => readPages(stream(data, () => 1000), new Uint8Array(size));
  await assert.rejects(read(kept.subarray(0, kept.length - 1)), /shorter/);
  await assert.rejects(read(kept.subarray(0, 20)), /shorter/);
  await assert.rejects(read(new Uint8Array(0)), /shorter/);
  const longer = new Uint8Array(kept.length + 1);
  longer.set(kept);
  await assert.rejects(read(longer), /longer/);
  await assert.rejects(read(kept, 11 * PAGE), /out of range/);
  await assert.rejects(read(new Uint8Array(1 << 16).fill(7)), /not one this build keeps/);
  const disordered = kept.slice();
  new DataView(disordered.buffer).setUint32(16, 1, true);  // the second run starts inside the first
  await assert.rejects(read(disordered), /out of order/);
});
