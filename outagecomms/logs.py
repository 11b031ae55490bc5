"""Logging: readable lines on a terminal, one JSON object per line otherwise (journald, files,
log shippers). Log lines carry what happened and to which incident, never secrets or message
bodies (those stay in the store)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(*, verbose: bool = False, json_lines: bool | None = None) -> None:
    """Configure the root logger once per process."""
    handler = logging.StreamHandler(sys.stderr)
    as_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("apscheduler", "aiosmtplib", "alembic", "uvicorn", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
