"""The origin around DICOMweb: CORS for portal origins, the static web app, HTTPS set-up, --http rules."""

from __future__ import annotations

import json
import ssl
import subprocess

import httpx
import pytest

from py_deid import stow
from py_deid.receiver import static

from . import receiver_support as rs
from .conftest import PORTAL, SITE1


def test_cors_preflight_and_request_from_the_portal(server, instances):
    headers = {"Origin": PORTAL, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization, content-type"}
    with server.client() as c:
        pre = c.options("/dicomweb/studies", headers=headers)
    assert pre.status_code == 200  # Starlette's CORSMiddleware answers a preflight 200
    assert pre.headers["access-control-allow-origin"] == PORTAL
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in pre.headers
    ctype, body = stow.encode([rs.with_new_uids(instances.deid("CT_small.dcm"), 500)])
    with server.client(SITE1) as c:
        r = c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype, "Origin": PORTAL})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == PORTAL
    assert "origin" in r.headers["vary"].lower()


@pytest.mark.parametrize("origin", ["https://evil.example.com", "https://portal.example.org.evil.com", "null"])
def test_cors_gives_foreign_origins_nothing(server, origin):
    with server.client() as c:
        pre = c.options("/dicomweb/studies", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 403
    assert not any(k.startswith("access-control-") for k in pre.headers)
    with server.client(SITE1) as c:
        r = c.get("/dicomweb/studies", headers={"Origin": origin})
    assert r.status_code in (200, 204)
    assert not any(k.startswith("access-control-") for k in r.headers)


@pytest.fixture(scope="module")
def site_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    site = root / "dist"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>py-deid</title>")
    (site / "app.mjs").write_text("export const x = 1;")
    (site / "worker.js").write_text("self.onmessage = () => {};")
    (site / "assets" / "core.wasm").write_bytes(b"\0asm\x01\0\0\0")
    (site / "assets" / "eng.traineddata.gz").write_bytes(b"\x1f\x8b\x08\0fake")
    (site / "assets" / "repodata.json").write_text("{}")
    (site / "assets" / "pyodide.asm.data").write_bytes(b"\0\1\2")
    (site / ".secret").write_text("hidden")
    (site / "headers.json").write_text(json.dumps({
        "/*": {"Content-Security-Policy": "default-src 'self'", "Cross-Origin-Opener-Policy": "same-origin"},
        "/assets/*": {"Cache-Control": "public, max-age=3600"},
        "/index.html": {"Cache-Control": "no-cache"},
        "/assets/core.wasm": {"Content-Security-Policy": "default-src 'none'"},
    }))
    srv = rs.Server(root / "store", "--token", f"site1:{SITE1}", "--site", str(site),
                    "--verify-workers", "0", log_name="site").start()
    yield srv, site
    srv.stop()


def test_static_site_types_and_headers(site_server):
    srv, _ = site_server
    with srv.client() as c:
        page = c.get("/")
        assert page.status_code == 200 and page.text.startswith("<!doctype html>")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"] == "default-src 'self'"
        expected = {
            "/app.mjs": "text/javascript", "/worker.js": "text/javascript", "/assets/core.wasm": "application/wasm",
            "/assets/eng.traineddata.gz": "application/gzip", "/assets/repodata.json": "application/json",
            "/assets/pyodide.asm.data": "application/octet-stream", "/index.html": "text/html",
        }
        for path, media in expected.items():
            r = c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].split(";")[0] == media, path
            assert r.headers["x-content-type-options"] == "nosniff"
        gz = c.get("/assets/eng.traineddata.gz")
        assert "content-encoding" not in gz.headers and gz.content.startswith(b"\x1f\x8b")
        wasm = c.get("/assets/core.wasm")
        assert wasm.headers["content-security-policy"] == "default-src 'none'"  # the exact path wins
        assert wasm.headers["cache-control"] == "public, max-age=3600"  # the prefix still applies
        assert wasm.headers["cross-origin-opener-policy"] == "same-origin"
        assert c.get("/index.html").headers["cache-control"] == "no-cache"
        assert c.head("/app.mjs").status_code == 200


@pytest.mark.parametrize("path", ["/headers.json", "/.secret", "/../store/tokens.json", "/%2e%2e/store/tokens.json",
                                  "/assets/%2e%2e/%2e%2e/store/ledger.sqlite", "/missing.js", "/assets/..%5c..%5cx"])
def test_static_site_refuses_what_is_not_the_app(site_server, path):
    srv, _ = site_server
    with srv.client() as c:
        r = c.get(path)
    assert r.status_code == 404
    assert b"SQLite" not in r.content and b"sha256" not in r.content


def test_static_site_leaves_dicomweb_alone(site_server):
    srv, _ = site_server
    with srv.client() as c:
        assert c.get("/dicomweb/studies").status_code == 401
        assert c.post("/index.html").status_code == 405


def test_header_rules_unit():
    rules = {"/*": {"A": "1", "B": "1"}, "/x/*": {"b": "2"}, "/x/y": {"A": "3"}}
    assert static.headers_for(rules, "/x/y") == {"A": "3", "b": "2"}
    assert static.headers_for(rules, "/z") == {"A": "1", "B": "1"}


def test_bad_headers_json_stops_the_server(tmp_path):
    site = tmp_path / "dist"
    site.mkdir()
    (site / "headers.json").write_text('{"/*": "not an object"}')
    done = subprocess.run(rs.serve_command(tmp_path / "store", "--site", str(site), "--token", "a:b"),
                          capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(rs.REPO)})
    assert done.returncode == 1 and "headers.json" in done.stderr


def test_https_certificate_is_made_once_and_trusted_via_its_ca(server):
    tls = server.store / "tls"
    assert sorted(p.name for p in tls.iterdir()) == ["ca.crt", "server.crt", "server.key"]  # no CA key kept
    assert oct(( tls / "server.key").stat().st_mode & 0o777) == "0o600"
    for host in ("localhost", "127.0.0.1"):
        url = server.origin.replace("localhost", host)
        r = httpx.get(url + "/dicomweb/studies", verify=ssl.create_default_context(cafile=server.ca),
                      trust_env=False)
        assert r.status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.origin + "/", trust_env=False)  # not trusted without the CA
    assert "created certificate" in server.out.read_text()


def test_plain_http_only_on_loopback(tmp_path):
    done = subprocess.run([*rs.serve_command(tmp_path / "s1", "--token", "a:b", "--http"), "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(rs.REPO)})
    assert done.returncode == 2 and "loopback" in done.stderr
    srv = rs.Server(tmp_path / "s2", "--token", "a:b", "--http", "--verify-workers", "0", log_name="http").start()
    try:
        assert srv.origin.startswith("http://localhost:")
        assert httpx.get(srv.base + "/studies", headers={"Authorization": "Bearer b"}, trust_env=False).status_code == 204
        assert not (tmp_path / "s2" / "tls").exists()
    finally:
        srv.stop()


def test_a_token_is_created_and_printed_when_none_is_given(tmp_path):
    srv = rs.Server(tmp_path / "s", "--verify-workers", "0", log_name="auto").start()
    try:
        out = srv.out.read_text()
        token = out.split("token:")[1].split()[0]
        with srv.client(token) as c:
            assert c.get("/dicomweb/studies").status_code == 204
        assert token not in (tmp_path / "s" / "tokens.json").read_text()
        assert token not in srv.err.read_text()
    finally:
        srv.stop()
    again = rs.Server(tmp_path / "s", "--verify-workers", "0", log_name="auto2").start()  # the stored hash keeps working, no new token
    try:
        assert "token:" not in again.out.read_text()
        with again.client(token) as c:
            assert c.get("/dicomweb/studies").status_code == 204
    finally:
        again.stop()


def test_serve_help_lists_the_contract_flags():
    done = subprocess.run([*rs.PY_DEID, "serve", "--help"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(rs.REPO)}, timeout=60)
    assert done.returncode == 0
    for flag in ("--host", "--port", "--store", "--token", "--http", "--site", "--cors-origin", "--forward-url"):
        assert flag in done.stdout


def test_missing_site_is_built_when_the_checkout_has_a_builder(tmp_path, monkeypatch, capsys):
    """The glue only: with web/dist missing, build_wasm.py of the checkout is run (here a tiny one)."""
    from py_deid.receiver import cli

    (tmp_path / "build_wasm.py").write_text(
        "from pathlib import Path\n(Path(__file__).parent / 'web' / 'dist').mkdir(parents=True)\n")
    monkeypatch.setattr(cli, "_checkout_root", lambda: tmp_path)
    args = type("Args", (), {"no_site": False, "site": None, "no_build": True})()
    assert cli._site(args) is None and not (tmp_path / "web").exists()  # --no-build: never runs it
    args.no_build = False
    assert cli._site(args) == tmp_path / "web" / "dist"
    assert "running build_wasm.py" in capsys.readouterr().out
    assert cli._site(args) == tmp_path / "web" / "dist"  # present now: used as is
