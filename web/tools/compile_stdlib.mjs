// Build step (Node, run by build_wasm.py): Pyodide's python_stdlib.zip (Python sources only) precompiled to
// CPython 3.14 bytecode by the very Pyodide the browser runs, so that a worker's first start imports the standard
// library (and Pyodide's own Python, which lives in the same archive) without compiling it. Same layout as
// compile_pyc.mjs: legacy .pyc beside where the .py was, unchecked-hash pycs, sorted entries, fixed timestamps;
// a source that does not compile is kept as it is. Deterministic.
//   node tools/compile_stdlib.mjs IN_ZIP OUT_ZIP
import { readFileSync, writeFileSync } from 'node:fs';
import { loadPyodide } from 'pyodide';

const [input, output] = process.argv.slice(2);
const py = await loadPyodide({ stdout: () => {}, stderr: (s) => process.stderr.write(s + '\n') });
py.FS.writeFile('stdlib.zip', readFileSync(input));
const zipBytes = py.runPython(`
import compileall, io, os, shutil, zipfile
src, out = "stdlib.zip", "stdlib"
shutil.rmtree(out, ignore_errors=True)
zipfile.ZipFile(src).extractall(out)
compileall.compile_dir(out, quiet=2, legacy=True, optimize=0,
                       invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk(out):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(root, f)
            rel = os.path.relpath(path, out)
            if f.endswith(".py") and os.path.exists(path + "c"):
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
writeFileSync(output, bytes);
