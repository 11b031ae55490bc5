"""``[inbound]`` (how replies, bounces and texts come back) and ``[[escalation]]`` (who hears of
which replies): parsed here so that every mistake names its file and key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from outagecomms.config.model import (
    DEFAULT_ESCALATION,
    DEFAULT_ESCALATION_WORDS,
    EscalationRule,
    InboundConfig,
)
from outagecomms.values import FieldReader

_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_LOCAL = re.compile(r"[A-Za-z0-9._-]{1,40}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

INBOUND_KEYS = {
    "smtp",
    "lmtp",
    "imap_url_env",
    "imap_processed",
    "imap_poll",
    "reply_to",
    "max_size",
    "max_depth",
    "max_headers",
    "keep_attachments",
    "keep",
    "scorer",
    "acknowledge",
}
ESCALATION_KEYS = {
    "name",
    "label",
    "score_below",
    "scored",
    "words",
    "tier",
    "incidents_at_least",
    "incidents_within",
    "credit_at_least",
    "notify",
}
LABELS = ("negative", "neutral", "positive")
MAX_MESSAGE_SIZE = 100 * 1024 * 1024
_NOTIFY_WORDS = ("account_manager", "commander")


def _string(ctx: FieldReader, data: Mapping[str, Any], prefix: str, key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ctx.err(f"{prefix}.{key}", f"must be a string, got {value!r}")
    if _CTRL.search(value):
        raise ctx.err(f"{prefix}.{key}", f"must not contain control characters, got {value!r}")
    return value.strip()


def _strings(ctx: FieldReader, data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A list of one-line strings (a single string is a list of one)."""
    if key not in data:
        return ()
    value = data[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ctx.err(where, f"must be a list of non-empty strings, got {value!r}")
    for v in value:
        if _CTRL.search(v):
            raise ctx.err(where, f"must not contain control characters, got {v!r}")
    return tuple(v.strip() for v in value)


def check_reply_to(value: str) -> str | None:
    """``replies@status.example.com``: a bare address whose local part can take ``+token``."""
    name, addr = parseaddr(value)
    local, at, domain = addr.rpartition("@")
    if name or addr != value or not at or "." not in domain or not _LOCAL.fullmatch(local):
        return (
            f"must be a bare address such as 'replies@status.example.com' (letters, digits, "
            f"'.', '_' or '-' before the @; no '+': the token goes there), got {value!r}"
        )
    return None


def parse_inbound(ctx: FieldReader, data: Any, escalation: Any) -> InboundConfig:
    """``[inbound]`` and the ``[[escalation]]`` rules (absent: the defaults)."""
    from outagecomms.web.bind import parse_bind

    table = ctx.table(data if data is not None else {}, "inbound")
    ctx.known(table, "inbound", INBOUND_KEYS)
    base = InboundConfig()
    binds: dict[str, str] = {}
    for key in ("smtp", "lmtp"):
        value = _string(ctx, table, "inbound", key, "")
        if value:
            try:
                parse_bind(value, key=f"inbound.{key}")
            except Exception as exc:
                raise ctx.err(f"inbound.{key}", str(exc).split(": ", 1)[-1]) from None
        binds[key] = value
    if binds["smtp"] and binds["smtp"] == binds["lmtp"]:
        raise ctx.err("inbound.lmtp", f"is the same address as inbound.smtp ({binds['smtp']})")
    imap_env = _string(ctx, table, "inbound", "imap_url_env", "")
    if imap_env and not _ENV.fullmatch(imap_env):
        raise ctx.err(
            "inbound.imap_url_env",
            f"must name an environment variable (the URL itself stays out of the file), "
            f"got {imap_env[:20]!r}",
        )
    reply_to = _string(ctx, table, "inbound", "reply_to", "")
    if reply_to:
        problem = check_reply_to(reply_to)
        if problem:
            raise ctx.err("inbound.reply_to", problem)
    keep_attachments = table.get("keep_attachments", base.keep_attachments)
    acknowledge = table.get("acknowledge", base.acknowledge)
    for key, value in (("keep_attachments", keep_attachments), ("acknowledge", acknowledge)):
        if not isinstance(value, bool):
            raise ctx.err(f"inbound.{key}", f"must be true or false, got {value!r}")
    scorer = _string(ctx, table, "inbound", "scorer", base.scorer) or base.scorer
    if scorer != "vader" and not re.fullmatch(r"[\w.]+:[\w.]+", scorer):
        raise ctx.err(
            "inbound.scorer", f"must be 'vader' or 'package.module:attribute', got {scorer!r}"
        )
    return InboundConfig(
        smtp=binds["smtp"],
        lmtp=binds["lmtp"],
        imap_url_env=imap_env,
        imap_processed=_string(ctx, table, "inbound", "imap_processed", base.imap_processed)
        or base.imap_processed,
        imap_poll=ctx.duration(table, "inbound", "imap_poll", base.imap_poll),
        reply_to=reply_to,
        max_size=ctx.integer(
            table, "inbound", "max_size", base.max_size, minimum=1024, maximum=MAX_MESSAGE_SIZE
        ),
        max_depth=ctx.integer(
            table, "inbound", "max_depth", base.max_depth, minimum=1, maximum=1000
        ),
        max_headers=ctx.integer(
            table, "inbound", "max_headers", base.max_headers, minimum=10, maximum=100_000
        ),
        keep_attachments=keep_attachments,
        keep=ctx.duration(table, "inbound", "keep", base.keep),
        scorer=scorer,
        acknowledge=acknowledge,
        escalation=parse_escalation(ctx, escalation),
    )


def parse_escalation(ctx: FieldReader, raw: Any) -> tuple[EscalationRule, ...]:
    if raw is None:
        return DEFAULT_ESCALATION
    if not isinstance(raw, list):
        raise ctx.err("escalation", "must be an array of tables ([[escalation]])")
    rules: list[EscalationRule] = []
    for i, item in enumerate(raw):
        prefix = f"escalation[{i}]"
        data = ctx.table(item, prefix)
        ctx.known(data, prefix, ESCALATION_KEYS)
        name = _string(ctx, data, prefix, "name", f"rule {i + 1}") or f"rule {i + 1}"
        if any(r.name == name for r in rules):
            raise ctx.err(f"{prefix}.name", f"{name!r} is used by an earlier rule")
        labels = _strings(ctx, data, "label", f"{prefix}.label")
        for label in labels:
            if label not in LABELS:
                raise ctx.err(
                    f"{prefix}.label", f"must be among {', '.join(LABELS)}, got {label!r}"
                )
        score_below = None
        if "score_below" in data:
            v = data["score_below"]
            if isinstance(v, bool) or not isinstance(v, int | float) or not -1 <= v <= 1:
                raise ctx.err(f"{prefix}.score_below", f"must be a number from -1 to 1, got {v!r}")
            score_below = float(v)
        scored = data.get("scored")
        if scored is not None and not isinstance(scored, bool):
            raise ctx.err(f"{prefix}.scored", f"must be true or false, got {scored!r}")
        words = _strings(ctx, data, "words", f"{prefix}.words")
        if data.get("words") == "default":
            words = DEFAULT_ESCALATION_WORDS
        notify = _strings(ctx, data, "notify", f"{prefix}.notify") or (
            "account_manager",
            "commander",
        )
        for target in notify:
            if target in _NOTIFY_WORDS or target.startswith("https://"):
                continue
            if target.startswith("http://") and ("127.0.0.1" in target or "localhost" in target):
                continue  # a loopback receiver (tests, a local relay)
            _, addr = parseaddr(target)
            if addr == target and "@" in target:
                continue
            raise ctx.err(
                f"{prefix}.notify",
                "each target is 'account_manager', 'commander', an email address or an "
                f"https:// webhook URL, got {target!r}",
            )
        credit = None
        if "credit_at_least" in data:
            credit = ctx.decimal(data, prefix, "credit_at_least")
        rules.append(
            EscalationRule(
                name=name,
                labels=labels,
                score_below=score_below,
                scored=scored,
                words=words,
                tiers=_strings(ctx, data, "tier", f"{prefix}.tier"),
                incidents_at_least=ctx.integer(
                    data, prefix, "incidents_at_least", 0, minimum=0, maximum=10_000
                ),
                incidents_within=ctx.duration(data, prefix, "incidents_within", timedelta(days=90)),
                credit_at_least=credit,
                notify=notify,
            )
        )
    return tuple(rules)
