"""What a sponsor gets from the build (no browser): one ES module with its integrity, the portal CSP that
docs/embedding.md documents (the same the build computes and the example portal uses), frame-ancestors, languages."""

from __future__ import annotations

import json
import re

from tests.browser.conftest import ROOT

from .servers import ASSET_HOST, ENDPOINT_HOST, EXAMPLES, EMBEDDING, documented_csp

import build_wasm  # noqa: E402 - the checkout's build script (ROOT is on sys.path under pytest's rootdir)

SRC = ROOT / "web" / "src"


def test_embed_module_is_one_file_with_its_integrity(widget_dist):
    info = json.loads((widget_dist / "embed.json").read_text())
    data = (widget_dist / info["module"]).read_bytes()
    assert info["integrity"] == build_wasm.sri(data)
    text = data.decode()
    assert not re.search(r"^\s*import\s|^\s*export\s.*\sfrom\s|\bimport\(", text, re.M)  # nothing else to load
    assert "customElements.define(\"deid-uploader\"" in text
    # Its assets are found from its own URL, each relative to the module that names it: every one exists.
    found = re.findall(r'new URL\("([^"]+)", new URL\("\./([^"]+)", import\.meta\.url\)\.href\)', text)
    targets = {((widget_dist / "app" / module).parent.joinpath(rel).resolve(), rel.endswith("/")) for rel, module in found}
    assert {t.name for t, _ in targets} >= {"worker.js", "uploader.css"}, found
    assert all(t.is_dir() if folder else t.is_file() for t, folder in targets), targets
    assert "import.meta.url" not in re.sub(r'new URL\("\./[^"]+", import\.meta\.url\)', "", text)


def test_documented_csp_is_the_one_the_build_computes(widget_dist):
    doc = documented_csp()
    assert doc == build_wasm.portal_csp("ASSET_ORIGIN", ["ENDPOINT_ORIGIN"])
    assert json.loads((widget_dist / "embed.json").read_text())["portalCsp"] == doc
    for weak in ("unsafe-inline", "unsafe-eval'", "*", "https:", "data: ", "http:"):
        assert weak not in doc.replace("'wasm-unsafe-eval'", "").replace("blob: data:", ""), weak
    # The example portal's own meta policy is the documented one, with its hosts (and without frame-ancestors,
    # which a meta tag cannot carry).
    meta = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', (EXAMPLES / "portal.html").read_text())
    expected = doc.replace("ASSET_ORIGIN", ASSET_HOST).replace("ENDPOINT_ORIGIN", ENDPOINT_HOST)
    assert meta.group(1) == expected.removesuffix("; frame-ancestors 'self'")


def test_frame_ancestors_are_configurable(widget_dist, portal):
    headers = json.loads((widget_dist / "headers.json").read_text())["/*"]
    assert headers["Content-Security-Policy"].endswith(f"frame-ancestors 'self' {portal.origin}")
    assert build_wasm.content_security_policy([], []).endswith("frame-ancestors 'self'")  # the default
    assert build_wasm.main(["--out", str(widget_dist.parent / "bad"), "--frame-ancestor", "javascript:alert(1)"]) == 1


def keys(path) -> set[str]:
    return set(re.findall(r"^\s+'?([\w.-]+)'?:", path.read_text(), re.M))


def test_second_language_and_documented_settings():
    en, de = keys(SRC / "i18n" / "en.js"), keys(SRC / "i18n" / "de.js")
    assert len(en) > 50 and en == de
    doc = EMBEDDING.read_text()
    attrs = re.findall(r"attr: '([a-z-]+)'", (SRC / "config.js").read_text())
    trial = re.findall(r"'([a-z-]+)': '[a-z_]+'", (SRC / "config.js").read_text())
    assert len(attrs) > 10 and len(trial) == 10
    for name in [*attrs, *trial, "tokenProvider", "pseudonymKeyProvider", "strings"]:
        assert f"`{name}`" in doc, name
