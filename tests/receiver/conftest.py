"""Fixtures of the receiver's tests: de-identified real instances and running `py-deid serve` processes."""

from __future__ import annotations

import pytest

from . import receiver_support as rs

SITE1 = "tok-site1-4c1d0f6a9b2e47d8a1c3f5e7d9b0a2c4"
PORTAL = "https://portal.example.org"


class Instances:
    """De-identified instances made by the core from real sample files, and raw (PHI-bearing) originals."""

    def __init__(self, samples) -> None:
        self.samples = samples
        self._cache: dict[str, bytes] = {}

    def deid(self, name: str) -> bytes:
        if name not in self._cache:
            self._cache[name] = rs.deidentify(self.samples.bytes(name))
        return self._cache[name]

    def raw(self, name: str) -> bytes:
        return self.samples.bytes(name)


@pytest.fixture(scope="session")
def instances(samples) -> Instances:
    return Instances(samples)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A receiver with a CLI token (store + read) for site1 and a portal origin allowed for CORS."""
    root = tmp_path_factory.mktemp("rx")
    srv = rs.Server(root / "store", "--token", f"site1:{SITE1}", "--cors-origin", PORTAL).start()
    yield srv
    srv.stop()


@pytest.fixture()
def client(server):
    with server.client(SITE1) as c:
        yield c
