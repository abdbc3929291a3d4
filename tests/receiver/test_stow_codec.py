"""py_deid.stow: the multipart/related encoder and the incremental parser (pure Python, no I/O)."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from dicomweb_client.web import DICOMwebClient

from py_deid import stow

from . import receiver_support as rs



def _parse(body: bytes, boundary: str, chunk: int, **limits) -> list[bytes]:
    parser = stow.MultipartParser(boundary, **limits)
    events = []
    for i in range(0, len(body), chunk):
        events += parser.feed(body[i:i + chunk])
    events += parser.finish()
    parts: dict[int, bytearray] = {}
    for e in events:
        if isinstance(e, stow.PartStart):
            parts[e.index] = bytearray()
        elif isinstance(e, stow.PartData):
            assert body[e.offset:e.offset + len(e.data)] == e.data  # offsets point into the stream
            parts[e.index] += e.data
    return [bytes(parts[i]) for i in sorted(parts)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 61, 4096, 1 << 20])
def test_round_trip_any_chunking(chunk):
    rng = random.Random(chunk)
    parts = [b"", b"\r\n", b"--", b"\r\n--py-deid-x"] + [rng.randbytes(rng.randrange(0, 9000)) for _ in range(5)]
    ctype, body = stow.encode(parts)
    media, params = stow.parse_content_type(ctype)
    assert media == "multipart/related" and params["type"] == "application/dicom"
    assert len(body) == stow.encoded_length([len(p) for p in parts], params["boundary"])
    assert _parse(body, params["boundary"], chunk) == parts


def test_parses_what_dicomweb_client_encodes(instances):
    parts = [instances.deid("CT_small.dcm"), instances.deid("JPEG2000.dcm")]
    body = DICOMwebClient._encode_multipart_message(parts, 'multipart/related; type="application/dicom"; boundary="b1"')
    split = stow.split(body, "b1")
    assert [c for _, c in split] == parts
    assert all(h["content-type"] == "application/dicom" for h, _ in split)


def test_preamble_epilogue_padding_and_folded_headers():
    body = (b"preamble text\r\n--b\t \r\nContent-Type: application/dicom\r\nX-Long: a\r\n  b\r\n\r\nONE"
            b"\r\n--b\r\n\r\nTWO\r\n--b--\r\nepilogue")
    parts = stow.split(body, "b")
    assert [c for _, c in parts] == [b"ONE", b"TWO"]
    assert parts[0][0] == {"content-type": "application/dicom", "x-long": "a b"}
    assert parts[1][0] == {}


@pytest.mark.parametrize("body, kind", [
    (b"no boundary anywhere", "syntax"),
    (b"--b\r\nContent-Type: application/dicom\r\n\r\nDATA", "truncated"),
    (b"--b\r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--b", "truncated"),
    (b"--b\r\nBad header line\r\n\r\nX\r\n--b--", "syntax"),
    (b"--bX\r\n\r\nX\r\n--b--", "syntax"),
])
def test_malformed_bodies(body, kind):
    with pytest.raises(stow.MultipartError) as e:
        stow.split(body, "b")
    assert e.value.kind == kind
    assert b"DATA".decode() not in str(e.value)


def test_limits():
    _, body = stow.encode([b"a" * 100, b"b" * 100, b"c"], boundary="bb")
    with pytest.raises(stow.MultipartError) as e:
        stow.split(body, "bb", max_parts=2)
    assert e.value.kind == "too-many-parts"
    with pytest.raises(stow.MultipartError) as e:
        stow.split(body, "bb", max_part_bytes=99)
    assert e.value.kind == "part-too-large"
    big = b"--bb\r\nX-A: " + b"a" * 5000 + b"\r\n\r\nx\r\n--bb--"
    with pytest.raises(stow.MultipartError) as e:
        stow.split(big, "bb", max_header_bytes=1024)
    assert e.value.kind == "headers-too-large"


def test_offsets_without_data():
    parts = [b"x" * 10, b"y" * 20]
    ctype, body = stow.encode(parts, boundary="zz")
    parser = stow.MultipartParser("zz", keep_data=False)
    events = parser.feed(body) + parser.finish()
    assert not any(isinstance(e, stow.PartData) for e in events)
    starts = [e.offset for e in events if isinstance(e, stow.PartStart)]
    ends = [e.offset for e in events if isinstance(e, stow.PartEnd)]
    assert [body[s:e] for s, e in zip(starts, ends)] == parts


def test_content_type_grammar():
    assert stow.parse_content_type('Multipart/Related; Type="application/dicom"; boundary="a b;c"') == (
        "multipart/related", {"type": "application/dicom", "boundary": "a b;c"})
    assert stow.parse_content_type("multipart/related;boundary=xyz")[1] == {"boundary": "xyz"}
    for bad in ("", "multipart", "multipart/related; boundary", 'multipart/related; boundary="open'):
        with pytest.raises(ValueError):
            stow.parse_content_type(bad)
    assert not stow.valid_boundary("a" * 71) and not stow.valid_boundary("ends ") and not stow.valid_boundary("é")


def test_encoder_takes_memoryviews_and_bytearrays():
    parts = [memoryview(b"abc"), bytearray(b"def"), b""]
    ctype, body = stow.encode(parts, boundary="mv")
    assert [c for _, c in stow.split(body, "mv")] == [b"abc", b"def", b""]


def test_encoder_refuses_a_part_holding_the_boundary():
    with pytest.raises(ValueError):
        stow.encode([b"abc\r\n--same\r\n"], boundary="same")


PYODIDE = rs.REPO / "web" / "node_modules" / "pyodide"
RUN_IN_PYODIDE = """
import { loadPyodide } from "%(pyodide)s/pyodide.mjs";
import { readFileSync } from "fs";
const py = await loadPyodide({ indexURL: "%(pyodide)s/" });
py.FS.mkdirTree("/lib/py_deid");
py.FS.writeFile("/lib/py_deid/__init__.py", "");
py.FS.writeFile("/lib/py_deid/stow.py", readFileSync("%(stow)s"));
console.log(py.runPython(`
import sys; sys.path.insert(0, "/lib")
from py_deid import stow
ct, body = stow.encode([b"abc", memoryview(bytes(range(256)) * 100)])
b = stow.parse_content_type(ct)[1]["boundary"]
" ".join([sys.platform, str(len(body))] + [str(len(c)) for _, c in stow.split(body, b)])
`));
"""


@pytest.mark.skipif(not (shutil.which("node") and (PYODIDE / "pyodide.mjs").exists()),
                    reason="needs node and web/node_modules/pyodide (npm install in web/)")
def test_stow_runs_unchanged_in_pyodide(tmp_path):
    script = tmp_path / "run.mjs"
    script.write_text(RUN_IN_PYODIDE % {"pyodide": PYODIDE.as_posix(), "stow": (rs.REPO / "py_deid" / "stow.py").as_posix()})
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-4:] == ["emscripten", str(stow.encoded_length([3, 25600], "x" * 40)), "3", "25600"]
