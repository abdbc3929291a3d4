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


def _outcome(store: Store, body: bytes, chunk: int, boundary: str = "bb", limits: Limits = Limits()):
    """The parts (headers, bytes) the splitter makes of a body, or the kind of its MultipartError."""
    try:
        out = _split(store, body, chunk, limits, boundary=boundary)
    except MultipartError as e:
        return e.kind
    try:
        return [(p.headers, _bytes(p)) for p in out.parts]
    finally:
        out.discard()


def _python_multipart(body: bytes, boundary: str):
    """python-multipart's reading of a well-formed body (the parser the receiver used before its own)."""
    from python_multipart.multipart import MultipartParser

    parts: list = []
    state = {"field": b"", "value": b""}

    def on_part_begin():
        parts.append([{}, bytearray()])

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        parts[-1][0][state["field"].decode("latin-1").strip().lower()] = state["value"].decode("latin-1").strip()
        state["field"], state["value"] = b"", b""

    def on_part_data(data, start, end):
        parts[-1][1] += data[start:end]

    parser = MultipartParser(boundary.encode(), callbacks={
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_part_data": on_part_data})
    delimiter = b"--" + boundary.encode()
    parser.write(body if body.startswith(delimiter) else body[body.find(b"\r\n" + delimiter) + 2:])  # (no preamble)
    return [(h, bytes(b)) for h, b in parts]


def _tricky_part(rng) -> bytes:
    """Random bytes with pieces of the delimiter, CRLFs and dashes where a splitter could go wrong."""
    pieces = [b"\r\n", b"\r\n-", b"\r\n--", b"\r\n--b", b"--bb", b"-", b"\r", b"\n", b"b", b"\r\n\r\n", b":"]
    out = bytearray()
    for _ in range(rng.randrange(0, 12)):
        out += rng.choice(pieces) if rng.random() < 0.6 else rng.randbytes(rng.randrange(0, 40))
    return bytes(out)


def _body(rng, parts: list[bytes]) -> bytes:
    out = bytearray(rng.choice([b"", b"preamble\r\n", b"\r\n", b"x" * 100 + b"\r\n"]))
    for part in parts:
        out += b"--bb\r\n"
        out += rng.choice([b"Content-Type: application/dicom\r\n", b"content-type:application/dicom\r\n",
                           b"Content-Type: application/dicom\r\nX-Other:  v \r\n", b""])
        out += b"\r\n" + part + b"\r\n"
    return bytes(out + b"--bb--" + rng.choice([b"", b"\r\n", b"epilogue --bb\r\n"]))


def test_agrees_with_python_multipart_on_well_formed_bodies(tmp_path):
    # The splitter replaced python-multipart (a callback per header and data segment cost the event loop
    # ~0.05 ms per small instance): on well-formed bodies, under any chunking, both read the same parts.
    import random

    rng = random.Random(7)
    store = Store(tmp_path / "store")
    for _ in range(150):
        parts = [_tricky_part(rng) for _ in range(rng.randrange(1, 5))]
        body = _body(rng, [p for p in parts if b"--bb" not in p])
        expected = _python_multipart(body, "bb")
        for chunk in (1, 2, 3, 5, 8, 13, 64, len(body)):
            assert _outcome(store, body, chunk) == expected, (body, chunk)
    assert not list(store.tmp_dir.iterdir())
    store.close()


def test_chunking_never_changes_the_outcome(tmp_path, monkeypatch):
    # Whatever the bytes (mutated bodies: flips, cuts, delimiter pieces inserted), the parts or the refusal
    # do not depend on how the network cut the body; small parts held in memory and parts spilled to temp
    # files (SMALL_PART_BYTES lowered) alike, and nothing is left in tmp/.
    import random

    import py_deid.receiver.body as body_module

    rng = random.Random(11)
    store = Store(tmp_path / "store")
    limits = Limits(max_instances=6, max_part_header_bytes=80, max_instance_bytes=400)
    kinds = set()
    for case in range(300):
        monkeypatch.setattr(body_module, "SMALL_PART_BYTES", 1 << 20 if case % 2 else 50)
        body = bytearray(_body(rng, [_tricky_part(rng) for _ in range(rng.randrange(1, 8))]))
        for _ in range(rng.randrange(0, 4)):
            at = rng.randrange(0, len(body) + 1)
            op = rng.randrange(3)
            if op == 0 and body:
                body[min(at, len(body) - 1)] = rng.randrange(256)
            elif op == 1:
                body[at:at] = rng.choice([b"\r\n--bb", b"\r\n--bb--", b"--bb\r\n", b"\r\n\r\n", b" :\r\n", b"\r\n--bbz"])
            else:
                del body[at:]
        body = bytes(body)
        outcomes = {chunk: _outcome(store, body, chunk, limits=limits) for chunk in (1, 2, 3, 7, 19, 100, 1 << 20)}
        first = outcomes[1]
        assert all(o == first for o in outcomes.values()), (body, outcomes)
        kinds.add(first if isinstance(first, str) else "parts")
        assert not list(store.tmp_dir.iterdir())
    assert kinds >= {"parts", "syntax", "truncated", "too-many-parts"}, kinds
    store.close()


@pytest.mark.parametrize("body,kind", [
    (b"--bb\r\n\r\nx\r\n--bbz\r\n\r\ny\r\n--bb--", "syntax"),  # the delimiter inside a part (RFC 2046)
    (b"--bb\r\nContent-Type: a\r\n folded\r\n\r\nx\r\n--bb--", "syntax"),
    (b"--bb\r\nno colon\r\n\r\nx\r\n--bb--", "syntax"),
    (b"--bb junk\r\n\r\nx\r\n--bb--", "syntax"),
    (b"--bb \r\n\r\nx\r\n--bb--", "syntax"),  # transport padding, refused as before
    (b"--bb\r\n\r\nx\r\n--bb-", "truncated"),
])
def test_strict_where_the_message_is_malformed(tmp_path, body, kind):
    for chunk in (1, 4, len(body)):
        assert _outcome(Store(tmp_path / f"store{chunk}"), body, chunk) == kind
