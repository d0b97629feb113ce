"""Forgiving comparison of street names as people type them.

``street_key("Grand-Place")``, ``street_key("grand place")`` and ``street_key(" GRAND'PLACE ")``
are equal; so are "Rue Saint-Jean" and "r. St Jean", "Av. des Combattants" and "avenue des
combattants", "Stationsstr." and "Stationsstraat". Case, accents, hyphens, apostrophes,
dots and repeated spaces do not matter, and the usual abbreviations of Belgian street names
(French and Dutch) are expanded. Both sides of a comparison go through the same function.

:func:`loose_key` also drops articles and prepositions ("Rue de la Gare" → "rue gare"); it is
only used when the exact key finds nothing, and only when it designates one street.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[^0-9a-z]+")
_POSTCODE = re.compile(r"^(?:[bB][-\s]?)?([1-9][0-9]{3})$")
_HOUSE_NUMBER = re.compile(r"^(?P<street>.*?\D)\s*,?\s*\d+\s*[a-zA-Z]?(?:\s*(?:/|bte|bus|boite|box)\s*\w+)?$")

# Words and their abbreviations, mapped to one canonical spelling (after accents are removed).
_WORDS = {
    "r": "rue",
    "av": "avenue",
    "ave": "avenue",
    "bd": "boulevard",
    "bld": "boulevard",
    "boul": "boulevard",
    "bvd": "boulevard",
    "chee": "chaussee",
    "chaus": "chaussee",
    "pl": "place",
    "sq": "square",
    "imp": "impasse",
    "rte": "route",
    "che": "chemin",
    "chem": "chemin",
    "all": "allee",
    "st": "saint",
    "sint": "saint",
    "ste": "sainte",
    "dr": "docteur",
    "doct": "docteur",
    "gen": "general",
    "gal": "general",
    "lt": "lieutenant",
    "pres": "president",
    "bg": "burgemeester",
    "burg": "burgemeester",
    "stwg": "steenweg",
    "stw": "steenweg",
    "ln": "laan",
    "pln": "plein",
}
# Dutch streets end in a suffix that people abbreviate: Stationsstr. → Stationsstraat.
_SUFFIXES = (("str", "straat"), ("stwg", "steenweg"), ("ln", "laan"), ("pln", "plein"))
_ARTICLES = frozenset(
    {"de", "du", "des", "la", "le", "les", "l", "d", "a", "au", "aux", "en", "het", "van", "der", "den", "t"}
)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(character for character in decomposed if not unicodedata.combining(character))
    return plain.replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")


def _word(token: str) -> str:
    if token in _WORDS:
        return _WORDS[token]
    for short, full in _SUFFIXES:
        if len(token) > len(short) + 2 and token.endswith(short) and not token.endswith(full):
            return token[: -len(short)] + full
    return token


def street_key(name: str) -> str:
    """The form two spellings of the same street share."""
    tokens = _SEPARATORS.sub(" ", _fold(name)).split()
    return " ".join(_word(token) for token in tokens)


def loose_key(name: str) -> str:
    """:func:`street_key` without articles and prepositions (a fallback, see above)."""
    tokens = street_key(name).split()
    kept = [token for token in tokens if token not in _ARTICLES]
    return " ".join(kept or tokens)


def without_house_number(text: str) -> str | None:
    """``"Rue de la Station 12 bte 3"`` → ``"Rue de la Station"``; None when there is no
    trailing number (the caller already tried the text as it is)."""
    found = _HOUSE_NUMBER.match(text.strip())
    if found is None:
        return None
    street = found.group("street").strip(" ,")
    return street or None


def clean_postcode(text: str) -> str | None:
    """``" 4280"``, ``"B-4280"`` → ``"4280"``; None when it is not a Belgian postcode."""
    found = _POSTCODE.match(text.strip())
    return found.group(1) if found else None
