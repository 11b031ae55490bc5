"""The fixtures: an isolated user environment, a real SMTP server (aiosmtpd) on loopback that
records every message, the fake HTTP providers (module-scoped servers, emptied for each test),
a config written for a test, the CLI in-process, PostgreSQL schemas and the test's clock.

Fixtures only: the fakes themselves are in ``tests/fakes/``, other helpers in
``tests/support/``; test modules import those, never this file."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import outagecomms
from tests.fakes import webhook
from tests.fakes.apprise import JsonEndpoint
from tests.fakes.asgi import Fake, free_port, fresh, serve_fake
from tests.fakes.clock import FakeClock
from tests.fakes.providers import FakeProviders
from tests.fakes.smtp import SmtpServer, running_smtp
from tests.fakes.statuspage import FakeStatuspage
from tests.fakes.twilio import SID as TWILIO_SID
from tests.fakes.twilio import TOKEN as TWILIO_TOKEN
from tests.fakes.twilio import FakeTwilio
from tests.support.processes import CliResult, run_cli


@pytest.fixture(scope="session")
def _bytecode_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the CLI/daemon subprocesses of this run keep their compiled bytecode."""
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture(scope="session")
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$XDG_CACHE_HOME for the whole run: what is there (the compiled templates, keyed by their
    source's checksum) is the same for every test, and compiling them again in each test's
    fresh home cost more than most tests."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def isolated_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _bytecode_dir: Path, _cache_home: Path
) -> Path:
    """Every user path points into the test's temp dir; no OUTAGECOMMS_* leaks in."""
    home = tmp_path / "home"
    home.mkdir()
    for var in list(os.environ):
        if var.startswith("OUTAGECOMMS_"):
            monkeypatch.delenv(var)
    # CLI/daemon subprocesses import the very package under test, whatever PYTHONPATH said
    # (a relative one, or an editable install of another checkout, would silently differ)
    code = str(Path(outagecomms.__file__).resolve().parent.parent)
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([code, *rest]))
    # with PYTHONDONTWRITEBYTECODE set (as in some CI images) each of the hundreds of
    # subprocesses would compile the package from source again (~0.1 s of CPU each): they share
    # one bytecode cache for the run instead, outside the source tree
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(_bytecode_dir))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(_cache_home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture(autouse=True)
def english_messages(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process renders read English unless the test is marked ``catalogs``: most tests
    check what a message says (a promise, a duration) for the builders' de_DE customer in
    English words; tests of the languages themselves (tests/test_i18n*.py) take the
    shipped catalogs. Subprocesses (the CLI, a daemon) always load them."""
    if request.node.get_closest_marker("catalogs") is None:
        empty = tmp_path / "no-catalogs"
        empty.mkdir(exist_ok=True)
        monkeypatch.setattr("outagecomms.rendering.i18n.packaged_locale_dir", lambda: empty)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# --- config and CLI -----------------------------------------------------------------------------

CONFIG_TEMPLATE = """\
[store]
url = "{store_url}"

[company]
name = "S1 Technology"
status_page_url = "https://status.example.com"
support_email = "support@example.com"

[policy.default]
update_every = "30m"
min_update_every = "1s"
ack_within = "10m"
remind_before = "5m"
channels = {{ default = ["email"] }}

[channels.email]
kind = "smtp"
host = "{host}"
port = {port}
from = "S1 Support <support@example.com>"
max_connections = 4

[dispatch]
retry_base = "1s"
lease = "20s"

[daemon]
reconcile_every = "300ms"
min_margin = "1s"
{extra}
"""


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A SQLite store brought to the newest schema by the real migrations, once per run: a
    test's store starts as a copy of it (migrating a new file costs ~60 ms, a copy nothing)."""
    from outagecomms.store import open_store

    db = tmp_path_factory.mktemp("migrated") / "store.db"
    open_store(f"sqlite:///{db}").dispose()  # the last connection closes: no -wal is left
    assert not db.with_name("store.db-wal").exists()
    return db.read_bytes()


@pytest.fixture
def make_config(tmp_path: Path, _migrated_store: bytes) -> Callable[..., Path]:
    """``make_config(smtp_server, extra=..., name=..., store_url=..., migrated=True)``: a
    config file sending email to that server (or to a closed port), storing in the test's
    SQLite file. That file starts as a copy of a store the migrations made (mode 0600, as
    the store makes it); ``migrated=False`` leaves it to the code under test to create (the
    migrations from an empty store are tested through ``store_url`` and tests/test_store_files.py).
    """

    def make(
        server: SmtpServer | None = None,
        *,
        extra: str = "",
        name: str = "outagecomms.toml",
        store_url: str | None = None,
        migrated: bool = True,
    ) -> Path:
        db = tmp_path / "store.db"
        if store_url is None and migrated and not db.exists():
            fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(_migrated_store)
        path = tmp_path / name
        path.write_text(
            CONFIG_TEMPLATE.format(
                store_url=store_url or f"sqlite:///{db}",
                host=server.host if server else "127.0.0.1",
                port=server.port if server else free_port(),
                extra=extra,
            )
        )
        return path

    return make


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Run the CLI in-process (Typer's CliRunner) and return exit code, stdout, stderr."""
    return run_cli


# --- stores -------------------------------------------------------------------------------------

PG_URL = os.environ.get("OUTAGECOMMS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL for one test; skipped when none is reachable
    unless CI is set (in CI PostgreSQL must be there)."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test runs on each store: SQLite, then PostgreSQL (the store contract)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


# --- the fake HTTP providers: one server per module, emptied for each test ----------------------

F = TypeVar("F", bound=Fake)


def served(cls: type[F], name: str) -> Any:
    """A module-scoped fixture serving one ``cls()`` for the module's tests."""

    @pytest.fixture(scope="module")
    def serve() -> Iterator[F]:
        with serve_fake(cls(), name) as fake:
            yield fake

    return serve


def emptied(served_name: str, doc: str) -> Any:
    """A fixture giving the module's fake (the fixture ``served_name``) emptied for the test,
    for fakes that need nothing else set up (no credentials in the environment)."""

    def fixture(request: pytest.FixtureRequest) -> Iterator[Fake]:
        with fresh(request.getfixturevalue(served_name)) as fake:
            yield fake

    fixture.__doc__ = doc
    return pytest.fixture(fixture)


_providers = served(FakeProviders, "fake-providers")
providers = emptied(
    "_providers", "Slack, Teams and a webhook receiver on one loopback server (by path)."
)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """The webhook secret the receiver checks, in $TEST_WEBHOOK_SECRET."""
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", webhook.SECRET)
    return webhook.SECRET


_twilio = served(FakeTwilio, "fake-twilio")


@pytest.fixture
def twilio(_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    """The fake Twilio, emptied, with the account's credentials in $TEST_TWILIO_SID/_TOKEN."""
    monkeypatch.setenv("TEST_TWILIO_SID", TWILIO_SID)
    monkeypatch.setenv("TEST_TWILIO_TOKEN", TWILIO_TOKEN)
    with fresh(_twilio) as fake:
        yield fake


_page = served(FakeStatuspage, "fake-statuspage")


@pytest.fixture
def page(_page: FakeStatuspage, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStatuspage]:
    """The fake page, emptied, with a fresh API key in $TEST_STATUSPAGE_KEY (a fresh key per test
    also means a fresh rate limiter: limits are per key)."""
    key = secrets.token_hex(32)
    monkeypatch.setenv("TEST_STATUSPAGE_KEY", key)
    with fresh(_page) as fake:
        fake.keys.add(key)
        yield fake


_endpoint = served(JsonEndpoint, "fake-json-endpoint")
endpoint = emptied("_endpoint", "The JSON endpoint Apprise's ``json://`` posts to, emptied.")
