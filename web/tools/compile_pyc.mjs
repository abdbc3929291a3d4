// Build step (Node, run by build_wasm.py): precompile pure-Python wheels to CPython 3.14 bytecode with the very
// Pyodide the browser runs, and write each as a zip of .pyc files plus its dist-info (pydicom reads its own
// metadata). Importing from .pyc skips compiling in every worker at start-up. Deterministic: unchecked-hash
// pycs, sorted entries, fixed timestamps.
//   node tools/compile_pyc.mjs OUT_DIR WHEEL...
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadPyodide } from 'pyodide';

const [outDir, ...wheels] = process.argv.slice(2);
const py = await loadPyodide({ stdout: () => {}, stderr: (s) => process.stderr.write(s + '\n') });
for (const wheel of wheels) {
  const name = basename(wheel);
  // Relative paths: Pyodide's own in-memory file system, under its working folder.
  py.FS.writeFile('wheel.whl', readFileSync(wheel));
  const zipBytes = py.runPython(`
import compileall, io, os, shutil, zipfile
src, out = "wheel.whl", "unpacked"
shutil.rmtree(out, ignore_errors=True)
zipfile.ZipFile(src).extractall(out)
ok = compileall.compile_dir(out, quiet=2, legacy=True, optimize=0,
                            invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH)
assert ok, "compileall failed"
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk(out):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(root, f)
            rel = os.path.relpath(path, out)
            if f.endswith(".py") and ".dist-info" not in rel:
                continue  # the .pyc beside it (legacy layout) is what gets imported
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(path, "rb") as fh:
                z.writestr(info, fh.read())
buf.getvalue()
`);
  const bytes = zipBytes.toJs();
  zipBytes.destroy();
  writeFileSync(join(outDir, name.replace(/-py3-none-any\.whl$/, '-cp314-pyc.zip')), bytes);
}
