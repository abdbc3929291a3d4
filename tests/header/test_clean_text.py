"""Clean (C) as an allowlist, measured on text it was not built from.

- Real descriptions: every text attribute that clean_descriptors cleans, in every real sample file; the share
  of their words that survives is printed (90% is the aim; 89.0% is what this vocabulary reaches, and most of
  what goes names people, vendors and test suites).
- Identifying text from a generator independent of this code (Faker, fixed seeds and locales): names,
  street addresses, phone numbers, e-mail addresses, companies, dates, record numbers, postcodes, set inside
  clinical text. On the development set none of their words may survive; on the held-out rounds the misses
  are measured, printed and held under a ratchet.
"""

from __future__ import annotations

import re
import warnings

import pydicom
import pytest

from py_deid._standard.vocabulary import NAME_LIKE, WORDS
from py_deid.clean_text import PLACEHOLDER, allowlisted
from py_deid.options import Options
from py_deid.phi import PhiTerms
from py_deid.elements import dictionary_vr
from py_deid.policy import Profile

from .helpers import deid, encode, read

TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC"}
_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,][0-9]+)*")


def _cleaned_texts(samples) -> list[str]:
    profile = Profile(Options(clean_descriptors=True))
    cleaned_tags = {tag for tag, r in profile.by_tag.items() if r.action == "C" and r.option == "clean_descriptors"
                    and dictionary_vr(tag) in TEXT_VRS}
    texts = set()
    for s in samples.all:
        path = samples.root / s.relpath
        if path.stat().st_size > 30_000_000:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                terms = PhiTerms.from_dataset(ds)
                for tag in cleaned_tags:
                    value = ds.get(tag)
                    if value is not None and value.value:
                        for v in value.value if value.VM > 1 else [value.value]:
                            texts.add(terms.scrub(str(v))[0])  # the instance's own terms go first
            except Exception:
                continue
    return sorted(texts)


def test_most_words_of_real_descriptions_survive(samples):
    texts = _cleaned_texts(samples)
    words = kept = 0
    lost = []
    for text in texts:
        before = [w for w in _WORD.findall(text)]
        after = set(_WORD.findall(allowlisted(text)[0]))
        words += len(before)
        kept += sum(1 for w in before if w in after)
        lost += [w for w in before if w not in after]
    share = kept / words
    print(f"\nclean_descriptors on real files: {len(texts)} distinct texts, {words} words, {kept} kept "
          f"({share:.1%}); removed: {sorted(set(lost))}")
    assert len(texts) >= 40
    # Measured 89.0% (535 of 601 words; 77.0% before the context words, the UID and BIDS words). What goes
    # is mostly not clinical: people's names (Chen, Matthews, Halchenko, Yerkes), vendors and test suites
    # (OFFIS, IJG, MEDCOM, Phoenix, SmartScore), and abbreviations no source of the vocabulary spells (IVCON,
    # OBLI, MLUT, Omniscan, Echocardiogram). A floor that catches a vocabulary that shrinks.
    assert share >= 0.87


# Values that identify as a whole: nothing of them may stay but a connective ("and", "Inc", "Station" of an
# address). Values built from names: none of the generator's own first or last names may stay.
WHOLE = ("phone_number", "email", "date_us", "date_eu", "date_iso", "date_text", "mrn", "record", "postcode")
NAMED = ("name", "last_name", "first_name", "street_address", "city", "company")


def _values(fake) -> list[tuple[str, str]]:
    out = []
    for _ in range(60):
        out += [("name", fake.name()), ("last_name", fake.last_name()), ("first_name", fake.first_name()),
                ("street_address", fake.street_address()), ("city", fake.city()), ("company", fake.company()),
                ("phone_number", fake.phone_number()), ("email", fake.email()),
                ("date_us", fake.date(pattern="%m/%d/%Y")), ("date_eu", fake.date(pattern="%d.%m.%Y")),
                ("date_iso", fake.date(pattern="%Y-%m-%d")), ("date_text", fake.date(pattern="%d %b %Y")),
                ("mrn", fake.bothify("MRN ########")), ("record", fake.bothify("??#####")),
                ("postcode", fake.postcode())]
    return out


def _name_parts(fake) -> set[str]:
    parts = set()
    for provider in fake.providers:
        for attr in ("first_names", "last_names", "first_names_male", "first_names_female"):
            found = getattr(provider, attr, None)
            if found:
                parts |= {w.lower() for name in found for w in _WORD.findall(name)}
    return parts


# The rules were written while looking at the development set (seed 20261205, four locales) and, once, at a
# first held-out round (seed 20261211, twelve locales), whose misses taught the phone-extension, legal-form,
# particle and floor-word rules. The final held-out round (seed 20261219, sixteen locales, four of them never
# run before) was fixed before those rules were written and is only measured.
DEVELOPMENT = [(locale, 20261205) for locale in ("en_US", "de_DE", "en_GB", "fr_FR")]
LOCALES = ("en_US", "de_DE", "en_GB", "fr_FR", "it_IT", "es_ES", "nl_NL", "en_AU", "en_CA", "pl_PL", "pt_BR",
           "sv_SE")
FIRST_ROUND = [(locale, 20261211) for locale in LOCALES]
HELD_OUT = [(locale, 20261219) for locale in (*LOCALES, "da_DK", "cs_CZ", "fi_FI", "en_NZ")]
# A number of four digits alone is kept: it cannot be told from a measurement ("2000"). The postcodes of
# Australia, Denmark, New Zealand and others are such numbers; inside an address they go with the town or
# state next to them ("NSW 2000"), alone they stay.
BARE_FOUR_DIGITS = re.compile(r"[0-9]{4}")


def _leaks(locale: str, seed: int) -> tuple[int, list[tuple[str, str, list[str]]], list[str]]:
    """(values tried, values with a name part or number left, harmless name parts left)"""
    faker = pytest.importorskip("faker")
    fake = faker.Faker(locale)
    fake.seed_instance(seed)
    names = _name_parts(fake)
    leaked, residual = [], []
    values = _values(fake)
    for kind, value in values:
        out, _ = allowlisted(PhiTerms().scrub(f"CT CHEST {value} FOLLOW UP")[0])
        survivors = [w for w in _WORD.findall(value) if w in _WORD.findall(out)]
        if kind in WHOLE:
            bad = [w for w in survivors if w.upper() != "MRN" and any(c.isdigit() for c in w)]
        else:
            # A first name alone that is a common word of the vocabulary ("Philippine") names nobody.
            harmless = NAME_LIKE | (WORDS if kind == "first_name" else frozenset())
            bad = [w for w in survivors if (len(w) > 1 and w.lower() in names and w.lower() not in harmless
                                            and not re.fullmatch(r"[IVX]+", w))
                   or any(c.isdigit() for c in w)]
            residual += [w for w in survivors if w.lower() in names and w.lower() in harmless]
        if bad:
            leaked.append((kind, value, bad))
    return len(values), leaked, residual


@pytest.mark.parametrize(("locale", "seed"), DEVELOPMENT, ids=[f"{l}-{s}" for l, s in DEVELOPMENT])
def test_identifying_text_of_the_development_set_never_survives(locale, seed):
    tried, leaked, residual = _leaks(locale, seed)
    print(f"\n{locale}: {tried} identifying values, {len(leaked)} with a name part or number left: {leaked}; "
          f"{len(residual)} name parts that are words of the vocabulary kept: {sorted(set(residual))}")
    assert leaked == []


def test_identifying_text_held_out_is_measured():
    """The held-out rounds, measured: every miss is printed by kind; a bare four-digit postcode is counted
    apart. Measured at this change: first round 72 of 10,800 values (63 bare postcodes), final round 210 of
    14,400 (180 bare postcodes, 30 other: names that are common words in the locale's language such as
    "Per", "Mats", "Edit", "Maillot", and New Zealand's rural-delivery numbers "RD 10"); the allowlist before
    this change missed 429 and 613."""
    total = bare = 0
    other: list[tuple[str, str, str, list[str]]] = []
    for locale, seed in FIRST_ROUND + HELD_OUT:
        tried, leaked, _ = _leaks(locale, seed)
        total += tried
        for kind, value, words in leaked:
            if kind == "postcode" and all(BARE_FOUR_DIGITS.fullmatch(w) for w in words):
                bare += 1
            else:
                other.append((f"{locale}-{seed}", kind, value, words))
    print(f"\nheld out: {total} identifying values, {bare} bare four-digit postcodes kept, {len(other)} other "
          f"values with a name part or number left: {other}")
    # A ratchet on the measured misses (39 on both rounds): a rule that lets more through fails here.
    assert len(other) <= 39
    assert (bare + len(other)) / total <= 0.015


def test_a_cleaned_description_in_a_real_instance(ct):
    ct.StudyDescription = "CT THORAX W/O CONTRAST Jessica Miller 555-867-5309"
    ct.SeriesDescription = "AX 5mm LUNG ref ZX99812"
    out = read(deid(encode(ct), options=Options(clean_descriptors=True)))
    assert out.StudyDescription == f"CT THORAX W/O CONTRAST {PLACEHOLDER}"
    assert out.SeriesDescription == f"AX 5mm LUNG ref {PLACEHOLDER}"
