"""The commander's words in several languages: ``--message`` in the company's default language
and, optionally, per language (``--message-de``, or ``--message-file`` with one section per
language).

A :class:`Message` is the default-language text (a ``str``, so every place that takes a round's
message takes it unchanged) carrying its translations. A customer whose language has a text reads
it; the others read the default text inside their own-language frame, with a line saying so in
their language (``rendering.templates``).

A message file::

    We are failing over the primary database.

    [de]
    Wir schalten auf die Ersatzdatenbank um.

    [fr_CA]
    Nous basculons vers la base de données de relève.

The text before the first ``[lang]`` line is the default language's (``--message`` may give it
instead); a section per language, named like the catalogs (``de``, ``fr_CA``, ``pt_BR``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from outagecomms.errors import InputError

#: the languages ``--message-<lang>`` options exist for: the shipped catalogs
CLI_LANGUAGES = ("de", "es", "fr", "fr_CA", "ja", "pt_BR")
_SECTION = re.compile(r"^\[([A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})?)\]\s*$")
_LANG = re.compile(r"^[a-z]{2,3}(?:_[A-Z][a-z]{3})?(?:_[A-Z]{2}|_\d{3})?$")


class Message(str):
    """The default-language text, with ``translations`` (language -> text)."""

    translations: Mapping[str, str]

    def __new__(cls, text: str, translations: Mapping[str, str] | None = None) -> Message:
        self = super().__new__(cls, text)
        self.translations = dict(translations or {})
        return self

    def __reduce__(self) -> tuple[object, ...]:  # pickled for the sender processes
        return (Message, (str(self), dict(self.translations)))


def normal_language(code: str, where: str) -> str:
    """``pt-br``/``pt_BR`` -> ``pt_BR``; ``de`` -> ``de``. Raises ``InputError`` naming
    ``where`` for what is no language code."""
    parts = code.replace("-", "_").split("_")
    name = "_".join(
        [parts[0].lower(), *(p.upper() if len(p) == 2 else p.title() for p in parts[1:])]
    )
    if not _LANG.match(name):
        raise InputError(f"{code!r} is not a language code like de, fr_CA or pt_BR", field=where)
    return name


def translations_of(message: str) -> Mapping[str, str]:
    return getattr(message, "translations", None) or {}


def with_translations(text: str, translations: Mapping[str, str]) -> str:
    """``text`` as a :class:`Message` when there are translations, else as it is."""
    kept = {k: v for k, v in translations.items() if v}
    return Message(text, kept) if kept else text


def read_message_file(path: Path) -> tuple[str, dict[str, str]]:
    """(default text, {language: text}) from a message file (see the module docstring).
    Raises ``InputError`` naming the file and line."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}", field="message_file"
        ) from None
    default: list[str] = []
    sections: dict[str, list[str]] = {}
    current = default
    for n, line in enumerate(raw.splitlines(), 1):
        m = _SECTION.match(line)
        if m:
            lang = normal_language(m.group(1), f"{path}:{n}")
            if lang in sections:
                raise InputError(f"{path}:{n}: [{lang}] appears twice", field="message_file")
            current = sections[lang] = []
            continue
        if line.lstrip().startswith("[") and line.rstrip().endswith("]"):
            raise InputError(
                f"{path}:{n}: {line.strip()!r} is not a language section like [de] or [fr_CA]",
                field="message_file",
            )
        current.append(line)
    texts = {k: "\n".join(v).strip() for k, v in sections.items()}
    empty = [k for k, v in texts.items() if not v]
    if empty:
        raise InputError(f"{path}: the [{empty[0]}] section is empty", field="message_file")
    return "\n".join(default).strip(), texts
