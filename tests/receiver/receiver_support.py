"""Helpers for the receiver's tests and benchmark: a real `py-deid serve` process, real Orthanc,
de-identified instances made by the core from real sample files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pydicom

from tests import processes

REPO = Path(__file__).resolve().parents[2]
KEY = b"0123456789abcdef0123"
ORTHANC = "/usr/sbin/Orthanc"
PY_DEID = [sys.executable, "-m", "py_deid.cli"]  # `py-deid` without relying on an installed script
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def deidentify(data: bytes) -> bytes:
    from py_deid.instance import deidentify_bytes
    from py_deid.options import Settings

    result = deidentify_bytes(data, Settings(pixels="off"), key=KEY)
    assert result.output is not None, result.problem
    return result.output


def with_new_uids(data: bytes, n: int, *, series: str | None = None, study: str | None = None) -> bytes:
    """The same instance under another SOP Instance UID (and optionally series/study): a distinct instance."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SOPInstanceUID = f"2.25.{int.from_bytes(hashlib.sha256(data[:4096] + str(n).encode()).digest()[:15], 'big')}"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if series:
        ds.SeriesInstanceUID = series
    if study:
        ds.StudyInstanceUID = study
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def edit(data: bytes, change) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    change(ds)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def uids(data: bytes) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(store: Path, *extra: str) -> list[str]:
    site = [] if "--site" in extra else ["--no-site"]
    return [*PY_DEID, "serve", "--store", str(store), "--port", "0", *site, *extra]


class Server:
    """A `py-deid serve` process on an ephemeral port."""

    def __init__(self, store: Path, *extra: str, log_name: str = "server", env: dict | None = None) -> None:
        self.store = store
        self.env = env or {}
        self.extra = extra
        self.log_dir = store.parent
        self.log_name = log_name
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self, timeout: float = 30) -> Server:
        self.runs += 1
        self.out = self.log_dir / f"{self.log_name}.{self.runs}.out"
        self.err = self.log_dir / f"{self.log_name}.{self.runs}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PY_DEID_")}
        env["PYTHONPATH"] = str(REPO)
        env.update(self.env)
        self.proc = subprocess.Popen(serve_command(self.store, *self.extra), cwd=self.log_dir, env=env,
                                     stdout=open(self.out, "wb"), stderr=open(self.err, "wb"))

        def answers() -> bool:
            m = re.search(r"DICOMweb: (\S+)/dicomweb", self.out.read_text())
            if m and "Application startup complete" in self.err.read_text():
                self.origin = m.group(1)
                self.base = self.origin + "/dicomweb"
                return True
            return False

        processes.wait_until_up(self.proc, answers, "server", self.err.read_text, timeout)
        return self

    @property
    def ca(self) -> str:
        return str(self.store / "tls" / "ca.crt")

    def client(self, token: str | None = None, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.origin, verify=ssl.create_default_context(cafile=self.ca),
                            trust_env=False, headers=headers,
                            timeout=kw.pop("timeout", 60), **kw)

    def stop(self) -> None:
        processes.stop(self.proc, sig=signal.SIGINT)

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob(f"{self.log_name}.*.*")))

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


def cli(store: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([*PY_DEID, "serve", "--store", str(store), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def new_token(store: Path, site: str, *scopes: str) -> str:
    args = ["--new-token", site] + [a for s in scopes for a in ("--scope", s)]
    done = cli(store, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[1].strip()


def stored_files(store: Path) -> list[Path]:
    return sorted(p for p in (store / "instances").rglob("*") if p.is_file())


def _packs_by_size(store: Path) -> list[tuple[Path, int]]:
    out = []
    for p in sorted((store / "packs").iterdir()) if (store / "packs").is_dir() else []:
        try:
            if p.is_file():
                out.append((p, p.stat().st_size))
        except FileNotFoundError:
            pass  # (removed under us by a running server)
    return out


def pack_files(store: Path) -> list[Path]:
    """The packs that hold bytes: the empty ones a running server created ahead for its next requests
    (storage.Store.new_pack) hold no instance (see spare_packs)."""
    return [p for p, size in _packs_by_size(store) if size]


def spare_packs(store: Path) -> list[Path]:
    """The empty files of packs/: created ahead for requests to come, or left so by a crash."""
    return [p for p, size in _packs_by_size(store) if not size]


def stored_bytes(store: Path) -> dict[str, bytes]:
    """sop_uid -> the bytes its ledger row points at (its own file, or its range of a pack), read without
    the store's code; asserts that no file or pack is there without a row pointing at it."""
    rows = ledger_rows(store)
    out = {}
    files = {f.name[:-4]: f for f in stored_files(store)}
    for r in rows:
        if r.get("pack"):
            data = (store / "packs" / r["pack"]).read_bytes()[r["pack_offset"]:r["pack_offset"] + r["size"]]
        else:
            data = files.pop(r["sop_uid"]).read_bytes()
        out[r["sop_uid"]] = data
    assert not files, "a file without its row"
    named = {r["pack"] for r in rows if r.get("pack")}
    assert {p.name for p in pack_files(store)} <= named, "a pack without a row"
    return out


def ledger_rows(store: Path) -> list[dict]:
    import sqlite3

    db = sqlite3.connect(store / "ledger.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM instances")]
    finally:
        db.close()


def dicom_json(response: httpx.Response) -> dict | list:
    assert response.headers["content-type"] == "application/dicom+json", response.text[:300]
    return json.loads(response.content)


def seq(doc: dict, tag: str) -> list[dict]:
    return (doc.get(tag) or {}).get("Value") or []


def value(item: dict, tag: str):
    return ((item.get(tag) or {}).get("Value") or [None])[0]


class Orthanc:
    """A real Orthanc with its DICOMweb plugin on loopback ports, data in a folder of our own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {"Name": "py-deid-test", "HttpPort": self.http_port, "DicomPort": self.dicom_port,
               "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
               "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomServerEnabled": False,
               "Plugins": [DICOMWEB_PLUGIN], "DicomWeb": {"Enable": True}}
        (folder / "cfg.json").write_text(json.dumps(cfg))
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.dicomweb = self.url + "/dicom-web"

    @staticmethod
    def available() -> bool:
        return Path(ORTHANC).exists() and Path(DICOMWEB_PLUGIN).exists()

    def start(self, timeout: float = 30) -> Orthanc:
        log = open(self.folder / "orthanc.log", "ab")
        self.proc = subprocess.Popen([ORTHANC, str(self.folder / "cfg.json")], cwd=self.folder, stdout=log,
                                     stderr=log)

        def answers() -> bool:
            try:
                return httpx.get(self.url + "/system", timeout=1, trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False

        processes.wait_until_up(self.proc, answers, "Orthanc", (self.folder / "orthanc.log").read_text, timeout)
        return self

    def stop(self) -> None:
        processes.stop(self.proc, grace=20)

    def instances(self) -> list[str]:
        return httpx.get(self.url + "/instances", timeout=10, trust_env=False).json()

    def sop_uids(self) -> list[str]:
        out = []
        for oid in self.instances():
            tags = httpx.get(f"{self.url}/instances/{oid}/simplified-tags", timeout=10, trust_env=False).json()
            out.append(tags["SOPInstanceUID"])
        return out

    def file_sha256(self, sop_uid: str) -> str:
        found = httpx.post(self.url + "/tools/lookup", content=sop_uid, timeout=10, trust_env=False).json()
        oid = [f["ID"] for f in found if f["Type"] == "Instance"][0]
        return sha256(httpx.get(f"{self.url}/instances/{oid}/file", timeout=30, trust_env=False).content)


def wipe(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def worker_pids(proc: subprocess.Popen) -> list[int]:
    """The verification workers of a `py-deid serve` process (multiprocessing's spawned children)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == proc.pid and b"spawn_main" in cmdline:
            out.append(int(stat.parent.name))
    return sorted(out)


def split_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """(headers, content) of each part of a complete multipart body (WADO-RS answers), by python-multipart."""
    from python_multipart.multipart import MultipartParser

    parts: list[tuple[dict[str, str], bytearray]] = []
    field, value = bytearray(), bytearray()

    def header_end():
        parts[-1][0][field.decode("latin-1").lower()] = value.decode("latin-1").strip()
        field.clear()
        value.clear()

    parser = MultipartParser(boundary.encode("latin-1"), callbacks={
        "on_part_begin": lambda: parts.append(({}, bytearray())),
        "on_header_field": lambda d, s, e: field.extend(d[s:e]),
        "on_header_value": lambda d, s, e: value.extend(d[s:e]),
        "on_header_end": header_end,
        "on_part_data": lambda d, s, e: parts[-1][1].extend(d[s:e]),
    })
    parser.write(body)
    parser.finalize()
    return [(h, bytes(c)) for h, c in parts]
