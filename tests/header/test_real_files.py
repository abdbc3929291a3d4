"""Every real sample file de-identifies (or fails for a stated reason); dciodvfy finds no new error (compared
by attribute path and kind, as often as each occurs); the output passes verify with the originals' UIDs and
patient terms in hand."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from py_deid.options import Options
from py_deid.verify import check_bytes

from . import dciodvfy
from .helpers import deid

# Files that cannot be de-identified, with the reason the tool gives. Everything else must succeed.
EXPECTED_NOT_DONE = {
    "no-uid": {"fall.dcm", "hotiron.dcm", "hotmetalblue.dcm", "pet.dcm", "pet20step.dcm", "spring.dcm",
               "summer.dcm", "winter.dcm", "JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm",
               "SC_rgb_jls_lossy_line.dcm", "SC_rgb_jls_lossy_sample.dcm"},
    "no-sop-class": {"chrSQEncoding.dcm", "chrSQEncoding1.dcm", "UN_sequence.dcm", "no_meta_group_length.dcm",
                     "priv_SQ.dcm", "decimal_rescale.dcm", "empty_charset_LEI.dcm"},
    "truncated": {"MR_truncated.dcm", "rtplan_truncated.dcm", "emri_small_jpeg_2k_lossless_too_short.dcm"},
    "pixel-description": {"badVR.dcm", "meta_missing_tsyntax.dcm", "nested_priv_SQ.dcm"},
    "dicomdir": {"DICOMDIR", "DICOMDIR-bigEnd", "DICOMDIR-empty.dcm", "DICOMDIR-implicit", "DICOMDIR-nooffset",
                 "DICOMDIR-nopatient", "DICOMDIR-reordered"},
}
CONFIGS = {
    "basic": Options(),
    "retain-all": Options(retain_safe_private=True, retain_uids=True, retain_device_identity=True,
                          retain_institution_identity=True, retain_patient_characteristics=True,
                          retain_long_full_dates=True),
    "clean-all": Options(retain_long_modified_dates=True, clean_descriptors=True, clean_structured_content=True,
                         clean_graphics=True, retain_safe_private=True),
}
MAX_SIZE = 30_000_000  # the two 13/104 MB cines are covered by the pixel tests


def _cases(samples):
    return [s for s in samples.all if (samples.root / s.relpath).stat().st_size <= MAX_SIZE]


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_real_file_deidentifies_or_fails_for_a_stated_reason(samples, config):
    options = CONFIGS[config]
    outcome = Counter()
    for s in _cases(samples):
        result = deid((samples.root / s.relpath).read_bytes(), options=options)
        outcome[result.status] += 1
        if result.status == "done":
            findings = check_bytes(result.output, options, original_uids=result.local["original_uids"],
                                   terms=result.local["phi_terms"])
            assert not [f for f in findings if f.code != "burned-in-annotation"], (s.name, findings)
            continue
        code = result.problem.code
        assert s.name in EXPECTED_NOT_DONE.get(code, set()), (s.name, result.problem)
        assert result.problem.message
    assert outcome["done"] >= 295, outcome


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) is not installed")
@pytest.mark.parametrize("config", list(CONFIGS))
def test_dciodvfy_finds_no_new_error(samples, tmp_path, config):
    options = CONFIGS[config]
    new_errors = {}
    checked = 0
    for s in _cases(samples):
        src = samples.root / s.relpath
        result = deid(src.read_bytes(), options=options)
        if result.status != "done":
            continue
        out = tmp_path / "out.dcm"
        out.write_bytes(result.output)
        added = dciodvfy.new_errors(src, out, tmp_path)
        checked += 1
        if added:
            new_errors[s.name] = sorted(added)
    assert checked >= 295
    assert new_errors == {}
