// The page <-> worker protocol (src/protocol.js), over a real MessageChannel: ids, progress, named errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ACTIONS, Channel, NamedError, errorData, serve } from '../src/protocol.js';

function pair(handlers, onUnsolicited) {
  const { port1, port2 } = new MessageChannel();
  serve(port1, handlers);
  const channel = new Channel(/** @type {any} */ (port2), onUnsolicited);
  port1.start();
  port2.start();
  return { channel, close: () => { port1.close(); port2.close(); } };
}

test('requests are answered by id, concurrently, with progress on the way', async () => {
  const { channel, close } = pair({
    [ACTIONS.PROCESS]: async ({ n }, progress) => {
      progress({ stage: 'half', n });
      await new Promise((resolve) => setTimeout(resolve, n));
      return { doubled: n * 2 };
    },
  });
  const seen = [];
  const [slow, fast] = await Promise.all([
    channel.request(ACTIONS.PROCESS, { n: 30 }, { onProgress: (p) => seen.push(p.n) }),
    channel.request(ACTIONS.PROCESS, { n: 1 }, { onProgress: (p) => seen.push(p.n) }),
  ]);
  assert.deepEqual([slow, fast], [{ doubled: 60 }, { doubled: 2 }]);
  assert.deepEqual(seen.sort((a, b) => a - b), [1, 30]);
  assert.equal(channel.pending.size, 0);
  close();
});

test('a handler that throws rejects with a NamedError of the same name; unknown actions are refused', async () => {
  const { channel, close } = pair({
    [ACTIONS.CONFIGURE]: async () => { throw new NamedError('ConfigError', 'bad options', { fatal: true }); },
    [ACTIONS.STATS]: async () => { throw 'plain text'; },
  });
  await assert.rejects(channel.request(ACTIONS.CONFIGURE, {}),
    (err) => err instanceof NamedError && err.name === 'ConfigError' && err.message === 'bad options' && err.fatal === true);
  await assert.rejects(channel.request(ACTIONS.STATS, {}), (err) => err.name === 'Error' && err.message === 'plain text');
  await assert.rejects(channel.request('x'.repeat(100), {}),
    (err) => err.name === 'ProtocolError' && err.message.length < 70);
  close();
});

test('failAll rejects everything in flight; messages without a request go to the unsolicited handler', async () => {
  const unsolicited = [];
  const { port1, port2 } = new MessageChannel();
  const channel = new Channel(/** @type {any} */ (port2), (m) => unsolicited.push(m));
  port2.start();
  const inFlight = channel.request(ACTIONS.INIT, {});
  port1.postMessage({ status: 'progress', data: { stage: 'ocr', state: 'done' } });
  await new Promise((resolve) => setTimeout(resolve, 20));
  channel.failAll(new NamedError('WorkerCrashed', 'stopped'));
  await assert.rejects(inFlight, (err) => err.name === 'WorkerCrashed');
  assert.deepEqual(unsolicited, [{ status: 'progress', data: { stage: 'ocr', state: 'done' } }]);
  port1.close();
});

test('errorData keeps only a name, a message and whether it is fatal', () => {
  const err = Object.assign(new Error('m'), { name: 'X', value: 'PATIENT^NAME', fatal: 1 });
  assert.deepEqual(errorData(err), { name: 'X', message: 'm', fatal: true });
  assert.deepEqual(errorData(null), { name: 'Error', message: 'null', fatal: false });
});
