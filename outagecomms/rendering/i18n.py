"""Messages in the customer's own language: gettext catalogs (Babel's layout) and the
callables Jinja2's ``i18n`` extension looks up in a render's context.

Catalogs live in ``outagecomms/locale/<lang>/LC_MESSAGES/outagecomms.po``; the wheel carries
them compiled (``.mo``, built by ``hatch_build.py``), a checkout or an editable install
compiles the ``.po`` in memory at first use (once per process). A user's own catalogs
(``[templates] locale_dir``, the same layout, ``.po`` or ``.mo``) are merged over ours, so an
override template's new strings and a changed wording of ours both work.

The language a customer reads: their locale (``fr_CA``), its language (``fr``), the
company's default language (``[company] language``), then English, the msgids themselves.
A language counts as available when some catalog of it exists; a string missing from it
reads in English (a shipped catalog has none missing: tests/test_i18n_catalogs.py).
"""

from __future__ import annotations

import gettext as _gettext
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from outagecomms.errors import ConfigError

DOMAIN = "outagecomms"
#: the language of the msgids: always available, needs no catalog
SOURCE_LANGUAGE = "en"
#: the names the ``{% trans %}`` nodes call (looked up in the render's context)
CALLABLES = ("gettext", "ngettext", "pgettext", "npgettext")


def noop_pgettext(context: str, message: str) -> str:
    """Marks a Python-side string for extraction (``pybabel extract`` knows ``pgettext``
    with its context) without translating it: the catalog is chosen per render."""
    return message


def packaged_locale_dir() -> Path:
    """The packaged catalogs (wheel) or the repository's (editable install: the same
    folder, ``outagecomms/locale``)."""
    return Path(str(resources.files("outagecomms") / "locale"))


def language_of(locale: str) -> str:
    """``fr_CA`` -> ``fr``; ``de-AT`` -> ``de``; ``""`` -> ``""``."""
    return locale.replace("-", "_").split("_")[0].lower()


def candidates(locale: str) -> list[str]:
    """The catalog names a locale tries, most specific first: ``fr_CA`` then ``fr``."""
    norm = locale.replace("-", "_").split(".")[0].split("@")[0]
    lang = language_of(norm)
    if not lang:
        return []
    parts = norm.split("_")
    full = "_".join([lang, *(p.upper() if len(p) == 2 else p for p in parts[1:])])
    return [full, lang] if full != lang else [lang]


@lru_cache(maxsize=64)
def _mo_bytes(path: Path, mtime: float) -> bytes:
    """One catalog file compiled: a ``.mo`` as it is, a ``.po`` compiled in memory (once
    per process; ``mtime`` in the key: an edited catalog is read again). Its translations are
    checked first (:func:`check_placeholders`)."""
    with path.open("rb") as fh:
        catalog = read_mo(fh) if path.suffix == ".mo" else read_po(fh, domain=DOMAIN)
    check_placeholders(catalog, path)
    if path.suffix == ".mo":
        return path.read_bytes()
    buf = BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    return buf.getvalue()


#: what a translation may hold besides text: ``%(name)s`` and ``%%``
_PLACEHOLDER = re.compile(r"%(?:\((\w+)\)s|%)")


def check_placeholders(catalog: Catalog, path: Path) -> None:
    """Every ``%`` of a translation is ``%(name)s`` (a name its msgid has) or ``%%``: a
    ``%(name).3s`` would cut a customer's name apart, an unknown name fail every render."""
    for m in catalog:
        if not m.id:
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        known = {n for i in ids for n in _PLACEHOLDER.findall(i) if n} | {"num", "context"}
        strings = [m.string] if isinstance(m.string, str) else list(m.string or ())
        for text in strings:
            rest = _PLACEHOLDER.sub("", text or "")
            bad = [rest[rest.index("%") :][:12]] if "%" in rest else []
            bad += [f"%({n})s" for n in _PLACEHOLDER.findall(text or "") if n and n not in known]
            if bad:
                raise ConfigError(
                    f"the translation of {ids[0]!r} has {bad[0]!r}: only the msgid's"
                    " %(name)s placeholders (and %% for a percent sign) may appear",
                    path=path,
                )


def _catalog_file(root: Path, name: str) -> Path | None:
    folder = root / name / "LC_MESSAGES"
    for ext in (".mo", ".po"):
        path = folder / f"{DOMAIN}{ext}"
        if path.is_file():
            return path
    return None


class Catalogs:
    """The catalogs a renderer reads, ours first and the user's merged over them, and the
    language each locale resolves to. Thread-compatible; everything is cached."""

    def __init__(self, dirs: Sequence[Path] | None = None, *, default: str = SOURCE_LANGUAGE):
        #: searched in order, a later folder's strings win (ours, then the user's)
        self.dirs: tuple[Path, ...] = (
            (packaged_locale_dir(),) if dirs is None else tuple(Path(d) for d in dirs)
        )
        self.default = default or SOURCE_LANGUAGE
        self._by_name: dict[str, NullTranslations | None] = {}
        self._resolved: dict[str, str] = {}
        self._callables: dict[str, dict[str, Callable[..., Any]]] = {}

    @classmethod
    def with_user_dir(cls, user_dir: Path | None, *, default: str = SOURCE_LANGUAGE) -> Catalogs:
        dirs = [packaged_locale_dir()]
        if user_dir is not None:
            dirs.append(user_dir)
        return cls(dirs, default=default)

    def _catalog(self, name: str) -> NullTranslations | None:
        """The merged catalog named ``name`` (``de``, ``fr_CA``), None when no folder has it."""
        if name in self._by_name:
            return self._by_name[name]
        merged: Translations | None = None
        for root in self.dirs:
            path = _catalog_file(root, name)
            if path is None:
                continue
            found = Translations(BytesIO(_mo_bytes(path, path.stat().st_mtime)), domain=DOMAIN)
            if merged is None:
                merged = found
            else:
                merged.merge(found)  # the later folder's strings win
        self._by_name[name] = merged
        return merged

    def available(self, name: str) -> bool:
        return name == SOURCE_LANGUAGE or self._catalog(name) is not None

    def languages(self) -> list[str]:
        """Every catalog name the folders have (``de``, ``fr_CA``...), and English."""
        names = {SOURCE_LANGUAGE}
        for root in self.dirs:
            if root.is_dir():
                names.update(p.name for p in root.iterdir() if _catalog_file(root, p.name))
        return sorted(names)

    def resolve(self, locale: str) -> str:
        """The catalog a customer of ``locale`` reads: ``fr_CA``, else ``fr``, else the
        company default (its own ``de_AT`` -> ``de`` fallback too), else English."""
        got = self._resolved.get(locale)
        if got is None:
            got = SOURCE_LANGUAGE
            for name in [*candidates(locale), *candidates(self.default)]:
                if self._catalog(name) is not None:
                    got = name
                    break
                if language_of(name) == SOURCE_LANGUAGE:
                    break  # English reads the msgids (unless an en_GB catalog exists)
            self._resolved[locale] = got
        return got

    def translations(self, name: str) -> NullTranslations:
        return self._catalog(name) or NullTranslations()

    def callables(self, name: str) -> dict[str, Callable[..., Any]]:
        """``gettext``, ``ngettext``, ``pgettext``, ``npgettext`` as the ``{% trans %}``
        nodes call them (Jinja's "newstyle": they format ``%(name)s`` themselves and escape
        the values in an autoescaped template), for the catalog ``name``."""
        got = self._callables.get(name)
        if got is None:
            got = self._callables[name] = newstyle(self.translations(name))
        return got

    def for_locale(self, locale: str) -> dict[str, Callable[..., Any]]:
        return self.callables(self.resolve(locale))


def newstyle(t: _gettext.NullTranslations) -> dict[str, Callable[..., Any]]:
    """Jinja2's newstyle gettext callables over ``t`` (as ``install_gettext_translations(...,
    newstyle=True)`` makes them, but per render instead of in the environment's globals)."""

    def fmt(ctx: Context, rv: str, variables: dict[str, Any]) -> str:
        if ctx.eval_ctx.autoescape:
            return Markup(rv) % variables
        return rv % variables

    @pass_context
    def gettext(__context: Context, __string: str, **variables: Any) -> str:
        return fmt(__context, t.gettext(__string), variables)

    @pass_context
    def ngettext(
        __context: Context, __singular: str, __plural: str, __num: int, **variables: Any
    ) -> str:
        variables.setdefault("num", __num)
        return fmt(__context, t.ngettext(__singular, __plural, __num), variables)

    @pass_context
    def pgettext(__context: Context, __ctx: str, __string: str, **variables: Any) -> str:
        variables.setdefault("context", __ctx)
        return fmt(__context, t.pgettext(__ctx, __string), variables)

    @pass_context
    def npgettext(
        __context: Context,
        __ctx: str,
        __singular: str,
        __plural: str,
        __num: int,
        **variables: Any,
    ) -> str:
        variables.setdefault("context", __ctx)
        variables.setdefault("num", __num)
        return fmt(__context, t.npgettext(__ctx, __singular, __plural, __num), variables)

    return {
        "gettext": gettext,
        "ngettext": ngettext,
        "pgettext": pgettext,
        "npgettext": npgettext,
    }


def count_fallbacks(catalogs: Catalogs, locales: Iterable[str]) -> dict[str, int]:
    """Per locale whose language has no catalog: how many of ``locales`` (one per
    customer) read the company default language instead."""
    out: dict[str, int] = {}
    for loc in locales:
        if not is_served(catalogs, loc):
            out[loc] = out.get(loc, 0) + 1
    return out


def is_served(catalogs: Catalogs, locale: str) -> bool:
    """Whether a customer of ``locale`` reads their own language (a catalog of it, or
    English for an English locale)."""
    lang = language_of(locale)
    resolved = catalogs.resolve(locale)
    return language_of(resolved) == lang or (lang == SOURCE_LANGUAGE and resolved == lang)
