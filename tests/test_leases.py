"""Claims are renewed on a timer while a sender works: a send slower than the lease keeps its
claim (no second sender sends it too), and a sender that stops renewing frees its claims."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from outagecomms.app import App
from outagecomms.config.loader import load_config
from outagecomms.outbox.dispatch import Dispatcher
from outagecomms.store import outbox as outbox_db
from tests.fakes.channels import SlowChannel, register
from tests.fakes.smtp import SmtpServer


@pytest.fixture
def slow_kind(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return register(monkeypatch, SlowChannel)


def test_a_send_slower_than_the_lease_keeps_its_claim(
    tmp_path: Path,
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    cli: Any,
    slow_kind: list[str],
) -> None:
    cfg = make_config(
        smtp_server,
        extra='\n[policy.sev3]\nchannels = { default = ["slow"] }\n\n[channels.slow]\n'
        'kind = "slow-test"\nmax_connections = 1\n',
    )
    cfg.write_text(cfg.read_text().replace('lease = "20s"', 'lease = "1500ms"'))
    (tmp_path / "c.csv").write_text("id,name,email,components\nc1,One,one@example.com,api\n")
    assert cli("--config", str(cfg), "customers", "import", str(tmp_path / "c.csv")).exit_code == 0
    res = cli("--config", str(cfg), "declare", "Slow", "--severity", "sev3", "--component",
              "api", "--yes", "--queue-only", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr

    app = App.from_config(load_config(cfg))
    try:

        async def race() -> tuple[int, int]:
            first = Dispatcher(app)
            second = Dispatcher(app)
            one = asyncio.create_task(first.run())
            await asyncio.sleep(2.0)  # past the lease: only the renewal keeps the claim
            got = await second.run()  # a second sender finds nothing to take
            done = await one
            await first.close()
            await second.close()
            return done.sent, got.claimed

        sent, stolen = asyncio.run(race())
    finally:
        app.close()
    assert (sent, stolen) == (1, 0)
    assert slow_kind == ["one@example.com"]
    with App.from_config(load_config(cfg)).store.read() as conn:
        assert outbox_db.count_deliveries(conn, 1) == {"sent": 1}
