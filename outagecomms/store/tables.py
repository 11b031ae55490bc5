"""The schema (SQLAlchemy Core). Portable: SQLite by default, PostgreSQL later.

Changes to these tables are Alembic migrations in ``store/migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so autoincrementing) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
TS = DateTime(timezone=True)


def _id() -> Column[int]:
    """A surrogate key the database assigns."""
    return Column("id", BigId, primary_key=True, autoincrement=True)


def _incident(*, nullable: bool = False, primary_key: bool = False) -> Column[int]:
    """The incident a row belongs to."""
    return Column(
        "incident_id",
        BigId,
        ForeignKey("incidents.id"),
        nullable=nullable,
        primary_key=primary_key,
    )


def _customer_key() -> Column[str]:
    """Part of the primary key: one row per customer (and incident, or channel)."""
    return Column("customer_id", String(200), primary_key=True)


customers = Table(
    "customers",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("email", String(320), nullable=False, default=""),
    Column("phone", String(32), nullable=False, default=""),
    Column("slack_webhook", Text, nullable=False, default=""),
    Column("teams_webhook", Text, nullable=False, default=""),
    Column("webhook_url", Text, nullable=False, default=""),
    Column("tier", String(100), nullable=False),
    Column("monthly_fee", String(40), nullable=False, default="0"),  # exact Decimal as text
    Column("currency", String(3), nullable=False),
    Column("components", JSON, nullable=False),
    Column("regions", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("locale", String(32), nullable=False),
    Column("channels", JSON, nullable=False),
    Column("account_manager", String(320), nullable=False, default=""),
    Column("updated_at", TS, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    _id(),
    Column("title", String(500), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("components", JSON, nullable=False),
    Column("regions", JSON, nullable=False),
    Column("selector", JSON, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("declared_at", TS, nullable=False),
    Column("resolved_at", TS, nullable=True),
    Column("commander", String(200), nullable=False, default=""),
    Column("update_every_s", Float, nullable=False),
    Column("next_update_due", TS, nullable=True),
    Column("ack_due", TS, nullable=False),
    Column("reminded_for", TS, nullable=True),
    Column("audience_size", Integer, nullable=False, default=0),
    Column("follow_up_due", TS, nullable=True),  # set at resolution; cleared when sent
    Column("skipped", JSON, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Index("ix_incidents_status", "status"),
)

audience = Table(
    "audience",
    metadata,
    _incident(primary_key=True),
    _customer_key(),
    Column("channel", String(100), primary_key=True),
)

rounds = Table(
    "rounds",
    metadata,
    _id(),
    _incident(),
    Column("seq", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("due_by", TS, nullable=True),
    Column("promised_next_by", TS, nullable=True),
    # the commander's words in other languages ({language: text}; incidents.messages)
    Column("translations", JSON, nullable=True),
    UniqueConstraint("incident_id", "seq", name="uq_rounds_incident_seq"),
)

deliveries = Table(
    "deliveries",
    metadata,
    _id(),
    _incident(),
    Column("round_id", BigId, ForeignKey("rounds.id"), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("provider_id", String(500), nullable=True),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_until", TS, nullable=True),
    Column("next_attempt_at", TS, nullable=True),
    Column("sent_at", TS, nullable=True),
    Column("content", LargeBinary, nullable=True),  # zlib(JSON) of exactly what was sent
    UniqueConstraint("incident_id", "round_id", "customer_id", "channel", name="uq_deliveries_key"),
    Index("ix_deliveries_claim", "status", "next_attempt_at"),
    Index("ix_deliveries_customer", "incident_id", "customer_id"),
    # for /metrics (migration 0005): margins are ranges of (round_id, sent_at), and a round's
    # deliveries by outcome are read through it too
    Index("ix_deliveries_round_sent", "round_id", "sent_at"),
)

events = Table(
    "events",
    metadata,
    _id(),
    _incident(nullable=True),
    Column("at", TS, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_events_incident", "incident_id", "at"),
)

credits = Table(
    "credits",
    metadata,
    _incident(primary_key=True),
    _customer_key(),
    Column("amount", String(40), nullable=False),  # exact Decimal as text, rounded once
    Column("currency", String(3), nullable=False),
    Column("lines", JSON, nullable=False),  # [{"rule", "amount", "detail"}]
    Column("goodwill", Text, nullable=False, default=""),  # the "something extra" offered
    Column("status", String(10), nullable=False),  # proposed | review | approved | exported
    Column("computed_at", TS, nullable=False),
    Column("approved_at", TS, nullable=True),
    Column("approved_by", String(200), nullable=True),  # "auto" under auto_approve_up_to
    # a person's decision (credits --adjust): who, when, why, and the engine's own figure
    Column("adjusted_by", String(200), nullable=True),
    Column("adjusted_at", TS, nullable=True),
    Column("adjust_reason", Text, nullable=True),
    Column("computed_amount", String(40), nullable=True),
    # what the customer was told (a resolution or credit notice queued with it): never
    # changed silently (see recovery.ledger)
    Column("announced_at", TS, nullable=True),
    Column("announced_amount", String(40), nullable=True),
    Column("announced_goodwill", Text, nullable=True),
    Column("corrects", String(40), nullable=True),  # the announced amount a correction replaces
)

feedback = Table(
    "feedback",
    metadata,
    _incident(primary_key=True),
    _customer_key(),
    Column("score", Integer, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("source", String(20), nullable=False),  # link | manual
    Column("received_at", TS, nullable=False),
)

# Incidents proposed by monitoring alerts (POST /hooks/...). ``dedup_key`` is a hash of
# (source, group key, rule): at most one *open* draft per key (the partial unique index), so a
# repeated or concurrent alert refreshes the draft instead of adding one.
drafts = Table(
    "drafts",
    metadata,
    _id(),
    Column("source", String(20), nullable=False),  # alertmanager | generic
    Column("dedup_key", String(64), nullable=False),
    Column("group_key", Text, nullable=False),
    Column("rule", String(200), nullable=False, default=""),
    Column("title", String(500), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("components", JSON, nullable=False),
    Column("regions", JSON, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("url", Text, nullable=False, default=""),
    Column("status", String(10), nullable=False),  # open | declared | dismissed
    Column("alert_state", String(10), nullable=False),  # firing | resolved
    Column("update_every_s", Float, nullable=True),
    Column("commander", String(200), nullable=False, default=""),
    Column("started_at", TS, nullable=False),
    Column("first_seen", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
    Column("resolved_at", TS, nullable=True),
    Column("times_seen", Integer, nullable=False, default=1),
    Column("alerts", Integer, nullable=False, default=1),
    _incident(nullable=True),
    Column("note", Text, nullable=False, default=""),
    Index(
        "uq_drafts_open_key",
        "dedup_key",
        unique=True,
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
    Index("ix_drafts_key", "dedup_key", "id"),
    Index("ix_drafts_status", "status", "id"),
)


contact_flags = Table(
    "contact_flags",
    metadata,
    _customer_key(),
    Column("channel", String(100), primary_key=True),
    Column("contact", Text, nullable=False),  # the refused address/number itself
    Column("reason", Text, nullable=False),  # e.g. "twilio 21610: ... opted out"
    Column("incident_id", BigId, nullable=True),
    Column("flagged_at", TS, nullable=False),
)


#: a customer's incident page links issued before ``revoked_before`` are refused (``page revoke``)
page_revocations = Table(
    "page_revocations",
    metadata,
    _customer_key(),
    Column("revoked_before", TS, nullable=False),
    Column("revoked_by", String(200), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
)


#: /metrics figures of a settled round (no delivery pending or being sent), computed once: such
#: a round only changes through ``deliveries retry`` (requeue, supersede), which drops its row.
round_tallies = Table(
    "round_tallies",
    metadata,
    Column("round_id", BigId, ForeignKey("rounds.id"), primary_key=True),
    Column("bounds", String(200), nullable=False),  # the histogram bounds these were counted for
    Column("outcomes", Text, nullable=False),  # JSON [[channel, status, n], ...]
    Column("ranges", Text, nullable=True),  # JSON margin counts between bounds; null: no promise
    Column("extra", Integer, nullable=False, default=0),
    Column("margin_sum", Float, nullable=False, default=0.0),
)


# --- what customers send back (issue 12: outagecomms.inbound) -----------------------------------

#: Every message that came in (email by SMTP/LMTP/IMAP/pipe, SMS by Twilio's webhook), stored as
#: received (``raw``, zlib) before anything else happens: ``status`` is ``received`` until it is
#: classified and matched (``processed``). ``digest`` makes a second delivery of the same
#: message (same Message-ID and content) a no-op. ``customer_id`` NULL: unmatched.
inbound = Table(
    "inbound",
    metadata,
    _id(),
    Column("received_at", TS, nullable=False),
    Column("source", String(10), nullable=False),  # smtp | lmtp | imap | pipe | twilio
    Column("channel", String(20), nullable=False),  # email | sms
    Column("digest", String(64), nullable=False),
    Column("message_id", Text, nullable=False, default=""),
    Column("sender", Text, nullable=False, default=""),  # From address or phone number
    Column("recipients", JSON, nullable=False),  # envelope RCPT TO (or the number texted)
    Column("subject", Text, nullable=False, default=""),
    Column("raw", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("status", String(10), nullable=False),  # received | processed
    Column("kind", String(12), nullable=True),  # reply | auto_reply | bounce
    Column("reason", Text, nullable=False, default=""),  # why that kind
    Column("parse_note", Text, nullable=False, default=""),
    _incident(nullable=True),
    Column("round_id", BigId, nullable=True),
    Column("customer_id", String(200), nullable=True),
    Column("delivery_id", BigId, nullable=True),  # the message of ours it answers
    Column("matched_by", String(10), nullable=False, default=""),  # token|thread|bounce|phone
    Column("unmatched_reason", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),  # their words: quotes, signature gone
    Column("language", String(16), nullable=True),
    Column("sentiment", Float, nullable=True),  # -1..1; NULL: not scored (language, kind)
    Column("label", String(10), nullable=True),  # negative | neutral | positive
    Column("needs_person", Integer, nullable=False, default=0),  # not scored: read it
    Column("escalated_at", TS, nullable=True),
    Column("escalation", JSON, nullable=True),  # {"rule", "why", "to"}
    Column("acknowledged_at", TS, nullable=True),
    Column("responded_at", TS, nullable=True),
    Column("bounce", JSON, nullable=True),  # {"permanent", "status", "action", ...}
    Column("processed_at", TS, nullable=True),
    UniqueConstraint("digest", name="uq_inbound_digest"),
    Index("ix_inbound_incident", "incident_id", "received_at"),
    Index("ix_inbound_status", "status", "id"),
    Index("ix_inbound_received", "received_at"),
)

#: What outagecomms sends because of an inbound message: escalations (account manager,
#: commander, extra addresses, webhooks), the short acknowledgement to a person who wrote, and
#: a person's ``respond``. A small outbox of its own (these are not rounds): pending until a
#: channel accepted it, retried with a growing delay. ``dedup`` keeps "at most one automatic
#: message of ours per customer per round".
inbound_sends = Table(
    "inbound_sends",
    metadata,
    _id(),
    Column("inbound_id", BigId, nullable=True),
    _incident(nullable=True),
    Column("customer_id", String(200), nullable=False, default=""),
    Column("kind", String(20), nullable=False),  # escalation | acknowledgement | response
    Column("channel", String(100), nullable=False),  # a configured channel, or "http"
    Column("to", Text, nullable=False),
    Column("subject", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("headers", JSON, nullable=False),
    Column("message_id", Text, nullable=False, default=""),
    Column("dedup", String(200), nullable=True),
    Column("status", String(10), nullable=False),  # pending | sending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TS, nullable=False),
    Column("lease_until", TS, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False, default=""),
    Column("sent_at", TS, nullable=True),
    UniqueConstraint("dedup", name="uq_inbound_sends_dedup"),
    Index("ix_inbound_sends_due", "status", "next_attempt_at"),
    Index("ix_inbound_sends_inbound", "inbound_id"),
)


# --- scheduled maintenance (issue 15: outagecomms.maintenance) ----------------------------------

#: A maintenance window (``MNT-<id>``): planned work, told before it happens. ``sequence`` is
#: the iCalendar SEQUENCE its invitations carry (+1 on each reschedule and on cancellation);
#: ``told_at`` is when customers last heard its times (the announcement or a reschedule), so a
#: reminder whose moment lies before it is moot.
maintenance = Table(
    "maintenance",
    metadata,
    _id(),
    Column("title", String(500), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("components", JSON, nullable=False),
    Column("regions", JSON, nullable=False),
    Column("selector", JSON, nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS, nullable=False),
    Column("status", String(20), nullable=False),  # scheduled|in_progress|completed|cancelled
    Column("sequence", Integer, nullable=False, default=0),
    Column("remind_s", JSON, nullable=False),  # reminder offsets before start, in seconds
    Column("audience_size", Integer, nullable=False, default=0),
    Column("commander", String(200), nullable=False, default=""),
    Column("created_at", TS, nullable=False),
    Column("told_at", TS, nullable=False),
    Column("started_at", TS, nullable=True),
    Column("completed_at", TS, nullable=True),
    Column("cancelled_at", TS, nullable=True),
    # an overrun: when the commander was reminded (once), and the incident declared for it
    Column("overrun_reminded_at", TS, nullable=True),
    _incident(nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Index("ix_maintenance_status", "status", "starts_at"),
)

#: Who a window's notices go to: chosen once, when it is scheduled (as an incident's audience).
maintenance_audience = Table(
    "maintenance_audience",
    metadata,
    Column("maintenance_id", BigId, ForeignKey("maintenance.id"), primary_key=True),
    _customer_key(),
    Column("channel", String(100), primary_key=True),
    # this customer's reminder offsets in seconds (their tier's, [policy.default]
    # maintenance_remind); null: the window's own
    Column("remind_s", JSON, nullable=True),
)

#: One row per notice of a window (announcement, update, reminder, started, completed,
#: cancelled). ``key`` makes each notice exactly once however many schedulers run: a reminder's
#: key names its offset and the start it counts back from (``reminder:3600:<start>``).
#: ``status`` ``skipped``: recorded, not sent (``detail`` says why).
maintenance_notices = Table(
    "maintenance_notices",
    metadata,
    _id(),
    Column("maintenance_id", BigId, ForeignKey("maintenance.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("key", String(100), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("status", String(10), nullable=False),  # queued | skipped
    Column("message", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
    Column("created_at", TS, nullable=False),
    Column("due_at", TS, nullable=True),  # a reminder's own moment
    Column("starts_at", TS, nullable=False),  # the window as this notice tells it
    Column("ends_at", TS, nullable=False),
    Column("previous_starts_at", TS, nullable=True),  # a reschedule: the times it replaces
    Column("previous_ends_at", TS, nullable=True),
    Column("sequence", Integer, nullable=False),
    UniqueConstraint("maintenance_id", "key", name="uq_maintenance_notices_key"),
    UniqueConstraint("maintenance_id", "seq", name="uq_maintenance_notices_seq"),
)

#: A notice's deliveries: one per (notice, customer, channel), claimed with a lease and sent by
#: the configured channels as the outbox's are (``maintenance.sender``).
maintenance_deliveries = Table(
    "maintenance_deliveries",
    metadata,
    _id(),
    Column("maintenance_id", BigId, ForeignKey("maintenance.id"), nullable=False),
    Column("notice_id", BigId, ForeignKey("maintenance_notices.id"), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("status", String(10), nullable=False),  # pending|sending|sent|failed|dead|superseded
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("provider_id", String(500), nullable=True),
    Column("lease_until", TS, nullable=True),
    Column("next_attempt_at", TS, nullable=True),
    Column("sent_at", TS, nullable=True),
    UniqueConstraint("notice_id", "customer_id", "channel", name="uq_maintenance_deliveries_key"),
    Index("ix_maintenance_deliveries_claim", "status", "next_attempt_at"),
)
