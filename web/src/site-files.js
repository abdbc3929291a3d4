// The packages' files (pydicom, py_deid) put into a runtime's site-packages from the pack the build made
// (build_wasm.py site_pack). Apart from runtime.js so that it runs in Node too (web/test).

/** Python that makes the import system look at site-packages again (its folder listings are cached). Only the
 * path entries' finders: importlib.invalidate_caches() would also import importlib.metadata to clear its own
 * cache, and with it the email package (~20 modules a worker's start never needs). */
export const INVALIDATE = `import sys
for finder in list(sys.path_importer_cache.values()):
    if finder is not None and hasattr(finder, 'invalidate_caches'):
        finder.invalidate_caches()`;

function sitePackages(py) {
  return String(py.runPython('import site\nsite.getsitepackages()[0]'));
}

/** Write a pack (a little-endian u32 length, a JSON list of [path inside site-packages, size], the files' bytes
 * one after another) into site-packages. */
export function unpackFiles(py, packed) {
  const { FS } = py;
  const root = sitePackages(py);
  const length = new DataView(packed.buffer, packed.byteOffset).getUint32(0, true);
  const index = JSON.parse(new TextDecoder().decode(packed.subarray(4, 4 + length)));
  let at = 4 + length;
  const made = new Set();
  for (const [name, size] of index) {
    const path = `${root}/${name}`;
    const dir = path.slice(0, path.lastIndexOf('/'));
    if (!made.has(dir)) { FS.mkdirTree(dir); made.add(dir); }
    // canOwn: the file keeps its part of the pack (which nothing else writes) instead of a copy of it
    FS.writeFile(path, packed.subarray(at, at + size), { canOwn: true });
    at += size;
  }
  if (at !== packed.length) throw new Error('package pack: sizes do not add up');
  py.runPython(INVALIDATE);
}
