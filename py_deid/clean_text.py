"""Clean (C) as an allowlist: a cleaned text keeps a word only when it is known not to identify anyone.

PS3.15 E.1 defines C as replacing values with ones of similar meaning "known not to contain identifying
information". Removing the instance's own PHI terms is not enough (another person's name, a relative's
phone in an odd format, an ID that is not this patient's would all stay), so after those terms are gone each
word must earn its place: a word of the generated vocabulary (PS3.16 meanings, PS3.6 names, imaging and BIDS
abbreviations, common English; never a census first name or surname, see _standard/generate_vocabulary.py),
a single letter, a number without a PHI shape (at most 4 digits before a decimal point), or letters and short
numbers run together where every letter part is such a word ("T1W", "5mm", "fl2d"). Everything else becomes a
placeholder, and a run of placeholders one placeholder.

Some words are judged by their neighbours, because names come in runs: a common noun of the standard that is
also a surname ("Green", "Key", "Range") stays unless a removed word stands next to it; a name particle
("de", "van", "Da") next to a removed word goes with it; the word after a title ("Dr", "Frau") goes whatever
it is; a short number next to a removed word or a street word ("Flat 36C", "37, boulevard") is a house or
record number. Postcodes of the common formats go whole.
"""

from __future__ import annotations

import re
from functools import lru_cache

PLACEHOLDER = "***"
# A word: letters and digits of any script (so "Dinkelsbühl" is one word, not "Dinkelsb" and "hl"), with
# decimal parts.
_TOKEN = re.compile(r"[^\W_]+(?:\.[0-9]+)?")
_RUNS = re.compile(r"[^\W\d_]+|[0-9]+(?:\.[0-9]+)?")
_NUMBER = re.compile(r"[0-9]{1,4}(?:\.[0-9]+)?")
_DECIMAL = re.compile(r"[0-9]{1,3}\.[0-9]+")  # a measurement ("0.084906"), not "3789.5145"
# Numbers with two or more dots: dates, phone numbers, addresses (a measurement has one decimal point).
_DOTTED = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+){2,}(?![\w])")
# Short numbers run together with spaces, dots or dashes into seven digits or more: a phone number or an ID
# written in pieces, whatever the format.
_PIECES = re.compile(r"(?<![\w.])(?:\+\s?)?(?:\(?\d+\)?[ ./-]{0,3}){2,}\d+(?:\s*(?:x|ext\.?)\s*\d{1,5})?(?![\w])",
                     re.IGNORECASE)
# Postcodes whose shape is not a plain number of five digits or more (those go as numbers): UK (inward
# letters never C, I, K, M, O, V, so "T2 5MM" is not one), Canada, Ireland (Eircode), the Netherlands (two
# letters that are not a unit), and the hyphenated or split numeric forms (PL 00-950, PT 1000-001, BR and US
# ZIP+4, JP 100-0001, SE 113 51).
_POSTCODE = re.compile(
    r"(?<![\w.-])(?:"
    r"[A-Z]{1,2}[0-9][A-Z0-9]?\s?[0-9][ABD-HJLNP-UW-Z]{2}"
    r"|[A-Z][0-9][A-Z]\s?[0-9][A-Z][0-9]"
    r"|[AC-FHKNPRTV-Y][0-9][0-9W]\s?(?=[0-9A-Z]{0,3}[0-9])(?=[0-9A-Z]{0,3}[A-Z])[0-9A-Z]{4}"
    r"|[1-9][0-9]{3}\s?(?!MM|CM|MS|US|KV|HZ|SA|SD|SS|MA|ML|MG|KG)[A-Z]{2}"
    r"|[0-9]{2,5}-[0-9]{3,4}"
    r"|[0-9]{3} [0-9]{2}"
    r")(?![\w-])")
# A short number (a house or flat number may end in a letter) right before or after a word that was
# replaced: a house, suite or record number that goes with it ("6415 *** Station", "*** 302", "Flat 36C\n***").
_HOUSE = r"[0-9]{1,4}(?:\.[0-9]+|[A-Za-z])?"
_NEXT_TO_PLACEHOLDER = re.compile(rf"(?<![\w.]){_HOUSE}(?=[\s,./()+-]*\*{{3}})|(?<=\*{{3}})([\s,./()+-]*)"
                                  rf"{_HOUSE}(?![\w.])")
# Words of street addresses in the languages sites write: a short number before or after one is a house or
# flat number ("37, boulevard", "Flat 36", "Via Roma 12" once Roma is gone).
STREET_WORDS = frozenset("""
street road avenue boulevard lane drive way court place square terrace crescent close flat studio apartment
apt suite unit floor building house box pobox rue chemin allee impasse quai route cours via viale piazza
piazzale corso vicolo largo calle plaza paseo camino carrer rua travessa praca alameda rodovia estrada
strasse str weg gasse platz damm ufer chaussee straat laan plein gracht kade steeg dreef singel ulica ul
aleja plac osiedle gatan vagen gata vag vej gade postbus crest walkway parade circuit grove rise mews gardens
wharf esplanade highway motorway piso planta puerta escalera portal apto depto dpto etage wohnung whg andar
verdieping lgh lejl
""".split())
_NUMBER_STREET = re.compile(rf"(?<![\w.]){_HOUSE}(\s*,?\s*)(?:[A-Z][^\W\d_]*([ \t]+))?(?=([^\W\d_]+))")
_STREET_NUMBER = re.compile(rf"(?<![\w.])([^\W\d_]+)([ \t]+){_HOUSE}(?![\w.])")
# Titles before a name: the word after one goes whatever it is ("Dr Key", "Frau Weiß"). Written as titles
# are ("Dr", "DR."): "DR CHEST" is digital radiography and "MR" a modality.
_TITLE = re.compile(r"(?<![\w.])(?:(?:Dr|Dra|Drs|Mr|Mrs|Ms|Mx|Miss|Prof|Sir|Dame|Herr|Frau|Mme|Mlle|Sig|Sra|Dott)\.?"
                    r"|(?:DR|MRS|MS|PROF)\.)\s+([^\W\d_][\w'’-]*)")
# Particles of names, judged only next to a removed word ("*** de ***", "Da ***", "avenue de ***").
PARTICLES = frozenset("""
de del della delle dei degli di da das do dos du des d van von der den ter ten te la le los las y e bin ben
ibn al el zu zum zur af av mac mc st ste saint san santa o
""".split())
# A particle before a capitalised word ("Le Group", "van Loon") starts a name: both go.
_NAME_PARTICLE = re.compile(r"(?<![\w.])(?:De|Da|Das|Dos|Du|Des|Del|Della|Di|Van|Von|Der|Den|Ter|Ten|Le|La|Los|Las"
                            r"|Bin|Ibn|Al|El|Zu|Mac|Mc|San|Santa|Ste"
                            r"|de|da|das|dos|du|des|del|della|di|van|von|der|den|ter|ten)[ \t]+[A-Z][a-z][\w'’-]*")
# The extension after a phone number that was removed ("*** x591", "*** ext. 12").
_EXTENSION = re.compile(r"(?<=\*{3})[ \t]*(?:x|ext|extn)\.?[ \t]*[0-9]{1,5}(?![\w.])", re.IGNORECASE)
# A short word between two removed words ("*** and ***", "*** en ***", "*** y ***") is part of the same name.
_BETWEEN = re.compile(r"\*{3}[ \t,]+[^\W\d_]{1,3}[ \t,]+\*{3}")
# Legal forms after a company's name: the capitalised words before one are the name ("Gute Junken KG").
_LEGAL_FORM = re.compile(r"(?<![\w.])(?:&[ \t]*Co\.?[ \t]+)?(?:Inc|LLC|Ltd|PLC|plc|GmbH|AG|KG|KGaA|OHG|SA|S\.A|SARL|SAS"
                         r"|S\.A\.S|BV|B\.V|NV|N\.V|SpA|S\.p\.A|Srl|S\.r\.l|Oy|ASA|A/S|ApS|Pty)\b\.?")
_TITLE_WORD = re.compile(r"([^\W\d_][\w'’-]*)([ \t]*[,&]?[ \t]+)$")
# Words joined by hyphens are judged together: "Pius-Linke-Ring" is a street, "White-Wagner" a company, while
# "follow-up" and "T1-weighted" are known through and through.
_COMPOUND = re.compile(r"[^\W_]+(?:\.[0-9]+)?(?:-[^\W_]+(?:\.[0-9]+)?)+")
_PLACEHOLDERS = re.compile(r"\*{3}(?:[\s,;:^/_.&+-]*\*{3})+")
# A word kept only if no removed word stands next to it is marked while the text is judged.
_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKED = re.compile(f"{_OPEN}([^{_CLOSE}]*){_CLOSE}")
_SEPARATOR = r"[\s,;:^/_.()'’-]*"
_NEXT_TO_REMOVED = re.compile(rf"{_OPEN}[^{_CLOSE}]*{_CLOSE}(?={_SEPARATOR}\*{{3}})"
                              rf"|(?<=\*{{3}})({_SEPARATOR}){_OPEN}[^{_CLOSE}]*{_CLOSE}")
# A short number before a capitalised word that may be a surname ("6 Wright View") is a house number.
_NUMBER_NAME = re.compile(rf"(?<![\w.]){_HOUSE}(?=[ \t]+{_OPEN}[A-Z][a-z])")
MAX_MIXED = 10


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[frozenset[str], frozenset[str]]:
    from ._standard.vocabulary import CONTEXT, WORDS  # noqa: PLC0415 - 112,000 words: loaded when text is first cleaned

    return WORDS, CONTEXT


def _words() -> frozenset[str]:
    return _vocabulary()[0]


def known_word(token: str) -> bool:
    """Whether one token (letters, digits, or both run together) is known not to identify anyone."""
    words = _words()
    if token.isalpha():
        return (len(token) == 1 and token.isascii()) or token.lower() in words
    if _NUMBER.fullmatch(token):
        return True
    if len(token) > MAX_MIXED:
        return False
    for run in _RUNS.findall(token):
        if run[0].isalpha():
            if (len(run) > 1 or not run.isascii()) and run.lower() not in words:
                return False
        elif len(run.split(".")[0].split(",")[0]) > 3:
            return False
    return True


def context_word(token: str) -> bool:
    """Whether a token is kept only when no removed word stands next to it (a common noun that is also a
    name, or a name particle)."""
    lower = token.lower()
    return token.isalpha() and (lower in _vocabulary()[1] or lower in PARTICLES)


def allowlisted(text: str) -> tuple[str, int]:
    """text with every word that is not known to be safe replaced by the placeholder; (text, words replaced)."""
    removed = 0

    def placeholder(match: re.Match) -> str:
        nonlocal removed
        removed += 1
        return PLACEHOLDER

    def judge(match: re.Match) -> str:
        nonlocal removed
        token = match.group(0)
        if token.isalpha() and token.lower() in PARTICLES:
            return _OPEN + token + _CLOSE
        if known_word(token):
            return token
        if context_word(token):
            return _OPEN + token + _CLOSE
        removed += 1
        return PLACEHOLDER

    def pieces(match: re.Match) -> str:
        nonlocal removed
        if sum(c.isdigit() for c in match.group(0)) < 7 or _DECIMAL.fullmatch(match.group(0)):
            return match.group(0)
        removed += 1
        return PLACEHOLDER

    def compound(match: re.Match) -> str:
        nonlocal removed
        parts = match.group(0).split("-")
        if all(known_word(p) or context_word(p) for p in parts) and any(known_word(p) for p in parts):
            return match.group(0)
        removed += 1
        return PLACEHOLDER

    def title(match: re.Match) -> str:
        nonlocal removed
        removed += 1
        return match.group(0)[: match.start(1) - match.start(0)] + PLACEHOLDER

    def number_street(match: re.Match) -> str:
        nonlocal removed
        if _fold(match.group(3)) not in STREET_WORDS:
            return match.group(0)
        removed += 1  # the number, and the name of the street between it and the street word ("4 Mark Crest")
        return PLACEHOLDER + (match.group(2) or match.group(1))

    def street_number(match: re.Match) -> str:
        nonlocal removed
        if _fold(match.group(1)) not in STREET_WORDS:
            return match.group(0)
        removed += 1
        return match.group(1) + match.group(2) + PLACEHOLDER

    text = text.replace(_OPEN, "").replace(_CLOSE, "")
    out = _DOTTED.sub(placeholder, _PIECES.sub(pieces, text))
    out = _POSTCODE.sub(placeholder, out)
    out, legal = _legal_names(out)
    removed += legal
    out = _STREET_NUMBER.sub(street_number, _NUMBER_STREET.sub(number_street, _TITLE.sub(title, out)))
    out = _TOKEN.sub(judge, _COMPOUND.sub(compound, _NAME_PARTICLE.sub(placeholder, out)))
    out = _NUMBER_NAME.sub(placeholder, out)
    if PLACEHOLDER in out:  # also the placeholders of the PHI terms removed before

        def neighbour(match: re.Match) -> str:
            nonlocal removed
            removed += 1
            return (match.group(1) or "") + PLACEHOLDER

        def absorbed(match: re.Match) -> str:
            nonlocal removed
            removed += 1
            return ""

        # "Flat 5-8 ***", "Rose de la ***": each number or marked word joins the placeholder next to it.
        while True:
            before = out
            out = _NEXT_TO_REMOVED.sub(neighbour, out)
            out = _PLACEHOLDERS.sub(PLACEHOLDER, _NEXT_TO_PLACEHOLDER.sub(neighbour, out))
            out = _BETWEEN.sub(PLACEHOLDER, _EXTENSION.sub(absorbed, out))
            if out == before:
                break
    return _MARKED.sub(r"\1", out), removed


def _fold(word: str) -> str:
    """A street word without accents or case ("Allée", "Straße", "Vägen")."""
    return (word.lower().replace("ß", "ss").replace("é", "e").replace("ä", "a").replace("ç", "c")
            .replace("ö", "o").replace("å", "a"))


def _legal_names(text: str) -> tuple[str, int]:
    """Up to three capitalised words before a legal form ("Kallert Warmer Stiftung & Co. KGaA") replaced;
    (text, names replaced)."""
    out, end, replaced = [], 0, 0
    for match in _LEGAL_FORM.finditer(text):
        head = text[end:match.start()]
        words = 0
        while words < 3:
            found = _TITLE_WORD.search(head)
            if not found or not found.group(1)[0].isupper() or found.group(1).isupper():
                break
            head = head[: found.start()]
            words += 1
        if words:
            out.append(head + PLACEHOLDER + " ")
            replaced += 1
        else:
            out.append(text[end:match.start()])
        out.append(match.group(0))
        end = match.end()
    out.append(text[end:])
    return "".join(out), replaced
