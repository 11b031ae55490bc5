"""Store access: engine set-up, migrations, and the queries the service layer needs.

All SQL is SQLAlchemy Core and portable; the only dialect-specific parts are chosen by
dialect name (upsert, ``FOR UPDATE SKIP LOCKED``, SQLite pragmas).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import OperationalError

from outagecomms.errors import ConfigError, NotFound, OutageCommsError
from outagecomms.models import (
    COPY_SUFFIX,
    ROUND_WIDE,
    Customer,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    Round,
    RoundKind,
    RoundStats,
    Selector,
)
from outagecomms.store import tables as t
from outagecomms.values import as_utc

HEAD_REVISION = "0005"
_CHUNK = 500


def chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class Store:
    """A database the whole tool shares. ``write()`` / ``read()`` give a transaction."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        try:
            self.engine: Engine = create_engine(url, echo=echo, future=True)
        except Exception as exc:  # bad URL, missing driver
            raise ConfigError(f"cannot open store {url!r}: {exc}", key="store.url") from None
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            self._setup_sqlite()

    def _setup_sqlite(self) -> None:
        db = self.engine.url.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event issue BEGIN so writers can take the lock up front.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # the timeout first: switching a new file to WAL needs a lock that another process
            # opening it at the same moment may hold
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = "DEFERRED" if conn.get_execution_options().get("readonly") else "IMMEDIATE"
            conn.exec_driver_sql(f"BEGIN {mode}")

    @property
    def sqlite_path(self) -> Path | None:
        db = self.engine.url.database
        if self.dialect == "sqlite" and db and db != ":memory:":
            return Path(db)
        return None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (on SQLite it takes the write lock at BEGIN)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(readonly=True) as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()

    # --- migrations ---------------------------------------------------------------------

    def current_revision(self) -> str | None:
        try:
            with self.read() as conn:
                row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        except OperationalError:
            return None
        except Exception:
            return None
        return row[0] if row else None

    def migrate(self) -> None:
        """Bring the schema to the newest revision (cheap when it already is)."""
        if self.current_revision() == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.attributes["engine"] = self.engine
        command.upgrade(cfg, "head")


def open_store(url: str, *, migrate: bool = True) -> Store:
    store = Store(url)
    if migrate:
        try:
            store.migrate()
        except OutageCommsError:
            raise
        except OperationalError as exc:
            raise ConfigError(f"cannot open store {url!r}: {exc.orig}", key="store.url") from None
    return store


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], key: str) -> None:
    name = conn.dialect.name
    dialect_insert: Any
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:  # pragma: no cover - portable fallback: delete then insert
        ids = [r[key] for r in rows]
        conn.execute(table.delete().where(table.c[key].in_(ids)))
        conn.execute(insert(table), rows)
        return
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[key],
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name != key},
    )
    conn.execute(stmt, rows)


# --- customers ------------------------------------------------------------------------------


def customer_to_row(c: Customer, now: datetime) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "slack_webhook": c.slack_webhook,
        "teams_webhook": c.teams_webhook,
        "webhook_url": c.webhook_url,
        "tier": c.tier,
        "monthly_fee": str(c.monthly_fee),
        "currency": c.currency,
        "components": list(c.components),
        "regions": list(c.regions),
        "tags": list(c.tags),
        "timezone": c.timezone,
        "locale": c.locale,
        "channels": list(c.channels),
        "account_manager": c.account_manager,
        "updated_at": now,
    }


def _row_to_customer(r: Any) -> Customer:
    return Customer(
        id=r.id,
        name=r.name,
        email=r.email,
        phone=r.phone,
        slack_webhook=r.slack_webhook,
        teams_webhook=r.teams_webhook,
        webhook_url=r.webhook_url,
        tier=r.tier,
        monthly_fee=Decimal(r.monthly_fee),
        currency=r.currency,
        components=tuple(r.components),
        regions=tuple(r.regions),
        tags=tuple(r.tags),
        timezone=r.timezone,
        locale=r.locale,
        channels=tuple(r.channels),
        account_manager=r.account_manager,
    )


def upsert_customers(
    conn: Connection, customers: Sequence[Customer], now: datetime, *, replace: bool = False
) -> tuple[int, int, int]:
    """Insert or update customers by id. Returns (created, updated, removed)."""
    existing = {r[0] for r in conn.execute(select(t.customers.c.id))}
    rows = [customer_to_row(c, now) for c in customers]
    for chunk in chunks(rows):
        _upsert(conn, t.customers, list(chunk), "id")
    new_ids = {c.id for c in customers}
    created = len(new_ids - existing)
    updated = len(new_ids & existing)
    clear_changed_flags(conn, customers)
    removed = 0
    if replace:
        gone = sorted(existing - new_ids)
        for chunk in chunks(gone):
            removed += conn.execute(
                t.customers.delete().where(t.customers.c.id.in_(chunk))
            ).rowcount
    return created, updated, removed


def all_customers(conn: Connection) -> list[Customer]:
    return [
        _row_to_customer(r) for r in conn.execute(select(t.customers).order_by(t.customers.c.id))
    ]


def get_customers(conn: Connection, ids: Iterable[str]) -> dict[str, Customer]:
    out: dict[str, Customer] = {}
    for chunk in chunks(sorted(set(ids))):
        for r in conn.execute(select(t.customers).where(t.customers.c.id.in_(chunk))):
            out[r.id] = _row_to_customer(r)
    return out


def count_customers(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.customers)).scalar_one())


# --- incidents ------------------------------------------------------------------------------


def _row_to_incident(r: Any) -> Incident:
    return Incident(
        id=r.id,
        title=r.title,
        severity=r.severity,
        status=IncidentStatus(r.status),
        components=tuple(r.components),
        regions=tuple(r.regions),
        selector=Selector.from_json(r.selector),
        started_at=as_utc(r.started_at),
        declared_at=as_utc(r.declared_at),
        resolved_at=as_utc(r.resolved_at),
        commander=r.commander,
        update_every=timedelta(seconds=r.update_every_s),
        next_update_due=as_utc(r.next_update_due),
        ack_due=as_utc(r.ack_due),
        reminded_for=as_utc(r.reminded_for),
        audience_size=r.audience_size,
        follow_up_due=as_utc(r.follow_up_due),
    )


@dataclass(frozen=True)
class IncidentRow:
    incident: Incident
    version: int
    skipped: dict[str, int]


def get_incident(conn: Connection, incident_id: int) -> IncidentRow:
    r = conn.execute(select(t.incidents).where(t.incidents.c.id == incident_id)).first()
    if r is None:
        raise NotFound(
            f"incident INC-{incident_id} does not exist; {{command:list --all}} shows them"
        )
    return IncidentRow(_row_to_incident(r), r.version, dict(r.skipped or {}))


def list_incidents(conn: Connection, *, include_resolved: bool = False) -> list[Incident]:
    q = select(t.incidents).order_by(t.incidents.c.id)
    if not include_resolved:
        q = q.where(t.incidents.c.status != IncidentStatus.RESOLVED.value)
    return [_row_to_incident(r) for r in conn.execute(q)]


def follow_ups_pending(conn: Connection) -> list[Incident]:
    """Resolved incidents whose follow-up has not gone out yet."""
    q = (
        select(t.incidents)
        .where(t.incidents.c.follow_up_due.is_not(None))
        .order_by(t.incidents.c.follow_up_due)
    )
    return [_row_to_incident(r) for r in conn.execute(q)]


def insert_incident(conn: Connection, values: dict[str, Any]) -> int:
    res = conn.execute(insert(t.incidents).values(**values).returning(t.incidents.c.id))
    return int(res.scalar_one())


def update_incident(conn: Connection, incident_id: int, version: int, **values: Any) -> bool:
    """Compare-and-set: applies only if nobody changed the incident since ``version``."""
    res = conn.execute(
        update(t.incidents)
        .where(t.incidents.c.id == incident_id, t.incidents.c.version == version)
        .values(version=t.incidents.c.version + 1, **values)
    )
    return res.rowcount == 1


def insert_audience(conn: Connection, incident_id: int, pairs: Sequence[tuple[str, str]]) -> None:
    rows = [{"incident_id": incident_id, "customer_id": c, "channel": ch} for c, ch in pairs]
    for chunk in chunks(rows, 5000):
        conn.execute(insert(t.audience), list(chunk))


def audience_customer_ids(conn: Connection, incident_id: int) -> list[str]:
    q = (
        select(t.audience.c.customer_id)
        .where(t.audience.c.incident_id == incident_id, t.audience.c.customer_id != ROUND_WIDE)
        .distinct()
        .order_by(t.audience.c.customer_id)
    )
    return [r[0] for r in conn.execute(q)]


def _customers_only(a: Any) -> Any:
    """Audience rows for the customers themselves: not the status page, not the account
    managers' copies (the follow-up asks customers only)."""
    return (a.c.customer_id != ROUND_WIDE) & ~a.c.channel.endswith(COPY_SUFFIX)


def audience_channels(
    conn: Connection, incident_id: int, *, customers_only: bool = False
) -> dict[str, int]:
    q = (
        select(t.audience.c.channel, func.count())
        .where(t.audience.c.incident_id == incident_id)
        .group_by(t.audience.c.channel)
    )
    if customers_only:
        q = q.where(_customers_only(t.audience))
    return {r[0]: int(r[1]) for r in conn.execute(q)}


# --- rounds and the outbox ------------------------------------------------------------------


def _row_to_round(r: Any) -> Round:
    return Round(
        id=r.id,
        incident_id=r.incident_id,
        seq=r.seq,
        kind=RoundKind(r.kind),
        message=r.message,
        status=IncidentStatus(r.status),
        created_at=as_utc(r.created_at),
        due_by=as_utc(r.due_by),
        promised_next_by=as_utc(r.promised_next_by),
    )


def insert_round_with_deliveries(
    conn: Connection,
    *,
    incident_id: int,
    kind: RoundKind,
    message: str,
    status: IncidentStatus,
    created_at: datetime,
    due_by: datetime | None,
    promised_next_by: datetime | None,
    queue: bool = True,
) -> Round:
    """Write a round and one pending delivery per audience (customer, channel): one statement.
    ``queue=False`` records the round only (nothing is sent).

    Pending deliveries of earlier update/holding rounds are superseded: a customer must not get
    a stale "next update by 14:30" after a newer message.
    """
    seq = conn.execute(
        select(func.coalesce(func.max(t.rounds.c.seq), 0) + 1).where(
            t.rounds.c.incident_id == incident_id
        )
    ).scalar_one()
    round_id = conn.execute(
        insert(t.rounds)
        .values(
            incident_id=incident_id,
            seq=seq,
            kind=kind.value,
            message=message,
            status=status.value,
            created_at=created_at,
            due_by=due_by,
            promised_next_by=promised_next_by,
        )
        .returning(t.rounds.c.id)
    ).scalar_one()
    if not queue:
        return _row_to_round(conn.execute(select(t.rounds).where(t.rounds.c.id == round_id)).one())
    if kind != RoundKind.ACKNOWLEDGEMENT:
        # an acknowledgement still waiting (its provider was down) would now arrive after
        # newer news with a stale "next update by": the new round reaches the customer instead
        stale = select(t.rounds.c.id).where(
            t.rounds.c.incident_id == incident_id,
            t.rounds.c.kind.in_(
                [RoundKind.ACKNOWLEDGEMENT.value, RoundKind.UPDATE.value, RoundKind.HOLDING.value]
            ),
            t.rounds.c.id != round_id,
        )
        conn.execute(
            update(t.deliveries)
            .where(
                t.deliveries.c.incident_id == incident_id,
                t.deliveries.c.status == DeliveryStatus.PENDING.value,
                t.deliveries.c.round_id.in_(stale),
            )
            .values(status=DeliveryStatus.SUPERSEDED.value, last_error=f"superseded by round {seq}")
        )
    src = select(
        t.audience.c.incident_id,
        literal(round_id, t.BigId),
        t.audience.c.customer_id,
        t.audience.c.channel,
        literal(DeliveryStatus.PENDING.value),
        literal(0),
        literal(created_at, t.TS),
    ).where(t.audience.c.incident_id == incident_id)
    if kind == RoundKind.FOLLOW_UP:
        src = src.where(_customers_only(t.audience))
    f = t.contact_flags
    src = src.where(
        ~exists().where(
            f.c.customer_id == t.audience.c.customer_id, f.c.channel == t.audience.c.channel
        )
    )
    conn.execute(
        insert(t.deliveries).from_select(
            [
                "incident_id",
                "round_id",
                "customer_id",
                "channel",
                "status",
                "attempts",
                "next_attempt_at",
            ],
            src,
        )
    )
    row = conn.execute(select(t.rounds).where(t.rounds.c.id == round_id)).one()
    return _row_to_round(row)


def count_round_deliveries(conn: Connection, incident_id: int, round_id: int) -> int:
    d = t.deliveries
    q = select(func.count()).where(d.c.incident_id == incident_id, d.c.round_id == round_id)
    return int(conn.execute(q).scalar_one())


def list_rounds(conn: Connection, incident_id: int) -> list[Round]:
    q = select(t.rounds).where(t.rounds.c.incident_id == incident_id).order_by(t.rounds.c.seq)
    return [_row_to_round(r) for r in conn.execute(q)]


def get_rounds(conn: Connection, round_ids: Iterable[int]) -> dict[int, Round]:
    ids = sorted(set(round_ids))
    if not ids:
        return {}
    return {
        r.id: _row_to_round(r) for r in conn.execute(select(t.rounds).where(t.rounds.c.id.in_(ids)))
    }


def round_stats(conn: Connection, incident_id: int) -> list[RoundStats]:
    d, r = t.deliveries, t.rounds
    on_time = func.sum(
        case(
            (and_(d.c.sent_at.is_not(None), r.c.due_by.is_not(None), d.c.sent_at <= r.c.due_by), 1),
            else_=0,
        )
    )
    q = (
        select(
            d.c.round_id,
            d.c.status,
            func.count(),
            on_time,
            func.min(d.c.sent_at),
            func.max(d.c.sent_at),
            func.sum(case((d.c.attempts > 0, 1), else_=0)),
        )
        .join(r, r.c.id == d.c.round_id)
        .where(d.c.incident_id == incident_id)
        .group_by(d.c.round_id, d.c.status)
    )
    acc: dict[int, dict[str, Any]] = {}
    empty = {"by_status": {}, "on_time": 0, "first": None, "last": None, "retrying": 0}
    for round_id, status, count, ontime, first, last, tried in conn.execute(q):
        a = acc.setdefault(round_id, {**empty, "by_status": {}})
        a["by_status"][status] = int(count)
        a["on_time"] += int(ontime or 0)
        if status == DeliveryStatus.PENDING.value:
            a["retrying"] = int(tried or 0)  # tried, failed for now, a retry is scheduled
        first, last = as_utc(first), as_utc(last)
        if first and (a["first"] is None or first < a["first"]):
            a["first"] = first
        if last and (a["last"] is None or last > a["last"]):
            a["last"] = last
    out = []
    for rnd in list_rounds(conn, incident_id):
        a = acc.get(rnd.id, {**empty, "by_status": {}})
        bs: dict[str, int] = a["by_status"]
        out.append(
            RoundStats(
                round=rnd,
                owed=sum(v for k, v in bs.items() if k != DeliveryStatus.SUPERSEDED.value),
                sent=bs.get("sent", 0),
                failed=bs.get("failed", 0) + bs.get("dead", 0),
                pending=bs.get("pending", 0) + bs.get("sending", 0),
                retrying=a["retrying"],
                on_time=a["on_time"],
                first_sent_at=a["first"],
                last_sent_at=a["last"],
                by_status=bs,
            )
        )
    return out


@dataclass(frozen=True)
class Claimed:
    id: int
    incident_id: int
    round_id: int
    customer_id: str
    channel: str
    attempts: int


def claim_deliveries(
    conn: Connection,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    incident_id: int | None = None,
    channels: Sequence[str] | None = None,
    not_owner_prefix: str | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries (pending, or 'sending' whose lease ran out).

    ``not_owner_prefix``: never take back what this very sender still has in flight."""
    d = t.deliveries
    expired = and_(d.c.status == DeliveryStatus.SENDING.value, d.c.lease_until < now)
    if not_owner_prefix is not None:
        expired = and_(expired, d.c.lease_owner.not_like(not_owner_prefix + "%"))
    due = or_(
        and_(d.c.status == DeliveryStatus.PENDING.value, d.c.next_attempt_at <= now),
        expired,
    )
    sub = select(d.c.id).where(due)
    if incident_id is not None:
        sub = sub.where(d.c.incident_id == incident_id)
    if channels is not None:
        sub = sub.where(d.c.channel.in_(list(channels)))
    sub = sub.order_by(d.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        sub = sub.with_for_update(skip_locked=True)
    ids = [r[0] for r in conn.execute(sub)]
    if not ids:
        return []
    conn.execute(
        update(d)
        .where(d.c.id.in_(ids))
        .values(
            status=DeliveryStatus.SENDING.value,
            lease_owner=owner,
            lease_until=now + lease,
            attempts=d.c.attempts + 1,
        )
    )
    q = select(
        d.c.id, d.c.incident_id, d.c.round_id, d.c.customer_id, d.c.channel, d.c.attempts
    ).where(d.c.id.in_(ids))
    return [Claimed(*r) for r in conn.execute(q.order_by(d.c.id))]


# Built once: the dispatcher writes each result promptly, so this runs once per few sends.
_RECORD_RESULT = (
    update(t.deliveries)
    .where(
        t.deliveries.c.id == bindparam("b_id"),
        t.deliveries.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        status=bindparam("b_status"),
        sent_at=bindparam("b_sent_at"),
        provider_id=bindparam("b_provider_id"),
        last_error=bindparam("b_last_error"),
        next_attempt_at=bindparam("b_next"),
        content=bindparam("b_content"),
        lease_owner=None,
        lease_until=None,
    )
)


def record_results(conn: Connection, owner: str, results: Sequence[dict[str, Any]]) -> int:
    """Write send outcomes for deliveries this owner still holds. Returns rows written.

    Each result dict: id, status, sent_at, provider_id, last_error, next_attempt_at, content.
    """
    if not results:
        return 0
    params = [
        {
            "b_id": r["id"],
            "b_owner": owner,
            "b_status": r["status"],
            "b_sent_at": r.get("sent_at"),
            "b_provider_id": r.get("provider_id"),
            "b_last_error": r.get("last_error"),
            "b_next": r.get("next_attempt_at"),
            "b_content": r.get("content"),
        }
        for r in results
    ]
    res = conn.execute(_RECORD_RESULT, params)
    return int(res.rowcount or 0)


def renew_lease(conn: Connection, owner: str, until: datetime) -> int:
    """Extend the lease on what this claim still holds (a long batch keeps its deliveries)."""
    d = t.deliveries
    res = conn.execute(
        update(d)
        .where(d.c.lease_owner == owner, d.c.status == DeliveryStatus.SENDING.value)
        .values(lease_until=until)
    )
    return int(res.rowcount or 0)


def release_leases(conn: Connection, owner_prefix: str) -> int:
    """Give back deliveries claimed by this process (graceful shutdown)."""
    d = t.deliveries
    res = conn.execute(
        update(d)
        .where(d.c.status == DeliveryStatus.SENDING.value, d.c.lease_owner.like(owner_prefix + "%"))
        .values(status=DeliveryStatus.PENDING.value, lease_owner=None, lease_until=None)
    )
    return int(res.rowcount or 0)


def next_pending_at(conn: Connection) -> datetime | None:
    """When the earliest pending delivery becomes due (None when there is none)."""
    d = t.deliveries
    v = conn.execute(
        select(func.min(d.c.next_attempt_at)).where(d.c.status == DeliveryStatus.PENDING.value)
    ).scalar_one()
    return as_utc(cast("datetime | None", v))


def count_deliveries(conn: Connection, incident_id: int | None = None) -> dict[str, int]:
    d = t.deliveries
    q = select(d.c.status, func.count()).group_by(d.c.status)
    if incident_id is not None:
        q = q.where(d.c.incident_id == incident_id)
    return {r[0]: int(r[1]) for r in conn.execute(q)}


def customer_deliveries(
    conn: Connection, incident_id: int, customer_id: str
) -> list[dict[str, Any]]:
    d, r = t.deliveries, t.rounds
    q = (
        select(d, r.c.seq, r.c.kind, r.c.due_by)
        .join(r, r.c.id == d.c.round_id)
        .where(d.c.incident_id == incident_id, d.c.customer_id == customer_id)
        .order_by(r.c.seq, d.c.channel)
    )
    out = []
    for row in conn.execute(q):
        m = dict(row._mapping)
        m["content"] = decode_content(m["content"])
        for k in ("sent_at", "due_by", "lease_until", "next_attempt_at"):
            m[k] = as_utc(m[k])
        out.append(m)
    return out


# --- contact flags -----------------------------------------------------------------------------


def flag_contacts(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Record contacts a provider refused for good (customer_id, channel, contact, reason,
    incident_id, flagged_at); a newer flag for the same pair replaces the older."""
    f = t.contact_flags
    for r in rows:
        conn.execute(
            delete(f).where(f.c.customer_id == r["customer_id"], f.c.channel == r["channel"])
        )
        conn.execute(insert(f).values(**r))


def _flags(conn: Connection, q: Any) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute(q):
        row = dict(r._mapping)
        row["flagged_at"] = as_utc(row["flagged_at"])
        out.append(row)
    return out


def contact_flags(conn: Connection, customer_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The flags on these customers' contacts."""
    f = t.contact_flags
    out: list[dict[str, Any]] = []
    for chunk in chunks(sorted(set(customer_ids))):
        out += _flags(conn, select(f).where(f.c.customer_id.in_(chunk)))
    return out


def incident_contact_flags(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    """The flags on contacts in an incident's audience (customer and channel), in order."""
    f, a = t.contact_flags, t.audience
    q = (
        select(f)
        .join(a, (a.c.customer_id == f.c.customer_id) & (a.c.channel == f.c.channel))
        .where(a.c.incident_id == incident_id)
        .order_by(f.c.customer_id, f.c.channel)
    )
    return _flags(conn, q)


def clear_changed_flags(conn: Connection, customers: Sequence[Customer]) -> int:
    """Drop the flags of contacts that a re-import changed: a new number deserves a try."""
    by_id = {c.id: c for c in customers}
    stale = []
    for flag in contact_flags(conn, by_id):
        c = by_id[flag["customer_id"]]
        current = {c.email, c.phone, c.slack_webhook, c.teams_webhook, c.webhook_url}
        if flag["contact"] not in current:
            stale.append((flag["customer_id"], flag["channel"]))
    f = t.contact_flags
    for cid, ch in stale:
        conn.execute(delete(f).where(f.c.customer_id == cid, f.c.channel == ch))
    return len(stale)


def encode_content(content: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(content, ensure_ascii=False).encode(), 1)


def decode_content(blob: bytes | None) -> dict[str, Any] | None:
    if not blob:
        return None
    return json.loads(zlib.decompress(blob))  # type: ignore[no-any-return]


def add_event(
    conn: Connection, incident_id: int | None, at: datetime, kind: str, detail: str = ""
) -> None:
    conn.execute(insert(t.events).values(incident_id=incident_id, at=at, kind=kind, detail=detail))


def list_events(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    q = (
        select(t.events)
        .where(t.events.c.incident_id == incident_id)
        .order_by(t.events.c.at, t.events.c.id)
    )
    return [{"at": as_utc(r.at), "kind": r.kind, "detail": r.detail} for r in conn.execute(q)]
