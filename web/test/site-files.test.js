// The packages' files put into a runtime's site-packages (src/site-files.js), in the Pyodide the page runs: they
// import, and making the import system look again loads nothing (importlib.invalidate_caches() would load
// importlib.metadata and the email package with it).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { loadPyodide } from 'pyodide';

import { unpackFiles } from '../src/site-files.js';

function pack(files) {
  const encoder = new TextEncoder();
  const datas = files.map(([, text]) => encoder.encode(text));
  const index = encoder.encode(JSON.stringify(files.map(([name], i) => [name, datas[i].length])));
  const out = new Uint8Array(4 + index.length + datas.reduce((n, d) => n + d.length, 0));
  new DataView(out.buffer).setUint32(0, index.length, true);
  out.set(index, 4);
  let at = 4 + index.length;
  for (const d of datas) { out.set(d, at); at += d.length; }
  return out;
}

test('the files import, and nothing is loaded to find them', { timeout: 120000 }, async () => {
  const py = await loadPyodide({ stdout: () => {}, stderr: () => {} });
  const modules = () => new Set(py.runPython('import sys\nlist(sys.modules)').toJs());
  py.runPython('import site, sys\nsys.modules.pop("importlib.metadata", None)\nsys.modules.pop("email", None)');
  // The folder listed (and cached) before the files are there, as at a restore.
  assert.throws(() => py.runPython('import packed_here'), /ModuleNotFoundError/);
  const before = modules();
  unpackFiles(py, pack([['packed_here/__init__.py', 'from .inner import VALUE\n'], ['packed_here/inner.py', 'VALUE = 42\n'],
    ['packed_here/data/x.txt', 'kept']]));
  const loaded = [...modules()].filter((m) => !before.has(m));
  assert.deepEqual(loaded, []);
  assert.equal(py.runPython('import packed_here\npacked_here.VALUE'), 42);
  assert.equal(py.runPython('import pathlib, packed_here\n(pathlib.Path(packed_here.__file__).parent / "data/x.txt").read_text()'), 'kept');
  assert.throws(() => unpackFiles(py, pack([['a.py', 'A = 1\n']]).subarray(0, 20)), /do not add up|JSON/);
});
