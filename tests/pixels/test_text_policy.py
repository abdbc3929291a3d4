"""Which words are masked: PHI terms (OCR-tolerant), PHI-shaped patterns, technical vocabulary, modes."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from py_deid.hosts.services import Word
from py_deid.phi import PhiTerms
from py_deid.pixels import geometry
from py_deid.pixels.phi_text import PhiMatcher, clock_hits, pattern_hits, within_edits
from py_deid.pixels.text_policy import Vocabulary, decide, default_vocabulary, mask_boxes


def _terms(**attrs) -> PhiTerms:
    ds = Dataset()
    for k, v in attrs.items():
        setattr(ds, k, v)
    return PhiTerms.from_dataset(ds)


@pytest.fixture(scope="module")
def terms():
    return _terms(PatientName="DOE^JOHN", PatientID="MRN0012345", PatientBirthDate="19510829",
                  StudyDate="20170302", InstitutionName="CCHS CLEVELAND CLINIC", AccessionNumber="120907058",
                  ReferringPhysicianName="KILLEEN^THOMAS")


def line(text: str, y: int = 10, x: int = 10, h: int = 12, conf: float = 90.0) -> list[Word]:
    """Words as OCR would box them on one line (8 px a character, one space = 8 px)."""
    out = []
    for token in text.split(" "):
        if token:
            out.append(Word(token, x, y, 8 * len(token), h, conf))
        x += 8 * (len(token) + 1)
    return out


def masked(words, mode, matcher, **kw) -> list[str]:
    return [words[d.index].text for d in decide(words, mode, matcher, **kw) if d.mask]


@pytest.mark.parametrize("ocr_text", [
    "DOE JOHN", 'DOE" JOHN', "DOE^JOHN", "D0E J0HN", "DOEJOHN", "JOHN DOE", "J0HN,D0E", "D0E^J0HN",
    "KILLEEN", "KlLLEEN", "KILEEN", "Thomas", "MRN0012345", "MRNOO12345", "MRN 0012345",
    "CLEVELAN..", "CLEVELAND", "CLEVELAN\u2026", "120907058", "12O9O7O58",
])
def test_terms_match_with_ocr_errors(terms, ocr_text):
    words = line(ocr_text)
    assert masked(words, "phi", PhiMatcher(terms)) == [w.text for w in words]


@pytest.mark.parametrize("ocr_text", [
    "08/29/1951", "8/29/1951", "29.08.1951", "29 AUG 1951", "29-AUG-51", "AUG 29, 1951", "19510829",
    "03/02/2017", "2017-03-02", "02 MAR 17", "O3/02/2O17",
])
def test_dates_match_in_the_forms_scanners_print(terms, ocr_text):
    words = line(ocr_text)
    assert masked(words, "phi", PhiMatcher(terms)) == [w.text for w in words]


@pytest.mark.parametrize("ocr_text", ["GAIN", "Breast", "TIS0.4", "1.06", "cm", "L12-5", "Gen", "JOE", "DOES"])
def test_unrelated_words_do_not_match(terms, ocr_text):
    assert not PhiMatcher(terms).matches(ocr_text)


@pytest.mark.parametrize("text,dates,times,other", [
    ("Fri Apr 30 06:27:24 1993", 5, 0, 0),
    ("30 JAN 94 11:24:58", 3, 1, 0),
    ("24\u2014-MAY-02", 1, 0, 0),
    ("DOB: 08/29/1951 M", 1, 0, 2),
    ("8:48:26 AM 4/14/2020", 1, 2, 0),
    ("11-05-25-142825", 1, 0, 1),
    ("ID: 0001128201", 0, 0, 1),
    ("Ex: 2411 Se: 3", 0, 0, 1),
    ("00079241539", 0, 0, 1),
    ("Dr Smith", 0, 0, 2),
    ("7-OCT-2016 01:07:45 PM", 1, 2, 0),
    ("3/3/4 1.06 cm 127/128 GAIN 82 DR 60", 0, 0, 0),
    ("09/10/2021 1026", 1, 1, 0),  # a stamp's time with the colon lost
    ("38 JAM 94", 3, 0, 0),  # "30 JAN 94" misread: digits and month one letter off
    ("66Y", 0, 0, 1), ("Age: 45", 0, 0, 1), ("045Y F", 0, 0, 1), ("45 yrs", 0, 0, 2),
    ("Cleveland OH 44195", 0, 0, 2), ("44195-5108", 0, 0, 1), ("London SW1A 1AA", 0, 0, 2),
    ("a.doe@example.org", 0, 0, 1), ("(216) 555-0142", 0, 0, 2),
    ("Depth 16cm G 55 TIS 0.4 W 400 L 40 C5-1 6C1 HD", 0, 0, 0),  # settings stay
    ("Nov 5,", 2, 0, 0), ("Jun 30th, 19S4", 3, 0, 0),  # month and day are a date, year or not
    ("Nov 5, 198:", 3, 0, 0),  # a year at the image's edge, its last digit read as a colon
    ("Birth: Nov 5, 198:", 3, 0, 3),  # ... is a value of the label, not the next label
    ("Gain 5 DR 60 FR 28Hz", 0, 0, 0), ("mAs 63", 0, 0, 0), ("mAs 12", 0, 0, 0),  # not months
])
def test_phi_shaped_patterns(text, dates, times, other):
    d, t, o = pattern_hits(text.split())
    assert (len(d), len(t), len(o)) == (dates, times, other)


def test_a_time_of_day_is_phi_alone_or_next_to_a_date():
    """Held-out draw 20290715: an RGB cine's "01-NOV-2017 11:46:49 AM" over anatomy; on four of six frames no
    reading saw the date and "11:46:49" (or "1:46:51", its first digit lost) was read at confidence 96-97 and
    kept in phi mode as a time without a date, and strict mode masked it as plain text, from which the rest
    of its line is not followed. The issue's phi mode takes every time as PHI; in both modes it is now PHI. Not
    a clock: out of range, a colon in a number, a label and value made digits."""
    matcher = PhiMatcher(None)
    for text in ["+2:09:04", "11:46:49", "1:46:51 AM", "[7.11:46:53", "9:05", "23:59"]:
        for mode in ("phi", "strict"):
            assert text.split()[0] in masked(line(text, y=10), mode, matcher), (text, mode)
    assert clock_hits(["[7.11:46:53"]) == {0} and clock_hits(["Depth", "1620:43"]) == set()
    for text in ["25:10", "12:75", "1620:43", "G:55", "1:2", "x1.5", "127/128", "4.0kHz"]:
        assert masked(line(text, y=10), "phi", matcher) == [], text
    with_date = line("5/25/2011", y=10, x=600) + line("2:56:22 PM", y=26, x=600)
    assert masked(with_date, "phi", matcher) == ["5/25/2011", "2:56:22", "PM"]


def test_modes(terms):
    matcher = PhiMatcher(terms)
    words = (line("DOE JOHN MRN0012345") + line("GAIN 82 TIS0.4 MI=0.8", y=40)
             + line("Sports Medicine", y=70) + line("4.0cm 60% L12-5 36Hz", y=100))
    assert masked(words, "phi", matcher) == ["DOE", "JOHN", "MRN0012345"]
    assert masked(words, "strict", matcher) == ["DOE", "JOHN", "MRN0012345", "Sports", "Medicine"]
    assert masked(words, "all", matcher) == [w.text for w in words]


def test_strict_without_terms_masks_names_keeps_measurements():
    words = line("ZZZDOWNTIME, MARY") + line("16cm 2D-100% H4.00 MHz 20dB/DR60", y=40)
    assert masked(words, "strict", PhiMatcher(None)) == ["ZZZDOWNTIME,", "MARY"]


def test_numbers_kept_only_when_short_and_not_a_date():
    words = line("GAIN 82") + line("30 JAN 94", y=40) + line("2411", y=70) + line("151832", y=100)
    assert masked(words, "strict", PhiMatcher(None)) == ["30", "JAN", "94", "2411", "151832"]
    assert masked(words, "phi", PhiMatcher(None)) == ["30", "JAN", "94", "151832"]


def test_noise_is_not_masked_but_phi_always_is(terms):
    speckle = [Word("—", 10, 10, 30, 4, 80), Word("a", 50, 50, 8, 10, 20), Word("Sa", 80, 80, 16, 10, 0)]
    weak_name = [Word("D0E", 200, 200, 30, 12, 10)]
    d = decide(speckle + weak_name, "all", PhiMatcher(terms))
    assert [x.reason for x in d] == ["noise", "noise", "noise", "phi-term"]
    # inside an ultrasound clinical region short weak reads are speckle, outside they are text
    w = [Word("Lpe.", 100, 100, 20, 10, 20), Word("GAIN", 100, 114, 32, 10, 90)]
    assert decide(w, "strict", PhiMatcher(None), clinical=[(50, 50, 300, 300)])[0].reason == "noise"
    assert decide(w, "strict", PhiMatcher(None))[0].mask
    # a weak read with no confident text around it is speckle, even outside a known region
    assert decide(w[:1], "strict", PhiMatcher(None))[0].reason == "noise"


def test_mask_boxes_join_a_phrase_and_add_a_margin(terms):
    words = line("DOE JOHN GAIN 82", y=20, x=100)
    d = decide(words, "phi", PhiMatcher(terms))
    boxes = mask_boxes(words, d, 400, 100)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert x < 100 and y < 20 and x + w > words[1].right and y + h > words[1].bottom
    assert x + w < words[2].left  # GAIN stays
    # clipped to the frame
    edge = [Word("DOE", 0, 0, 24, 12, 90)]
    assert mask_boxes(edge, decide(edge, "phi", PhiMatcher(terms)), 400, 100)[0][:2] == (0, 0)


def test_a_garbage_reading_two_lines_tall_does_not_join_the_lines_into_one_block():
    """Tesseract boxed the end of a line with the speckle under it ("eh", 43 px tall, beside a 19 px date):
    its mask keeps to the rows of the readings it holds, and the words of two lines are not joined into one
    block across the image (once 458 x 87 px of an ultrasound sector)."""
    from py_deid.pixels.text_policy import Decision

    date = Word("19480817", 335, 34, 110, 19, 95)
    lower = Word("IMAGI", 152, 62, 68, 19, 92)
    eh = Word("eh", 336, 35, 112, 43, 8)
    words = [Word("PID", 7, 34, 40, 19, 95), date, eh, lower]
    d = [Decision(i, True, "text") for i in range(len(words))]
    sector = [(0, 52, 640, 400)]  # the speckle under the lines is image content
    boxes = mask_boxes(words, d, 640, 480, content=sector)
    assert all(b[3] <= 19 + 12 for b in boxes), boxes  # no block two lines tall
    assert any(geometry.contains(b, geometry.word_box(date)) for b in boxes)
    assert any(geometry.contains(b, geometry.word_box(lower)) for b in boxes)
    # a tall reading beside a word of its line is cut to that line's rows ("Rapp" after "IMAGI")
    rapp = Word("Rapp", 226, 61, 96, 39, 2)
    boxes = mask_boxes([lower, rapp], [Decision(0, True, "text"), Decision(1, True, "text")], 640, 480,
                       content=sector)
    assert all(b[3] <= 19 + 12 for b in boxes), boxes
    assert any(b[0] <= 226 and geometry.right(b) >= 322 for b in boxes)
    # on a plain ground the shorter readings are slivers of the line (a region's edge cut it): the whole
    # reading keeps its rows
    whole = Word("8505651678", 46, 29, 99, 13, 95)
    sliver = Word("OCNAECE1", 46, 29, 99, 7, 30)
    boxes = mask_boxes([whole], [Decision(0, True, "phi-term")], 640, 480, around=[sliver])
    assert any(geometry.contains(b, geometry.word_box(whole)) for b in boxes)
    # nor over content, when what it holds is a garbage sliver ("J" at confidence 0 in "RIVERSIDE")
    riverside = Word("RIVERSIDE", 6, 36, 71, 10, 96)
    boxes = mask_boxes([riverside], [Decision(0, True, "phi-term")], 640, 480,
                       around=[Word("J", 6, 36, 17, 3, 0)], content=[(0, 38, 640, 400)])
    assert any(geometry.contains(b, geometry.word_box(riverside)) for b in boxes)


def test_vocabulary_file_is_readable_and_loaded():
    v = default_vocabulary()
    assert {"cm", "mhz", "gain", "tis", "mi"} <= v.words
    for t in ["TIS0.0", "MI=0.8", "20dB/DR60", "L12-5", "4.0cm-", "AO=100%", "C5-1", "127/128", "x3", "3.5/2.7-L"]:
        assert v.is_technical(t), t
    for t in ["DOE", "00079241539", "2411", "11:24:58", "CLEVELAND", "Healthcare"]:
        assert not v.is_technical(t), t
    custom = Vocabulary.from_toml('[words]\nx = ["Foo"]\n[numbers]\nmax_number_digits = 1\n')
    assert custom.is_technical("foo") and custom.is_technical("7") and not custom.is_technical("77")


def test_edit_distance():
    assert within_edits("WESTWAY", "XWESTHAY", 2)
    assert not within_edits("WESTWAY", "EASTBAY", 2)
    assert within_edits("KILLEEN", "KILEEN", 1)


# -- a closer look at doubtful words (strict mode) ----------------------------------------------------------

def test_doubtful_words_are_short_settings_lookalikes_outside_image_content():
    from py_deid.pixels.text_policy import doubtful
    vocab = default_vocabulary()
    (gain,) = line("GAINB2")
    assert doubtful(gain, vocab) and doubtful(line("AD=100%")[0], vocab) and doubtful(line("Gnss")[0], vocab)
    assert not doubtful(line("KOWALSKI")[0], vocab)  # no digit, no technical label at its start
    assert not doubtful(line("40713052")[0], vocab)  # more digits than a setting has: a PHI-shaped number
    assert not doubtful(gain, vocab, [(0, 0, 200, 200)])  # inside image content: speckle, not a setting


def test_a_closer_look_keeps_only_technical_text(terms):
    from py_deid.pixels.text_policy import confirms_technical
    matcher, vocab = PhiMatcher(terms), default_vocabulary()
    assert confirms_technical(line("GAINB2"), matcher, vocab)  # "GAIN 82", its 8 read as B
    assert confirms_technical(line("AO=100%"), matcher, vocab)
    assert not confirms_technical(line("MISS"), matcher, vocab)  # letters alone never become a setting
    assert not confirms_technical(line("DOE"), matcher, vocab)  # the patient's name
    assert not confirms_technical(line("MRN0012345"), matcher, vocab)  # the patient's ID
    assert not confirms_technical(line("GAIN KOWALSKI"), matcher, vocab)  # a setting next to plain text
    assert not confirms_technical([], matcher, vocab)  # nothing read: stays masked


def test_strict_keeps_window_settings_of_wide_images_but_not_ids_or_years():
    words = line("W 4096 L 2048") + line("WL: 1200", y=40) + line("ID 4096", y=70) + line("W 1953-02-24", y=100)
    assert masked(words, "strict", PhiMatcher(None)) == ["ID", "4096", "1953-02-24"]
    assert masked(line("CRA 20 LAO 30"), "strict", PhiMatcher(None)) == []


def _texts_masked(readings, decisions) -> list[str]:
    return [r[d.index].text for r, ds in zip(readings, decisions) for d in ds if d.mask]


def test_a_sliver_of_a_line_another_reading_read_whole_is_that_word(terms):
    """A region read with its edge across a line boxes the line's lower half as a word of its own ("nV" where
    another reading saw "kV" whole, confidently): that sliver is the technical word misread, not plain text.
    Not when the whole reading is weak, not when the sliver is as tall as the word (a different reading of
    the same ink), not when the sliver is PHI, and never in another reading's favour when only one exists."""
    from py_deid.pixels.text_policy import decide_readings

    matcher = PhiMatcher(terms)
    whole = [Word("kV", 8, 578, 23, 16, 93), Word("28", 43, 578, 23, 16, 97)]
    sliver = [Word("nV", 8, 586, 21, 8, 70), Word("£0", 43, 586, 23, 8, 23)]
    assert _texts_masked([whole, sliver], decide_readings([whole, sliver], "strict", matcher)) == []
    assert _texts_masked([sliver], decide_readings([sliver], "strict", matcher)) == ["nV", "£0"]
    weak = [Word("kV", 8, 578, 23, 16, 40), Word("28", 43, 578, 23, 16, 40)]
    assert _texts_masked([weak, sliver], decide_readings([weak, sliver], "strict", matcher)) == ["nV", "£0"]
    tall = [Word("ZQ", 8, 578, 21, 15, 70)]
    assert _texts_masked([whole, tall], decide_readings([whole, tall], "strict", matcher)) == ["ZQ"]
    phi = [Word("DOE", 8, 586, 21, 8, 70)]
    assert _texts_masked([whole, phi], decide_readings([whole, phi], "strict", matcher)) == ["DOE"]


def test_a_window_setting_run_together_is_kept_when_another_reading_split_it(terms):
    """"L1024" in one reading, "L" "1024" (a window level) in another: the run-together word has more digits
    than a plain number may, but the split reading judged each part, digits included. An identifier stays
    masked: no reading splits it into technical words."""
    from py_deid.pixels.text_policy import decide_readings

    matcher = PhiMatcher(terms)
    joined = [Word("L1024", 6, 451, 35, 10, 90)]
    split = [Word("L", 6, 451, 6, 10, 93), Word("1024", 15, 451, 26, 10, 96)]
    assert _texts_masked([joined, split], decide_readings([joined, split], "strict", matcher)) == []
    assert _texts_masked([joined], decide_readings([joined], "strict", matcher)) == ["L1024"]
    ident = [Word("A1024567", 6, 451, 60, 10, 90)]
    parts = [Word("A", 6, 451, 6, 10, 93), Word("1024567", 15, 451, 50, 10, 96)]
    assert "A1024567" in _texts_masked([ident, parts], decide_readings([ident, parts], "strict", matcher))


@pytest.mark.parametrize("ocr_text", ["1N/NR/1ART", "Q277QRR37", "I0/O8/I9G7", "2O2I-OI-I2", "ABC12345"])
def test_a_weak_read_with_the_shape_of_a_date_or_an_identifier_is_phi(ocr_text):
    """Digits read as letters the folding does not know (they depend on the font): the shape is PHI."""
    words = line(ocr_text, conf=16)
    assert masked(words, "phi", PhiMatcher(_terms())) == [ocr_text]


@pytest.mark.parametrize("ocr_text", ["L12-5", "TIS0.4", "2.5MHz", "PRF2.5kHz", "C5-1", "3.5/4.2", "W4096", "AP/LR"])
def test_settings_do_not_have_those_shapes(ocr_text):
    words = line(ocr_text, conf=60)  # a read confident enough not to be taken for noise
    assert masked(words, "phi", PhiMatcher(_terms())) == []


def test_the_unread_rest_of_a_place_beside_the_words_read_is_masked():
    """"LAKEVIEW MEDICAL" read and masked as the institution, "CENTER" after it unread: the mask goes on to where
    its letters must be, on the same line; so does the end of a word read in part ("IMAGI" of "IMAGING")."""
    from py_deid.pixels.text_policy import rest_of_terms

    matcher = PhiMatcher(_terms(InstitutionName="LAKEVIEW MEDICAL CENTER", InstitutionAddress="NORTHGATE IMAGING"))
    words = line("LAKEVIEW MEDICAL", y=60, x=10)  # 8 px a letter
    boxes = rest_of_terms(words, decide(words, "phi", matcher), matcher, 640, 480)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    # "CENTER" starts after MEDICAL (plus a space) and is six letters wide; the box stays on the line
    assert x <= words[1].right and x + w >= words[1].right + 8 * 7 and y <= 60 and y + h >= 72 and h <= 16
    part = line("NORTHGATE IMAGI", y=100, x=10)
    (bx, by, bw, bh), = rest_of_terms(part, decide(part, "phi", matcher), matcher, 640, 480)
    assert bx <= part[1].right and bx + bw >= part[1].right + 8 * 2
    # nothing when the whole name is read, nor for words that are not the instance's places
    whole = line("LAKEVIEW MEDICAL CENTER")
    assert rest_of_terms(whole, decide(whole, "phi", matcher), matcher, 640, 480) == []
    other = line("RIVERSIDE MEDICAL")  # not before a word read clearly as another name's
    assert all(b[0] >= other[1].left - 2 for b in rest_of_terms(other, decide(other, "phi", matcher), matcher,
                                                                 640, 480))
    other = line("RIVERSIDE MEDICAL", y=10, x=10) + line("CLINIC", y=10, x=10 + 8 * 18)
    assert rest_of_terms(other, decide(other, "phi", matcher), matcher, 640, 480) == []
    # a word before a name's last says where the rest is, on both sides ("ST" read as "51", HOSPITAL unread)
    saint = PhiMatcher(_terms(InstitutionName="ST MARY HOSPITAL"))
    mary = [Word("51", 6, 38, 11, 8, 85)] + line("MARY", y=37, x=25, h=9)
    boxes = rest_of_terms(mary, decide(mary, "phi", saint), saint, 640, 480)
    assert any(b[0] <= 7 and geometry.right(b) >= 20 for b in boxes)  # over "ST"
    assert any(b[0] <= mary[1].right + 8 and geometry.right(b) >= mary[1].right + 8 * 9 for b in boxes)


def test_the_rest_of_a_place_stays_on_the_rows_of_its_line():
    """A word of the name read in a box far taller than the line (Tesseract took in the speckle under it): the
    rest goes on the line's rows, not that box's (a 61 px block over the tissue of a 6-frame cine)."""
    from py_deid.pixels.text_policy import rest_of_terms

    matcher = PhiMatcher(_terms(InstitutionName="LAKEVIEW MEDICAL CENTER"))
    words = line("LAKEVIEW", y=60, x=10) + [Word("MEDICAL", 82, 60, 56, 40, 90)] + line("GAIN 82 DR 60", y=200)
    boxes = rest_of_terms(words, decide(words, "phi", matcher), matcher, 640, 480)
    assert any(geometry.right(b) >= 138 + 8 * 6 for b in boxes)  # "CENTER" after it
    assert all(b[1] <= 60 and geometry.bottom(b) >= 72 and b[3] <= 16 for b in boxes)


def test_beside_masked_shares_a_row_not_half_the_height():
    """Unread ink on a screened image is masked only beside masked text on its line; the masked read may be a
    sliver of that line (5 px of 7 px type), so one shared row is enough, within three text heights across."""
    from py_deid.pixels.text_policy import Decision, beside_masked

    sliver = [Word("ISSA", 70, 30, 16, 5, 50)]
    assert beside_masked((7, 33, 58, 7), [sliver], [[Decision(0, True, "text")]])
    assert not beside_masked((7, 33, 58, 7), [sliver], [[Decision(0, False, "technical")]])
    assert not beside_masked((7, 36, 58, 7), [sliver], [[Decision(0, True, "text")]])  # the next line down
    assert not beside_masked((200, 33, 58, 7), [sliver], [[Decision(0, True, "text")]])  # far across


@pytest.mark.parametrize("mode", ["strict", "phi"])
def test_a_phone_number_read_in_two_regions_is_masked_whole(mode):
    """One region's reading has the area code alone ("(370)", 40 px tall with the speckle above it), another's
    the rest of the number: read together they are a phone number, and the area code is masked too."""
    from py_deid.pixels.text_policy import decide_readings

    area = [Word("(370)", 288, 406, 64, 40, 96)]
    rest = [Word("(37O)", 289, 425, 63, 21, 20), Word("555-8318", 371, 425, 113, 18, 97)]
    matcher = PhiMatcher(None)
    decisions = decide_readings([area, rest], mode, matcher)
    assert decisions[0][0].mask and decisions[1][1].mask
    # a clock read in one region, its date in another
    clock = [Word("14:03:45", 543, 7, 87, 16, 96)]
    date = [Word("2021-03-02", 420, 7, 114, 16, 96)]
    assert decide_readings([clock, date], mode, matcher)[0][0].mask
    # a number in parentheses with no phone beside it stays (a measurement)
    assert not decide_readings([area, [Word("GAIN", 600, 425, 40, 18, 97)]], mode, matcher)[0][0].mask


def test_a_phone_number_read_in_part_is_a_pattern():
    assert pattern_hits(["(370)", "555-"])[2] == {0, 1}
    assert pattern_hits(["(3.5)", "120"])[2] == set()


def test_masked_words_are_joined_only_across_ink_between_them():
    """A name and a date masked on one line: the empty space between the words is left as it was (masking it
    hides nothing), while a glyph no reading boxed between two words is masked with them."""
    from PIL import Image, ImageDraw, ImageFont

    from py_deid.hosts.services import GrayImage
    from py_deid.pixels.glyphs import Glyphs
    from py_deid.pixels.text_policy import Decision

    font = ImageFont.load_default(size=16)
    im = Image.new("L", (400, 60), 0)
    draw = ImageDraw.Draw(im)
    boxes = []
    x = 10
    for text in ("SMITH", "J", "19530425"):
        b = draw.textbbox((x, 20), text, font=font)
        draw.text((x, 20), text, fill=230, font=font)
        boxes.append((b[0], b[1], b[2] - b[0], b[3] - b[1]))
        x = b[2] + 4  # a narrow space
    snap = Glyphs(GrayImage(im.width, im.height, im.tobytes())).snap_clean
    name, initial, date = (Word(t, *b, 95) for t, b in zip(("SMITH", "J", "19530425"), boxes))
    # OCR read the name and the date, not the initial between them: one mask over all three
    joined = mask_boxes([name, date], [Decision(0, True, "phi"), Decision(1, True, "phi")], 400, 60, snap)
    assert len(joined) == 1 and geometry.contains(joined[0], geometry.word_box(initial))
    # the initial read too: three masks, the spaces between them untouched
    words = [name, initial, date]
    apart = mask_boxes(words, [Decision(i, True, "phi") for i in range(3)], 400, 60, snap)
    assert len(apart) == 3
    for w in words:
        assert any(geometry.contains(b, geometry.word_box(w)) for b in apart)
    assert all(geometry.intersection_area(a, b) == 0 for a in apart for b in apart if a is not b)


def test_a_date_stamp_read_in_pieces_is_phi_in_phi_mode():
    """Held-out draw 20270920: a date-time over anatomy read as "Ea" (garbled day and month), "2022", "3:34:56",
    "PM"; and a 7 px clock whose date is one of the instance's terms, read "1808215" "1620:43" (colon misplaced).
    Every piece is PHI in phi mode; a year alone, a lonely time and a weak read away from any date are not."""
    matcher = PhiMatcher(None)
    stamp = [Word("Ea", 200, 71, 112, 36, 7.2), Word("2022", 322, 76, 48, 21, 96.6),
             Word("3:34:56", 384, 76, 82, 16, 96.6), Word("PM", 480, 76, 22, 16, 96.0)]
    assert masked(stamp, "phi", matcher) == ["Ea", "2022", "3:34:56", "PM"]
    assert masked(line("Tilt 2022") + line("Ea", y=200, conf=7.2), "phi", matcher) == []
    clock = _terms(StudyDate="20150818")
    words = [Word("1808215", 542, 0, 49, 23, 0.0), Word("1620:43", 594, 0, 37, 23, 0.0)]
    assert masked(words, "phi", PhiMatcher(clock)) == ["1808215", "1620:43"]
    assert masked(line("Depth 1620:43"), "phi", PhiMatcher(clock)) == []


def test_a_date_time_whose_year_ran_into_its_time_is_phi_in_phi_mode():
    """Held-out draw 20271121: "21.12.2019 11:10:59" in a serif face on a palette frame (the same pixels as RGB
    read the same), read "21512" and ".2019:11:10:59", both at confidence 17. The year glued to the time is a
    date-time's date; the weak read beside it is the rest of that date. A time alone, a year alone, a number
    before a time and settings stay."""
    matcher = PhiMatcher(None)
    stamp = [Word("21512", 423, 7, 55, 16, 16.7), Word(".2019:11:10:59", 481, 7, 149, 16, 16.7)]
    assert masked(stamp, "phi", matcher) == ["21512", ".2019:11:10:59"]
    dates, _, _ = pattern_hits(["2019:11:10:59"])
    assert dates == {0}
    for text in ["Tilt 2019", "1920:30", "2019 at 21512", "L12-5 W 2048"]:
        assert masked(line(text) + line("21512", y=200, conf=16.7), "phi", matcher) == [], text
    assert masked(line("11:10:59") + line("21512", y=200, conf=16.7), "phi", matcher) == ["11:10:59"]
    assert masked(line("Depth 16cm PRF 4.0kHz"), "strict", matcher) == []


def test_a_date_read_as_garble_beside_its_time_is_phi_in_both_modes():
    """Held-out draw 20280815: "11.02.2023 15:30:10" in 24 px LiberationMono, white on a mid-grey MONOCHROME1 CR,
    read "11" ".82:2823" (confidence 3) and "15:30:10" (73). No date pattern matches the garble, so phi mode kept
    it whole and strict mode kept "11" as a number. A run of weak reads with a date's digits (4 or more) right
    before or after a time is the stamp's date. Fewer digits, a clear number, or a weak read on another line stay."""
    matcher = PhiMatcher(None)
    stamp = [Word("11", 481, 193, 49, 33, 2.9), Word(".82:2823", 547, 193, 217, 33, 2.9),
             Word("15:30:10", 797, 193, 225, 33, 72.9)]
    for mode in ("phi", "strict"):
        assert masked(stamp, mode, matcher) == ["11", ".82:2823", "15:30:10"], mode
    time_first = [Word("15:30:10", 10, 10, 225, 33, 72.9), Word("11.82:2823", 260, 10, 240, 33, 3.0)]
    assert masked(time_first, "phi", matcher) == ["15:30:10", "11.82:2823"]
    assert masked([Word("28", 10, 10, 40, 33, 20.0), Word("15:30:10", 60, 10, 225, 33, 90.0)], "phi",
                  matcher) == ["15:30:10"]
    assert masked(line("1024 15:30:10"), "phi", matcher) == ["15:30:10"]
    assert masked(line("15:30:10") + [Word("11.82:2823", 10, 200, 240, 12, 3.0)], "phi", matcher) == ["15:30:10"]


def test_a_year_with_its_separator_before_a_time_is_a_date_times_date():
    """Held-out draw 20280920: "08-OCT-2021 3:26:56 PM" over CT anatomy in phi mode; no reading read the day and
    month, the clearest read "-2021" (confidence 80) before the time, and the year rule wanted digits alone, so
    the date was kept whole. A year with a date's separator before a time is that date-time's year; the same
    number without a time, or with a sign before a number that is no year, stays."""
    matcher = PhiMatcher(None)
    assert masked(line("-2021 3:26:56 PM"), "phi", matcher) == ["-2021", "3:26:56", "PM"]
    assert masked(line("/2021 14:02"), "phi", matcher) == ["/2021", "14:02"]
    dates, _, _ = pattern_hits(["-2021", "3:26:56"])
    assert dates == {0}
    for text in ["L -2021", "W -2021 C 40"]:
        assert masked(line(text), "phi", matcher) == [], text
    assert masked(line("-1024 3:26:56"), "phi", matcher) == ["3:26:56"]


def test_a_years_last_three_digits_before_a_time_are_a_date_times_date():
    """Held-out draw 20290215: "05-JAN-2017 3:34:17 PM" over XA anatomy; every reading read only "017"
    (confidence 96) of the date, kept as a number in both modes, the time masked beside it and the rest of
    the date left (0% covered in phi mode, 74% in strict). Three digits from 0 or 9 right before a time are
    its year's tail (20xx, 19xx); other numbers, two digits, or the same without a time stay."""
    matcher = PhiMatcher(None)
    for mode in ("phi", "strict"):
        assert masked(line("017 3:34:17 PM"), mode, matcher)[:2] == ["017", "3:34:17"], mode
    assert masked(line("995 10:02"), "phi", matcher) == ["995", "10:02"]
    assert pattern_hits(["017", "3:34:17"])[0] == {0}
    for text in ["117 3:34:17", "17 3:34:17", "017"]:
        assert "017" not in pattern_hits(text.split())[0] and 0 not in pattern_hits(text.split())[0], text
    assert masked(line("117 3:34:17"), "phi", matcher) == ["3:34:17"]


def test_a_piece_of_a_phi_token_read_apart_from_it_is_masked_with_it():
    """Held-out draw 20300415: "j.smith@example.org" on a palette frame read "j" (confidence 54) and
    ".smith@example.org", 8 px apart; the surname made the second PHI and phi mode kept the "j". A word right
    beside a PHI word where the two meet at a character no token starts or ends with is the rest of it; a
    space, a word ending with "." or a value starting with "-" says nothing, and a piece too far is not it."""
    matcher = PhiMatcher(_terms(PatientName="SMITH^JOHN"))
    mail = [Word("j", 214, 430, 7, 21, 54), Word(".smith@example.org", 229, 430, 212, 21, 54)]
    for mode in ("phi", "strict"):
        assert masked(mail, mode, matcher) == ["j", ".smith@example.org"], mode
    split = [Word("x", 100, 430, 7, 21, 90), Word("jsmith@", 110, 430, 80, 21, 90), Word("mail", 193, 430, 44, 21, 90),
             Word(".org", 240, 430, 44, 21, 90)]
    assert masked(split, "phi", matcher) == ["jsmith@", "mail", ".org"]
    far = [Word("j", 190, 430, 7, 21, 54), Word(".smith@example.org", 229, 430, 212, 21, 54)]
    assert masked(far, "phi", matcher) == [".smith@example.org"]
    for text in ["SMITH. MI 0.9", "SMITH -3dB", "SMITH 2D", "DOB: SMITH"]:
        assert masked(line(text), "phi", matcher) == [text.split()[0 if text[0] == "S" else 1]], text


def test_a_word_read_in_part_where_an_earlier_frame_masked_it_as_phi_is_masked():
    """Held-out draw 20290415, an 8-frame ultrasound cine with "05/28/2022 10:31:4x" over moving speckle: frame 6
    read "28/2022" (masked), frame 7 only "8/" and "22", kept as numbers in both modes, and frame 5 "8/2022"
    (a month and year, kept) before its time: the date was left whole on frames 5 and 7. A kept word over half
    inside the box of a word an earlier frame masked as PHI, whose text holds it or is held by it (two
    characters or more), is that word; and a day or month with its year before a time is a date-time's date.
    Not: a word elsewhere, a single character, another text, a read taken for noise."""
    from py_deid.pixels.text_policy import Decision, carried_phi

    earlier = [Word("28/2022", 395, 85, 108, 41, 97)]
    words = [Word("8/", 413, 89, 26, 21, 93), Word("22", 473, 89, 30, 19, 96), Word("2", 490, 90, 13, 18, 92),
             Word("22", 473, 200, 30, 19, 96), Word("MI", 420, 90, 30, 19, 96), Word("22", 473, 89, 30, 19, 9)]
    kept = [Decision(i, False, "kept") for i in range(5)] + [Decision(5, False, "noise")]
    out = carried_phi([words], [kept], earlier)[0]
    assert [d.mask for d in out] == [True, True, False, False, False, False]
    assert out[0].reason.startswith("phi")
    assert [d.mask for d in carried_phi([[Word("8/2022", 411, 84, 94, 42, 96)]], [[Decision(0, False, "kept")]],
                                        [Word("/2022", 425, 85, 78, 27, 92)])[0]] == [True]
    matcher = PhiMatcher(None)
    assert masked(line("8/2022 10:31:47"), "phi", matcher) == ["8/2022", "10:31:47"]
    assert pattern_hits(["28/2022", "10:31:47"])[0] == {0}
    assert pattern_hits(["8/2022"])[0] == set() and pattern_hits(["128/2022", "10:31:47"])[0] == set()


def test_a_day_and_month_before_a_dates_masked_digits_in_another_reading_are_that_date():
    """Held-out draw 20290615, "05/17/2017 16:09:17" over XA anatomy: one reading read "017" before the time
    (masked as the date's year), the second look "5/1" 34 px before it, kept as a number (strict: technical;
    59% of the date covered; phi mode 91%). A day and month read before a date's masked digits on their line,
    within the reach of a phrase, are that date's; not after it, not a word of other shape, not far away."""
    from py_deid.pixels.text_policy import decide_readings

    matcher = PhiMatcher(None)
    first = [Word("017", 362, 89, 40, 18, 96), Word("16:09:17", 408, 89, 96, 18, 96)]
    for mode in ("strict", "phi"):
        out = decide_readings([first, [Word("5/1", 295, 88, 33, 24, 94)]], mode, matcher)
        assert out[0][0].mask and out[1][0].mask, mode
    for other in (Word("5/1", 520, 88, 33, 24, 94), Word("MI", 320, 88, 33, 24, 94),
                  Word("5/1", 200, 88, 33, 24, 94)):
        assert not decide_readings([first, [other]], "phi", matcher)[1][0].mask, other


def test_a_glyph_cut_by_the_frames_side_on_a_line_of_phi_is_masked():
    """Draw 20281018, a CT in RGB planar 1: the age "77Y" drawn past the right side of a 512-px frame after the
    birth date; 4 columns of its first "7" stayed, read "1" (7 px tall) and kept as noise in both modes. A read
    taken for noise that touches the frame's side, on a line with a PHI word, is masked over that line's rows;
    the same read away from the side, or on a line without PHI, or a technical word at the side, stays."""
    from py_deid.pixels.text_policy import Decision, at_frame_side

    date = Word("17.07.1940", 336, 35, 141, 19, 96)
    sliver = Word("1", 509, 47, 3, 7, 61)
    phi, noise = Decision(0, True, "phi-term"), Decision(1, False, "noise")
    assert at_frame_side([[date, sliver]], [[phi, noise]], 512) == [(509, 35, 3, 19)]
    assert at_frame_side([[date, Word("1", 490, 47, 3, 7, 61)]], [[phi, noise]], 512) == []
    assert at_frame_side([[date, sliver]], [[Decision(0, False, "kept"), noise]], 512) == []
    assert at_frame_side([[date, sliver]], [[phi, Decision(1, False, "technical")]], 512) == []
    assert at_frame_side([[date, Word("1", 509, 80, 3, 7, 61)]], [[phi, noise]], 512) == []
    # a garbled box over the frame's corner is no glyph (OBXXXX1A: "TR" 189x82 beside "5/25/2011")
    assert at_frame_side([[date, Word("TR", 323, 0, 189, 82, 10)]], [[phi, noise]], 512) == []
    assert at_frame_side([[date, Word("W", 490, 30, 22, 40, 10)]], [[phi, noise]], 512) == []
    left = Word("7", 0, 40, 4, 12, 30)
    line = [[Decision(0, False, "noise"), Decision(1, True, "phi-term")]]
    assert at_frame_side([[left, Word("DOE", 30, 35, 60, 19, 95)]], line, 512) == [(0, 35, 4, 19)]


def test_a_tall_reading_is_not_cut_to_the_rows_of_the_line_above_it():
    """Held-out draw 20271121, an ultrasound banner on a grey bar: Tesseract boxed "LAKEVIEW" (its glyphs on rows
    54-69) 31 px tall from row 38, half into the line above, where "MRN:" is. Cut to MRN's rows (a reading half
    inside it was taken for one of its line), its mask fell on that line and left 94% of LAKEVIEW bare."""
    from py_deid.pixels.text_policy import Decision

    words = [Word("MRN:", 7, 30, 57, 16, 89.7), Word("8844253790", 78, 30, 138, 16, 96.2),
             Word("LAKEVIEW", 7, 38, 114, 31, 96.3), Word("CEN", 234, 53, 43, 16, 96.8)]
    boxes = mask_boxes(words, [Decision(2, True, "phi-term")], 640, 480)
    assert any(geometry.contains(b, (8, 54, 113, 15)) for b in boxes), boxes
    # a reading wholly inside the tall one's rows still says where its line is (the "eh" case above)
    inside = [Word("19480817", 335, 40, 110, 19, 95), Word("eh", 336, 35, 112, 43, 8)]
    boxes = mask_boxes(inside, [Decision(1, True, "text")], 640, 480, content=[(0, 52, 640, 400)])
    assert all(b[3] <= 19 + 12 for b in boxes), boxes


def test_a_word_another_reading_read_as_part_of_phi_is_that_phi():
    """Held-out draw 20271121, "24-DEC-2021 9:20:38 AM" over anatomy on a 16-bit mammogram: one reading had
    "2021" (a date-time's year: masked), another "021" on the same glyphs (confidence 97, kept: no date form).
    Kept, it also ended the rest of the date's line (line_rest) before "24-DEC-". The same glyphs read as part
    of a PHI word are that PHI; a different word under a PHI box, or the same text elsewhere, stays."""
    from py_deid.pixels.text_policy import decide_readings

    matcher = PhiMatcher(None)
    a = [Word("2021", 297, 89, 60, 36, 96.8), Word("9:20:38", 367, 89, 90, 19, 96.2), Word("AM", 465, 89, 35, 19, 97)]
    b = [Word("021", 314, 89, 43, 35, 96.9), Word("9:20:38", 367, 89, 90, 19, 96.0), Word("AM", 465, 89, 35, 19, 97),
         Word("021", 314, 300, 43, 19, 96.9)]
    assert _texts_masked([a, b], decide_readings([a, b], "phi", matcher)) == [
        "2021", "9:20:38", "AM", "021", "9:20:38", "AM"]
    other = [Word("MLO", 314, 89, 43, 19, 93)]
    assert _texts_masked([a, other], decide_readings([a, other], "phi", matcher)) == ["2021", "9:20:38", "AM"]
    assert _texts_masked([a, other], decide_readings([a, other], "strict", matcher)) == ["2021", "9:20:38", "AM"]


def test_a_snap_far_shorter_than_the_line_does_not_stand_for_the_word():
    """Fresh draw 20271222, an RGB cine: "05/28/2010" read right (95), 15 px tall; the glyph snap of its box gave a
    2 px stripe (323, 36, 110, 2) as whole glyphs, and the mask was that stripe plus the part of the date another
    word's mask took: 72% hidden. Glyphs a third of the line's height or less are not its letters: OCR's box is
    masked too. A snap of the letters themselves still sets the mask."""
    from py_deid.pixels.text_policy import Decision

    date = [Word("05/28/2010", 318, 28, 119, 15, 95)]
    boxes = mask_boxes(date, [Decision(0, True, "phi-term")], 640, 480, lambda b: ((323, 36, 110, 2), True))
    assert any(geometry.contains(b, (319, 29, 118, 15)) for b in boxes), boxes
    boxes = mask_boxes(date, [Decision(0, True, "phi-term")], 640, 480, lambda b: ((319, 29, 118, 15), True))
    assert boxes == [(317, 27, 122, 19)], boxes


def test_a_sliver_of_a_glyph_or_two_does_not_set_a_words_rows():
    """Fresh draw 20271222, a banner across a grey bar's edge: "04/24/2001" read right (96), 16 px tall, and "UU"
    (77), 6 px, the lower half of its "00" in a strip read across the edge. The frame's settings are 9 px, so
    the date counted as far taller than the usual text and was cut to the rows of "UU": 31% hidden. A held
    reading spanning a small part of the word is a sliver, not its line; a line it holds still cuts it."""
    from py_deid.pixels.text_policy import Decision

    date = Word("04/24/2001", 218, 30, 99, 16, 96.4)
    words = [date, Word("UU", 288, 38, 16, 6, 77.2)] + line("Gn 62 TIS 0.4 MI 1.1", y=300, h=9)
    boxes = mask_boxes(words, [Decision(0, True, "phi-term")], 640, 480)
    assert any(geometry.contains(b, (219, 31, 98, 15)) for b in boxes), boxes


def test_a_labels_value_a_column_away_is_its_value():
    """Fresh draw 20280115, an NM banner in a monospaced face: "Birth:  1953-02-25" (two spaces, 35 px for 19 px
    text: two phrases), the date read "1953-52" (8) and "75" (72), kept in phi mode, 0% hidden. A label read
    clearly joins the words after it up to 3 text heights away; farther, or after a weak "ID", or after a
    setting, nothing changes."""
    matcher = PhiMatcher(None)
    words = [Word("Birth:", 250, 35, 80, 19, 94), Word("1953-52", 365, 35, 141, 19, 8), Word("75", 479, 33, 28, 30, 72)]
    assert masked(words, "phi", matcher) == ["1953-52", "75"]
    far = [Word("Birth:", 250, 35, 80, 19, 94), Word("1953-52", 390, 35, 141, 19, 8)]
    assert masked(far, "phi", matcher) == []
    weak = [Word("ID:", 250, 35, 40, 19, 30), Word("1953-52", 325, 35, 141, 19, 8)]
    assert masked(weak, "phi", matcher) == []
    setting = [Word("Depth", 250, 35, 80, 19, 94), Word("16cm", 365, 35, 60, 19, 90)]
    assert masked(setting, "phi", matcher) == []
    assert masked(setting, "strict", matcher) == []


def test_the_seconds_and_am_pm_read_apart_from_a_masked_time_are_that_time():
    """Fresh draw 20280115, "05-MAY-2023 3:10:24 PM" over anatomy on an NM frame, read "023,3:10" (masked),
    ":24" and "PM" (both kept in phi mode): 59% and 0% hidden (here with the date read whole). What continues a masked time is that time; the
    same words after a setting, or alone, stay."""
    matcher = PhiMatcher(None)
    stamp = [Word("05-MAY-2023", 189, 89, 156, 19, 90), Word("3:10", 361, 89, 53, 19, 86),
             Word(":24", 422, 89, 37, 19, 90), Word("PM", 476, 89, 25, 19, 96)]
    assert masked(stamp, "phi", matcher) == ["05-MAY-2023", "3:10", ":24", "PM"]
    assert masked(line("Depth 16cm PM"), "phi", matcher) == []
    assert masked(line("PRF 4.0kHz :24"), "phi", matcher) == []


def test_a_masked_sliver_with_no_glyph_found_covers_its_lines_usual_height():
    """Fresh draw 20280115, "20-JAN-2021 11:30:38 AM" over anatomy on a 16-bit mammogram (a screened image), read
    only in slivers 9 px high (the line is 16): "2N" masked as text in strict mode, its box plus a margin, and the
    lower rows of "20" stayed (90% hidden). With no glyph found in its box, a masked word far shorter than the
    frame's text covers that height above and below; one of the usual height, or with glyphs found, does not."""
    from py_deid.pixels.text_policy import Decision

    words = [Word("2N", 246, 76, 23, 9, 77), Word("JUN", 267, 30, 36, 16, 92), Word("IMAGING", 135, 53, 86, 16, 96)]
    boxes = mask_boxes(words, [Decision(0, True, "text")], 512, 640, lambda b: (None, True))
    assert any(geometry.contains(b, (246, 70, 23, 22)) for b in boxes), boxes
    usual = [Word("2N", 246, 76, 23, 15, 77)] + words[1:]
    boxes = mask_boxes(usual, [Decision(0, True, "text")], 512, 640, lambda b: (None, True))
    assert boxes == [(242, 74, 31, 19)], boxes
    # glyphs found, 15 px under the 9 px box: a band of them, masked on the glyphs' rows and its own
    found = mask_boxes(words, [Decision(0, True, "text")], 512, 640, lambda b: ((246, 77, 23, 15), True))
    assert found == [(244, 74, 27, 20)], found
    whole = [Word("2N", 246, 77, 23, 14, 77)] + words[1:]
    assert mask_boxes(whole, [Decision(0, True, "text")], 512, 640, lambda b: ((246, 77, 23, 15), True)) == \
        [(244, 75, 27, 19)]


def test_an_address_read_in_part_is_phi_with_the_rest_read_after_its_unread_dot(terms):
    """Held-out draw 20271222, frame 4 of the RGB cine: "s.hassan@example.org" read as "s.hassan@example" and "org"
    (the dot unread); no reading had it whole, so neither part matched an address and "org" stayed readable. An
    address cut at its domain is PHI, and the domain's rest read apart is too; a word after a whole address stays."""
    matcher = PhiMatcher(terms)
    cut = [Word("s.hassan@example", 215, 430, 189, 19, 88.0), Word("org", 418, 434, 33, 15, 97.0)]
    assert masked(cut, "phi", matcher) == ["s.hassan@example", "org"]
    assert masked(line("a.doe@example .org"), "phi", matcher) == ["a.doe@example", ".org"]
    assert masked(line("a.doe@example"), "phi", matcher) == ["a.doe@example"]
    assert masked(line("a.doe@example.org PW 2.5MHz"), "phi", matcher) == ["a.doe@example.org"]
    assert masked(line("PW 2.5MHz @ FR 28Hz"), "phi", matcher) == []


def test_an_address_read_as_two_words_at_its_at_sign_is_phi():
    """Held-out draw 20281018, an RGB planar ultrasound frame in phi mode: "l.smith@example.org" read as
    "|.smith@" and "example.org" by every reading; the first half was masked as the name, "example.org" stayed
    (41% of the address covered). An address split at its @ is PHI whole; an @ between settings is not."""
    matcher = PhiMatcher(None)
    split = [Word("|.smith@", 443, 901, 99, 25, 55.0), Word("example.org", 553, 901, 151, 27, 80.6)]
    assert masked(split, "phi", matcher) == ["|.smith@", "example.org"]
    assert masked(line("l.smith @example.org"), "phi", matcher) == ["l.smith", "@example.org"]
    for text in ["PW 2.5MHz @ FR 28Hz", "Depth @ 5cm", "x@ b.c"]:
        assert masked(line(text), "phi", matcher) == [], text


def test_glyphs_running_into_a_phi_word_are_that_word(terms):
    """Held-out draw 20280220, frame 2 of the RGB cine: "a.doe@example.org" boxed from "doe" (the "a." left out of
    its box, then read by a closer look as something kept). Ink with no space before a PHI word on its line is that
    word's; ink a space away, or on another line, is not."""
    from py_deid.pixels.text_policy import against_phi

    matcher = PhiMatcher(terms)
    words = [Word("doe@example.org", 233, 438, 142, 15, 29.0), Word("G55", 7, 442, 44, 15, 92.0)]
    decisions = decide(words, "phi", matcher)
    assert [d.mask for d in decisions] == [True, False]
    assert against_phi((214, 441, 15, 9), [words], [decisions])  # "a." 4 px before it
    assert not against_phi((200, 441, 15, 9), [words], [decisions])  # a space and more away
    assert not against_phi((214, 470, 15, 9), [words], [decisions])  # the line below
    assert not against_phi((52, 442, 10, 15), [words], [decisions])  # beside a kept setting


def test_a_kept_band_of_a_found_line_with_no_glyph_found_settles_nothing():
    """Fresh draw 20280115, "20-JAN-2021" over anatomy on the 16-bit mammogram, phi mode (77% hidden): the second
    look's block ended one line height under "NORTHGATE IMAGING", 9 px into the date's 15 px line, and read its top
    band ("2N" 77, kept in phi mode). No glyph is found in that box (the "2" and "0" run into the tissue under
    them), so its box settled the ink, and the detector's pieces began at the "0": "20" stayed. Such a band settles
    nothing and its columns are unread ink on the line's rows; a reading of the usual height, one whose glyphs
    are found, and one on no found line are unchanged."""
    from py_deid.pixels.text_policy import Decision, band_of_line, settled_boxes, slivers

    line_pieces = [(260, 77, 59, 15), (321, 77, 63, 15)]
    words = [Word("NORTHGATE", 7, 53, 120, 16, 92), Word("IMAGING", 135, 53, 86, 16, 96),
             Word("2N", 246, 76, 23, 9, 77)]
    kept = [Decision(0, True, "phi-term"), Decision(1, True, "phi-term"), Decision(2, False, "kept")]
    no_glyph = lambda b: None  # noqa: E731
    assert band_of_line(geometry.word_box(words[2]), None, line_pieces, 16) == (246, 76, 23, 16)
    settled = settled_boxes([words], [kept], no_glyph, lines=line_pieces)
    assert not any(geometry.intersects(b, (246, 76, 23, 9)) for b in settled), settled
    assert slivers([words], [kept], no_glyph, line_pieces) == [(246, 76, 23, 16)]
    # what stays: the usual height (a piece can be taller than its line), glyphs found, no found line under it
    usual = words[:2] + [Word("2N", 246, 76, 23, 13, 77)]
    assert band_of_line(geometry.word_box(usual[2]), None, line_pieces, 16) is None
    assert any(geometry.contains(b, (246, 76, 23, 13)) for b in settled_boxes([usual], [kept], no_glyph,
                                                                             lines=line_pieces))
    # glyphs found as tall as the box: they say where the line is ("mm" 7 px on a 15 px line of digits is whole)
    small = words[:2] + [Word("mm", 246, 84, 16, 7, 90)]
    found = lambda b: (b[0], b[1], b[2], b[3]) if b[0] == 246 else None  # noqa: E731
    assert slivers([small], [kept], found, line_pieces) == []
    assert any(geometry.contains(b, (246, 84, 16, 7)) for b in settled_boxes([small], [kept], found,
                                                                            lines=line_pieces))
    # glyphs found far taller than the box: a band of them ("MAD" 9 px over "MAR", "DM" over "PM"); a speck found
    # in the box (the dot of a slashed zero, 2 px) is no glyph of the line: the pieces say
    taller = lambda b: (b[0], 77, b[2], 15) if b[0] == 246 else None  # noqa: E731
    assert slivers([words], [kept], taller, line_pieces) == [(246, 76, 23, 16)]
    speck = lambda b: (250, 84, 2, 2) if b[0] == 246 else None  # noqa: E731
    assert slivers([words], [kept], speck, line_pieces) == [(246, 76, 23, 16)]
    # no glyph and no found line under it: a band by the usual height alone, its usual height above and below
    assert slivers([words], [kept], no_glyph, [(400, 77, 40, 15)]) == [(246, 69, 23, 23)]
    # a read taken for noise ("=" 7 px over "2D" in an ultrasound's speckle) is not a band of a line
    assert slivers([words], [kept[:2] + [Decision(2, False, "noise")]], no_glyph, line_pieces) == []
    whole = [Word("20-JAN-2021", 240, 75, 130, 18, 60)]  # another reading boxed the line whole: its decision
    assert slivers([words, whole], [kept, [Decision(0, False, "kept")]], no_glyph, line_pieces) == []
    # without the detector's lines (a caller that has none): still a band, by the usual height
    assert not any(geometry.intersects(b, (246, 76, 23, 9)) for b in settled_boxes([words], [kept], no_glyph))
    # a masked band is masked by mask_boxes (with its line's usual height), not taken as unread here
    masked_band = kept[:2] + [Decision(2, True, "text")]
    assert slivers([words], [masked_band], no_glyph, line_pieces) == []


def test_one_band_rule_finds_every_band_the_three_rules_it_replaces_found():
    """settled_boxes (a noise read under 0.6 of its glyphs' height), mask_boxes (no glyph found, under 0.6 of the
    usual height) and sliver_of_line (under 2/3 of its line's height and 0.7 of the usual height) were three rules
    for "does this reading stand for its whole line?". band_of_line is one: every band any of them found is a band
    to it, on the same rows or more (so it masks more, never less)."""
    import random

    from py_deid.pixels.text_policy import band_of_line

    def noise_rule(box, glyphs):
        return glyphs is not None and box[3] < 0.6 * glyphs[3]

    def mask_rule(box, glyphs, typical):
        return glyphs is None and box[3] < 0.6 * typical

    def line_rule(box, glyphs, lines, typical):  # recall11's sliver_of_line
        if typical and box[3] >= 0.7 * typical:
            return None
        if glyphs is not None and glyphs[3] >= box[3]:
            tall = [glyphs] if box[3] < 2 * glyphs[3] / 3 else []
        else:
            tall = [p for p in lines if geometry.intersects(p, box) and box[3] < 2 * p[3] / 3]
        if not tall:
            return None
        top, bottom = min(p[1] for p in tall + [box]), max(geometry.bottom(p) for p in tall + [box])
        return (box[0], top, box[2], bottom - top)

    rng = random.Random(20261207)
    for _ in range(20000):
        box = (rng.randint(0, 50), rng.randint(20, 60), rng.randint(5, 60), rng.randint(2, 30))
        glyphs = rng.choice([None, (box[0] + rng.randint(-5, 5), box[1] + rng.randint(-12, 8), rng.randint(2, 60),
                                    rng.randint(1, 40))])
        lines = [(rng.randint(0, 80), rng.randint(10, 80), rng.randint(5, 80), rng.randint(3, 40))
                 for _ in range(rng.randint(0, 3))]
        typical = rng.choice([0, 8, 12, 16, 20, 24])
        band = band_of_line(box, glyphs, lines, typical)
        noise = band_of_line(box, glyphs, lines, typical, noise=True)
        if noise_rule(box, glyphs):  # settled_boxes asked it of reads taken for noise only
            assert noise is not None, (box, glyphs, lines, typical)
        if mask_rule(box, glyphs, typical):
            assert band is not None, (box, glyphs, lines, typical)
        old = line_rule(box, glyphs, lines, typical)
        if old is not None:
            assert band is not None and geometry.contains(band, old), (box, glyphs, lines, typical, band, old)
        if band is not None:  # a read taken for noise is trusted less, never more
            assert noise is not None and geometry.contains(noise, band)


def test_the_frame_s_bands_are_worked_out_once_and_each_caller_uses_them():
    """find_bands: the usual height and the bands of a frame's readings, once (step passes them to mask_boxes,
    settled_boxes and slivers). A masked band covers its line's rows, a kept one leaves them unread, and neither
    settles its ink; a read taken for noise that reaches no found line is not snapped at all."""
    from py_deid.pixels.text_policy import Decision, find_bands, settled_boxes, slivers

    line_pieces = [(246, 77, 138, 15)]
    words = [Word("NORTHGATE", 7, 53, 120, 16, 92), Word("IMAGING", 135, 53, 86, 16, 96),
             Word("2N", 246, 76, 23, 9, 77), Word("o", 600, 400, 9, 4, 10)]
    snapped = []

    def snap(b):
        snapped.append(b)
        return (b[0], 77, b[2], 15) if b[0] == 246 else None

    kept = [Decision(0, True, "phi-term"), Decision(1, True, "phi-term"), Decision(2, False, "kept"),
            Decision(3, False, "noise")]
    bands = find_bands([words], [kept], snap, line_pieces, near=line_pieces)
    assert bands.typical == 16 and bands.rows == {(0, 2): (246, 76, 23, 16)}
    assert not any(b[0] == 600 for b in snapped)  # the far speck of noise was not snapped
    assert slivers([words], [kept], bands=bands) == [(246, 76, 23, 16)]
    assert not any(geometry.intersects(b, (246, 76, 23, 9)) for b in settled_boxes(
        [words], [kept], snap, near=line_pieces, bands=bands))
    masked_band = kept[:2] + [Decision(2, True, "text"), kept[3]]
    assert slivers([words], [masked_band], bands=bands) == []
    boxes = mask_boxes(words, masked_band, 512, 640, lambda b: (snap(b), True), bands={2: (246, 76, 23, 16)},
                       typical=16)
    assert any(geometry.contains(b, (246, 76, 23, 16)) for b in boxes), boxes



def test_the_am_after_a_masked_clock_is_found_by_place_not_by_phrase():
    """Held-out draw 20290715, an RGB cine's first frame: speckle read around "11:46:49 AM" over anatomy put
    the "AM" in a line of its own (geometry.lines groups by the last words of a line), so the rule that takes
    a time's AM/PM with it left "AM" readable in phi mode. The words are that reading's."""
    reading = [Word('JUG', 254, 42, 34, 9, 13), Word(')', 323, 73, 2, 3, 22), Word('2', 326, 70, 12, 5, 30),
               Word('ST', 6, 42, 28, 39, 96), Word('MARY', 39, 46, 66, 35, 96), Word('HO', 119, 42, 28, 39, 76),
               Word('Ba', 305, 71, 16, 9, 30), Word('ry', 325, 74, 14, 6, 38), Word('SPITA', 148, 45, 71, 36, 92),
               Word('=', 310, 82, 11, 9, 22), Word('Yi', 328, 79, 13, 9, 10), Word('8', 313, 94, 7, 11, 48),
               Word('ve', 337, 95, 6, 6, 42), Word('a', 303, 104, 41, 10, 9),
               Word('11:46:49', 469, 89, 117, 21, 97), Word('AM', 600, 89, 29, 19, 97)]
    assert not any({14, 15} <= set(seg) for seg in geometry.segments(reading))  # the split this is about
    assert {"11:46:49", "AM"} <= set(masked(reading, "phi", PhiMatcher(None)))
    # not an "AM" far off, on other rows, or after something that is no time
    for far in [Word('AM', 680, 89, 29, 19, 97), Word('AM', 600, 140, 29, 19, 97)]:
        assert masked([Word('11:46:49', 469, 89, 117, 21, 97), far], "phi", PhiMatcher(None)) == ["11:46:49"]
    assert masked(line("Depth 16cm AM"), "phi", PhiMatcher(None)) == []


def test_a_cines_stamp_masked_on_an_earlier_frame_is_carried_beside_this_frames_phi():
    """Held-out draw 20290715: "01-NOV-2017 11:46:5x AM" over an RGB cine's anatomy. Frames 1, 3 and 5 masked
    the date (the rest of the time's line, followed over the tissue); frames 2 and 4 read only "1:46:51" and
    the strokes of the date could not be followed (8-16% of it covered). A box an earlier frame masked for PHI
    that shares its rows with PHI masked on this frame, at a like height and within two text heights, is
    masked here too. Not: one already inside this frame's PHI, on other rows, far along the row, of another
    height, or over a word this frame read clearly as something kept."""
    from py_deid.pixels.text_policy import Decision, carried_line

    words = [Word("1:46:51", 487, 89, 100, 19, 96), Word("AM", 600, 89, 29, 19, 97), Word("x2", 640, 89, 30, 19, 95)]
    decisions = [Decision(0, True, "phi-pattern"), Decision(1, True, "phi-pattern"), Decision(2, False, "technical")]
    date = (300, 88, 159, 24)
    inside, other_rows, far = (488, 89, 90, 18), (300, 140, 159, 24), (100, 88, 120, 24)
    tall, over_kept = (300, 60, 159, 80), (636, 88, 40, 22)
    earlier = [date, inside, other_rows, far, tall, over_kept, date]
    on_its_rows = (300, 88, 159, 22)  # this frame's line: rows 89-108, 2 px more
    assert carried_line([words], [decisions], earlier) == [on_its_rows]
    words[2] = Word("x2", 640, 89, 30, 19, 40)  # a weak read there is no reason to keep the box
    assert carried_line([words], [decisions], earlier) == [on_its_rows, over_kept]
    # a box an earlier reading took 37 px tall with the speckle above its 19 px line: only the line's rows
    assert carried_line([words], [decisions], [(300, 70, 159, 37)]) == [(300, 87, 159, 20)]
    # nothing masked as PHI on this frame: nothing carried
    assert carried_line([words], [[Decision(0, False, "kept"), Decision(1, False, "kept"), decisions[2]]],
                        earlier) == []


def test_the_rest_of_a_place_is_measured_at_the_letters_of_its_lines_clear_words():
    """Held-out draw 20290715, "RIVERSIDE CLINIC" over NM anatomy: "CLIN" read at confidence 35 in a box that
    held all of "CLINIC" (24 px a letter against 15.6 for "RIVERSIDE"), and the rest after it reached 77 px past
    the word. The letters' width is now no more than that of the line's clear words; a clear word's own box
    still sets it when it is the narrower."""
    from py_deid.pixels.text_policy import rest_of_terms

    matcher = PhiMatcher(_terms(InstitutionName="RIVERSIDE CLINIC"))
    words = [Word("RIVERSIDE", 8, 63, 140, 18, 96), Word("CLIN", 154, 63, 96, 18, 35)]
    boxes = rest_of_terms(words, decide(words, "phi", matcher), matcher, 640, 480)
    assert boxes and max(geometry.right(b) for b in boxes) <= 250 + round(15.6 * 2.5 * 1.15) + 2
    weak = [Word("RIVERSIDE", 8, 63, 216, 18, 50)]  # no clear word on its line: its own box sets the width
    assert any(geometry.right(b) >= 224 + 200 for b in rest_of_terms(weak, decide(weak, "phi", matcher),
                                                                     matcher, 640, 480))


def test_a_reading_cut_to_its_line_gets_its_lines_margins():
    """The same NM frame: "CLIN" boxed 41 px tall on an 18 px line beside "RIVERSIDE" was cut to the line's rows,
    but its mask's margins were those of its 41 px box, 6 rows of the image more above and below. The margins
    are now the line's."""
    matcher = PhiMatcher(_terms(InstitutionName="RIVERSIDE CLINIC"))
    words = [Word("RIVERSIDE", 8, 63, 140, 18, 96), Word("CLIN", 154, 63, 96, 41, 35)]
    boxes = mask_boxes(words, decide(words, "phi", matcher), 640, 480)
    assert boxes and all(b[1] >= 63 - 3 and geometry.bottom(b) <= 81 + 3 for b in boxes), boxes


def test_a_date_time_read_as_pieces_of_digits_is_phi_in_both_modes():
    """Held-out draw 20290815, "02.11.2017 10:43:13" over a YBR_FULL_422 ultrasound's anatomy, read "2.311.201"
    (confidence 0), "7", "10" and "43513" by every reading: strict mode kept the first as numbers of the
    vocabulary and "10" as a number (date 0%, time 69% covered), phi mode kept all four. Three groups of
    digits between equal separators, 5 to 9 digits, are a date's shape; up to three words of digits after a
    date, 8 digits at most, are its time. Not: fewer digits ("1.2.3"), unequal separators, words with letters
    after a date, or digits past a time's."""
    matcher = PhiMatcher(None)
    stamp = [Word("2.311.201", 360, 7, 142, 17, 0), Word("7", 492, 5, 10, 27, 31), Word("10", 518, 7, 26, 17, 64),
             Word("43513", 551, 7, 80, 17, 40)]
    for mode in ("phi", "strict"):
        assert masked(stamp, mode, matcher) == ["2.311.201", "7", "10", "43513"], mode
    assert pattern_hits(["2.311.201"])[0] == {0}
    for text in ["1.2.3", "2.311-201", "12.5", "1.84cm"]:
        assert pattern_hits([text])[0] == set(), text
    assert masked(line("05/11/2017 GAIN 82"), "phi", matcher) == ["05/11/2017"]
    assert masked(line("05/11/2017 10:43:13 123"), "phi", matcher) == ["05/11/2017", "10:43:13"]


def test_a_word_misread_where_an_earlier_frame_masked_it_as_phi_is_masked():
    """Held-out draw 20291015, an RGB cine with "h.obrien@example.org": frame 0 read it right (masked as an
    address), frames 1-5 read "h.obriengexample.org" at confidence 87-91, the "@" as "g": no address, kept in
    phi mode, read after. A long word one character in eight from an earlier frame's PHI word over the same
    box is that word. Not: a short word, more errors, another place."""
    from py_deid.pixels.text_policy import Decision, carried_phi

    earlier = [Word("h.obrien@example.org", 213, 445, 144, 14, 89)]
    words = [Word("h.obriengexample.org", 213, 445, 144, 14, 90), Word("h.obriengexanple..org", 214, 446, 143, 13, 73),
             Word("q.xbrxengexamzle.ozg", 213, 445, 144, 14, 90), Word("h.obriengexample.org", 213, 200, 144, 14, 90),
             Word("Dist", 213, 445, 40, 14, 90)]
    kept = [Decision(i, False, "kept") for i in range(len(words))]
    # the second has three errors in 21 (another reading of the same frames read it as the first, masked)
    assert [d.mask for d in carried_phi([words], [kept], earlier)[0]] == [True, False, False, False, False]


def test_the_rest_of_a_place_starts_after_the_words_of_it_read_beside():
    """Held-out draw 20290715, an RGB cine: "ST" "MARY" "HO" "SPITA" read and masked, "HO" too short to say it is
    "HOSPITAL": the rest after "MARY" was all of "HOSPITAL" again, a 180 px block (the first word's tall box over
    speckle) on every frame, over the words already masked and past them. The rest now starts after the words
    of the name read beside it, and is what they leave unread (the "L")."""
    from py_deid.pixels.text_policy import rest_of_terms

    saint = PhiMatcher(_terms(InstitutionName="ST MARY HOSPITAL"))
    words = line("ST MARY", y=63, x=8) + [Word("HO", 8 + 8 * 8, 63, 16, 12, 76),
                                          Word("SPITA", 8 + 8 * 10, 63, 40, 12, 92)]
    boxes = rest_of_terms(words, decide(words, "phi", saint), saint, 640, 480)
    assert boxes, "the unread L after SPITA"
    assert all(b[0] >= words[3].right - 2 and geometry.right(b) <= words[3].right + 8 * 3 for b in boxes), boxes
    # a neighbour that does not read as the name's next letters does not count: the rest goes on after MARY
    other = line("ST MARY", y=63, x=8) + [Word("HX", 8 + 8 * 8, 63, 16, 12, 76)]
    boxes = rest_of_terms(other, decide(other, "phi", saint), saint, 640, 480)
    assert any(b[0] <= other[1].right + 2 and geometry.right(b) >= other[1].right + 8 * 9 for b in boxes), boxes
    # nor one far off along the line
    far = line("ST MARY", y=63, x=8) + [Word("HOSPITAL", 8 + 8 * 30, 63, 64, 12, 92)]
    boxes = rest_of_terms(far, decide(far, "phi", saint), saint, 640, 480)
    assert any(b[0] <= far[1].right + 2 and geometry.right(b) >= far[1].right + 8 * 9 for b in boxes), boxes


def test_a_tall_box_is_cut_to_the_rows_of_the_same_word_read_at_its_lines_height():
    """A cine's stamp: "RX40493422" boxed 51 px tall over speckle on this frame, 18 px on an earlier one (passed in
    `around` by the pixel step): its mask keeps to the 18 px line's rows, not the speckle's."""
    matcher = PhiMatcher(_terms(AccessionNumber="RX40493422"))
    tall = [Word("RX40493422", 295, 403, 146, 51, 92)] + line("GAIN 82 DR 60", y=200)  # the frame's usual text
    earlier = Word("RX40493422", 299, 425, 142, 18, 88)
    alone = mask_boxes(tall, decide(tall, "phi", matcher), 640, 480)
    assert alone and min(b[1] for b in alone) < 410  # nothing says where its line is: its box
    boxes = mask_boxes(tall, decide(tall, "phi", matcher), 640, 480, around=[earlier])
    assert boxes and all(b[1] >= 425 - 4 and geometry.bottom(b) <= 443 + 4 for b in boxes), boxes


def test_a_line_nothing_could_read_right_under_phi_is_masked_in_phi_mode():
    """Held-out draw 20300215, NM: "LAKEVIEW MEDICAL CENTER" in 9 px type under the PID and DOB line, read
    "Riedie" "fel" "dda" "SoC" (confidence 5-48) by every reading: phi mode kept it, and it was read after. A
    phrase whose every word is under UNREADABLE confidence, right above or below a phrase with PHI and within
    its columns, is masked in phi mode; a line read clearly there, one farther down, or one off to the side is
    not."""
    matcher = PhiMatcher(_terms(PatientID="805017612"))
    pid = line("PID 805017612", y=21, x=6, h=10)
    weak = [Word("Riedie", 0, 33, 67, 22, 5), Word("fel", 76, 33, 18, 22, 48), Word("dda", 98, 33, 33, 22, 32)]
    assert masked(pid + weak, "phi", matcher) == ["805017612", "Riedie", "fel", "dda"]
    clear = line("Zoom 1.0", y=33, x=6, h=10, conf=95)  # read: its own decision holds
    assert masked(pid + clear, "phi", matcher) == ["805017612"]
    lower = [Word("Riedie", 0, 60, 67, 12, 5), Word("dda", 98, 60, 33, 12, 32)]  # two lines down
    assert masked(pid + lower, "phi", matcher) == ["805017612"]
    aside = [Word("Riedie", 300, 33, 67, 12, 5), Word("dda", 380, 33, 33, 12, 32)]  # not under it
    assert masked(pid + aside, "phi", matcher) == ["805017612"]
    one = [Word("fel", 76, 33, 18, 22, 30), Word("Mi", 100, 33, 16, 22, 80)]  # a word read clearly on it
    assert masked(pid + one, "phi", matcher) == ["805017612"]


@pytest.mark.parametrize("mode", ["strict", "phi"])
def test_the_digits_right_before_a_time_of_day_are_the_end_of_its_date(mode):
    """Held-out draw 20300315, CT over anatomy: "03.04.2016 15:18:56" read only as "16" and the time; strict mode
    kept "16" as a number and the date was left whole. Digits right before a time of day, on its rows within a
    phrase's gap, are the end of its date in both modes; a number farther off, or a word that is not digits,
    stays."""
    matcher = PhiMatcher(_terms())
    words = [Word("16", 375, 89, 25, 19, 90), Word("15:18:56", 408, 89, 94, 20, 90)]
    assert masked(words, mode, matcher) == ["16", "15:18:56"]
    for text in ("2016", ".2016", "04.2016", "2016,"):
        assert masked([Word(text, 340, 89, 60, 19, 90)] + words[1:], mode, matcher)[0] == text
    far = [Word("16", 300, 89, 25, 19, 90), Word("15:18:56", 408, 89, 94, 20, 90)]  # 83 px off: not beside it
    assert "16" not in masked(far, mode, matcher)
    for text in ("1024", "117", "3.5"):  # no year (strict mode has rules of its own for other numbers)
        assert mode == "strict" or text not in masked([Word(text, 350, 89, 50, 19, 90)] + words[1:], mode, matcher)
    if mode == "phi":
        kv = [Word("kV", 375, 89, 25, 19, 90), Word("15:18:56", 408, 89, 94, 20, 90)]
        assert masked(kv, mode, matcher) == ["15:18:56"]
