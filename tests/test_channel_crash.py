"""A channel that raises something unexpected (a plugin's bug) costs one delivery a retry: the
other workers go on, and no lease is given back while its send is still in flight, so no
delivery goes out twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.incidents.lifecycle import declare
from outagecomms.models import Selector
from outagecomms.outbox.dispatch import Dispatcher
from outagecomms.store import outbox as outbox_db
from tests.fakes.channels import CrashingChannel, register

BOOM = CrashingChannel.BOOM
SLOW = ("two@example.com", "three@example.com", "four@example.com")
EMAILS = (BOOM, *SLOW)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_unexpected_exception_is_a_retry_and_nothing_is_sent_twice(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    make_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = register(monkeypatch, CrashingChannel)
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    cfg = make_config(
        store_url=url,
        extra='\n[policy.sev3]\nchannels = { default = ["crashing"] }\n\n'
        '[channels.crashing]\nkind = "crashing-test"\nmax_connections = 4\n',
    )
    (tmp_path / "c.csv").write_text(
        "id,name,email,components\n" + "".join(f"c{i},C{i},{e},api\n" for i, e in enumerate(EMAILS))
    )
    app = App.open(cfg)
    try:
        import_file(app, tmp_path / "c.csv")
        created = declare(
            app, title="Crash", severity="sev3", selector=Selector(components=("api",))
        )
        assert created.queued == len(EMAILS)

        async def dispatch_twice() -> tuple[int, int, int]:
            gate = CrashingChannel.arm(slow=len(SLOW))
            recorded = asyncio.Event()  # a result was written (the retry: the others wait)
            first = Dispatcher(app)
            run = asyncio.create_task(first.run(progress=lambda n, total: recorded.set()))
            waiter = asyncio.create_task(recorded.wait())
            # Before the fix, run() ended here with the exception, giving the slow sends'
            # leases back while they were still in flight. (The timeout only turns a
            # regression into a failure rather than a hang.)
            done, _ = await asyncio.wait(
                {run, waiter}, timeout=60, return_when=asyncio.FIRST_COMPLETED
            )
            assert not run.done(), "dispatch gave up while sends were still in flight"
            assert waiter in done, "the failed send's result was never written"
            gate.set()
            summary = await run
            await first.close()
            second = Dispatcher(app)  # another sender finds nothing to send again
            again = await second.run()
            await second.close()
            return summary.sent, summary.retry, again.sent

        assert asyncio.run(dispatch_twice()) == (len(SLOW), 1, 0)
        assert sorted(sent) == sorted(SLOW)  # each once
        with app.store.read() as conn:
            rows = {
                e: outbox_db.customer_deliveries(conn, created.incident.id, f"c{i}")[0]
                for i, e in enumerate(EMAILS)
            }
        assert rows[BOOM]["status"] == "pending"
        assert rows[BOOM]["last_error"] == "RuntimeError: the plugin tripped over its own feet"
        assert rows[BOOM]["next_attempt_at"] is not None
        assert {rows[e]["status"] for e in SLOW} == {"sent"}
        # the channel's author gets the traceback
        assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError]
    finally:
        app.close()
