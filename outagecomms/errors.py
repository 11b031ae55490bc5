"""The one exception tree of outagecomms.

Every error a user can cause or act on is an ``OutageCommsError`` whose ``str()`` is a whole
sentence naming what is wrong and where (file, line, field, key)::

    OutageCommsError                 exit code 1 unless a subclass says otherwise
    ├── ConfigError                  bad or unknown config key / value (exit 2)
    ├── InputError                   bad user input: a file row, a flag, a duration (exit 2)
    ├── TemplateError                a template fails to load or render (exit 2)
    ├── NotFound                     an incident / customer that does not exist (exit 2)
    └── StateError                   an operation the current state forbids (exit 2)

A channel's failure to deliver is not an exception: a send returns a ``DeliveryResult``
(``sent`` / ``retry`` / ``failed``) so one recipient's outcome never aborts the others.

The CLI maps the tree to exit codes in one place (``outagecomms.cli``).
"""

from __future__ import annotations

from pathlib import Path


class OutageCommsError(Exception):
    """Base class: ``str(err)`` is a user-facing sentence."""

    exit_code = 1


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
    """User input is wrong; names the file and line (or flag) and the field and value."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
    ):
        self.file = str(file) if file else None
        self.line = line
        self.field = field
        self.value = value
        parts = []
        if self.file:
            parts.append(f"{self.file}:{line}" if line is not None else self.file)
        if field:
            parts.append(f"field {field!r}" + (f" = {value!r}" if value is not None else ""))
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class TemplateError(OutageCommsError):
    """A template could not be loaded or rendered; names the template and line."""

    exit_code = 2

    def __init__(self, message: str, *, template: str | None = None, line: int | None = None):
        self.template = template
        self.line = line
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
