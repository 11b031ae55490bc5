"""What commands print: results on stdout (``--json``: exactly one JSON object), the person's
lines on stderr. Rich is imported only when something is drawn with it.

Everything printed here goes through :func:`outagecomms.terminal.terminal_safe`: a customer's
comment or name, a provider's reply or an alert's title cannot move the cursor, clear the screen
or retitle the terminal (``--json`` escapes them as JSON does)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from outagecomms.terminal import terminal_safe


class _LazyConsole:
    """Rich costs ~25 ms to import: scripts that only want ``--json`` should not pay for it."""

    def __init__(self, make: Callable[[], Any]):
        self._make = make
        self._console: Any = None

    def get(self) -> Any:
        """The real Rich console (for Progress, Live and anything that takes one)."""
        if self._console is None:
            self._console = self._make()
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


def _console_class() -> Any:
    """Rich's Console, printing strings with their control characters escaped (tables' cells
    are escaped by :func:`add_row`)."""
    from rich.console import Console

    class SafeConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            safe = (terminal_safe(o) if isinstance(o, str) else o for o in objects)
            super().print(*safe, **kwargs)

    return SafeConsole


def _make_out() -> Any:
    console_class = _console_class()
    console = console_class(highlight=False)
    if not console.is_terminal:
        # pipes and logs: do not squeeze tables to 80
        console = console_class(highlight=False, width=200)
    return console


def _make_err() -> Any:
    return _console_class()(stderr=True, highlight=False, soft_wrap=True)  # one error, one line


out: Any = _LazyConsole(_make_out)
err: Any = _LazyConsole(_make_err)


def escape(text: str) -> str:
    """Text from outside as Rich shows it literally: no markup, no control characters."""
    from rich.markup import escape as rich_escape

    return rich_escape(terminal_safe(text))


def write_out(text: str) -> None:
    """A document (``report``) on stdout as it is, but with no control characters."""
    sys.stdout.write(terminal_safe(text))


def Table(*columns: Any, **kwargs: Any) -> Any:
    from rich.table import Table as RichTable

    return RichTable(*columns, **kwargs)


def add_row(table: Any, *cells: str) -> None:
    """User data (names, titles) is shown literally, never read as Rich markup."""
    table.add_row(*(escape(c) for c in cells))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def note(plain: bool, text: str) -> None:
    """A line for the person on stderr; plain (no Rich to load) when a script asked for --json."""
    if plain:
        sys.stderr.write(terminal_safe(text) + "\n")
    else:
        err.print(escape(text))


def fmt_counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) or "none"
