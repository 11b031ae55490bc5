"""What is wrong right now in this process, for monitoring (``/healthz`` in the daemon): a
problem per check (``commander``: the last notice to the incident commander could not be
delivered), with its reason and since when, until the check succeeds again."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Problem:
    check: str
    reason: str
    since: datetime

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "reason": self.reason, "since": self.since.isoformat()}


@dataclass
class Health:
    """Thread-safe: the scheduler reports from worker threads, ``/healthz`` reads on the loop."""

    _problems: dict[str, Problem] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail(self, check: str, reason: str, at: datetime) -> None:
        """``check`` failed: a new reason replaces the old one, ``since`` stays the first."""
        with self._lock:
            earlier = self._problems.get(check)
            self._problems[check] = Problem(check, reason, earlier.since if earlier else at)

    def ok(self, check: str) -> None:
        with self._lock:
            self._problems.pop(check, None)

    def problems(self) -> list[Problem]:
        with self._lock:
            return sorted(self._problems.values(), key=lambda p: p.check)
