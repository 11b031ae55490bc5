"""What commands print: results on stdout (``--json``: exactly one JSON object), the person's
lines on stderr. Rich is imported only when something is drawn with it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


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


def _make_out() -> Any:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)  # pipes and logs: do not squeeze tables to 80
    return console


def _make_err() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line


out: Any = _LazyConsole(_make_out)
err: Any = _LazyConsole(_make_err)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


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
        sys.stderr.write(text + "\n")
    else:
        err.print(escape(text))


def fmt_counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) or "none"
