// The packages' files put into a runtime's site-packages (src/site-files.js), in the Pyodide the page runs: they
// import, and making the import system look again loads nothing (importlib.invalidate_caches() would load
// importlib.metadata and the email package with it).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { loadPyodide } from 'pyodide';

import { unpackFiles } from '../src/site-files.js';

function pack(files) {
  const encoder = new TextEncoder();
  return packBytes(files.map(([name, text]) => [name, encoder.encode(text)]));
}

function packBytes(files) {
  const encoder = new TextEncoder();
  const datas = files.map(([, data]) => data);
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

test('a restored runtime gets every file but those of the modules it has imported', { timeout: 120000 }, async () => {
  const py = await loadPyodide({ stdout: () => {}, stderr: () => {} });
  // Bytecode as the build ships it: a .pyc in the module's place, no source.
  const pyc = (source) => py.runPython(`import importlib._bootstrap_external as b
bytes(b._code_to_hash_pyc(compile(${JSON.stringify(source)}, 'm', 'exec'), b'0' * 8, False))`).toJs();
  const files = [['restored_pkg/__init__.pyc', pyc('from .early import EARLY\n')], ['restored_pkg/early.pyc', pyc('EARLY = 1\n')],
    ['restored_pkg/late.pyc', pyc('LATE = 2\n')], ['restored_pkg/config.toml', new TextEncoder().encode('x = 3\n')]];
  const bytes = packBytes(files);
  unpackFiles(py, bytes);
  assert.equal(py.runPython('import restored_pkg\nrestored_pkg.EARLY'), 1);
  // As at a restore: the modules in memory, the file system new.
  const root = String(py.runPython('import site\nsite.getsitepackages()[0]'));
  for (const [name] of files) py.FS.unlink(`${root}/${name}`);
  unpackFiles(py, bytes, { skipImported: true });
  const there = (name) => py.FS.analyzePath(`${root}/${name}`).exists;
  assert.deepEqual(files.map(([name]) => there(name)), [false, false, true, true]);
  assert.equal(py.runPython('import restored_pkg.late\nrestored_pkg.late.LATE'), 2);
});
