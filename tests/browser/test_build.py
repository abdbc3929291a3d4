"""build_wasm.py: pinned inputs, a manifest of every asset, the lock files, SRI, the CSP, incremental rebuilds."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys

from .conftest import ROOT

sys.path.insert(0, str(ROOT))
import build_wasm  # noqa: E402

sys.path.pop(0)


def test_manifest_lists_every_file_with_its_hash(dist):
    manifest = json.loads((dist / "manifest.json").read_text())
    on_disk = {p.relative_to(dist).as_posix() for p in dist.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for rel, meta in manifest["files"].items():
        assert hashlib.sha256((dist / rel).read_bytes()).hexdigest() == meta["sha256"], rel
        assert meta["source"], rel
    assert manifest["npm"]["pyodide"] == "314.0.7" and manifest["npm"]["tesseract.js"].startswith("7.")
    assert manifest["pypi"] == {name: v for name, (v, _) in build_wasm.WHEELS.items()}


def test_lock_files_pin_real_hashes_with_relative_names(dist):
    stock = json.loads((ROOT / "web" / "node_modules" / "pyodide" / "pyodide-lock.json").read_text())
    for lock_name in ("pyodide-lock.json", "pyodide-lock-pyc.json"):
        lock = json.loads((dist / "vendor" / "py" / lock_name).read_text())
        assert lock["info"] == stock["info"]
        assert set(lock["packages"]) == {"micropip", "pydicom", "py-deid"}
        for entry in lock["packages"].values():
            assert "/" not in entry["file_name"]
            data = (dist / "vendor" / "py" / entry["file_name"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    wheels = json.loads((dist / "vendor" / "py" / "pyodide-lock.json").read_text())["packages"]
    for name, (version, digest) in build_wasm.WHEELS.items():
        assert wheels[name]["sha256"] == digest and wheels[name]["version"] == version  # the PyPI file's hash


def test_page_pins_its_modules_and_csp_allows_only_self(dist):
    html = (dist / "index.html").read_text()
    importmap = re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1)
    integrity = json.loads(importmap)["integrity"]
    for path in (dist / "app").glob("*.js"):
        want = "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()
        assert integrity[f"./app/{path.name}"] == want
    assert f'src="app/main.js" integrity="{integrity["./app/main.js"]}"' in html
    # app/main.js's import of the element goes to the bundled element (one module, pinned above)
    assert json.loads(importmap)["imports"] == {"./app/deid-uploader.js": "./app/embed.js"}
    assert "./app/embed.js" in integrity and "import './deid-uploader.js'" in (dist / "app" / "main.js").read_text()
    csp = json.loads((dist / "headers.json").read_text())["/*"]["Content-Security-Policy"]
    inline = "sha256-" + base64.b64encode(hashlib.sha256(importmap.encode()).digest()).decode()
    assert f"'{inline}'" in csp
    assert "connect-src 'self';" in csp and "worker-src 'self'" in csp and "default-src 'none'" in csp
    assert "http" not in csp  # no third party at all


def test_endpoint_on_another_origin_is_added_to_connect_src(tmp_path):
    out = tmp_path / "site"
    assert build_wasm.main(["--out", str(out), "--endpoint", "https://pacs.example.org/dicomweb/"]) == 0
    csp = json.loads((out / "headers.json").read_text())["/*"]["Content-Security-Policy"]
    assert "connect-src 'self' https://pacs.example.org;" in csp
    assert build_wasm.main(["--out", str(out), "--endpoint", "ftp://x"]) == 1


def test_rebuild_is_incremental_and_reproducible(dist):
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in dist.rglob("*") if p.is_file()}
    assert build_wasm.main(["--out", str(dist)]) == 0
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in dist.rglob("*") if p.is_file()}
    assert after == before  # nothing rewritten, same bytes
