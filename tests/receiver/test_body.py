"""The receiver's body splitter (python-multipart's streaming parser into temp files) under every chunking,
with a preamble, and its limits, without a server: the ASGI receive channel is fed by hand."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from dicomweb_client.web import DICOMwebClient

from py_deid import stow
from py_deid.receiver.body import MultipartError, SpooledBody, spool_parts
from py_deid.receiver.config import Limits
from py_deid.receiver.storage import Store

PARTS = [b"first \r\n-- not the boundary", b"", bytes(range(256)) * 40, b"--b almost\r\n--"]


def _split(store: Store, body: bytes, chunk: int, limits: Limits = Limits(), boundary: str = "bb",
           into: SpooledBody | None = None) -> SpooledBody:
    messages = [body[i:i + chunk] for i in range(0, len(body), chunk)] or [b""]

    async def receive():
        data = messages.pop(0)
        return {"type": "http.request", "body": data, "more_body": bool(messages)}

    into = into if into is not None else SpooledBody()
    try:
        # In a thread of its own: a test in the same process may hold a running loop (Playwright's).
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, spool_parts(receive, store, boundary, limits, into)).result()
    except BaseException:
        into.discard()
        raise
    return into


def _bytes(part) -> bytes:
    """A spooled part's bytes: held in memory (small) or in its temp file."""
    return part.data if part.in_memory else part.path.read_bytes()


def split_parts(tmp_path, body: bytes, boundary: str, chunk: int) -> list[bytes]:
    """The parts' bytes as the receiver spools them."""
    store = Store(tmp_path / f"split-{chunk}")
    out = _split(store, body, chunk, boundary=boundary)
    try:
        return [_bytes(p) for p in out.parts]
    finally:
        out.discard()
        store.close()


def test_parses_what_dicomweb_client_encodes(tmp_path, instances):
    parts = [instances.deid("CT_small.dcm"), instances.deid("JPEG2000.dcm")]
    body = DICOMwebClient._encode_multipart_message(parts, 'multipart/related; type="application/dicom"; boundary="b1"')
    assert split_parts(tmp_path, body, "b1", 65536) == parts


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 4096, 1 << 20])
def test_any_chunking_with_a_preamble(tmp_path, chunk):
    store = Store(tmp_path / "store")
    body = b"a preamble the parser skips\r\n" + stow.encode(PARTS, boundary="bb")[1] + b"epilogue"
    out = _split(store, body, chunk)
    assert [_bytes(p) for p in out.parts] == PARTS
    assert [p.headers for p in out.parts] == [{"content-type": "application/dicom"}] * len(PARTS)
    out.discard()
    store.close()


@pytest.mark.parametrize("body,kind", [
    (b"no boundary at all", "syntax"),
    (b"--bb\r\nContent-Type: application/dicom\r\n\r\nnever closed", "truncated"),
    (b"--bb\r\nBad Header Name: x\r\n\r\nx\r\n--bb--", "syntax"),
    (b"--bb\r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--bb", "truncated"),
    (b"--bbX\r\n\r\nX\r\n--bb--", "syntax"),
])
def test_malformed(tmp_path, body, kind):
    with pytest.raises(MultipartError) as e:
        _split(Store(tmp_path / "store"), body, 5)
    assert e.value.kind == kind and "DATA" not in str(e.value)


def test_limits(tmp_path):
    store = Store(tmp_path / "store")
    body = stow.encode([b"x"] * 4, boundary="bb")[1]
    with pytest.raises(MultipartError) as e:
        _split(store, body, 100, Limits(max_instances=3))
    assert e.value.kind == "too-many-parts"
    with pytest.raises(MultipartError) as e:
        _split(store, stow.encode([b"y" * 1001], boundary="bb")[1], 100, Limits(max_instance_bytes=1000))
    assert e.value.kind == "part-too-large"
    big_header = b"--bb\r\nX-Long: " + b"h" * 2000 + b"\r\n\r\nx\r\n--bb--\r\n"
    with pytest.raises(MultipartError) as e:
        _split(store, big_header, 100, Limits(max_part_header_bytes=1024))
    assert e.value.kind in ("headers-too-large", "syntax")
    assert not list(store.tmp_dir.iterdir())


def test_small_parts_stay_in_memory_and_large_ones_go_to_temp_files(tmp_path, monkeypatch):
    # A small part is held as bytes (no temp file is created for it); one that grows past SMALL_PART_BYTES
    # goes into its temp file as it arrives, whatever the chunking; the bytes are the parts' either way.
    import py_deid.receiver.body as body_module

    monkeypatch.setattr(body_module, "SMALL_PART_BYTES", 4096)
    parts = [b"s" * 100, bytes(range(256)) * 64, b"", b"t" * 4096]  # 16 KiB: spills
    body = stow.encode(parts, boundary="bb")[1]
    for chunk in (7, 1000, 1 << 20):
        store = Store(tmp_path / f"store{chunk}")
        out = _split(store, body, chunk)
        assert [p.in_memory for p in out.parts] == [True, False, True, True]
        assert [_bytes(p) for p in out.parts] == parts
        assert sorted(store.tmp_dir.iterdir()) == [out.parts[1].path]  # only the large part has a file
        assert out.held == 100 + 4096
        out.discard()
        assert not list(store.tmp_dir.iterdir())
        store.close()


def test_parts_held_in_memory_are_capped_for_the_server(tmp_path):
    # Past MEMORY_BYTES held by all requests together (parts whose check has not answered), further parts
    # go to temp files, so neither one body of many small parts nor many bodies at once are held whole.
    from py_deid.receiver.body import MemoryBudget

    budget = MemoryBudget(10_000)
    parts = [bytes([i]) * 3000 for i in range(5)]
    store = Store(tmp_path / "store")
    first = _split(store, stow.encode(parts[:2], boundary="bb")[1], 512, into=SpooledBody(budget=budget))
    out = _split(store, stow.encode(parts, boundary="bb")[1], 512, into=SpooledBody(budget=budget))
    assert [p.in_memory for p in first.parts] == [True, True]
    assert [p.in_memory for p in out.parts] == [True, False, False, False, False]  # 6,000 held by the first
    assert (first.held, out.held, budget.held) == (6000, 3000, 9000)
    assert [_bytes(p) for p in out.parts] == parts
    first.release(first.parts[:1])  # a check answered: room again
    first.release(first.parts[:1])  # (once per part)
    assert (first.held, budget.held) == (3000, 6000)
    first.discard()
    out.discard()  # a request's end gives back what it still holds (parts never checked too)
    assert budget.held == 0
    store.close()
