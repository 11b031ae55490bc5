"""Files outagecomms writes for people (exports, reports) and messages it keeps (a Maildir):
created with a private mode whatever the umask, because they hold personal data (names,
addresses, amounts) and, in messages, feedback links valid for 30 days.

The store's SQLite file is created ``0600`` by ``store.engine``; exports and reports here
``0640`` (:data:`EXPORT_MODE`: the owner's group may read them, e.g. billing), Maildir messages
``0600``. A file that already exists keeps its mode only if it is no more open than that.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

#: exports (credit CSVs) and reports
EXPORT_MODE = 0o640
#: what only the owner reads: Maildir messages (and the store, in store.engine)
PRIVATE_MODE = 0o600


@contextmanager
def open_private(
    path: Path | str, mode: int = EXPORT_MODE, *, newline: str | None = None
) -> Iterator[IO[str]]:
    """Open ``path`` for writing text (UTF-8, truncated), created with ``mode``; an existing
    file more open than ``mode`` is narrowed to it before anything is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        current = os.fstat(fd).st_mode & 0o777
        if current & ~mode:
            os.fchmod(fd, current & mode)
        fh = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh


def write_private(path: Path | str, text: str, mode: int = EXPORT_MODE) -> None:
    """Write ``text`` to ``path`` as :func:`open_private` does."""
    with open_private(path, mode) as fh:
        fh.write(text)
