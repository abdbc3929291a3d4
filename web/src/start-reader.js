// Reads what a restoring worker (runtime.js) needs besides its own start, on a thread of its own: its saved
// runtime snapshot from Cache Storage (~38 MB) and the packages' pack (fetched with its Subresource Integrity,
// gunzipped). On a repeat visit the worker's own thread is busy meanwhile: it takes the wasm module from the
// compiled-code cache, compiles Pyodide's 1 MB loader (the second time, the browser also makes its code cache) and
// makes the module (one long task of 0.5-0.7 s under load); a read made there stops while it does.
// Given {cache, key, pack: {url, integrity}}; answers {snapshot} and {pack}, each an ArrayBuffer (transferred) or
// null if it could not be read. Nothing of a study is in either.
import { fetchPack } from './pack.js';

async function answer(name, read) {
  try {
    const buffer = await read();
    self.postMessage({ [name]: buffer }, { transfer: [buffer] });
  } catch {
    self.postMessage({ [name]: null });
  }
}

self.addEventListener('message', ({ data: { cache, key, pack } }) => {
  answer('snapshot', async () => {
    const hit = await (await caches.open(cache)).match(key);
    if (!hit) throw new Error('gone');
    return hit.arrayBuffer();
  });
  answer('pack', () => fetchPack(pack.url, pack.integrity));
}, { once: true });
