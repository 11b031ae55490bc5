"""Reply, auto-reply or bounce: what came back after an outage notice.

Only a *reply* is a customer talking to us (it may need a human); an auto-reply must never
reach the escalation queue, and a bounce feeds the contact's delivery state instead. The
bounce check runs first, because a DSN carries ``Auto-Submitted: auto-replied`` too.

``Precedence: list`` is deliberately *not* an auto-reply sign: a customer who replies from a
mailing-list address (Google Groups, Mailman) relays a human reply with that header. ``bulk``,
``junk`` and ``auto_reply`` are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from outagecomms.inbound.bounces import Bounce, is_reply_subject, looks_like_bounce, read_bounce
from outagecomms.inbound.parse import ParsedMessage

__all__ = ["Bounce", "Classified", "Kind", "classify"]


class Kind(StrEnum):
    """The three kinds of inbound message."""

    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"


@dataclass(frozen=True, kw_only=True)
class Classified:
    """The verdict, the one-line reason for it, and a bounce's details."""

    kind: Kind
    reason: str
    bounce: Bounce | None


# out-of-office subjects: unambiguous phrases anywhere, short words only at the start
_OOO_ANYWHERE = re.compile(
    r"""out\sof\s(?:the\s)?office|automatic\sreply|auto-?\s?reply|autoreply|auto-?response
      |automatic\sresponse|vacation\s(?:reply|response|message|notice)|away\sfrom\s(?:the\s)?office
      |abwesenheitsnotiz|automatische\santwort|abwesenheitsmeldung
      |réponse\sautomatique|reponse\sautomatique|absent\sdu\sbureau
      |respuesta\sautomática|respuesta\sautomatica|fuera\sde\s(?:la\s)?oficina
      |resposta\sautomática|resposta\sautomatica|fora\sdo\sescritório|ausência\sdo\sescritório
      |risposta\sautomatica|fuori\sufficio|fuori\sdall'ufficio
      |automatisch\santwoord|afwezigheidsbericht|niet\saanwezig
      |自動応答|自動返信|自動送信|不在通知|不在のお知らせ""",
    re.VERBOSE | re.IGNORECASE,
)
_OOO_START = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:auto\s?:|abwesend|abwesenheit|absence|absent|ausente"
    r"|ausência|assente|afwezig|vacation|urlaub|vacances|vacaciones|férias|ferie|vakantie"
    r"|不在|休暇)",
    re.IGNORECASE,
)
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponse", "x-autoresponder")
_EXCHANGE_AUTO = ("x-ms-exchange-inbox-rules-loop", "x-ms-exchange-generated-message-source")


def classify(msg: ParsedMessage) -> Classified:
    """Bounce first, then the auto-reply signs (headers, then subject), else a reply."""
    why = looks_like_bounce(msg)
    if why is not None:
        return Classified(kind=Kind.BOUNCE, reason=why, bounce=read_bounce(msg))
    why = _auto_reply(msg)
    if why is not None:
        return Classified(kind=Kind.AUTO_REPLY, reason=why, bounce=None)
    return Classified(kind=Kind.REPLY, reason="no bounce or auto-reply sign", bounce=None)


def _auto_reply(msg: ParsedMessage) -> str | None:
    submitted = msg.header("auto-submitted").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in _AUTO_HEADERS:
        value = msg.header(name).strip().lower()
        if name in msg.headers and value not in ("no", "false", "0"):
            return f"{name}: {value or '(present)'}"
    precedence = msg.header("precedence").strip().lower()
    if precedence in ("bulk", "junk", "auto_reply", "auto-reply"):
        return f"Precedence: {precedence}"
    # "Re: your automatic reply is broken" is a customer talking: an out-of-office subject
    # begins with its phrase ("Automatic reply: ...", "AUTO: ... out of the office")
    subject = "" if is_reply_subject(msg.subject) else msg.subject
    ooo = _OOO_ANYWHERE.search(subject) or _OOO_START.search(subject)
    if "x-auto-response-suppress" in msg.headers:
        exchange = next((h for h in _EXCHANGE_AUTO if h in msg.headers), None)
        if exchange is not None:
            return f"X-Auto-Response-Suppress with {exchange}"
        if ooo:
            return f"X-Auto-Response-Suppress with subject: {msg.subject[:60]}"
    if ooo:
        return f"subject: {msg.subject[:60]}"
    return None
