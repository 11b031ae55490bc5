"""The one injectable clock of the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: where a test's clock starts unless it says otherwise (a Wednesday, 13:00:07 UTC: not on a
#: whole minute, so a promise shown "exactly" carries seconds)
START = datetime(2026, 11, 25, 13, 0, 7, tzinfo=UTC)


class FakeClock:
    """A clock the test moves: pass it as ``clock=`` to ``App``; calling it reads the time.

    ``now`` is the time it reads (set it, or :meth:`advance` it). With ``step`` set, every
    reading also advances it by ``step``, so the deliveries of one dispatch get different
    ``sent_at`` values, as a real fan-out does.
    """

    def __init__(self, now: datetime = START, *, step: timedelta = timedelta(0)) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> datetime:
        now = self.now
        self.now += self.step
        return now

    def advance(self, delta: timedelta | None = None, **kw: float) -> datetime:
        """Move the clock on by ``delta`` (or ``timedelta(**kw)``); returns the new time."""
        self.now += delta if delta is not None else timedelta(**kw)
        return self.now
