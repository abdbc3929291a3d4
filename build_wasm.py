"""Build the static browser app (web/dist) from pinned packages only.

    python build_wasm.py [--out web/dist] [--endpoint URL]... [--frame-ancestor ORIGIN]... [--asset-base URL]
                         [--test-hooks] [--force]

Inputs, all pinned: npm packages of web/package-lock.json (Pyodide, tesseract.js, its core and English model, the
wasm codecs), PyPI wheels (pydicom, micropip; sha256 below) and our own py_deid wheel built from this checkout.
Outputs: the page, the app modules, the vendored assets, the Pyodide lock file micropip/loadPackage install from,
`manifest.json` (version + sha256 of every asset), `headers.json` (the CSP and other headers `py-deid serve`
sends). Nothing is fetched at run time from anywhere but the page's own origin.

For sponsor portals (docs/embedding.md) the same folder is the widget package: `app/embed.js` is the element as one
ES module (bundled by esbuild, pinned in web/package.json), every other file is an asset it finds relative to its
own URL, so the folder can be served under any single `assetBase`. `embed.json` gives the module's integrity and
the Content-Security-Policy the portal page needs (`--asset-base` and `--endpoint` fill in the origins).

Incremental: npm, pip and the wheel build run only when their inputs changed; files are rewritten only when
their bytes differ. Reproducible: same checkout + same pins = same bytes (SOURCE_DATE_EPOCH for the wheel).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
CACHE = ROOT / ".build"

# PyPI wheels the browser installs (pure Python). sha256 is the PyPI file's, checked by pip and written to the lock.
WHEELS = {
    "pydicom": ("3.0.2", "abf971a5440f84dbaf42c4b6758e30e62480902584f8b270b9a5d146e278a07b"),
    "micropip": ("0.11.1", "768de165adb8e66906039d8fec4127a57f522dfdf8e6fbff877a4616941ecfd3"),
}

# What is copied from node_modules: (npm package, path inside it, path in dist).
NPM_FILES = [
    ("pyodide", "pyodide.mjs", "vendor/pyodide/pyodide.mjs"),
    ("pyodide", "pyodide.asm.mjs", "vendor/pyodide/pyodide.asm.mjs"),
    ("pyodide", "pyodide.asm.wasm", "vendor/pyodide/pyodide.asm.wasm"),
    ("pyodide", "python_stdlib.zip", "vendor/pyodide/python_stdlib.zip"),
    ("tesseract.js", "dist/tesseract.esm.min.js", "vendor/tesseract/tesseract.esm.min.js"),
    ("tesseract.js", "dist/worker.min.js", "vendor/tesseract/worker.min.js"),
    # OEM 1 (LSTM only) makes tesseract.js pick one of the -lstm cores by the browser's SIMD support.
    ("tesseract.js-core", "tesseract-core-lstm.wasm.js", "vendor/tesseract/core/tesseract-core-lstm.wasm.js"),
    ("tesseract.js-core", "tesseract-core-simd-lstm.wasm.js", "vendor/tesseract/core/tesseract-core-simd-lstm.wasm.js"),
    ("tesseract.js-core", "tesseract-core-relaxedsimd-lstm.wasm.js",
     "vendor/tesseract/core/tesseract-core-relaxedsimd-lstm.wasm.js"),
    ("@tesseract.js-data/eng", "4.0.0_best_int/eng.traineddata.gz", "vendor/tessdata/eng.traineddata.gz"),
    ("@cornerstonejs/codec-libjpeg-turbo-8bit", "dist/libjpegturbowasm_decode.wasm",
     "vendor/codecs/libjpegturbowasm_decode.wasm"),
    ("@cornerstonejs/codec-charls", "dist/charlswasm_decode.wasm", "vendor/codecs/charlswasm_decode.wasm"),
    ("@cornerstonejs/codec-openjpeg", "dist/openjpegwasm_decode.wasm", "vendor/codecs/openjpegwasm_decode.wasm"),
    ("jpeg-lossless-decoder-js", "release/lossless.js", "vendor/codecs/lossless.js"),
]
# Emscripten factories shipped as UMD scripts: a module worker cannot importScripts them, so the build appends an
# ES export (the only change) and records both hashes.
NPM_WRAPPED = [
    ("@cornerstonejs/codec-libjpeg-turbo-8bit", "dist/libjpegturbowasm_decode.js", "libjpegturbowasm_decode",
     "vendor/codecs/libjpegturbowasm_decode.mjs"),
    ("@cornerstonejs/codec-charls", "dist/charlswasm_decode.js", "CharLSWASM", "vendor/codecs/charlswasm_decode.mjs"),
    ("@cornerstonejs/codec-openjpeg", "dist/openjpegwasm_decode.js", "OpenJPEGWASM",
     "vendor/codecs/openjpegwasm_decode.mjs"),
]
APP_SUFFIXES = {".js", ".css"}
EMBED = "app/embed.js"
PAGE_ELEMENT = "app/deid-uploader.js"  # what app/main.js imports; the page gets EMBED for it (page())
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest a zip can say


class BuildError(RuntimeError):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise BuildError(f"{' '.join(cmd[:3])} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def _stamp_ok(stamp: Path, value: str) -> bool:
    return stamp.is_file() and stamp.read_text() == value


def ensure_npm() -> None:
    """`npm ci` when node_modules does not match package-lock.json."""
    lock = (WEB / "package-lock.json").read_bytes()
    stamp = WEB / "node_modules" / ".py_deid-lock-sha256"
    if _stamp_ok(stamp, sha256(lock)):
        return
    if shutil.which("npm") is None:
        raise BuildError("building the browser app needs npm (Node.js 20+) on PATH")
    # --ignore-scripts: the pinned packages ship built files; no install script needs to run.
    _run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], WEB)
    stamp.write_text(sha256(lock))


def ensure_wheels() -> dict[str, Path]:
    folder = CACHE / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    missing = []
    for name, (version, digest) in WHEELS.items():
        path = folder / f"{name}-{version}-py3-none-any.whl"
        if not (path.is_file() and sha256(path.read_bytes()) == digest):
            missing.append(f"{name}=={version} --hash=sha256:{digest}")
        out[name] = path
    if missing:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            req.write("\n".join(missing) + "\n")
        try:
            # Pyodide 314 runs CPython 3.14: ask for what that interpreter would install, pure-Python wheels only.
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--python-version",
                  "3.14", "--only-binary=:all:", "-d", str(folder), "-r", req.name], ROOT)
        finally:
            os.unlink(req.name)
    for name, path in out.items():
        if sha256(path.read_bytes()) != WHEELS[name][1]:
            raise BuildError(f"{path.name}: sha256 does not match the pin")
    return out


def _package_sources() -> list[Path]:
    files = [ROOT / "pyproject.toml"]
    for path in sorted((ROOT / "py_deid").rglob("*")):
        # (not the compiled text screen, _lines.c, nor a build of it: the browser's wheel is pure Python)
        if path.is_file() and "__pycache__" not in path.parts and "sources" not in path.parts and \
                path.suffix not in (".pyc", ".c", ".so", ".pyd"):
            files.append(path)
    return files


def ensure_own_wheel() -> Path:
    """Our wheel from this checkout, rebuilt only when a source file changed."""
    h = hashlib.sha256()
    for path in _package_sources():
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    folder = CACHE / "own-wheel"
    stamp = folder / "sources.sha256"
    wheels = sorted(folder.glob("py_deid-*.whl"))
    if len(wheels) == 1 and _stamp_ok(stamp, h.hexdigest()):
        return wheels[0]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory() as tmp:
        # Build from a copy so setuptools' build/ and egg-info never touch the checkout.
        src = Path(tmp) / "src"
        for path in _package_sources():
            dest = src / path.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        readme = ROOT / "README.md"
        (src / "README.md").write_bytes(readme.read_bytes() if readme.is_file() else b"py_deid\n")
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(folder), str(src)],
             ROOT, env)
    wheels = sorted(folder.glob("py_deid-*.whl"))
    if len(wheels) != 1:
        raise BuildError("pip wheel did not produce exactly one py_deid wheel")
    stamp.write_text(h.hexdigest())
    return wheels[0]


def ensure_pyc(wheels: dict[str, Path]) -> dict[str, Path]:
    """pydicom and py_deid precompiled to CPython 3.14 bytecode by the same Pyodide, in Node (web/tools)."""
    script = WEB / "tools" / "compile_pyc.mjs"
    inputs = [wheels["pydicom"], wheels["py_deid"]]
    h = hashlib.sha256(script.read_bytes())
    for path in inputs:
        h.update(path.name.encode() + sha256(path.read_bytes()).encode())
    h.update(_npm_versions()["pyodide"].encode())
    folder = CACHE / "pyc"
    stamp = folder / "inputs.sha256"
    names = {name: folder / path.name.replace("-py3-none-any.whl", "-cp314-pyc.zip")
             for name, path in (("pydicom", inputs[0]), ("py_deid", inputs[1]))}
    if _stamp_ok(stamp, h.hexdigest()) and all(p.is_file() for p in names.values()):
        return names
    if shutil.which("node") is None:
        raise BuildError("precompiling the Python packages needs Node.js 20+ on PATH (or use --no-pyc)")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _run(["node", str(script), str(folder), *map(str, inputs)], WEB)
    if not all(p.is_file() for p in names.values()):
        raise BuildError("compile_pyc.mjs did not write the expected archives")
    stamp.write_text(h.hexdigest())
    return names


def ensure_stdlib_pyc() -> Path:
    """Pyodide's standard library archive (sources only) precompiled by the same Pyodide, in Node (web/tools)."""
    script = WEB / "tools" / "compile_stdlib.mjs"
    source = WEB / "node_modules" / "pyodide" / "python_stdlib.zip"
    h = hashlib.sha256(script.read_bytes() + sha256(source.read_bytes()).encode())
    h.update(_npm_versions()["pyodide"].encode())
    folder = CACHE / "stdlib-pyc"
    stamp = folder / "inputs.sha256"
    out = folder / "python_stdlib-pyc.zip"
    if _stamp_ok(stamp, h.hexdigest()) and out.is_file():
        return out
    if shutil.which("node") is None:
        raise BuildError("precompiling the standard library needs Node.js 20+ on PATH (or use --no-pyc)")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _run(["node", str(script), str(source), str(out)], WEB)
    if not out.is_file():
        raise BuildError("compile_stdlib.mjs did not write the archive")
    stamp.write_text(h.hexdigest())
    return out


# pydicom's own test data (DICOM files for its test suite, read only through pydicom.data's get_testdata_file(s)
# and get_charset_files, which nothing in py_deid calls; pydicom.examples, which would, is replaced in the browser):
# 2.4 of the pack's 12 MB, fetched, gunzipped and written at every start. Its palettes stay (a named colour map).
PACK_LEFT_OUT = ("pydicom/data/test_files/", "pydicom/data/charset_files/")


def site_pack(archives: list[Path]) -> bytes:
    """The files of the package archives (but PACK_LEFT_OUT) as the one gzip'd pack a worker puts into
    site-packages itself (web/src/site-files.js): a little-endian u32 length, a JSON list of [path inside
    site-packages, size], the files' bytes one after another. The browser gunzips it natively, so a first start
    spends no Python time extracting."""
    entries = []
    for archive in archives:
        with zipfile.ZipFile(archive) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                if not info.is_dir() and not info.filename.startswith(PACK_LEFT_OUT):
                    entries.append((info.filename, z.read(info)))
    index = json.dumps([[name, len(data)] for name, data in entries], separators=(",", ":")).encode()
    raw = struct.pack("<I", len(index)) + index + b"".join(data for _, data in entries)
    return gzip.compress(raw, compresslevel=9, mtime=0)


def _wheel_version(path: Path) -> str:
    return path.name.split("-")[1]


def lock_file(wheels: dict[str, Path]) -> bytes:
    """The lock micropip and loadPackage install from (each entry: the file's real sha256, a relative name)."""
    return _lock(wheels)


def _lock(wheels: dict[str, Path]) -> bytes:
    """A Pyodide lock listing only our wheels; `info` copied from the stock lock (the ABI it was built for)."""
    stock = json.loads((WEB / "node_modules" / "pyodide" / "pyodide-lock.json").read_text())
    depends = {"py-deid": ["pydicom"]}
    packages = {}
    for name, path in sorted(wheels.items()):
        key = re.sub(r"[-_.]+", "-", name).lower()  # Pyodide looks packages up by canonical name
        packages[key] = {
            "name": key, "version": _wheel_version(path), "file_name": path.name, "install_dir": "site",
            "sha256": sha256(path.read_bytes()), "package_type": "package", "imports": [name],
            "depends": depends.get(key, []), "unvendored_tests": False, "tool": {},
        }
    return (json.dumps({"info": stock["info"], "packages": packages}, indent=1, sort_keys=True) + "\n").encode()


def _npm_versions() -> dict[str, str]:
    lock = json.loads((WEB / "package-lock.json").read_text())
    return {key.split("node_modules/", 1)[1]: value["version"]
            for key, value in lock["packages"].items() if key.startswith("node_modules/")}


class Dist:
    """Writes files into the output folder, only when their bytes differ, and remembers what it wrote."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: dict[str, dict] = {}

    def put(self, rel: str, data: bytes, source: str) -> None:
        dest = self.out / rel
        if not (dest.is_file() and dest.stat().st_size == len(data) and dest.read_bytes() == data):
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        self.files[rel] = {"sha256": sha256(data), "size": len(data), "source": source}

    def prune(self, keep: set[str]) -> None:
        for path in sorted(self.out.rglob("*"), reverse=True):
            rel = path.relative_to(self.out).as_posix()
            if path.is_file() and rel not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def content_security_policy(endpoints: list[str], inline_hashes: list[str], frame_ancestors: list[str] = ()) -> str:
    connect = " ".join(["'self'"] + endpoints)
    scripts = " ".join(["'self'", "'wasm-unsafe-eval'"] + [f"'{h}'" for h in inline_hashes])
    ancestors = " ".join(["'self'"] + list(frame_ancestors))
    return (f"default-src 'none'; script-src {scripts}; worker-src 'self'; connect-src {connect}; "
            "img-src 'self' blob: data:; style-src 'self'; font-src 'self'; manifest-src 'self'; "
            f"base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}")


WASM_EVAL = "'wasm-unsafe-eval'"


def portal_csp(asset_origin: str | None, endpoints: list[str]) -> str:
    """What a portal page embedding the widget must allow (docs/embedding.md documents the same policy).

    asset_origin None: the widget is served from the portal's own origin ('self'); its workers are then plain
    module workers. From another origin they start from a blob: (a worker's script must have the page's origin)
    and inherit this policy, so the asset origin must be allowed for scripts, fetches and styles, and for
    worker-src too: the static imports of a module worker are fetched as worker scripts.
    """
    self_, assets = "'self'", asset_origin or "'self'"

    def sources(*items: str) -> str:
        return " ".join(dict.fromkeys(items))

    return (f"default-src 'none'; script-src {sources(self_, assets, WASM_EVAL)}; "
            f"worker-src {'blob: ' + assets if asset_origin else self_}; connect-src {sources(self_, assets, *endpoints)}; "
            f"style-src {sources(self_, assets)}; img-src 'self' blob: data:; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'self'")


# esbuild with one plugin: each module's `import.meta.url` becomes that module's own URL inside app/ (app/ mirrors
# web/src/), so `new URL('./review.css', import.meta.url)` in web/src/review/ still finds app/review/review.css from
# the one bundled file.
BUNDLE_JS = r"""
const esbuild = require('esbuild');
const fs = require('fs');
const path = require('path');
const src = path.resolve('src');
const moduleUrl = {
  name: 'module-url',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, async (args) => {
      const rel = path.relative(src, args.path).split(path.sep).join('/');
      let contents = await fs.promises.readFile(args.path, 'utf8');
      if (!rel.startsWith('..')) {
        contents = contents.replaceAll('import.meta.url', `new URL(${JSON.stringify('./' + rel)}, import.meta.url).href`);
      }
      return { contents, loader: 'js' };
    });
  },
};
esbuild.build({ entryPoints: ['src/deid-uploader.js'], bundle: true, format: 'esm', target: 'es2022',
  platform: 'browser', charset: 'utf8', legalComments: 'inline', write: false, logLevel: 'warning',
  plugins: [moduleUrl] })
  .then((result) => process.stdout.write(result.outputFiles[0].text))
  .catch((err) => { console.error(err.message); process.exit(1); });
"""


def bundle_embed(out: Path) -> bytes:
    """The page side of the element as one ES module (esbuild; workers stay separate files next to it)."""
    if shutil.which("node") is None or not (WEB / "node_modules" / "esbuild").is_dir():
        raise BuildError("bundling the widget needs Node.js 20+ and npm's esbuild (web/package.json)")
    proc = subprocess.run(["node", "-e", BUNDLE_JS], cwd=WEB, capture_output=True)
    if proc.returncode or not proc.stdout:
        raise BuildError(f"esbuild failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return b"// Written by build_wasm.py: web/src/deid-uploader.js and its imports as one module (esbuild).\n" + proc.stdout


def _origin(url: str) -> str:
    m = re.match(r"^(https?://[^/?#]+)", url.strip())
    if not m:
        raise BuildError(f"--endpoint, --frame-ancestor and --asset-base take absolute http(s) URLs, got {url!r}")
    return m.group(1).lower()


def page(dist: Dist, app_sri: dict[str, str], test_hooks: bool) -> str:
    """index.html with an import map that pins every app module by Subresource Integrity; returns its hash.

    The map also sends the page's import of the element (app/main.js imports ./deid-uploader.js) to the same
    element bundled as one module (EMBED, what portals load): the page then fetches two modules instead of ~28
    found level by level (six round trips through the service worker before the first worker could be made).
    The workers' own modules stay separate files."""
    html = (WEB / "index.html").read_text(encoding="utf-8")
    importmap = json.dumps({"imports": {f"./{PAGE_ELEMENT}": f"./{EMBED}"},
                            "integrity": {f"./{k}": v for k, v in sorted(app_sri.items())}},
                           indent=1, sort_keys=True)
    tag = f'<script type="importmap">\n{importmap}\n</script>'
    if "<!--importmap-->" not in html:
        raise BuildError("web/index.html lacks the <!--importmap--> placeholder")
    html = html.replace("<!--importmap-->", tag)
    html = html.replace('src="app/main.js"', f'src="app/main.js" integrity="{app_sri["app/main.js"]}"')
    dist.put("index.html", html.encode(), "web/index.html")
    script_hash = "sha256-" + base64.b64encode(hashlib.sha256(f"\n{importmap}\n".encode()).digest()).decode()
    return script_hash


def build(out: Path, endpoints: list[str], test_hooks: bool = False, pyc: bool = True,
          frame_ancestors: list[str] = (), asset_base: str | None = None) -> dict:
    ensure_npm()
    wheels = ensure_wheels()
    wheels["py_deid"] = ensure_own_wheel()
    versions = _npm_versions()
    dist = Dist(out)
    nm = WEB / "node_modules"
    for pkg, inner, rel in NPM_FILES:
        dist.put(rel, (nm / pkg / inner).read_bytes(), f"npm:{pkg}@{versions[pkg]}/{inner}")
    for pkg, inner, symbol, rel in NPM_WRAPPED:
        text = (nm / pkg / inner).read_bytes()
        wrapped = text + f"\nexport default {symbol};\n".encode()
        dist.put(rel, wrapped, f"npm:{pkg}@{versions[pkg]}/{inner} (sha256 {sha256(text)}) + ES export")
    for name, path in sorted(wheels.items()):
        dist.put(f"vendor/py/{path.name}", path.read_bytes(),
                 "build:py_deid (this checkout)" if name == "py_deid" else f"pypi:{name}=={WHEELS[name][0]}")
    dist.put("vendor/py/pyodide-lock.json", lock_file(wheels), "build: lock for the wheels above")
    lock_name = "pyodide-lock.json"
    if pyc:
        # Same packages as precompiled archives (pydicom imports in ~0.26 s instead of ~0.65 s per worker).
        compiled = dict(wheels, **ensure_pyc(wheels))
        for name in ("pydicom", "py_deid"):
            dist.put(f"vendor/py/{compiled[name].name}", compiled[name].read_bytes(),
                     f"build: {wheels[name].name} compiled to CPython 3.14 bytecode by Pyodide (web/tools)")
        dist.put("vendor/py/pyodide-lock-pyc.json", _lock(compiled), "build: lock for the precompiled archives")
        lock_name = "pyodide-lock-pyc.json"
        # The standard library too: a first start imports it without compiling (~2 MB more to download).
        dist.put("vendor/pyodide/python_stdlib-pyc.zip", ensure_stdlib_pyc().read_bytes(),
                 f"build: npm:pyodide@{versions['pyodide']}/python_stdlib.zip compiled to CPython 3.14 bytecode (web/tools)")
    stdlib = "python_stdlib-pyc.zip" if pyc else "python_stdlib.zip"
    app_sri = {}
    for path in sorted((WEB / "src").rglob("*")):
        if path.is_file() and path.suffix in APP_SUFFIXES:
            rel = "app/" + path.relative_to(WEB / "src").as_posix()
            data = path.read_bytes()
            dist.put(rel, data, f"web/src/{path.relative_to(WEB / 'src').as_posix()}")
            if path.suffix == ".js":
                app_sri[rel] = sri(data)
    # (What the workers load is checked elsewhere: the wheels by the lock file's hashes with checkIntegrity, every
    # asset's sha256 in manifest.json.)
    # What the worker installs itself (web/src/runtime.js): pydicom's and py_deid's files as one pack, fetched with
    # its sha256 as Subresource Integrity, and the id of this runtime (Pyodide, its standard library, the pack)
    # under which a worker keeps the memory snapshot it made of it (a new runtime never restores an old one's).
    installed = compiled if pyc else wheels
    pack = site_pack([installed["pydicom"], installed["py_deid"]])
    dist.put("vendor/py/site-packages.pack.gz", pack,
             "build: the files of " + " and ".join(installed[n].name for n in ("pydicom", "py_deid")) + ", packed")
    packages = [{"file": "site-packages.pack.gz", "sha256": sha256(pack)}]
    runtime = hashlib.sha256()
    for rel in ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", stdlib):
        runtime.update(rel.encode() + b"\0" + dist.files[f"vendor/pyodide/{rel}"]["sha256"].encode())
    for package in packages:
        runtime.update(package["file"].encode() + b"\0" + package["sha256"].encode())
    build_info = {"version": _wheel_version(wheels["py_deid"]), "testHooks": bool(test_hooks), "lock": lock_name,
                  "packages": packages, "runtime": runtime.hexdigest()[:16], "stdlib": stdlib}
    info_js = "// Written by build_wasm.py.\nexport const BUILD = " + json.dumps(build_info, indent=1, sort_keys=True) + ";\n"
    dist.put("app/build-info.js", info_js.encode(), "build")
    app_sri["app/build-info.js"] = sri(info_js.encode())
    embed = bundle_embed(out)
    dist.put(EMBED, embed, "build: web/src/deid-uploader.js bundled by esbuild")
    app_sri[EMBED] = sri(embed)  # pinned in the page's import map like every app module
    inline_hash = page(dist, app_sri, test_hooks)
    endpoint_origins = sorted({_origin(e) for e in endpoints})
    csp = content_security_policy(endpoint_origins, [inline_hash], [_origin(a) for a in frame_ancestors])
    asset_origin = _origin(asset_base) if asset_base else None
    embed_info = {
        "module": EMBED, "integrity": sri(embed),
        "assetBase": asset_base or "(the URL this folder is served from)",
        "portalCsp": portal_csp(asset_origin or "ASSET_ORIGIN", endpoint_origins or ["ENDPOINT_ORIGIN"]),
        "portalCspSameOrigin": portal_csp(None, endpoint_origins or ["ENDPOINT_ORIGIN"]),
        "assetHostHeaders": {"Access-Control-Allow-Origin": "the portal's origin (when assets are on another origin)",
                             "Content-Type": "text/javascript for .js/.mjs, application/wasm for .wasm"},
    }
    dist.put("embed.json", (json.dumps(embed_info, indent=1, sort_keys=True) + "\n").encode(), "build")
    headers = {"/*": {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
                      "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin",
                      "Permissions-Policy": "camera=(), microphone=(), geolocation=()"}}
    dist.put("headers.json", (json.dumps(headers, indent=1, sort_keys=True) + "\n").encode(), "build")
    # The offline service worker (web/sw.js) at the root, so its scope is the page; it names this build, so a new
    # build installs a new worker that precaches the new files by their hashes.
    build_id = sha256(json.dumps({k: v["sha256"] for k, v in sorted(dist.files.items())}).encode())[:16]
    dist.put("sw.js", f"const BUILD_ID = '{build_id}';\n".encode() + (WEB / "sw.js").read_bytes(), "web/sw.js + build id")
    manifest = {
        "py_deid": build_info["version"],
        "npm": {k: versions[k] for k in sorted({p for p, *_ in NPM_FILES} | {p for p, *_ in NPM_WRAPPED})},
        "pypi": {name: version for name, (version, _) in sorted(WHEELS.items())},
        "test_hooks": bool(test_hooks),
        "files": dict(sorted(dist.files.items())),
    }
    dist.put("manifest.json", (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode(), "build")
    dist.prune(set(dist.files))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_wasm.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEB / "dist", help="output folder (default web/dist)")
    parser.add_argument("--endpoint", action="append", default=[],
                        help="DICOMweb endpoint on another origin the page may upload to (CSP connect-src)")
    parser.add_argument("--frame-ancestor", action="append", default=[], metavar="ORIGIN",
                        help="an origin allowed to show the page in a frame (CSP frame-ancestors; repeatable)")
    parser.add_argument("--asset-base", metavar="URL",
                        help="URL sponsors serve this folder from (fills in the portal CSP in embed.json)")
    parser.add_argument("--test-hooks", action="store_true",
                        help="include the test-only crash hooks (never for a deployment)")
    parser.add_argument("--no-pyc", action="store_true",
                        help="install pydicom and py_deid from their wheels instead of precompiled archives")
    parser.add_argument("--force", action="store_true", help="rebuild everything")
    args = parser.parse_args(argv)
    if args.force:
        shutil.rmtree(CACHE, ignore_errors=True)
        (WEB / "node_modules" / ".py_deid-lock-sha256").unlink(missing_ok=True)
    try:
        manifest = build(args.out.resolve(), args.endpoint, args.test_hooks, pyc=not args.no_pyc,
                         frame_ancestors=args.frame_ancestor, asset_base=args.asset_base)
    except (BuildError, OSError, KeyError) as e:
        print(f"build_wasm: {e}", file=sys.stderr)
        return 1
    total = sum(f["size"] for f in manifest["files"].values())
    print(f"build_wasm: {len(manifest['files'])} files, {total / 1e6:.1f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
