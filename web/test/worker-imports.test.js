// The worker's script names every module runtime.js imports (src/worker.js): its module loader then asks for them
// all in one round trip through the service worker before the script runs, instead of finding runtime.js's own
// imports only once runtime.js has arrived. A new import of runtime.js that worker.js does not name fails here.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';

const source = (name) => readFile(new URL(`../src/${name}`, import.meta.url), 'utf8');
const staticImports = (text) => new Set([...text.matchAll(/^import\s+(?:[^'"]*?\s+from\s+)?'([^']+)';/gm)].map((m) => m[1]));

test('worker.js imports statically every module runtime.js imports', async () => {
  const worker = staticImports(await source('worker.js'));
  const runtime = staticImports(await source('runtime.js'));
  assert.ok(runtime.size >= 4 && worker.has('./runtime.js'));
  const missing = [...runtime].filter((spec) => !worker.has(spec));
  assert.deepEqual(missing, []);
});
