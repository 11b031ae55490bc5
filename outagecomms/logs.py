"""Logging: readable lines on a terminal, one JSON object per line otherwise (journald, files,
log shippers). Log lines carry what happened and to which incident, never secrets or message
bodies (those stay in the store).

Lines that programs read (benchmarks, log shippers, alerting) are *events* (``log_event``): their
JSON form carries an ``event`` name and its numbers as keys, so a reader never parses the
wording of ``msg``, which is for people and may change."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from outagecomms.values import mask_url


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_url(record.getMessage()),
        }
        event = getattr(record, "event", None)
        if event:
            doc["event"] = event
            doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["exc"] = mask_url(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False)


def log_event(
    logger: logging.Logger, event: str, message: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log ``message`` at ``level`` (INFO) as the event ``event`` with ``fields``
    (JSON-serialisable)."""
    logger.log(level, "%s", message, extra={"event": event, "fields": fields})


class TerminalFormatter(logging.Formatter):
    """Readable lines, with control characters from outside (an alert's title, a provider's
    reply) escaped, so a log line cannot drive the terminal it is shown on, and every URL's
    password masked, like the JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        from outagecomms.terminal import terminal_safe

        return terminal_safe(mask_url(super().format(record)))


def setup_logging(*, verbose: bool = False, json_lines: bool | None = None) -> None:
    """Configure the root logger once per process."""
    handler = logging.StreamHandler(sys.stderr)
    as_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TerminalFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("apscheduler", "aiosmtplib", "alembic", "uvicorn", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
