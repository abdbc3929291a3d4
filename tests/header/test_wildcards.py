"""The wildcard rows of Table E.1-1: curves (50xx), overlays (60xx,3000 / 60xx,4000), private attributes."""

from __future__ import annotations

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from py_deid._standard import safe_private
from py_deid.options import Options

from .helpers import deid, encode, read


def _with_curve_and_overlay(ds):
    ds.add(DataElement(0x50000005, "US", 1))
    ds.add(DataElement(0x50000010, "US", 2))
    ds.add(DataElement(0x50002500, "LO", "curve of DOE JOHN"))
    ds.add(DataElement(0x50003000, "OW", b"\x01\x00\x02\x00"))
    ds.add(DataElement(0x60000010, "US", 4))
    ds.add(DataElement(0x60000011, "US", 4))
    ds.add(DataElement(0x60000040, "CS", "G"))
    ds.add(DataElement(0x60000050, "SS", [1, 1]))
    ds.add(DataElement(0x60000100, "US", 1))
    ds.add(DataElement(0x60000102, "US", 0))
    ds.add(DataElement(0x60000022, "LO", "overlay of DOE JOHN"))
    ds.add(DataElement(0x60003000, "OW", b"\xff\xff"))
    ds.add(DataElement(0x60004000, "LT", "comment about DOE JOHN"))
    return ds


def test_basic_profile_removes_curves_and_overlays_whole(ct):
    out = read(deid(encode(_with_curve_and_overlay(ct))))
    assert not [t for t in out.keys() if 0x5000 <= t >> 16 <= 0x50FF or 0x6000 <= t >> 16 <= 0x60FF]


def test_clean_graphics_keeps_curves_cleans_their_text(ct):
    out = read(deid(encode(_with_curve_and_overlay(ct)), options=Options(clean_graphics=True)))
    assert out[0x50003000].value == b"\x01\x00\x02\x00"
    assert "DOE" not in str(out[0x50002500].value) and "curve" in str(out[0x50002500].value)


def test_clean_graphics_without_pixel_step_removes_overlays_fail_closed(ct):
    # pixels=off: nothing read the overlay plane, so it cannot be kept as if clean.
    result = deid(encode(_with_curve_and_overlay(ct)), options=Options(clean_graphics=True))
    out = read(result)
    assert not [t for t in out.keys() if 0x6000 <= t >> 16 <= 0x60FF]
    assert any("overlay removed" in w for w in result.warnings)


def _privates(ds):
    ds.add(DataElement(0x00090010, "LO", "GEMS_IDEN_01"))
    ds.add(DataElement(0x00091001, "LO", "DOE JOHN private name"))
    ds.add(DataElement(0x00430010, "LO", "GEMS_PARM_01"))
    ds.add(DataElement(0x00431039, "IS", [1000, 0, 0, 0]))  # (0043,xx39) GEMS_PARM_01: safe (b value)
    ds.add(DataElement(0x00431001, "SS", 5))  # (0043,xx01) GEMS_PARM_01: not in the safe table
    item = Dataset()
    item.add(DataElement(0x00291010, "LO", "SIEMENS CSA HEADER"))
    item.add(DataElement(0x00291008, "OB", b"DOE JOHN csa"))
    ds.add(DataElement(0x00400260, "SQ", Sequence([item])))
    return ds


def _private_tags(ds):
    found = []
    for elem in ds.iterall():
        if elem.tag.is_private:
            found.append(int(elem.tag))
    return found


def test_basic_profile_removes_every_private_attribute_at_every_depth(ct):
    out = read(deid(encode(_privates(ct))))
    assert _private_tags(out) == []


SAFE = {(g, off, creator) for g, off, creator, *_ in safe_private.ROWS}


def _all_kept_are_safe(ds):
    """Every private data element left is in Table E.3.10-1 under its creator, and its creator is there."""
    for container in [ds] + [item for e in ds.iterall() if e.VR == "SQ" for item in e.value]:
        for tag in container.keys():
            g, e = tag >> 16, tag & 0xFFFF
            if g & 1 and e >= 0x1000:
                creator = container.get(((g << 16) | (e >> 8)))
                assert creator is not None, f"{tag:08X} kept without its creator"
                assert (g, e & 0xFF, str(creator.value).strip()) in SAFE, f"{tag:08X} kept but not safe"


def test_retain_safe_private_keeps_only_the_safe_ones_with_their_creator(ct):
    out = read(deid(encode(_privates(ct)), options=Options(retain_safe_private=True)))
    kept = _private_tags(out)
    assert 0x00431039 in kept and 0x00430010 in kept
    assert list(out[0x00431039].value) == [1000, 0, 0, 0]
    assert 0x00431001 not in kept and 0x00091001 not in kept and 0x00090010 not in kept
    _all_kept_are_safe(out)


@pytest.mark.parametrize("implicit", [False, True])
def test_private_data_as_un_or_implicit_is_matched_the_same_way(ct, implicit):
    ds = _privates(ct)
    # Re-encode the safe element's value as UN (explicit) or let implicit VR hide every VR.
    raw = ds[0x00431039]
    ds[0x00431039] = DataElement(0x00431039, "UN", b"1000\\0\\0\\0 ")
    del raw
    out = read(deid(encode(ds, implicit=implicit), options=Options(retain_safe_private=True)))
    kept = _private_tags(out)
    assert 0x00431039 in kept and 0x00431001 not in kept and 0x00091001 not in kept
    _all_kept_are_safe(out)
    basic = read(deid(encode(ds, implicit=implicit)))
    assert _private_tags(basic) == []


def test_private_sequence_in_un_is_parsed_and_cleaned_or_removed(samples):
    # UN_sequence.dcm / nested_priv_SQ.dcm carry private sequences; none may survive unparsed.
    for name in ("priv_SQ.dcm", "nested_priv_SQ.dcm", "UN_sequence.dcm"):
        data = samples.bytes(name)
        for opts in (Options(), Options(retain_safe_private=True)):
            result = deid(data, options=opts)
            if result.status != "done":
                assert result.problem.code in ("no-sop-class", "pixel-description")
                continue
            assert _private_tags(read(result)) == []


def test_real_files_with_private_data(samples):
    names = ["MR_small_implicit.dcm", "explicit_VR-UN.dcm", "CTImageStorage.dcm", "0051.dcm", "siemens_dwi_0.dcm"]
    for name in names:
        data = samples.bytes(name)
        out = read(deid(data))
        assert _private_tags(out) == [], name
        _all_kept_are_safe(read(deid(data, options=Options(retain_safe_private=True))))
