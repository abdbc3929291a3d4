// A worker's Python: Pyodide, then our two packages (pydicom, py_deid): their files as one pack the build made,
// fetched with its sha256 as Subresource Integrity, gunzipped by the browser and written into site-packages (no
// micropip, no package resolution, no Python time spent extracting), then the core imported.
//
// A worker that has done that once keeps a memory snapshot of the interpreter at that point (before any key,
// setting or file reached it) in Cache Storage, under the id of this runtime (BUILD.runtime: Pyodide, its standard
// library and the pack). The next start restores it instead of booting CPython and importing the core again. Pyodide 314 makes
// and restores such snapshots (loadPyodide's `_makeSnapshot` / `_loadSnapshot`, marked private); two of its limits
// are met here: the snapshot holds memory, not files (the files are written again, to the same place, before
// anything is imported), and its loader ignores the heap size it asks for (INITIAL_MEMORY, pyodide issue 6254), so
// the heap is grown to the snapshot's size before it is copied in. A snapshot that does not restore is deleted and
// the worker starts the long way.
import { loadPyodide } from '../vendor/pyodide/pyodide.mjs';
import { BUILD } from './build-info.js';
import { packPages, readPages } from './snapshot-pages.js';
import { unpackFiles } from './site-files.js';

const VENDOR = new URL('../vendor/', import.meta.url);
// Not named py-deid-*: the service worker (sw.js) deletes those caches when a new build activates. This one holds
// one entry, the current runtime's snapshot; a worker saving a new one deletes the others.
export const SNAPSHOTS = 'py_deid-runtime';
const SIZE_HEADER = 'X-Snapshot-Bytes';  // kept with a snapshot: its size, known before it is read
const FORMAT_HEADER = 'X-Snapshot-Format';  // and how it is kept: snapshot-pages.js
const FORMAT = 'pages-4k-1';
const quiet = () => {};  // Python's and Pyodide's console output could quote file values: never printed

function snapshotKey() {
  return new URL(`py/runtime-${BUILD.runtime}.snapshot`, VENDOR).href;
}

const stdLibURL = () => new URL(`pyodide/${BUILD.stdlib}`, VENDOR).href;  // precompiled by the build (web/tools)

function options({ lock }) {
  return {
    indexURL: new URL('pyodide/', VENDOR).href,
    stdLibURL: stdLibURL(),
    lockFileContents: lock,  // (fetched by early(); Pyodide takes the lock file's text or a promise of it)
    packageBaseUrl: new URL('py/', VENDOR).href,  // without it Pyodide would name a CDN for packages
    stdout: quiet, stderr: quiet, checkAPIVersion: true,
  };
}

function hexToBase64(hex) {
  return btoa(String.fromCharCode(...hex.match(/../g).map((b) => parseInt(b, 16))));
}

/** The packages' files as the build packed them (build_wasm.py site_pack), gunzipped by the browser. */
function fetchPackages(mark) {
  const pack = (async () => {
    const { file, sha256 } = BUILD.packages[0];
    const response = await fetch(new URL(`py/${file}`, VENDOR), { integrity: `sha256-${hexToBase64(sha256)}` });
    if (!response.ok || !response.body) throw new Error(`package pack: HTTP ${response.status}`);
    const unzipped = new Response(response.body.pipeThrough(new DecompressionStream('gzip')));
    return new Uint8Array(await unzipped.arrayBuffer());
  })();
  pack.then(() => mark('pack'), () => {});
  pack.catch(() => {});
  return pack;
}

async function cache() {
  return self.caches ? caches.open(SNAPSHOTS) : null;
}

/**
 * This runtime's saved snapshot as it is read, or null (none yet, no Cache Storage, unreadable, not kept as this
 * version keeps them): `bytes`, a Uint8Array of the snapshot's size that the read fills, and `read`, which resolves
 * once it is whole and rejects if it is not. Known to be there, and how large, before its ~20 MB are read, so that
 * Pyodide's module is made meanwhile (moduleFactory). Kept without its pages of zeros (snapshot-pages.js): ~20 of
 * its ~31 MB are read.
 */
async function savedSnapshot() {
  try {
    const hit = await (await cache())?.match(snapshotKey());
    if (!hit) return null;
    const size = Number(hit.headers.get(SIZE_HEADER));
    if (!hit.body || !Number.isSafeInteger(size) || size <= 0 || hit.headers.get(FORMAT_HEADER) !== FORMAT) {
      await forgetSnapshot();  // not one this version reads: the worker starts the long way and keeps a new one
      return null;
    }
    const bytes = new Uint8Array(size);
    const read = readPages(hit.body, bytes);
    read.catch(() => {});  // looked at by moduleFactory
    return { bytes, read };
  } catch {
    return null;
  }
}

/** Keep a snapshot loadCore made as this runtime's (the only one kept); resolves to true if it was kept. */
export async function saveSnapshot(snapshot) {
  try {
    const store = await cache();
    if (!store) return false;
    const key = snapshotKey();
    for (const old of await store.keys()) if (old.url !== key) await store.delete(old);
    await store.put(key, new Response(new Blob(packPages(snapshot)), { headers: {
      'Content-Type': 'application/octet-stream', [SIZE_HEADER]: String(snapshot.byteLength), [FORMAT_HEADER]: FORMAT } }));
    return true;
  } catch {
    return false;  // storage full or refused: the next start takes the long way
  }
}

async function forgetSnapshot() {
  try { await (await cache())?.delete(snapshotKey()); } catch { /* nothing kept, nothing to forget */ }
}

/**
 * Pyodide's own loader would compile its wasm, and fetch its standard library and lock file, only once it is
 * called: on a restore, after the snapshot has been read, and the module is made only once the library is in
 * place (on a repeat visit it was made 0.3-0.5 s after the snapshot's read on the loaded machine). Started here
 * from the start instead, beside the loader module's import and the snapshot's read: the wasm compiled (streaming,
 * so the browser may keep the compiled code; the module factory handed to loadPyodide instantiates it, its
 * instantiateStreaming call answered from it), the lock file's text (handed over as lockFileContents) and the
 * standard library's response (handed to Pyodide's own fetch of it: withEarlyFetch).
 */
function early(mark) {
  const compiled = WebAssembly.compileStreaming(fetch(new URL('pyodide/pyodide.asm.wasm', VENDOR)));
  compiled.then(() => mark('compiled'), () => {});
  const loader = import(new URL('pyodide/pyodide.asm.mjs', VENDOR).href);
  loader.then(() => mark('loader'), () => {});
  const lock = fetch(new URL(`py/${BUILD.lock}`, VENDOR)).then((r) => r.text());
  lock.catch(() => {});
  const fetched = new Map([[stdLibURL(), fetch(stdLibURL())]]);
  for (const response of fetched.values()) response.catch(() => {});
  return { compiled, loader, lock, fetched };
}

/**
 * Run loadPyodide with its fetch of a URL early() fetched answered by that response (once: a second start, after a
 * snapshot that did not restore, fetches again). Only while it runs: nothing else in this worker fetches then.
 */
async function withEarlyFetch({ fetched }, run) {
  const own = self.fetch;
  self.fetch = (input, init) => {
    const href = input instanceof Request ? input.url : String(input);
    const response = !init?.integrity && fetched.get(href);
    if (!response) return own(input, init);
    fetched.delete(href);
    return response;
  };
  try {
    return await run();
  } finally {
    self.fetch = own;
  }
}

/** Marks around the two steps of Pyodide's bootstrap that follow the module: the snapshot copied into the heap
 * ('copied'), the interpreter's JS side put back ('bootstrapped'). */
function timeBootstrap(api, mark) {
  if (!api) return;
  for (const [step, name] of [['restoreSnapshot', 'copied'], ['finalizeBootstrap', 'bootstrapped']]) {
    const run = api[step];
    if (typeof run !== 'function') continue;
    api[step] = (...args) => { try { return run(...args); } finally { mark(name); } };
  }
}

/** The module factory handed to loadPyodide. On a restore (`saved`: savedSnapshot) the module is made while the
 * snapshot is still read, its heap grown to the snapshot's size; it is handed over once the snapshot is whole
 * (Pyodide copies the snapshot into the heap only after that), and a snapshot that does not read whole fails the
 * restore. */
function moduleFactory({ compiled, loader }, saved, mark) {
  return async (settings) => {
    const { default: createModule } = await loader;
    const wasm = await compiled.catch(() => null);  // without it Pyodide compiles the wasm itself
    const api = /** @type {any} */ (WebAssembly);
    const streaming = api.instantiateStreaming;
    if (wasm) api.instantiateStreaming = async (_source, imports) => ({ module: wasm, instance: await WebAssembly.instantiate(wasm, imports) });
    let module;
    try {
      module = await createModule(settings);
    } finally {
      api.instantiateStreaming = streaming;
    }
    if (saved && module.HEAP8.length < saved.bytes.byteLength) module.growMemory(saved.bytes.byteLength);
    mark('module');
    timeBootstrap(module.API, mark);
    if (saved) await saved.read;
    return module;
  };
}

/**
 * Start Pyodide: from this runtime's saved snapshot if there is one (the core is then imported already), else booted,
 * ready to make a snapshot, with the package archives fetched meanwhile. `mark(name)`: start-up marks ('found':
 * the lookup of a saved snapshot answered, 'saved': the snapshot read whole (or none found), 'compiled': the wasm
 * compiled, 'loader': Pyodide's loader module run, 'module': the wasm module made, 'copied' and 'bootstrapped':
 * the snapshot copied into its heap and Pyodide's bootstrap done, 'pack': the packages' pack fetched and
 * gunzipped). Resolves to the runtime loadCore takes.
 */
export async function startRuntime(mark, { useSnapshot = true } = {}) {
  // Asked before the fetches below, which the service worker answers from Cache Storage too on a repeat visit.
  const lookup = useSnapshot ? savedSnapshot() : Promise.resolve(null);
  const parts = early(mark);
  const packages = fetchPackages(mark);  // needed either way: the snapshot holds memory, not files
  const saved = await lookup;
  mark('found');
  if (saved) saved.read.then(() => mark('saved'), () => {});
  else mark('saved');
  if (saved) {
    try {
      const py = await withEarlyFetch(parts, () => loadPyodide({ ...options(parts), _loadSnapshot: saved.bytes,
        createPyodideModule: moduleFactory(parts, saved, mark) }));
      return { py, restored: true, packages };
    } catch {
      await forgetSnapshot();
    }
  }
  const py = await withEarlyFetch(parts, () => loadPyodide({ ...options(parts), _makeSnapshot: useSnapshot,
    createPyodideModule: moduleFactory(parts, null, mark) }));
  return { py, restored: false, packages };
}

/**
 * Put the packages where the runtime imports them from and, unless it was restored with the core imported, import
 * the core and snapshot the interpreter. `mark(name)`: start-up marks. Resolves to a snapshot for saveSnapshot, or
 * null.
 */
export async function loadCore({ py, restored, packages }, mark, { useSnapshot = true } = {}) {
  const files = await packages;
  unpackFiles(py, files);
  if (restored) {
    // The snapshot's random state is the same at every start: draw a fresh one (the core's keys and UIDs come
    // from os.urandom and the page's key, never from `random`, but nothing should repeat across starts).
    py.runPython("import sys\nif 'random' in sys.modules: sys.modules['random'].seed()");
    mark('packages');
    mark('import');
    return null;
  }
  mark('packages');
  py.runPython('import py_deid.hosts.browser');
  mark('import');
  if (!useSnapshot) return null;
  try {
    return py.makeMemorySnapshot();
  } catch {
    return null;  // something the snapshot cannot hold: every start takes the long way
  }
}
