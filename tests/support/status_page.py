"""The status page tests' world: a small directory of unmistakable customers, a config with
``[status_page]`` on, and an ``outagecomms.App`` on the test's clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from outagecomms import App
from tests.fakes.clock import FakeClock

#: every value here must never appear on the page, in the feed or the JSON
CUSTOMERS = """\
id,name,email,tier,monthly_fee,currency,components,regions
cust-zebra-7731,Zebracorn Holdings Ltd,noc@zebracorn.example,enterprise,1000,EUR,api;database,eu-west
cust-quokka-5512,Quokkatron Analytics,it@quokkatron.example,standard,100,USD,auth;api,us-east
cust-narwhal-9090,Narwhalia Freight,ops@narwhalia.example,standard,100,USD,billing;database,us-east
"""
SECRETS = (
    "cust-zebra-7731", "Zebracorn", "noc@zebracorn.example",
    "cust-quokka-5512", "Quokkatron", "it@quokkatron.example",
    "cust-narwhal-9090", "Narwhalia", "ops@narwhalia.example",
)  # fmt: skip

STATUS_SECRET = "status-page-test-secret-0123456789"


def write_config(
    folder: Path, store_url: str, *, status_page: str = "enabled = true", extra: str = ""
) -> Path:
    (folder / "customers.csv").write_text(CUSTOMERS)
    path = folder / "outagecomms.toml"
    path.write_text(
        f"""
[store]
url = "{store_url}"

[company]
name = "S1 Technology"
support_email = "support@example.com"

[policy.default]
min_update_every = "1s"

[channels.email]
kind = "maildir"
path = "{folder / "maildir"}"
from = "S1 Support <support@example.com>"

[daemon]
public_url = "https://status.s1.example"

[components]
api = "Public API"
auth = "Sign-in"
database = "Managed Database"
billing = "Billing"

[status_page]
{status_page}
{extra}
"""
    )
    return path


@contextmanager
def status_app(folder: Path, store_url: str, clock: FakeClock, **kw: str) -> Iterator[App]:
    cfg = write_config(folder, store_url, **kw)
    with App.open(cfg, clock=clock) as app:
        app.import_customers(folder / "customers.csv")
        yield app


def at(clock: FakeClock, when: datetime) -> datetime:
    clock.now = when
    return when


class AsgiClient:
    """GETs against the Starlette app in-process (httpx's ASGI transport, one event loop per
    request): Starlette's TestClient wants another httpx package."""

    def __init__(self, asgi: Any) -> None:
        self.asgi = asgi

    def get(self, path: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                res = await c.get(path)
                await res.aread()
                return res

        return asyncio.run(fetch())
