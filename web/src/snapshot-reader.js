// Reads a worker's saved runtime snapshot (runtime.js) from Cache Storage on a thread of its own. On a repeat
// visit the worker's own thread is busy while the ~38 MB are read: it takes the wasm module from the compiled-code
// cache, compiles Pyodide's 1 MB loader (the second time, the browser also makes its code cache) and makes the
// module (one long task of 0.5-0.7 s under load), and a read made there stops meanwhile. Given {cache, key};
// answers {buffer} (the whole body, transferred) or {error: true}. Nothing of a study is in a snapshot.
self.addEventListener('message', async ({ data: { cache, key } }) => {
  try {
    const hit = await (await caches.open(cache)).match(key);
    if (!hit) throw new Error('gone');
    const buffer = await hit.arrayBuffer();
    self.postMessage({ buffer }, { transfer: [buffer] });
  } catch {
    self.postMessage({ error: true });
  }
}, { once: true });
