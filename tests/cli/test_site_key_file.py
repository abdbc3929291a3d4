"""--key-file with a sealed site key file (as the web page exports it): the passphrase opens it, the outputs are
those of the raw key, and a wrong passphrase is a clear usage error that names no secret."""

from __future__ import annotations

import os

from py_deid import site_key

KEY = bytes(range(7, 39))  # raw bytes, whitespace included: a sealed key is used as it is, never stripped
PASSPHRASE = "correct horse battery staple"


def _tree(root):
    return {p.name: p.read_bytes() for p in root.rglob("*.dcm")}


def test_sealed_key_file_gives_the_raw_keys_outputs(cli, samples, tmp_path):
    sealed = tmp_path / "py-deid-site-key.json"
    sealed.write_bytes(site_key.seal(KEY, PASSPHRASE, iterations=1000))
    assert site_key.open_sealed(site_key.sealed_document(sealed.read_bytes()), PASSPHRASE) == KEY
    phrase = tmp_path / "passphrase.txt"
    phrase.write_text(PASSPHRASE + "\n")
    ct = samples.path("CT_small.dcm")
    cli("deidentify", ct, "-o", tmp_path / "a", "--key-file", sealed, "--key-passphrase-file", phrase, check=True)
    outputs = _tree(tmp_path / "a")
    assert len(outputs) == 1
    from tests.browser import native

    want = native.deidentify([ct], native.settings(()), KEY)[ct]
    assert list(outputs.values()) == [want.output]


def test_wrong_passphrase_and_no_terminal(cli, samples, tmp_path):
    sealed = tmp_path / "site.json"
    sealed.write_bytes(site_key.seal(KEY, PASSPHRASE, iterations=1000))
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase")
    ct = samples.path("CT_small.dcm")
    p = cli("deidentify", ct, "-o", tmp_path / "o", "--key-file", sealed, "--key-passphrase-file", wrong)
    assert p.returncode == 2 and "passphrase is wrong" in p.stderr and "not the passphrase" not in p.stderr
    p = cli("deidentify", ct, "-o", tmp_path / "o", "--key-file", sealed)  # stdin is not a terminal here
    assert p.returncode == 2 and "--key-passphrase-file" in p.stderr
    assert not (tmp_path / "o").exists() or not os.listdir(tmp_path / "o")
