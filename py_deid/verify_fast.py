"""A fast accept path for the receiver's check: elements read straight from the bytes, no pydicom Dataset.

`accept(data, options, expected_study)` returns the instance's identity when it can prove the instance clean
under the same rules as the full check (py_deid.receiver.verification.inspect: py_deid.instance.read_dataset,
the raw UID check, py_deid.verify.check_received with its walk and the value pass of py_deid.conform), and
None whenever it is not sure. None never means "refused": the caller then runs the full check, which decides.
So this path can only save time; it cannot accept what the full check refuses, and it never refuses.

It proves only the common case and leaves everything else to the full check: Pixel Data unless not an
image (an image without is cut short: verification.pixels_missing), explicit VR little endian
(native or encapsulated) and implicit VR little endian, tags in ascending order, every VR a known one (in
implicit VR the dictionary's, not an ambiguous one but for the pixel value attributes), sequences and items
of defined or undefined length, undefined length only for sequences and the top-level Pixel Data; values of
the textual VRs in plain printable ASCII; no character set beyond ASCII, Latin-1 and UTF-8. It uses the full
check's own pieces wherever they read values (the profile, the IOD types, values.check); its parse is stricter
than read_dataset's structure check (structure.check) in each of that check's rules, so it does not run it
(the tests run it on whatever the parse takes). It mirrors, for each element, the walk's lazy rule
(py_deid.verify._Checker.lazy_vr and walk): wherever the walk would convert a value to read it (an attribute
the profile removes or empties that holds something, cleaned free text, codes of cleaned sequences, names in
kept attributes, unknown attributes, overlays, private attributes not known to be safe, group lengths, UN),
it falls back. tests/receiver/test_fast_accept.py holds it to the full check (real files, the receiver's
test instances, a mutation fuzz): for every input, fast accept implies full accept.

An element's verdict depends only on its rule key (tag, VR, path, cleaned sequence) under a walker (options,
SOP class, encoding) and its bytes: each walker keeps the short values that passed each rule (bounded over all
walkers), so the values a series repeats, empty ones too, are judged once.
"""

from __future__ import annotations

import re
import struct
from functools import lru_cache

from pydicom import uid as _uid

from . import structure
from .conform import declared_as_other
from .elements import dictionary_vr, keyword
from .iod import IodTypes, is_image_class
from .markers import TRIAL_TAGS
from .options import OPTION_CODES, PIXEL_OPTIONS, Options
from .policy import profile_for
from .pseudonyms import PATIENT_PSEUDONYM
from . import values as _values
from .verify import ALLOWED_DUMMIES, META_ALLOWED, NOT_FREE_TEXT, _IMPLEMENTATION_VERSION, _private_filter
from .elements import TEXT_VRS
from .codes import CODE_VALUE as _CV, LONG_CODE_VALUE, SCHEME, URN_CODE_VALUE
from .pixels.encapsulation import J2K_FAMILY, JPEG_FAMILY, JPEG_LS

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
# Transfer syntaxes pydicom reads as explicit VR little endian as they are (none deflated, none JPIP).
_EXPLICIT_LE_SYNTAXES = frozenset(str(u) for u in _uid.AllTransferSyntaxes if u.is_little_endian
                                  and not u.is_implicit_VR and not u.is_deflated
                                  and "Deflate" not in u.name and "JPIP" not in u.name)
IMPLICIT_LE = "1.2.840.10008.1.2"
_NATIVE = {EXPLICIT_LE, IMPLICIT_LE}
_CODESTREAMS = JPEG_FAMILY | JPEG_LS | J2K_FAMILY
_KNOWN_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB",
                        b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
                        b"UC", b"UI", b"UL", b"UR", b"US", b"UT", b"UV"})  # UN: always the full check
_LONG_VRS = structure.LONG_VRS
# The known VRs as text, by their header's form (a 4-byte length after two reserved bytes, or a 2-byte one).
_LONG_VR_TEXT = {vr: vr.decode("ascii") for vr in _KNOWN_VRS if vr in _LONG_VRS}
_SHORT_VR_TEXT = {vr: vr.decode("ascii") for vr in _KNOWN_VRS if vr not in _LONG_VRS}
_AS_BYTES_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV"})
_TEXTUAL_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR",
                          "SH", "LO", "ST", "LT", "UT", "UC", "PN"})
_LAZY_VRS = _AS_BYTES_VRS | _values.NUMERIC_BINARY | _TEXTUAL_VRS
_PLAIN_ASCII = re.compile(rb"[ -~]*")
_AMBIGUOUS = {"OB or OW": "OB", "US or SS": "US", "US or OW": "US", "US or SS or OW": "US"}
_TEXTUAL_KNOWN = _values.TEXT_VRS | {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR"}

_OPTION_BY_CODE = {code: name for name, code in OPTION_CODES.items() if name not in PIXEL_OPTIONS}
_CODE_ITEM_TAGS = frozenset(int(t) for t in (SCHEME, _CV, LONG_CODE_VALUE, URN_CODE_VALUE))  # codes.is_code_item
_HEAD = struct.Struct("<HH2sH")
_U32 = struct.Struct("<I")
_TAG_LEN = struct.Struct("<HHI")
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_BELOW_DATA = 0x0007FFFF  # the last tag of the groups below the data set's (command 0000, file meta 0002)
MAX_DEPTH = 16
MAX_RULES = 100_000
# Values that passed an element's rule, kept per walker: the same bytes under the same rule pass again
# (a series repeats most of its header). Bounded across walkers; only short values are kept.
MAX_PASSED = 16_384
MAX_PASSED_LEN = 128
_NOTHING: frozenset = frozenset()
_passed_state = [0, 0]  # [values kept by all walkers, generation: a walker whose generation is older clears its own]
PIXEL_DATA = 0x7FE00010
_MAYBE_CUT_SHORT = (0x00280010, 0x00280011)  # Rows, Columns without Pixel Data (pixels_missing)
PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
SOP_CLASS, SOP_INSTANCE, STUDY, SERIES, MODALITY = 0x00080016, 0x00080018, 0x0020000D, 0x0020000E, 0x00080060
CHARSET = 0x00080005
IDENTITY_REMOVED, BURNED_IN, METHOD_CODES, CODE_VALUE = 0x00120062, 0x00280301, 0x00120064, 0x00080100
# Attributes whose presence decides the IOD conditions of py_deid.iod.CONDITIONS: the full check then.
_CONDITION_TAGS = (0x00102201, 0x00102202, 0x300E0002)
DIRECTORY_RECORDS = 0x00041220
_PREAMBLE = bytes(128) + b"DICM"  # a preamble of zeros and the prefix
_PLAIN_CHARSETS = frozenset({b"", b"ISO_IR 6", b"ISO_IR 100", b"ISO_IR 192"})


class Unsure(Exception):
    """Not provable here: the full check decides."""


class _Absent:
    """A dataset without the attributes of the IOD conditions (checked before it is used)."""

    @staticmethod
    def get(_keyword, default=None):
        return default


def _parse(data: bytes, pos: int, end: int, depth: int, in_item: bool, top: bool,
           implicit: bool = False) -> tuple[dict, int]:
    """Elements from pos to end (or to an item delimiter when in_item and end is undefined): a dict of
    tag -> (tag, vr, value bytes or None, items or None), in the data's order; raises Unsure on anything it does not handle (and
    struct.error where fewer bytes are left than a header needs: accept() and parsed() take any exception as
    unsure). Implicit VR: the dictionary's VR (as pydicom's conversion takes it), UN for private attributes (as
    the value pass judges them); ambiguous or unknown VRs are the full check's."""
    if depth > MAX_DEPTH:
        raise Unsure
    if implicit:
        return _parse_implicit(data, pos, end, in_item, top, depth)
    out: dict = {}
    last = _BELOW_DATA  # every tag must be above the last one; the first above the command and file meta groups
    head = _HEAD.unpack_from
    n = len(data)
    limit = min(end, n)
    short_vrs = _SHORT_VR_TEXT
    while pos < end:
        group, elem, vr, length = head(data, pos)  # struct.error when fewer than 8 bytes are left
        tag = group << 16 | elem
        if tag <= last or group == 0xFFFE:
            if tag == _ITEM_END and in_item and length == 0 and end == n + 1:
                return out, pos + 8
            raise Unsure  # out of order, a delimiter out of place, command or file meta groups
        last = tag
        svr = short_vrs.get(vr)
        if svr is not None:  # most elements: a value in place
            pos += 8
            stop = pos + length
            if stop > limit:
                raise Unsure
            out[tag] = (tag, svr, data[pos:stop], None)
            pos = stop
            continue
        svr = _LONG_VR_TEXT.get(vr)
        if svr is None or length != 0:
            raise Unsure  # not a known VR, or the reserved bytes of a long one not zero
        (length,) = _U32.unpack_from(data, pos + 8)
        pos += 12
        pos = _long_value(data, pos, length, end, limit, depth, tag, svr, top, False, out)
    if in_item and end == n + 1:
        raise Unsure  # an undefined-length item without its delimiter
    if pos != end:
        raise Unsure
    return out, pos


def _parse_implicit(data: bytes, pos: int, end: int, in_item: bool, top: bool, depth: int) -> tuple[dict, int]:
    """_parse of implicit VR little endian."""
    out: dict = {}
    last = _BELOW_DATA
    tag_len = _TAG_LEN.unpack_from
    n = len(data)
    limit = min(end, n)
    while pos < end:
        group, elem, length = tag_len(data, pos)  # struct.error when fewer than 8 bytes are left
        tag = group << 16 | elem
        if tag <= last or group == 0xFFFE:
            if tag == _ITEM_END and in_item and length == 0 and end == n + 1:
                return out, pos + 8
            raise Unsure
        last = tag
        pos += 8
        if group & 1:
            svr = "UN"
        elif top and tag == PIXEL_DATA:
            svr = "OW"  # judged by its action only, the same for OB and OW (_Walk.rule)
        elif top and tag in _PIXEL_VALUE_TAGS:
            svr = "US or SS"  # resolved by _resolve_pixel_values as pydicom does, else Unsure
        else:
            svr = dictionary_vr(tag)
            if svr is None or svr.encode() not in _KNOWN_VRS:
                raise Unsure
        pos = _long_value(data, pos, length, end, limit, depth, tag, svr, top, True, out)
    if in_item and end == n + 1:
        raise Unsure
    if pos != end:
        raise Unsure
    return out, pos


def _long_value(data: bytes, pos: int, length: int, end: int, limit: int, depth: int, tag: int, svr: str,
                top: bool, implicit: bool, out: dict) -> int:
    """The value at pos of an element of a 32-bit length (every element in implicit VR): put in out; returns
    the position after it."""
    if svr == "SQ":
        items, pos = _items(data, pos, length, end, depth, implicit)
        out[tag] = (tag, svr, None, items)
        return pos
    if length == _UNDEFINED:
        if implicit or not (top and tag == PIXEL_DATA and svr in ("OB", "OW")):
            raise Unsure
        pos = _fragments(data, pos, end)
        out[tag] = (tag, svr, None, None)  # encapsulated: the walk only needs its action
        return pos
    if pos + length > limit:
        raise Unsure
    if top and tag == PIXEL_DATA:  # only its length is read (native pixels): not copied
        out[tag] = (tag, svr, memoryview(data)[pos:pos + length], None)
    else:
        out[tag] = (tag, svr, data[pos:pos + length], None)
    return pos + length


def _items(data: bytes, pos: int, length: int, end: int, depth: int, implicit: bool) -> tuple[list, int]:
    n = len(data)
    undefined = length == _UNDEFINED
    stop = min(end, n) if undefined else pos + length
    if stop > min(end, n):
        raise Unsure
    items: list = []
    while True:
        if not undefined and pos == stop:
            return items, pos
        if pos + 8 > min(stop, n):
            raise Unsure
        group, elem, ilen = struct.unpack_from("<HHI", data, pos)
        tag = group << 16 | elem
        pos += 8
        if tag == _SEQ_END:
            if not undefined or ilen != 0:
                raise Unsure
            return items, pos
        if tag != _ITEM:
            raise Unsure
        if ilen == _UNDEFINED:
            elements, pos = _parse(data, pos, n + 1, depth + 1, True, False, implicit)
        else:
            if pos + ilen > stop:
                raise Unsure
            elements, pos = _parse(data, pos, pos + ilen, depth + 1, False, False, implicit)
        items.append(elements)


def _fragments(data: bytes, pos: int, end: int) -> int:
    n = min(len(data), end)
    while True:
        if pos + 8 > n:
            raise Unsure
        group, elem, flen = struct.unpack_from("<HHI", data, pos)
        tag = group << 16 | elem
        pos += 8
        if tag == _SEQ_END:
            if flen != 0:
                raise Unsure
            return pos
        if tag != _ITEM or flen == _UNDEFINED or pos + flen > n:
            raise Unsure
        pos += flen


def _plain(value: bytes) -> str:
    """A single plain printable ASCII value (no backslash), as text; else Unsure."""
    if b"\\" in value or not _PLAIN_ASCII.fullmatch(value):
        raise Unsure
    return value.decode("ascii")


def _uid_of(value: bytes | None) -> str:
    """A UID as written (at most one trailing NUL of padding), valid; else Unsure. The values found valid are
    kept (bounded): a series repeats its SOP class, study and series UIDs and its transfer syntax."""
    if value is None:
        raise Unsure
    s = _VALID_UIDS.get(value)
    if s is not None:
        return s
    text = value[:-1] if value.endswith(b"\0") else value
    if not _PLAIN_ASCII.fullmatch(text):
        raise Unsure
    s = text.decode("ascii")
    if not structure.valid_uid(s):
        raise Unsure
    if len(_VALID_UIDS) >= MAX_VALID_UIDS:
        _VALID_UIDS.clear()
    _VALID_UIDS[bytes(value)] = s
    return s


MAX_VALID_UIDS = 1024
_VALID_UIDS: dict[bytes, str] = {}  # UID values as written -> their text, each found valid by _uid_of


def accept(data: bytes, options: Options, expected_study: str | None = None) -> tuple | None:
    """(sop class, sop instance, study, series, modality, transfer syntax) when the instance is provably
    accepted by the full check; None when the full check must decide."""
    try:
        return _accept(data, options, expected_study)
    except Unsure:
        return None
    except MemoryError:
        raise  # as the full check: the worker's address-space limit, the caller's to answer
    except Exception:  # noqa: BLE001 - whatever went wrong here, the full check decides; never a refusal
        return None


def _accept(data: bytes, options: Options, expected_study: str | None) -> tuple:
    if len(data) < 140 or not data.startswith(_PREAMBLE):
        raise Unsure
    meta, end = _meta(data)
    ts = _uid_of(meta.get(0x00020010))
    implicit = ts == IMPLICIT_LE
    if ts not in _EXPLICIT_LE_SYNTAXES and not implicit:
        raise Unsure
    _encoding_matches(data, end, implicit)
    top, _ = _parse(data, end, len(data), 0, False, True, implicit)
    if implicit:
        _resolve_pixel_values(top)

    def value(tag: int) -> bytes | None:
        e = top.get(tag)
        if e is None:
            return None
        if e[2] is None:
            raise Unsure
        return e[2]

    sop_class, sop = _uid_of(value(SOP_CLASS)), _uid_of(value(SOP_INSTANCE))
    study, series = _uid_of(value(STUDY)), _uid_of(value(SERIES))
    modality_raw = value(MODALITY)
    modality = (modality_raw or b"").decode("ascii", "replace").strip("\0 ")[:16]
    if DICOMDIR_CLASS in (sop_class, (meta.get(0x00020002) or b"").decode("ascii", "replace").strip("\0 ")):
        raise Unsure
    if DIRECTORY_RECORDS in top or any(t in top for t in _CONDITION_TAGS):
        raise Unsure
    if expected_study is not None and study != expected_study:
        raise Unsure
    # File meta (check_dataset): the implementation version and the SOP instance it names.
    version = meta.get(0x00020013)
    if version is not None and (s := _plain(version).strip()) and not _IMPLEMENTATION_VERSION.fullmatch(s):
        raise Unsure
    media_sop = meta.get(0x00020003)
    if media_sop is not None and media_sop != value(SOP_INSTANCE):
        raise Unsure
    if PIXEL_DATA not in top:
        if is_image_class(sop_class) or any(t in top for t in _MAYBE_CUT_SHORT):
            raise Unsure  # an image cut short where an element starts? verification.pixels_missing refuses it
    elif ts in _NATIVE:
        _native_pixels(top)
    elif ts in _CODESTREAMS:
        raise Unsure  # JPEG / JPEG-LS / JPEG 2000 frames: the full check looks into their codestreams
    # The options the instance declares (verify.declared_options), within what the trial allows.
    checked = options
    seq = top.get(METHOD_CODES)
    if seq is not None:
        if seq[1] != "SQ":
            raise Unsure
        code_values = set()
        for item in seq[3]:
            found = item.get(CODE_VALUE)
            code_values.add(_plain(found[2]).strip() if found else "")
        if code_values:
            declared, names = _declared(frozenset(code_values))
            if any(not getattr(options, name) for name in names):
                raise Unsure
            checked = declared
    # Identity (verify._check_identity): empty, or this tool's pseudonym; anything else the full check judges.
    for tag in (PATIENT_NAME, PATIENT_ID):
        raw = value(tag)
        if raw is not None:
            text = _plain(raw).strip()
            if text and not PATIENT_PSEUDONYM.fullmatch(text):
                raise Unsure
    removed = value(IDENTITY_REMOVED)
    if removed is None or _plain(removed).strip().upper() != "YES":
        raise Unsure
    burned = value(BURNED_IN)
    if burned is not None and _plain(burned).strip().upper() == "YES":
        raise Unsure
    charset = value(CHARSET)
    if charset is not None and charset.rstrip(b" ") not in _PLAIN_CHARSETS:
        raise Unsure
    walk = _walker(checked, sop_class, implicit)
    walk.dataset(top, (), False)
    # read_dataset's strict check (structure.check) needs no second walk: the parse above is stricter in
    # every rule it has (each element, item and fragment inside its parent and the data, items where items
    # belong and delimited, the data's encoding the transfer syntax's; tests/receiver/test_fast_accept.py
    # runs structure.check on every input the parse takes).
    return sop_class, sop, study, series, modality, ts


def parsed(data: bytes) -> tuple[int, bool] | None:
    """(dataset offset, implicit) when the fast path's parse takes the data, else None: for the tests, which
    hold the parse to structure.check."""
    try:
        if len(data) < 140 or data[128:132] != b"DICM":
            return None
        meta, end = _meta(data)
        ts = _uid_of(meta.get(0x00020010))
        implicit = ts == IMPLICIT_LE
        if ts not in _EXPLICIT_LE_SYNTAXES and not implicit:
            return None
        _encoding_matches(data, end, implicit)
        _parse(data, end, len(data), 0, False, True, implicit)
        return end, implicit
    except Exception:  # noqa: BLE001 - unsure
        return None


def _meta(data: bytes) -> tuple[dict[int, bytes], int]:
    """The file meta's values by tag and its end, in one walk of the elements structure.meta_end walks (those
    of group 0002 after the prefix): Unsure where any is not of a known VR (or is a sequence), not in
    META_ALLOWED, repeated, or past the data; so wherever this returns, its end is meta_end's."""
    meta: dict[int, bytes] = {}
    pos = 132
    n = len(data)
    head = _HEAD.unpack_from
    while pos + 8 <= n:
        group, elem, vr, length = head(data, pos)
        if group != 0x0002:
            break
        if vr not in _KNOWN_VRS or vr == b"SQ":
            raise Unsure
        if vr in _LONG_VRS:
            if length != 0:
                raise Unsure
            (length,) = _U32.unpack_from(data, pos + 8)
            pos += 12
        else:
            pos += 8
        tag = group << 16 | elem
        if tag in meta or tag not in META_ALLOWED or pos + length > n:
            raise Unsure
        meta[tag] = data[pos:pos + length]
        pos += length
    return meta, pos


def _encoding_matches(data: bytes, end: int, implicit: bool) -> None:
    """Unsure unless the data's first element reads in the encoding its transfer syntax says (else pydicom
    and structure.check would switch)."""
    vr_bytes = data[end + 4:end + 6]
    looks_explicit = len(vr_bytes) == 2 and 0x40 < vr_bytes[0] < 0x5B and 0x40 < vr_bytes[1] < 0x5B  # as pydicom
    if looks_explicit == implicit or not (implicit or vr_bytes.isalpha() and vr_bytes.isupper()):
        raise Unsure


@lru_cache(maxsize=64)
def _declared(code_values: frozenset) -> tuple[Options, tuple[str, ...]]:
    """The options that these method codes declare, and their names (a series declares the same ones in every
    instance: built once, and its walker then found by the same Options object)."""
    declared = Options.from_names(_OPTION_BY_CODE[c] for c in code_values if c in _OPTION_BY_CODE)
    return declared, declared.names


@lru_cache(maxsize=64)
def _walker(options: Options, sop_class: str, implicit: bool) -> _Walk:
    return _Walk(options, sop_class, implicit)


# Pixel value attributes whose implicit VR pydicom reads as US or SS by Pixel Representation
# (filewriter's correct_ambiguous_vr_element); the LUT descriptors, handled otherwise there, are left out.
_PIXEL_VALUE_TAGS = frozenset({0x00280104, 0x00280105, 0x00280106, 0x00280107, 0x00280108, 0x00280109,
                               0x00280110, 0x00280111, 0x00280120, 0x00280121})
PIXEL_REPRESENTATION = 0x00280103


def _resolve_pixel_values(elements: dict) -> None:
    """Top-level implicit VR elements of _PIXEL_VALUE_TAGS as pydicom converts them, in place: US when the
    top-level Pixel Representation is 0, SS when 1; a value of whole numbers. Anything else: Unsure."""
    ambiguous = [e for e in elements.values() if e[1] == "US or SS"]
    if not ambiguous:
        return
    rep = elements.get(PIXEL_REPRESENTATION)
    if rep is None or rep[1] != "US" or rep[2] is None or len(rep[2]) != 2:
        raise Unsure
    pixel_rep = struct.unpack("<H", rep[2])[0]
    if pixel_rep not in (0, 1):
        raise Unsure
    for e in ambiguous:
        if e[2] is None or not e[2] or len(e[2]) % 2:
            raise Unsure
        elements[e[0]] = (e[0], "US" if pixel_rep == 0 else "SS", e[2], None)


_NATIVE_TAGS = (0x00280010, 0x00280011, 0x00280100, 0x00280002, 0x00280008, 0x00280004)
MAX_EXPECTED = 256
_expected_lengths: dict = {}  # the six elements _expected_length reads (each None or as parsed) -> its answer


def _native_pixels(top: dict) -> None:
    """instance._check_native_pixels on the raw values: Rows, Columns, Bits Allocated, Samples per Pixel,
    Number of Frames and Photometric Interpretation plain, and Pixel Data at least as long as they say. The
    length they say is a pure function of those six elements: kept (bounded), a series repeats them."""
    key = tuple(map(top.get, _NATIVE_TAGS))
    try:
        expected = _expected_lengths.get(key)
    except TypeError:  # one of them a sequence (its items unhashable): worked out, not kept
        key, expected = None, None
    if expected is None:
        expected = _expected_length(top)
        if key is not None:
            if len(_expected_lengths) >= MAX_EXPECTED:
                _expected_lengths.clear()
            _expected_lengths[key] = expected
    pixels = top[PIXEL_DATA]
    if pixels[2] is None:
        raise Unsure
    if len(pixels[2]) < expected:
        raise Unsure


def _expected_length(top: dict) -> int:
    """The length of the native Pixel Data that Rows, Columns, Bits Allocated, Samples per Pixel, Number of
    Frames and Photometric Interpretation say (each plain); else Unsure."""
    def us(tag: int, default: int | None = None) -> int:
        e = top.get(tag)
        if e is None:
            if default is None:
                raise Unsure
            return default
        if e[1] != "US" or e[2] is None or len(e[2]) != 2:
            raise Unsure
        return struct.unpack("<H", e[2])[0]

    rows, columns, bits = us(0x00280010), us(0x00280011), us(0x00280100)
    samples = us(0x00280002, 1) or 1
    frames_e = top.get(0x00280008)
    frames = 1
    if frames_e is not None:
        text = _plain(frames_e[2] or b"").strip()
        if frames_e[1] != "IS" or not text.isdigit():
            raise Unsure
        frames = int(text) or 1
    photometric_e = top.get(0x00280004)
    photometric = _plain(photometric_e[2] or b"").strip() if photometric_e is not None else ""
    return structure.expected_native_length(rows, columns, samples, bits, frames, photometric)


class _Walk:
    """verify._Checker.walk and conform's value pass over parsed elements, raising Unsure wherever either
    could find something (or would convert a value to look). What depends only on the tag, its VR, where it
    is and whether it is in a cleaned sequence (the profile's action under the IOD, the dictionary's VR...)
    is worked out once per walker (one per options and SOP class) and kept; values are judged every time."""

    def __init__(self, options: Options, sop_class: str, implicit: bool) -> None:
        self.options = options
        self.implicit = implicit
        self.profile = profile_for(options)
        self.iod = IodTypes(sop_class)
        self.unmet = self.iod.unmet(_Absent())
        self.safe = _private_filter(options).safe
        self.rules: dict = {}
        # (path, cleaned) -> the (tag, VR, value bytes) that passed their rule there (a pure function of the rule's
        # key and the bytes): one set lookup an element, no key built for the elements whose bytes repeat
        self.passed: dict = {}
        self.generation = _passed_state[1]

    def rule(self, tag: int, vr: str, path: tuple[str, ...], cleaned: bool) -> tuple:
        """(unsure, textual, check_value, xz, free_cleaned, value_pass, known) of a standard non-sequence
        element; or (unsure, action) of a sequence. `unsure`: whatever its value, the full check decides."""
        known = dictionary_vr(tag)
        resolved = self.profile.for_standard(tag, vr)
        action = resolved.action if resolved else None
        if action and ("/" in action or action in ("X", "Z") and len(path) <= 1):
            action = self.iod.decide(action, path, keyword(tag), self.unmet)
        group = tag >> 16
        unsure = (tag & 0xFFFF == 0  # a group length: converted by the walk
                  or tag == PIXEL_DATA and (self.profile.for_standard(tag, "OB") is not None
                                            or self.profile.for_standard(tag, "OW") is not None)
                  or resolved is None and known is None  # unknown to the data dictionary
                  or 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF)  # overlays and curves
        if vr == "SQ":
            return unsure, action
        unsure = unsure or vr not in _LAZY_VRS or declared_as_other(vr, known)
        subject = not path and (tag in (PATIENT_NAME, PATIENT_ID) or tag in TRIAL_TAGS)
        free_text = (vr in TEXT_VRS or vr == "PN") and tag not in NOT_FREE_TEXT  # no code item here
        xz = action if action in ("X", "Z") and not subject else None
        if xz == "Z" and vr not in _Z_TEXT:
            xz = "X"  # compared as text only where the converted value prints as written
        as_bytes = vr in _AS_BYTES_VRS
        return (unsure, vr in _TEXTUAL_VRS, not as_bytes, xz, free_text and (action == "C" or cleaned),
                as_bytes and not (tag == PIXEL_DATA and not path), _AMBIGUOUS.get(known, known))

    def dataset(self, elements: dict, path: tuple[str, ...], cleaned: bool) -> None:
        if path:
            e = elements.get(CHARSET)
            if e is not None and e[2] is not None and e[2].rstrip(b" ") not in _PLAIN_CHARSETS:
                raise Unsure
        if cleaned and any(t in elements for t in _CODE_ITEM_TAGS):
            raise Unsure  # a code item of a cleaned sequence: its code is checked against the standard's
        creators: dict | None = None
        rules = self.rules
        if len(rules) > MAX_RULES:
            rules.clear()  # bounded, whatever tags hostile inputs bring
            self.passed.clear()
        if self.generation != _passed_state[1]:
            self.passed.clear()  # another walker reached the bound
            self.generation = _passed_state[1]
        passed = self.passed.get((path, cleaned), _NOTHING)
        check, valid, plain = _values.check, _values.VALID, _PLAIN_ASCII.fullmatch
        for tag, vr, value, items in elements.values():
            if tag & 0x10000:  # an odd group: private
                if creators is None:
                    creators = self.creators(elements)
                self.private(tag, vr, value, creators)
                continue
            if tag != PIXEL_DATA and (tag, vr, value) in passed:  # (top-level Pixel Data: a view, never hashed)
                continue  # these bytes passed this element's rule before: the same verdict
            key = (tag, vr, path, cleaned)
            r = rules.get(key)
            if r is None:
                r = rules[key] = self.rule(tag, vr, path, cleaned)
            if r[0]:
                raise Unsure
            if vr == "SQ":
                if r[1] in ("X", "Z") and items:
                    raise Unsure
                sub_cleaned = cleaned or r[1] in ("C", "D")
                sub = (*path, keyword(tag))
                for item in items:
                    self.dataset(item, sub, sub_cleaned)
                continue
            _, textual, check_value, xz, free_cleaned, value_pass, known = r
            if value is None:  # encapsulated Pixel Data (the parser allows no other): only its action matters
                if not (tag == PIXEL_DATA and not path) or xz is not None or free_cleaned:
                    raise Unsure
                continue
            if check_value:  # the walk's lazy rule: valid as read, plain ASCII text
                if textual and not plain(value[:-1] if vr == "UI" and value.endswith(b"\0") else value):
                    raise Unsure
                if check(vr, value, tag=tag) != valid:
                    raise Unsure
            if textual and not value:  # empty text: nothing to find
                if value.__class__ is bytes:  # kept as below: a series' empty attributes are judged once
                    self.keep(key, value)
                continue
            if xz is not None and (xz == "X" or b"\\" in value or
                                   value.decode("ascii").strip() not in ALLOWED_DUMMIES):
                raise Unsure
            if free_cleaned:
                raise Unsure
            if value_pass:
                self.value_pass(tag, vr, value, known)
            if value.__class__ is bytes and len(value) <= MAX_PASSED_LEN:
                self.keep(key, value)

    def keep(self, key: tuple, value: bytes) -> None:
        """Remember that `value` passed the rule of `key` (every check the walk makes of such a value ran on it,
        none raised: for empty text, its validity check only)."""
        state = _passed_state
        if state[0] >= MAX_PASSED:
            state[0] = 0
            state[1] += 1  # every walker starts again (each clears its own when it next walks)
            self.passed.clear()
            self.generation = state[1]
        tag, vr, path, cleaned = key
        seen = self.passed.get((path, cleaned))
        if seen is None:
            seen = self.passed[(path, cleaned)] = set()
        seen.add((tag, vr, value))
        state[0] += 1

    @staticmethod
    def creators(elements: dict) -> dict:
        creators = {}
        for tag, _vr, value, _items in elements.values():
            if (tag >> 16) & 1 and 0x0010 <= (tag & 0xFFFF) <= 0x00FF:
                if value is None:
                    raise Unsure
                creators[(tag >> 16, tag & 0xFFFF)] = value.decode("latin-1").strip("\0 ")
        return creators

    def value_pass(self, tag: int, vr: str, value: bytes | None, known: str | None) -> None:
        """conform._Pass.element of a value as read, for the elements the walk did not judge valid."""
        if value is None:
            raise Unsure
        if vr not in _values.BINARY_SIZE and (b"\\" in value or not _PLAIN_ASCII.fullmatch(value)):
            raise Unsure  # text whose verdict could depend on the character set
        verdict = _values.check(vr, value, tag=tag, encodings=None, little=True, implicit=self.implicit)
        if verdict != _values.VALID or (known and vr != known and known in _TEXTUAL_KNOWN):
            raise Unsure

    def private(self, tag: int, vr: str, value: bytes | None, creators: dict) -> None:
        elem = tag & 0xFFFF
        if vr == "SQ" or value is None:
            raise Unsure
        if not 0x0010 <= elem <= 0x00FF:
            if not (self.options.retain_safe_private and elem >= 0x1000):
                raise Unsure
            creator = creators.get((tag >> 16, elem >> 8))
            if not (creator and (tag >> 16, elem & 0xFF, creator) in self.safe):
                raise Unsure
        self.value_pass(tag, vr, value, None)


# Z values the fast path compares as text: VRs whose converted value prints as written (not DS/IS numbers).
_Z_TEXT = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "SH", "LO", "ST", "LT", "UT", "UC", "PN"})
