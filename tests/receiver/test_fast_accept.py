"""The receiver's fast accept path (py_deid.verify_fast) against the full check (verification.inspect with the
fast path off), the independent oracle: for every input, a fast accept implies a full accept, with the same
identity. Inputs: real sample files (raw, PHI-bearing; and de-identified by py_deid, under the default and
under options a trial may allow), the receiver's test instances (PHI put back, findings of each class,
malformed), and a mutation fuzz with fixed seeds (byte flips, PHI-like values inserted under random tags and
VRs, at the top level or in sequence items, truncations). Quick by default; PY_DEID_FULL=1 runs every sample
file and a larger fuzz. Also: how often the fast path accepts de-identified real files (else it saves
nothing)."""

from __future__ import annotations

import os
import random
import warnings

import pydicom
import pytest
from pydicom.datadict import DicomDictionary

from py_deid import verify_fast
from py_deid.options import Options
from py_deid.receiver import reasons, verification

from . import receiver_support as rs

FULL = os.environ.get("PY_DEID_FULL") == "1"
OPTIONS = Options()
MAX_SIZE = 3_000_000


def full_check(data: bytes, options: Options = OPTIONS, study: str | None = None):
    saved = verification.FAST
    verification.FAST = False
    try:
        return verification.inspect(data, options, study)
    finally:
        verification.FAST = saved


def holds(data: bytes, options: Options = OPTIONS, study: str | None = None) -> bool:
    """The property; True when the fast path accepted (and the full check agreed). Also: whatever the fast
    path's parse takes, read_dataset's strict structure check passes (the fast path does not run it)."""
    taken = verify_fast.parsed(data)
    if taken is not None:
        verify_fast.structure.check(data, taken[0], implicit=taken[1], little=True)  # raises StructureError
    fast = verify_fast.accept(data, options, study)
    if fast is None:
        return False
    ident, failure = full_check(data, options, study)
    assert failure is None, f"fast path accepted what the full check refuses: {failure}"
    assert ident == verification.Identity(*fast)
    return True


@pytest.fixture(scope="module")
def corpus(samples):
    """(raw, de-identified) of sample files up to 3 MB: a fixed spread of them, every one with PY_DEID_FULL=1."""
    paths = [p for p in samples.paths() if p.stat().st_size <= MAX_SIZE]
    if not FULL:
        paths = sorted(paths)[::6]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in paths:
            raw = p.read_bytes()
            try:
                deid = rs.deidentify(raw)
            except AssertionError:
                deid = None
            out.append((p.name, raw, deid))
    return out


def test_real_files_raw_and_deidentified(corpus):
    accepted = deids = 0
    for _name, raw, deid in corpus:
        holds(raw)
        if deid is not None:
            accepted += holds(deid)
            failure = full_check(deid)[1]
            deids += failure is None or failure.offending != ("7FE00010",)  # not an image without its pixels
    # Images without Pixel Data (sample CTs of a DICOMDIR set, ...) are refused since issue 14 and not counted:
    # the default spread then has 39 (of 49), of which the fast path takes 21.
    # Measured on every sample file: 228 of 286 de-identified files (80%); the rest are big endian (23) or
    # deflated (1), declare a character set other than ASCII, Latin-1 or UTF-8 (9), or hold what the walk
    # would convert (values not valid as read, Z attributes with values, codes of cleaned sequences...).
    assert deids >= 20
    assert accepted >= 0.5 * deids, f"fast path accepted {accepted} of {deids} de-identified files"


RAW_PHI_EDITS = [
    lambda ds: setattr(ds, "InstitutionName", "St Elsewhere"),
    lambda ds: setattr(ds, "BurnedInAnnotation", "YES"),
    lambda ds: ds.add_new(0x00331010, "LO", "x") or ds.add_new(0x00330010, "LO", "ACME 1"),
    lambda ds: setattr(ds, "PatientIdentityRemoved", "NO"),
    lambda ds: delattr(ds, "PatientIdentityRemoved"),
    lambda ds: setattr(ds, "PatientName", "Doe^John"),
    lambda ds: setattr(ds, "PatientID", "12345678"),
    lambda ds: setattr(ds, "PatientBirthDate", "19700101"),
    lambda ds: setattr(ds, "StudyDate", "20200101"),
    lambda ds: setattr(ds, "AccessionNumber", "A1234"),
    lambda ds: setattr(ds, "ReferringPhysicianName", "Smith^Anna"),
    lambda ds: setattr(ds, "OperatorsName", "Smith^Anna"),
    lambda ds: setattr(ds, "ImageComments", "John Doe 1970"),
    lambda ds: setattr(ds, "StudyDescription", "Head of John Doe"),
    lambda ds: setattr(ds, "SeriesInstanceUID", "../../../../outside/x"),
    lambda ds: setattr(ds, "SOPInstanceUID", "1.2.3\n"),
    lambda ds: setattr(ds, "Modality", "CT\\MR"),
    lambda ds: setattr(ds, "SpecificCharacterSet", "ISO_IR 144"),
    lambda ds: ds.file_meta.add_new(0x00020016, "AE", "SOURCE_AE"),
    lambda ds: setattr(ds.file_meta, "ImplementationVersionName", "john doe"),
    lambda ds: setattr(ds.file_meta, "MediaStorageSOPInstanceUID", "1.2.3.4"),
    lambda ds: setattr(ds, "PatientSpeciesDescription", "Canine"),
    lambda ds: ds.add_new(0x60003000, "OW", b"\0" * 8),
    lambda ds: ds.add_new(0x00091001, "LO", "no creator"),
    lambda ds: ds.add_new(0x00190000, "UL", 4),
    lambda ds: setattr(ds, "DeidentificationMethodCodeSequence", pydicom.Sequence()),
    # a kept OB attribute (ICC Profile) whose value holds Patient's Name's element header: the value pass's
    lambda ds: ds.add_new(0x00282000, "OB", b"\x10\x00\x10\x00PN\x08\x00Doe^John"),
]


@pytest.fixture(scope="module")
def ct(instances):
    return rs.with_new_uids(instances.deid("CT_small.dcm"), 1)


def test_the_receivers_instances_and_findings_of_each_class(instances, ct):
    assert holds(ct)
    # encapsulated JPEG 2000: the full check looks into the codestreams (no comment beside the image), and
    # accepts this one; the fast path leaves it to the full check
    assert not holds(instances.deid("JPEG2000.dcm"))
    assert full_check(instances.deid("JPEG2000.dcm"), OPTIONS, None)[1] is None
    assert holds(instances.deid("MR_small_RLE.dcm"))  # encapsulated RLE: no codestream segments to look into
    study = rs.uids(ct)[0]
    assert holds(ct, study=study) and not holds(ct, study="1.2.3")
    holds(instances.raw("CT_small.dcm"))
    for i, change in enumerate(RAW_PHI_EDITS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edited = rs.edit(ct, change)
        holds(edited)  # most are refused by the full check: the fast path must leave them to it
    assert not holds(b"\1" + ct[1:])  # preamble
    for cut in (131, 200, len(ct) // 2, len(ct) - 1):
        holds(ct[:cut])
    # The trial's options: an instance declaring options the trial does not allow is the full check's.
    holds(ct, Options(retain_safe_private=True))


def _element(tag: int, vr: str, value: bytes) -> bytes:
    import struct
    value += b" " * (len(value) % 2)
    if vr.encode() in verify_fast._LONG_VRS:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


PHI_VALUES = [b"Doe^John", b"John Doe", b"19700101", b"12345678", b"St Elsewhere Hospital", b"1.2.840.1234.5",
              b"YES", b"", b"ANONYMOUS", b"PATABCDEFGHIJKLM", b"\x00\x01\x02\x03", b"Smith\\Jones", b"0",
              b"\x10\x00\x10\x00PN\x08\x00Doe^John"]  # the last: Patient's Name's element header in a value
VRS = ["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI", "UT", "OB", "OW",
       "US", "UL", "FL", "SQ", "UN"]


def _inserted(data: bytes, rng: random.Random, tags: list[int]) -> bytes:
    """A PHI-like value under a random tag (standard, private or a dictionary one) with a random VR, put in
    tag order at the top level or raw bytes at a random element boundary."""
    tag = rng.choice(tags) if rng.random() < 0.7 else rng.randrange(0x00080000, 0x7FE00000) | rng.choice((0, 1)) << 16
    vr, value = rng.choice(VRS), rng.choice(PHI_VALUES)
    if rng.random() < 0.5:
        def put(ds):
            target = ds
            if rng.random() < 0.5:  # into an item of a sequence, at any depth
                for _ in range(3):
                    seqs = [e for e in target if e.VR == "SQ" and e.value]
                    if not seqs:
                        break
                    target = rng.choice(rng.choice(seqs).value)
            target.add(pydicom.DataElement(tag, vr if vr != "SQ" else "UN", value))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return rs.edit(data, put)
        except Exception:
            pass
    at = verify_fast.structure.meta_end(data)
    cuts = [at]
    pos = at
    while pos + 8 < len(data) and len(cuts) < 400:  # top-level element boundaries, walked cheaply
        vr_b = data[pos + 4:pos + 6]
        if vr_b in verify_fast._LONG_VRS:
            length = int.from_bytes(data[pos + 8:pos + 12], "little")
            if length == 0xFFFFFFFF:
                break
            pos += 12 + length
        else:
            pos += 8 + int.from_bytes(data[pos + 6:pos + 8], "little")
        cuts.append(pos)
    cut = rng.choice(cuts)
    return data[:cut] + _element(tag, vr if vr != "SQ" else "OB", value) + data[cut:]


def _mutants(seed: int, base: bytes, n: int, tags: list[int]):
    rng = random.Random(seed)
    for _ in range(n):
        kind = rng.random()
        if kind < 0.45:
            b = bytearray(base)
            for _ in range(rng.choice((1, 1, 2, 4))):
                i = rng.randrange(len(b)) if rng.random() < 0.3 else rng.randrange(min(len(b), 2048))
                b[i] = rng.randrange(256) if rng.random() < 0.5 else b[i] ^ (1 << rng.randrange(8))
            yield bytes(b)
        elif kind < 0.85:
            yield _inserted(base, rng, tags)
        else:
            yield base[:rng.randrange(len(base))]


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm",
                                  "rtstruct.dcm", "test-SR.dcm"])
def test_mutation_fuzz(instances, name):
    base = instances.deid(name)
    tags = [t for t in DicomDictionary if t >> 16 not in (0x0002, 0xFFFE)]
    n = 1500 if FULL else 120
    accepted = 0
    for mutant in _mutants(sum(name.encode()), base, n, tags):
        accepted += holds(mutant)
    assert accepted > 0 or not holds(base)  # some mutants (flips in pixels, harmless values) stay provably clean


TRIAL_OPTIONS = [
    Options(retain_safe_private=True),
    Options(retain_uids=True, retain_long_full_dates=True),
    Options(retain_safe_private=True, retain_device_identity=True, retain_institution_identity=True,
            retain_patient_characteristics=True, retain_long_modified_dates=True, clean_descriptors=True,
            clean_structured_content=True, clean_graphics=True),
]


@pytest.mark.parametrize("options", TRIAL_OPTIONS, ids=["safe-private", "uids-dates", "many"])
def test_real_files_under_trial_options(corpus, options):
    """Outputs made under options the trial allows (safe private attributes kept, cleaned text...), judged
    under those options; and the default outputs judged under them (options the instance does not declare)."""
    from py_deid.instance import deidentify_bytes
    from py_deid.options import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _name, raw, deid in corpus:
            result = deidentify_bytes(raw, Settings(options=options, pixels="off"), key=rs.KEY)
            if result.output is not None:
                holds(result.output, options)
                holds(result.output, OPTIONS)  # declares options the default trial does not allow
            if deid is not None:
                holds(deid, options)


@pytest.mark.parametrize("bound", [verify_fast.MAX_PASSED, 7])
def test_values_kept_as_passed_decide_as_a_fresh_walk(instances, monkeypatch, bound):
    """The fast path keeps, per walker, the values that passed an element's rule and lets the same bytes
    under the same rule pass again. Decisions with those kept values (a walker warmed by the clean bases
    and every mutant before) equal the decisions of a fresh walker that keeps nothing, on every mutant; also
    with the bound so small that the kept values are dropped every few elements."""
    monkeypatch.setattr(verify_fast, "MAX_PASSED", bound)
    warm_walker = verify_fast._walker
    fresh = {"on": False}

    def walker(options, sop_class, implicit):
        if fresh["on"]:
            w = verify_fast._Walk(options, sop_class, implicit)
            w.keep = lambda key, value: None  # keeps nothing: every value judged
            return w
        return warm_walker(options, sop_class, implicit)

    monkeypatch.setattr(verify_fast, "_walker", walker)
    tags = [t for t in DicomDictionary if t >> 16 not in (0x0002, 0xFFFE)]
    warm_walker.cache_clear()  # walkers that keep nothing yet
    verify_fast._passed_state[0] = 0
    for name in ("CT_small.dcm", "MR_small_implicit.dcm", "rtstruct.dcm", "test-SR.dcm"):
        base = instances.deid(name)
        for mutant in [base, *_mutants(sum(name.encode()) + 1, base, 60 if not FULL else 600, tags)]:
            warm = verify_fast.accept(mutant, OPTIONS)
            fresh["on"] = True
            try:
                cold = verify_fast.accept(mutant, OPTIONS)
            finally:
                fresh["on"] = False
            assert warm == cold
        assert 0 < verify_fast._passed_state[0] <= bound  # values were kept, within the bound


def test_a_series_values_are_judged_once(instances, monkeypatch):
    """A series repeats most of its header, empty attributes too: once a walker has passed an instance, the
    next instance of the series (new SOP Instance UID) needs a value judged only where its bytes differ."""
    base = instances.deid("CT_small.dcm")
    first, second = rs.with_new_uids(base, 1), rs.with_new_uids(base, 2)
    verify_fast._walker.cache_clear()
    assert verify_fast.accept(first, OPTIONS) is not None
    judged = []
    check = verify_fast._values.check
    monkeypatch.setattr(verify_fast._values, "check", lambda vr, value, **kw: judged.append(kw.get("tag")) or
                        check(vr, value, **kw))
    assert verify_fast.accept(second, OPTIONS) is not None
    assert judged == [0x00080018]  # SOP Instance UID


def _top_boundaries(data: bytes, limit: int = 60) -> list[int]:
    """Offsets of the first top-level element boundaries of an explicit VR little endian dataset."""
    pos = verify_fast.structure.meta_end(data)
    cuts = [pos]
    while pos + 8 < len(data) and len(cuts) < limit:
        vr_b = data[pos + 4:pos + 6]
        if vr_b in verify_fast._LONG_VRS:
            length = int.from_bytes(data[pos + 8:pos + 12], "little")
            if length == 0xFFFFFFFF:
                break
            pos += 12 + length
        else:
            pos += 8 + int.from_bytes(data[pos + 6:pos + 8], "little")
        cuts.append(pos)
    return cuts


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm"])
def test_an_image_cut_where_an_element_starts_is_refused(instances, name):
    """Issue 14 (the soak stored a 'malformed' part): an image cut short where a top-level element starts
    reads as a whole data set, and once its UIDs are in, nothing but its missing pixels tells. Every such
    cut is refused, by the full check and by the receiver's check with its fast path."""
    base = instances.deid(name)
    cuts = [cut for cut in _top_boundaries(base, limit=10_000) if cut < len(base)]
    assert len(cuts) > 10
    for cut in cuts:
        part = base[:cut]
        assert verify_fast.accept(part, OPTIONS) is None, cut
        assert full_check(part)[1] is not None, cut
        assert verification.inspect(part, OPTIONS)[1] is not None, cut
    last = full_check(base[:cuts[-1]])[1]  # right before Pixel Data: the UIDs and the pixel description there
    assert last.reason == reasons.CANNOT_UNDERSTAND and last.offending == ("7FE00010",)
    assert holds(base)  # the whole instance: accepted by both


def test_non_images_without_pixels_are_still_accepted(instances):
    """The pixels are required of image IODs (and of anything that describes pixels), not of an SR or an RT
    structure set."""
    for name in ("rtstruct.dcm", "test-SR.dcm"):
        ident, failure = full_check(instances.deid(name))
        assert failure is None and ident is not None, name
        holds(instances.deid(name))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "rtstruct.dcm",
                                  "test-SR.dcm"])
def test_structure_edits(instances, name):
    """Delimiters and item tags where elements belong, sequence and item lengths a little off or undefined,
    NUL padding: the structure check's rules (the fast path does not run it; holds() runs it on whatever
    the fast path's parse takes), besides the full check's verdict."""
    import struct
    base = instances.deid(name)
    inserts = [struct.pack("<HHI", 0xFFFE, 0xE00D, 0), struct.pack("<HHI", 0xFFFE, 0xE0DD, 0),
               struct.pack("<HHI", 0xFFFE, 0xE000, 0), struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF),
               b"\0" * 8, b"\0" * 4]
    for cut in _top_boundaries(base):
        for extra in inserts:
            holds(base[:cut] + extra + base[cut:])
    for extra in inserts:
        holds(base + extra)
    # a last element that is a sequence of defined length, its item of undefined length with and without
    # its delimiter (the structure check refuses the second; nothing after it would show the parse's slip)
    element = _element(0x00080100, "SH", b"X")
    for item in (struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + element + struct.pack("<HHI", 0xFFFE, 0xE00D, 0),
                 struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + element):
        holds(base + struct.pack("<HH2sHI", 0xFFFA, 0xFFFA, b"SQ", 0, len(item)) + item)
    # every item's and sequence's length (explicit SQ headers and item headers at any depth), a little off
    marks = [i + 4 for i in range(len(base) - 8) if base[i:i + 4] == b"\xfe\xff\x00\xe0"]
    marks += [i + 8 for i in range(len(base) - 12) if base[i + 4:i + 8] == b"SQ\0\0"]
    for at in marks[:200]:
        (length,) = struct.unpack_from("<I", base, at)
        for new in {length + 2, length - 2, length + 8, length - 8, 0, 0xFFFFFFFF} - {length}:
            if 0 <= new <= 0xFFFFFFFF:
                holds(base[:at] + struct.pack("<I", new) + base[at + 4:])
