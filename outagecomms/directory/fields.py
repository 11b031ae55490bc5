"""The rules one directory field obeys: sizes, fees, time zones, locales, currencies, domains.

Each check is pure and returns the normalised value or raises ``FieldProblem`` with the reason;
``parse.py`` turns that into an error naming the file, line (or item) and field. The limits are
documented in ``docs/import.md``; a test checks the two agree.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from functools import lru_cache

#: the most characters each field may have (before trimming)
MAX_CHARS: dict[str, int] = {
    "id": 200,
    "name": 200,
    "email": 254,  # RFC 5321's limit on a forward path, less the angle brackets
    "phone": 20,
    "slack_webhook": 2048,
    "teams_webhook": 2048,
    "webhook_url": 2048,
    "tier": 100,
    "monthly_fee": 40,
    "currency": 10,
    "components": 2000,
    "regions": 2000,
    "tags": 2000,
    "timezone": 64,
    "locale": 40,
    "channels": 2000,
    "account_manager": 254,
}
#: list fields (components, regions, tags, channels): at most this many names, each at most 100
MAX_ITEMS = 50
MAX_ITEM_CHARS = 100

#: the largest monthly fee, in the customer's currency (whatever its minor unit)
MAX_MONTHLY_FEE = Decimal(10) ** 12
#: a fee may have at most the currency's minor unit plus this many decimals (USD: 4, JPY: 2)
EXTRA_FEE_DECIMALS = 2

#: ISO 4217 codes that are not money a customer is billed in: no currency (XXX), testing (XTS),
#: precious metals, bond-market units, SDR and other settlement units
NOT_BILLABLE = frozenset(
    {"XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA",
     "XFO", "XFU", "XEU", "XRE", "XAD"}
)  # fmt: skip

#: names the zone database has that are not places: the machine's zone, aliases of the files
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_FEE = re.compile(r"(\d{1,20})(?:\.(\d{1,20}))?")


class FieldProblem(ValueError):
    """A value breaks its field's rule; ``str()`` is the reason."""


def check_size(field: str, value: str) -> None:
    limit = MAX_CHARS.get(field)
    if limit is not None and len(value) > limit:
        raise FieldProblem(f"is longer than {limit} characters ({len(value)})")


def parse_fee(text: str, places: int) -> Decimal:
    """A monthly fee written as plain decimal digits (no sign, no exponent, no separators), at
    most MAX_MONTHLY_FEE, at most ``places`` (the currency's minor unit) + 2 decimals."""
    m = _FEE.fullmatch(text)
    if m is None:
        raise FieldProblem(
            "must be a plain number >= 0 like 199.00 (digits and one '.'; no sign, exponent or "
            "thousands separator)"
        )
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > places + EXTRA_FEE_DECIMALS:
        raise FieldProblem(
            f"has more than {places + EXTRA_FEE_DECIMALS} decimals (the currency's "
            f"{places} plus {EXTRA_FEE_DECIMALS})"
        )
    fee = Decimal(f"{whole}.{frac}" if frac else whole)
    if fee > MAX_MONTHLY_FEE:
        raise FieldProblem(f"is more than the largest monthly fee, {MAX_MONTHLY_FEE:,}")
    return fee


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(
        z
        for z in available_timezones()
        if z not in _NOT_ZONES and not z.startswith(("posix/", "right/"))
    )


def check_zone(name: str) -> str:
    if name in _zones():
        return name
    if name in _NOT_ZONES or name.startswith(("posix/", "right/")):
        raise FieldProblem(
            "is a file of the time zone database, not a place's zone: use an IANA zone like "
            "Europe/Berlin or UTC"
        )
    raise FieldProblem("is not an IANA timezone like Europe/Berlin")


_CODESET = re.compile(r"^([A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*)\.[A-Za-z0-9_-]+$")


@lru_cache(maxsize=1024)
def normalise_locale(name: str) -> str:
    """A locale as Babel spells it (``en-us`` -> ``en_US``; ``en_US.UTF-8`` -> ``en_US``: the
    codeset says nothing about language). ``und``, ``root`` and POSIX modifiers (``@euro``)
    are refused: they are not one language and region."""
    from babel import Locale, UnknownLocaleError

    if "@" in name:
        raise FieldProblem(
            "has a POSIX modifier (@...); write the locale alone, like de_DE or sr_Latn_RS"
        )
    m = _CODESET.match(name)
    if m:
        name = m.group(1)
    name = name.replace("-", "_")
    lang = name.split("_", 1)[0].lower()
    if lang in ("und", "root", "c", "posix"):
        raise FieldProblem(f"{lang!r} is not a language; use a locale like en_US or de_DE")
    try:
        loc = Locale.parse(name)
    except (UnknownLocaleError, ValueError, TypeError):
        raise FieldProblem("is not a known locale like en_US or de_DE") from None
    if loc.language != lang:
        raise FieldProblem("is not a known locale like en_US or de_DE")
    return str(loc)


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies()) - NOT_BILLABLE


@lru_cache(maxsize=512)
def currency_places(code: str) -> int:
    """The currency's minor unit: USD 2, JPY 0, BHD 3."""
    from babel.numbers import get_currency_precision

    return int(get_currency_precision(code))


def check_currency(code: str) -> str:
    code = code.upper()
    if code in NOT_BILLABLE:
        raise FieldProblem("is not a currency customers are billed in (XXX, XTS, metals, ...)")
    if code not in _currencies():
        raise FieldProblem("is not an ISO 4217 currency code")
    return code


def _script(ch: str) -> str | None:
    """The script of a letter (LATIN, CYRILLIC, GREEK, ...); None for digits, hyphens, marks.
    Han, Hiragana and Katakana count as one (Japanese mixes them), as do Han and Hangul."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    word = unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
    if word in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC"):
        return "CJK"
    return word


def mixed_script_label(domain: str) -> str | None:
    """The first label of ``domain`` (Unicode form) that mixes scripts (``exаmple`` with a
    Cyrillic а among Latin letters), or None."""
    for label in domain.split("."):
        scripts = {s for s in map(_script, label) if s is not None}
        if len(scripts) > 1:
            return label
    return None


def describe_scripts(label: str) -> str:
    """``Latin and Cyrillic``"""
    scripts = sorted({s for s in map(_script, label) if s is not None})
    return " and ".join(s.title() for s in scripts)
