"""The seven findings of an attack run against `py-deid serve` (issue 14), one regression test each, over
real TLS sockets against a real server process."""

from __future__ import annotations

import io
import os
import signal
import socket
import ssl
import threading
import time

import httpx
import pydicom
import pytest

from py_deid import stow
from py_deid.receiver import reasons

from . import receiver_support as rs
from .conftest import SITE1

MiB = 1 << 20


def _post(client: httpx.Client, parts: list[bytes], url: str = "/dicomweb/studies") -> httpx.Response:
    ctype, body = stow.encode(parts)
    return client.post(url, content=body, headers={"Content-Type": ctype})


def _failures(r: httpx.Response) -> list[tuple[int, str]]:
    doc = rs.dicom_json(r)
    items = rs.seq(doc, "00081198") + rs.seq(doc, "0008119A")
    return [(rs.value(i, "00081197"), rs.value(i, "00000902")) for i in items]


def _tls(srv, timeout: float = 20) -> ssl.SSLSocket:
    port = int(srv.origin.rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=srv.ca)
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=timeout),
                           server_hostname="localhost")


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except (TimeoutError, socket.timeout):
        return False


# 1 -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_finding1_a_killed_worker_is_replaced_and_uploads_go_on(tmp_path, instances):
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", "--verify-workers", "2",
                    log_name="heal").start()
    try:
        base = instances.deid("CT_small.dcm")
        batches = [[rs.with_new_uids(base, 10_000 + 10 * b + i) for i in range(6)] for b in range(12)]
        statuses: list[int] = []
        acknowledged: list[str] = []
        lock = threading.Lock()

        def sender(mine):
            with srv.client(SITE1) as c:
                for parts in mine:
                    for attempt in range(5):
                        r = _post(c, parts)
                        with lock:
                            statuses.append(r.status_code)
                        if r.status_code == 503:
                            assert r.headers.get("retry-after")
                            time.sleep(1)
                            continue
                        if r.status_code == 200:
                            with lock:
                                acknowledged.extend(rs.uids(p)[2] for p in parts)
                        break

        threads = [threading.Thread(target=sender, args=(batches[k::2],)) for k in range(2)]
        for t in threads:
            t.start()
        workers = rs.worker_pids(srv.proc)
        assert len(workers) == 2
        while len(statuses) < 2:
            time.sleep(0.01)
        os.kill(workers[0], signal.SIGKILL)  # mid-upload
        seen_degraded = False
        with srv.client(SITE1) as c:
            for _ in range(100):
                s = c.get("/receiver/status")
                if s.status_code == 503 and s.json()["state"] == "degraded":
                    seen_degraded = True
                    break
                time.sleep(0.05)
        for t in threads:
            t.join()
        assert seen_degraded
        assert 500 not in statuses and set(statuses) <= {200, 503}
        assert sorted(acknowledged) == sorted(rs.uids(p)[2] for b in batches for p in b)  # every batch got in
        assert sorted(r["sop_uid"] for r in rs.ledger_rows(srv.store)) == sorted(acknowledged)
        with srv.client(SITE1) as c:
            for _ in range(100):
                s = c.get("/receiver/status")
                if s.status_code == 200:
                    break
                time.sleep(0.1)
            assert s.status_code == 200 and s.json()["state"] == "ok"
            assert s.json()["verification"]["restarts"] >= 1
            assert _post(c, [rs.with_new_uids(base, 19_999)]).status_code == 200
        new_workers = rs.worker_pids(srv.proc)
        assert len(new_workers) == 2 and workers[0] not in new_workers
    finally:
        srv.stop()


# 2 -------------------------------------------------------------------------------------------------
def _deflated_bomb(data: bytes, inflated: int) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PixelData = bytes(inflated)  # zeros: about 1000 to 1
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    root = tmp_path_factory.mktemp("capped")
    srv = rs.Server(root / "store", "--token", f"site1:{SITE1}", "--verify-workers", "1", "--max-inflated-size",
                    "32M", "--worker-memory", "3G", "--max-request-size", "1M", log_name="capped").start()
    yield srv
    srv.stop()


def test_finding2_a_deflate_bomb_is_refused_under_the_receivers_own_caps(capped, instances):
    bomb = _deflated_bomb(rs.with_new_uids(instances.deid("CT_small.dcm"), 20_000), 48 * MiB)
    assert len(bomb) < 200_000  # 48 MB of zeros in under 200 KB
    with capped.client(SITE1) as c:
        r = _post(c, [bomb])
    assert r.status_code == 409
    assert _failures(r) == [(reasons.INFLATE_LIMIT, reasons.TEXT[reasons.INFLATE_LIMIT])]
    assert rs.ledger_rows(capped.store) == []
    # and each worker runs under the configured address-space limit
    (worker,) = rs.worker_pids(capped.proc)
    limits = open(f"/proc/{worker}/limits").read()
    line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
    assert line.split()[3] == str(3 << 30)


# 3 -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_finding3_idle_connections_cannot_lock_out_a_client(tmp_path, instances):
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", "--verify-workers", "1",
                    "--handshake-timeout", "2", log_name="idle").start()
    port = int(srv.origin.rsplit(":", 1)[1])
    idle_tls, idle_tcp = [], []
    try:
        part = rs.with_new_uids(instances.deid("CT_small.dcm"), 30_000)
        with srv.client(SITE1) as c:
            start = time.monotonic()
            assert _post(c, [part]).status_code == 200
            usual = time.monotonic() - start
        for _ in range(150):  # TLS done, then nothing: no request, no token
            idle_tls.append(_tls(srv))
        for _ in range(40):  # TCP only: a TLS handshake that never starts
            idle_tcp.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        with srv.client(SITE1) as c:
            start = time.monotonic()
            r = _post(c, [rs.with_new_uids(part, 1)])
            took = time.monotonic() - start
            assert r.status_code == 200, r.text
            assert c.get("/dicomweb/studies").status_code == 200
        assert took < usual + 3.0
        assert all(_closed_within(s, 6) for s in idle_tcp[:5])  # the handshake deadline (2 s) closed them
    finally:
        for s in idle_tls + idle_tcp:
            s.close()
        srv.stop()


# 4 -------------------------------------------------------------------------------------------------
REFUSED = [
    ("no token", {}, {"Content-Type": stow.content_type("b")}, 401),
    ("wrong media type", {"Authorization": f"Bearer {SITE1}"}, {"Content-Type": "application/dicom"}, 415),
    ("declared too large", {"Authorization": f"Bearer {SITE1}"}, {"Content-Type": stow.content_type("b")}, 413),
]


@pytest.mark.parametrize("name,auth,headers,status", REFUSED, ids=[r[0] for r in REFUSED])
def test_finding4_refusals_of_5mb_bodies_are_read_by_python_clients(capped, name, auth, headers, status):
    body = b"--b\r\n\r\n" + os.urandom(5 * MiB)
    for run in range(5):
        with httpx.Client(base_url=capped.origin, verify=ssl.create_default_context(cafile=capped.ca),
                          trust_env=False, timeout=60) as c:
            r = c.post("/dicomweb/studies", content=body, headers={**auth, **headers})
        assert r.status_code == status, (run, r.text)


def test_finding4_a_chunked_body_over_the_limit_is_read_as_413(capped):
    def chunks():
        for _ in range(5):
            yield b"x" * MiB
    for run in range(5):
        with capped.client(SITE1) as c:
            r = c.post("/dicomweb/studies", content=chunks(), headers={"Content-Type": stow.content_type("b")})
        assert r.status_code in (400, 413), (run, r.status_code)


from tests.browser.conftest import browser  # noqa: E402,F401 - the shared Chromium fixture


@pytest.mark.slow
def test_finding4_refusals_of_5mb_bodies_are_read_by_chromium_fetch(capped, browser):  # noqa: F811
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(capped.origin.replace("localhost", "127.0.0.1") + "/receiver/status")  # any page of the origin
        results = page.evaluate("""async (token) => {
            const body = new Uint8Array(5 * 1024 * 1024);
            const out = [];
            const cases = [[{}, 'multipart/related; type="application/dicom"; boundary=b'],
                           [{Authorization: 'Bearer ' + token}, 'application/dicom']];
            for (let run = 0; run < 5; run++) {
                for (const [auth, type] of cases) {
                    try {
                        const r = await fetch('/dicomweb/studies', {method: 'POST', body,
                                              headers: {...auth, 'Content-Type': type}});
                        out.push(r.status);
                    } catch (e) { out.push(String(e)); }
                }
            }
            return out;
        }""", SITE1)
    finally:
        context.close()
    assert results == [401, 415] * 5


# 5 -------------------------------------------------------------------------------------------------
def test_finding5_a_uid_ending_in_a_newline_is_refused(server, client, instances):
    def uid(ds):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "2.25.4242"
    element = b"\x08\x00\x18\x00UI\n\x002.25.4242"
    part = rs.edit(instances.deid("CT_small.dcm"), uid)
    assert part.count(element + b"\x00") == 1
    part = part.replace(element + b"\x00", element + b"\n")  # pydicom itself would not write the newline
    r = _post(client, [part])
    assert r.status_code == 409
    assert _failures(r)[0][0] == reasons.CANNOT_UNDERSTAND
    assert "2.25.4242" not in {row["sop_uid"].strip() for row in rs.ledger_rows(server.store)}
    good = rs.with_new_uids(instances.deid("CT_small.dcm"), 40_000)
    assert _post(client, [good], "/dicomweb/studies/1.2.3%0A").status_code == 400
    assert _post(client, [good], "/dicomweb/studies/1.02.3").status_code == 400  # no leading zeros (PS3.5 9.1)
    for query in ("StudyInstanceUID=1.2.3%0A", "limit=%2B5", "offset=1%0A", "Modality=CT%0A"):
        assert client.get(f"/dicomweb/studies?{query}").status_code == 400, query


def _raw_request(srv, header_bytes: int) -> int:
    head = (f"GET /dicomweb/studies HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {SITE1}\r\n"
            "Connection: close\r\n").encode()
    filler = header_bytes - len(head) - len("X-Pad: \r\n\r\n")
    request = head + b"X-Pad: " + b"a" * filler + b"\r\n\r\n"
    assert len(request) == header_bytes
    sock = _tls(srv)
    try:
        sock.sendall(request)  # at once: h11's own limit applies only to a head that arrives in pieces
        answer = b""
        while data := sock.recv(65536):
            answer += data
    except OSError:
        pass
    finally:
        sock.close()
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_finding5_the_header_limit_is_exact(server):
    limit = 16 * 1024  # the default --max-header-size
    assert _raw_request(server, limit) in (200, 204)
    assert _raw_request(server, limit + 1) == 431
    assert _raw_request(server, 20 * 1024) == 431
    assert _raw_request(server, 32 * 1024) in (400, 431)


# 6 -------------------------------------------------------------------------------------------------
def test_finding6_a_site_reads_only_its_own_studies(server, instances):
    site_a = rs.new_token(server.store, "site-a", "store", "read")
    site_b = rs.new_token(server.store, "site-b", "store", "read")
    sponsor = rs.new_token(server.store, "sponsor", "read-all")
    a = rs.with_new_uids(instances.deid("CT_small.dcm"), 60_000, study="2.25.6001", series="2.25.6002")
    b = rs.with_new_uids(instances.deid("MR_small_RLE.dcm"), 60_001, study="2.25.6101", series="2.25.6102")
    for token, part in ((site_a, a), (site_b, b)):
        with server.client(token) as c:
            assert _post(c, [part]).status_code == 200
            cert = {"batch": "b1", "instances": [{"sop_instance_uid": rs.uids(part)[2], "sha256": rs.sha256(part)}]}
            assert c.post(f"/dicomweb/studies/{rs.uids(part)[0]}/certificates", json=cert).status_code == 201

    def studies(token):
        with server.client(token) as c:
            r = c.get("/dicomweb/studies")
            return set() if r.status_code == 204 else {rs.value(d, "0020000D") for d in rs.dicom_json(r)}

    assert "2.25.6001" in studies(site_a) and "2.25.6101" not in studies(site_a)
    assert "2.25.6101" in studies(site_b) and "2.25.6001" not in studies(site_b)
    assert {"2.25.6001", "2.25.6101"} <= studies(sponsor)
    with server.client(site_a) as c:
        assert c.get("/dicomweb/studies/2.25.6101").status_code == 404
        assert c.get("/dicomweb/studies/2.25.6101/series").status_code == 204
        assert c.get("/dicomweb/studies/2.25.6101/instances").status_code == 204
        assert c.get(f"/dicomweb/studies/2.25.6101/series/2.25.6102/instances/{rs.uids(b)[2]}").status_code == 404
        assert c.get("/dicomweb/studies/2.25.6101/certificates").json() == []
        assert c.get("/dicomweb/studies/2.25.6001").status_code == 200
    with server.client(sponsor) as c:
        assert c.get("/dicomweb/studies/2.25.6101").status_code == 200
        assert len(c.get("/dicomweb/studies/2.25.6001/certificates").json()) == 1
        assert _post(c, [rs.with_new_uids(a, 1)]).status_code == 403  # a reader, not an uploader
    mixed = rs.cli(server.store, "--new-token", "x", "--scope", "read-all", "--scope", "store")
    assert mixed.returncode == 2 and "read-all" in mixed.stderr


# 7 -------------------------------------------------------------------------------------------------
# These depend on the shared verifier of issue 11 (py_deid/verify.py): the receiver refuses whatever it finds.
REAL_NAME = "Doe^Jonathan"


def _refused_without_echo(client, part) -> None:
    r = _post(client, [part])
    assert r.status_code == 409, r.text
    (reason, comment), = _failures(r)
    assert 0xA900 <= reason <= 0xA9FF and comment
    assert "Doe" not in r.text and "Jonathan" not in r.text and "secret" not in r.text.lower()


def test_finding7_a_real_name_with_identity_removed_yes_is_refused(client, instances):
    def real_name(ds):
        ds.PatientName = REAL_NAME
        ds.PatientIdentityRemoved = "YES"
    _refused_without_echo(client, rs.edit(rs.with_new_uids(instances.deid("CT_small.dcm"), 70_000), real_name))


def test_finding7_text_in_the_preamble_is_refused(client, instances):
    part = bytearray(rs.with_new_uids(instances.deid("CT_small.dcm"), 70_001))
    part[:32] = b"Doe^Jonathan MRN 12345 secret   "
    _refused_without_echo(client, bytes(part))


@pytest.mark.parametrize("keyword,value", [("ImplementationVersionName", "JONATHAN DOE"),
                                           ("SourceApplicationEntityTitle", "JONATHAN DOE")])
def test_finding7_text_in_the_file_meta_is_refused(client, instances, keyword, value):
    def meta(ds):
        setattr(ds.file_meta, keyword, value)
    part = rs.edit(rs.with_new_uids(instances.deid("CT_small.dcm"), 70_002 + len(keyword)), meta)
    _refused_without_echo(client, part)


def test_finding7_every_finding_code_maps_to_a_phi_free_failure():
    from py_deid.receiver.verification import _failure
    from py_deid.verify import Finding

    for code in ("identity-not-removed", "phi-marker", "preamble-not-empty", "a-code-added-later"):
        f = _failure([Finding(code, "(0010,0010)", f"value {REAL_NAME} found")])
        assert f.reason in set(reasons.FINDINGS.values()) | {reasons.OTHER_FINDING}
        assert REAL_NAME not in f.comment and len(f.comment) <= 64 and f.offending == ("00100010",)
    assert _failure([Finding("Doe Jonathan", "", "")]).comment == reasons.TEXT[reasons.OTHER_FINDING]


def test_finding2_an_instance_over_the_worker_memory_limit_fails_alone(tmp_path, instances):
    """The address-space limit turns an instance too large for a worker into a refusal (A702) instead of an
    OOM kill; the worker goes on with the next one."""
    from py_deid.options import Options
    from py_deid.receiver.workers import VerifierPool

    probe = VerifierPool(Options(), 1)
    try:
        (pid,) = probe.pids()
        idle = next(int(x.split()[1]) * 1024 for x in open(f"/proc/{pid}/status") if x.startswith("VmSize:"))
    finally:
        probe.close()
    big = tmp_path / "big.part"
    big.write_bytes(rs.with_new_uids(instances.deid("CT_small.dcm"), 20_001) + bytes(160 * MiB))
    small = tmp_path / "small.part"
    small.write_bytes(rs.with_new_uids(instances.deid("CT_small.dcm"), 20_002))
    pool = VerifierPool(Options(), 1, memory=idle + 96 * MiB)
    try:
        ident, failure, _ = pool.result(pool.submit(str(big), 0, big.stat().st_size, None))
        assert failure is not None and failure.reason == reasons.MEMORY_LIMIT
        ident, failure, digest = pool.result(pool.submit(str(small), 0, small.stat().st_size, None))
        assert failure is None and digest == rs.sha256(small.read_bytes())
        assert pool.restarts == 0
    finally:
        pool.close()


def test_finding3_busy_connections_over_the_per_client_cap_refuse_the_newcomer_readably(tmp_path):
    srv = rs.Server(tmp_path / "store", "--token", f"site1:{SITE1}", "--verify-workers", "0",
                    "--max-connections-per-client", "4", log_name="busy").start()
    busy = []
    try:
        for _ in range(4):  # each one in the middle of a request body: not idle, never evicted
            s = _tls(srv)
            s.sendall(f"POST /dicomweb/studies HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {SITE1}\r\n"
                      f"Content-Type: {stow.content_type('b')}\r\nContent-Length: 100000\r\n\r\n--b\r\n".encode())
            busy.append(s)
        time.sleep(0.5)
        with srv.client(SITE1) as c:
            r = c.get("/dicomweb/studies")
        assert r.status_code == 503 and r.headers.get("retry-after")
        for s in busy:
            s.close()
        time.sleep(0.5)
        with srv.client(SITE1) as c:
            assert c.get("/dicomweb/studies").status_code in (200, 204)
    finally:
        for s in busy:
            s.close()
        srv.stop()


def test_a_killed_workers_job_is_answered_by_its_replacement(tmp_path, instances):
    """The pool's own healing, without the server: the job of a worker killed under it is still answered (run
    again on the worker that replaces it, or answered before the kill), the worker is replaced and the pool
    says degraded meanwhile."""
    from py_deid.options import Options
    from py_deid.receiver.workers import VerifierPool

    data = rs.with_new_uids(instances.deid("CT_small.dcm"), 20_003)
    part = tmp_path / "p.part"
    part.write_bytes(data)
    pool = VerifierPool(Options(), 1)
    try:
        (pid,) = pool.pids()
        check = pool.submit(str(part), 0, len(data), None)
        os.kill(pid, signal.SIGKILL)
        ident, failure, digest = pool.result(check)
        assert failure is None and digest == rs.sha256(data)
        deadline = time.monotonic() + 60
        while pool.restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.restarts == 1 and pool.health()["state"] == "degraded"
        assert pool.pids() and pid not in pool.pids()
        again = pool.submit(str(part), 0, len(data), None)
        assert pool.result(again)[1] is None
    finally:
        pool.close()


def test_groups_larger_than_a_workers_pipe_reach_it_whole(tmp_path, instances):
    """A group of in-memory parts larger than the job pipe (1 MiB) is written partly by the submitting thread
    and the rest by the pool's thread; a second such group for the same worker waits behind it. Both are
    answered, and each passing part is written with its own bytes."""
    from py_deid.options import Options
    from py_deid.receiver.workers import PIPE_BYTES, VerifierPool

    base = instances.deid("US1_UNCR.dcm")
    groups = [[rs.with_new_uids(base, 20_100 + 10 * g + i) for i in range(3)] for g in range(2)]
    assert all(sum(map(len, g)) > PIPE_BYTES for g in groups)
    pool = VerifierPool(Options(), 1)
    try:
        checks = [pool.submit_batch([(d, 0, len(d), str(tmp_path / f"{g}-{i}")) for i, d in enumerate(group)], None)
                  for g, group in enumerate(groups)]
        for g, group in enumerate(groups):
            for i, (check, data) in enumerate(zip(checks[g], group)):
                check.future.result(timeout=60)  # (a group stuck in the pipe would wait forever)
                ident, failure, digest = pool.result(check)
                assert failure is None and digest == rs.sha256(data)
                assert (tmp_path / f"{g}-{i}").read_bytes() == data
    finally:
        pool.close()
