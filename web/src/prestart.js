// The investigator page's first de-identification worker, made as soon as this module runs: before the element's
// module graph (some 27 modules) has loaded and run, which took 0.2-0.4 s of a start. Listed first in index.html,
// with no imports so that nothing delays it. The worker begins what does not depend on any setting (fetching and
// compiling the runtime, reading its saved snapshot); the pool (pool.js) adopts it as its first worker and only
// then sends it the init request and the settings: nothing of a setting, a key or a file reaches it before.
// A page without this module (a portal embedding <deid-uploader>) starts its workers in the pool as before.
const worker = new URL('./worker.js', import.meta.url);
// Same origin only: across origins the pool starts its workers through a blob module (pool.js startWorker).
if (worker.origin === location.origin && typeof Worker === 'function') {
  const handoff = { worker: new Worker(worker, { type: 'module', name: 'py_deid-0' }), url: worker.href,
    spawned: performance.now(), failed: false };
  // An error before the pool listens (its script could not load) is remembered: the pool then starts its own.
  handoff.worker.addEventListener('error', () => { handoff.failed = true; });
  handoff.worker.addEventListener('messageerror', () => { handoff.failed = true; });
  Object.defineProperty(globalThis, Symbol.for('py_deid.prestarted'), { value: handoff, configurable: true });
}
