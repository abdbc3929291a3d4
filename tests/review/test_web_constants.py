"""What the review screen (web/src/review) and the core must agree on, read from the shipped sources."""

from __future__ import annotations

import re
from pathlib import Path

from py_deid import certificate

REVIEW = Path(__file__).resolve().parents[2] / "web" / "src" / "review"


def test_exclusion_reason_codes_are_the_cores():
    text = (REVIEW / "reasons.js").read_text(encoding="utf-8")
    body = text.split("Object.freeze({", 1)[1].split("})", 1)[0]
    codes = re.findall(r"^\s*'?([a-z-]+)'?\s*:", body, re.M)
    assert codes == list(certificate.EXCLUSION_REASONS)


def test_default_attestation_shown_is_the_one_certified():
    text = (REVIEW / "certificate.js").read_text(encoding="utf-8")
    literal = re.search(r"DEFAULT_ATTESTATION =\s*((?:'[^']*'\s*\+?\s*)+);", text).group(1)
    assert "".join(re.findall(r"'([^']*)'", literal)) == certificate.DEFAULT_ATTESTATION
