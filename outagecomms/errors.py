"""The one exception tree of outagecomms.

Every error a user can cause or act on is an ``OutageCommsError`` whose ``str()`` is a whole
sentence naming what is wrong and where (file, line, field, key)::

    OutageCommsError                 exit code 1 unless a subclass says otherwise
    ├── ConfigError                  bad or unknown config key / value (exit 2)
    ├── InputError                   bad user input: a file row, a flag, a duration (exit 2)
    ├── TemplateError                a template fails to load or render (exit 2)
    ├── NotFound                     an incident / customer that does not exist (exit 2)
    └── StateError                   an operation the current state forbids (exit 2)
        └── DuplicateIncident        declaring an outage that an open incident already covers
    └── StoreUnavailable             the store cannot take a write now: try later (exit 75)

A channel's failure to deliver is not an exception: a send returns a ``DeliveryResult``
(``sent`` / ``retry`` / ``failed``) so one recipient's outcome never aborts the others.

The library speaks of its own names: a field is ``started_at``, not the CLI's ``--started-at``.
A message names another field as ``{field:name}`` and another operation as ``{command:resolve}``;
``str(err)`` spells them as the library does (the name; the operation in backticks) and a
front end passes its own spelling to ``render``. The CLI maps the tree to exit codes and fields to its flags in
one place (``outagecomms.cli.exits``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

# (kind, name) -> how to show it: kind is "field" or "command"
Label = Callable[[str, str], str]

_REFERENCE = re.compile(r"\{(field|command):([^{}]+)\}")


def plain_label(kind: str, name: str) -> str:
    """The library's own spelling: a field by its name, an operation in backticks."""
    return f"`{name}`" if kind == "command" else name


#: at most this many characters of a bad value are quoted in an error
QUOTE_LIMIT = 80


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, shortened to about ``limit`` characters: a 10 MB bad value gives a short
    error line ("'aaaa...' (10485760 characters)")."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) > limit + 2:
        return text[:limit] + "..."
    return text


class OutageCommsError(Exception):
    """Base class: ``str(err)`` is a user-facing sentence (``render()`` with the library's
    spelling of the fields and operations it names)."""

    exit_code = 1

    def __init__(self, message: str = "") -> None:
        self.text = message  # with its {field:...} / {command:...} references
        super().__init__(self.render())

    def render(self, label: Label = plain_label) -> str:
        """The sentence, each ``{field:...}`` / ``{command:...}`` shown as ``label`` says."""
        return _REFERENCE.sub(lambda m: label(m[1], m[2]), self.text)


class ConfigError(OutageCommsError):
    """The configuration file or an environment variable it names is wrong."""

    exit_code = 2

    def __init__(self, message: str, *, path: Path | str | None = None, key: str | None = None):
        self.path = str(path) if path else None
        self.key = key
        where = ""
        if self.path and key:
            where = f"{self.path}: {key}: "
        elif self.path:
            where = f"{self.path}: "
        elif key:
            where = f"config key {key}: "
        super().__init__(f"{where}{message}")


class InputError(OutageCommsError):
    """User input is wrong; names the file and line and the field and value.

    Without a file, ``field`` is a parameter of the library call (``severity``, ``started_at``,
    ``components``); a front end shows its own name for it (the CLI: ``--severity``)."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
        item: int | None = None,
    ):
        self.file = str(file) if file else None
        self.line = line
        self.item = item  # 1-based position in a JSON array (its line may hold several)
        self.field = field
        self.value = value
        super().__init__(message)

    def render(self, label: Label = plain_label) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line is not None else self.file)
        if self.item is not None:
            parts.append(f"item {self.item}")
        if self.field:
            shown = self.field if self.file else label("field", self.field)
            parts.append(
                f"field {quote(shown)}"
                + (f" = {quote(self.value)}" if self.value is not None else "")
            )
        prefix = ": ".join(parts)
        reason = super().render(label)
        return f"{prefix}: {reason}" if prefix else reason


class TemplateError(OutageCommsError):
    """A template could not be loaded or rendered; names the template and line."""

    exit_code = 2

    def __init__(self, message: str, *, template: str | None = None, line: int | None = None):
        self.template = template
        self.line = line
        self.reason = message  # without "template <name>, line <n>: "
        where = template or "template"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"template {where}: {message}")


class NotFound(OutageCommsError):
    """An incident or customer named by the user does not exist."""

    exit_code = 2


class StateError(OutageCommsError):
    """The operation does not fit the current state (e.g. updating a resolved incident)."""

    exit_code = 2


class DuplicateIncident(StateError):
    """``declare`` of an outage an open incident already covers: the same or overlapping
    components and regions and customers already in its audience. ``incident`` is the open
    one (``INC-n``), ``covered`` how many of the ``of`` selected customers it already covers."""

    def __init__(self, message: str, *, incident: str, covered: int, of: int) -> None:
        self.incident = incident
        self.covered = covered
        self.of = of
        super().__init__(message)


class StoreUnavailable(OutageCommsError):
    """The store cannot take a write right now (database down, locked for too long): nothing
    was stored, the sender should try again later. ``inbound ingest`` exits 75 (EX_TEMPFAIL,
    which Postfix's ``pipe`` and procmail retry); the SMTP listener answers 451."""

    exit_code = 75
