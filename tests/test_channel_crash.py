"""A channel that raises something unexpected (a plugin's bug) costs one delivery a retry: the
other workers go on, and no lease is given back while its send is still in flight, so no
delivery goes out twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.channels.base import Channel, DeliveryResult, OutboundMessage
from outagecomms.directory.importer import import_file
from outagecomms.incidents.lifecycle import declare
from outagecomms.models import Selector
from outagecomms.outbox.dispatch import Dispatcher
from outagecomms.store import outbox as outbox_db

BOOM = "boom@example.com"
SLOW = ("two@example.com", "three@example.com", "four@example.com")


class CrashingChannel(Channel):
    """Raises RuntimeError for BOOM once every other send is in flight; the others wait for
    ``gate``, so they are still sending when the error comes."""

    kind = "crashing-test"
    contact_field = "email"
    sent: ClassVar[list[str]] = []
    in_flight: ClassVar[int] = 0
    gate: ClassVar[asyncio.Event]
    waiting: ClassVar[asyncio.Event]  # every slow send is in flight

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        cls = CrashingChannel
        if message.to == BOOM:
            await cls.waiting.wait()
            raise RuntimeError("the plugin tripped over its own feet")
        cls.in_flight += 1
        if cls.in_flight == len(SLOW):
            cls.waiting.set()
        await cls.gate.wait()
        cls.sent.append(message.to)
        return DeliveryResult.sent(f"id-{message.delivery_id}")


@pytest.fixture
def crashing_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[CrashingChannel]]:
    CrashingChannel.sent, CrashingChannel.in_flight = [], 0
    monkeypatch.setitem(registry._loaded, "crashing-test", CrashingChannel)
    yield CrashingChannel


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_unexpected_exception_is_a_retry_and_nothing_is_sent_twice(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    make_config: Callable[..., Path],
    crashing_kind: type[CrashingChannel],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    cfg = make_config(
        store_url=url,
        extra='\n[policy.sev3]\nchannels = { default = ["crashing"] }\n\n'
        '[channels.crashing]\nkind = "crashing-test"\nmax_connections = 4\n',
    )
    (tmp_path / "c.csv").write_text(
        "id,name,email,components\n"
        + "".join(f"c{i},C{i},{e},api\n" for i, e in enumerate((BOOM, *SLOW), 1))
    )
    app = App.open(cfg)
    try:
        import_file(app, tmp_path / "c.csv")
        created = declare(
            app, title="Crash", severity="sev3", selector=Selector(components=("api",))
        )
        assert created.queued == 4

        async def dispatch_twice() -> tuple[int, int, int]:
            crashing_kind.gate = asyncio.Event()
            crashing_kind.waiting = asyncio.Event()
            recorded = asyncio.Event()  # a result was written (the retry: the others wait)
            first = Dispatcher(app)
            run = asyncio.create_task(first.run(progress=lambda n, total: recorded.set()))
            waiter = asyncio.create_task(recorded.wait())
            # Before the fix, run() ended here with the exception, giving the slow sends'
            # leases back while they were still in flight.
            await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
            assert not run.done(), "dispatch gave up while sends were still in flight"
            crashing_kind.gate.set()
            summary = await run
            await first.close()
            second = Dispatcher(app)  # another sender finds nothing to send again
            again = await second.run()
            await second.close()
            return summary.sent, summary.retry, again.sent

        sent, retry, sent_again = asyncio.run(dispatch_twice())
        assert (sent, retry, sent_again) == (3, 1, 0)
        assert sorted(crashing_kind.sent) == sorted(SLOW)  # each once
        with app.store.read() as conn:
            rows = {
                r["to"]: r
                for r in (
                    outbox_db.customer_deliveries(conn, created.incident.id, f"c{i}")[0] | {"to": e}
                    for i, e in enumerate((BOOM, *SLOW), 1)
                )
            }
        assert rows[BOOM]["status"] == "pending"
        assert rows[BOOM]["last_error"] == "RuntimeError: the plugin tripped over its own feet"
        assert rows[BOOM]["next_attempt_at"] is not None
        assert {rows[e]["status"] for e in SLOW} == {"sent"}
        # the channel's author gets the traceback
        assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError]
    finally:
        app.close()
