"""Options several commands share, declared once (same flag, same help everywhere), and the
global ones the root callback records."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from outagecomms.app import App
    from outagecomms.models import Selector

# --- global options (set by the root callback in cli/app.py) -------------------------------

_config: list[Path | None] = [None]


def set_config(path: Path | None) -> None:
    _config[0] = path


def config_path() -> Path | None:
    """The config file the user named with ``--config`` (None: the usual places)."""
    return _config[0]


def open_app() -> App:
    """The library's App for the config the user named (``--config``, else the usual places).
    The config's warnings (``Config.warnings``) go to stderr, one line each."""
    from outagecomms.app import App
    from outagecomms.cli.output import err, escape

    app = App.open(_config[0])
    for w in app.config.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    return app


# --- shared options -------------------------------------------------------------------------

JsonOpt = Annotated[bool, typer.Option("--json")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NoSendOpt = Annotated[
    bool,
    typer.Option("--no-send", help="Record only: nothing is sent, now or later (history)."),
]
QueueOnlyOpt = Annotated[
    bool, typer.Option("--queue-only", help="Queue the messages; a daemon or tick sends them.")
]
CreditsOpt = Annotated[
    bool,
    typer.Option(
        "--credits",
        help="With --no-send: propose credits and goodwill at resolution anyway (recorded "
        "history proposes none; it still counts for uptime and repeat rules).",
    ),
]
ShortCadenceOpt = Annotated[
    bool,
    typer.Option(
        "--allow-short-cadence",
        help="Allow an --every below the policy's min_update_every (default 5m).",
    ),
]
IncidentArg = Annotated[str, typer.Argument(help="INC-<n>.")]

# The selection flags: the same in `declare` and `customers list`.
SelComponent = Annotated[
    list[str] | None, typer.Option("--component", "-c", help="Affected component (repeatable).")
]
SelRegion = Annotated[
    list[str] | None, typer.Option("--region", "-r", help="Affected region (repeatable).")
]
SelTier = Annotated[list[str] | None, typer.Option("--tier", help="Customer tier (repeatable).")]
SelTag = Annotated[list[str] | None, typer.Option("--tag", help="Customer tag (repeatable).")]
SelCustomer = Annotated[
    list[str] | None, typer.Option("--customer", help="Add a customer by id (repeatable).")
]
SelExclude = Annotated[
    list[str] | None, typer.Option("--exclude", help="Leave a customer out (repeatable).")
]


# --- the commander's words per language (incidents.messages) ------------------------------

MessageFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--message-file",
        help="The message per language: the default language's text, then a [de], [fr_CA] ... "
        "line starting each language's text (docs/languages.md).",
        dir_okay=False,
    ),
]
MessageDe = Annotated[str, typer.Option("--message-de", help="The message in German (de).")]
MessageEs = Annotated[str, typer.Option("--message-es", help="The message in Spanish (es).")]
MessageFr = Annotated[str, typer.Option("--message-fr", help="The message in French (fr).")]
MessageFrCa = Annotated[
    str, typer.Option("--message-fr-ca", help="The message in Canadian French (fr_CA).")
]
MessageJa = Annotated[str, typer.Option("--message-ja", help="The message in Japanese (ja).")]
MessagePtBr = Annotated[
    str, typer.Option("--message-pt-br", help="The message in Brazilian Portuguese (pt_BR).")
]


def messages(
    message: str,
    file: Path | None,
    *,
    de: str = "",
    es: str = "",
    fr: str = "",
    fr_ca: str = "",
    ja: str = "",
    pt_br: str = "",
) -> str:
    """The message with its translations (``incidents.messages.Message``) from ``--message``
    (or the command's MESSAGE), ``--message-file`` and the ``--message-<lang>`` options. A
    language given twice, or a default text given both ways, is an ``InputError``."""
    from outagecomms.errors import InputError
    from outagecomms.incidents.messages import read_message_file, with_translations

    given = {"de": de, "es": es, "fr": fr, "fr_CA": fr_ca, "ja": ja, "pt_BR": pt_br}
    texts = {k: v for k, v in given.items() if v.strip()}
    if file is not None:
        default, sections = read_message_file(file)
        if default and message.strip() and default != message.strip():
            raise InputError(
                f"{file} has a default-language text and the message was given too: give it once",
                field="message_file",
            )
        message = message.strip() or default
        for lang, text in sections.items():
            if lang in texts:
                raise InputError(
                    f"{file} has [{lang}] and --message-{lang.lower().replace('_', '-')} "
                    "was given too: give it once",
                    field="message_file",
                )
            texts[lang] = text
    if texts and not message.strip():
        raise InputError(
            "the default language's text is missing: every customer without a text in their "
            "language reads it (give --message, MESSAGE or the file's first section)",
            field="message",
        )
    return with_translations(message, texts)


def selector(
    component: list[str] | None,
    region: list[str] | None,
    tier: list[str] | None,
    tag: list[str] | None,
    customer: list[str] | None,
    exclude: list[str] | None,
) -> Selector:
    """The selection flags as a Selector: blanks dropped, repeats once, order kept."""
    from outagecomms.models import Selector

    def vals(v: list[str] | None) -> tuple[str, ...]:
        return tuple(dict.fromkeys(x.strip() for x in (v or []) if x.strip()))

    return Selector(
        components=vals(component),
        regions=vals(region),
        tiers=vals(tier),
        tags=vals(tag),
        customers=vals(customer),
        exclude=vals(exclude),
    )


def duration(value: str | None, field: str) -> timedelta | None:
    from outagecomms.values import parse_duration

    return parse_duration(value, field=field) if value is not None else None


def time(value: str | None, now: datetime, field: str) -> datetime | None:
    from outagecomms.values import parse_time

    return parse_time(value, now=now, field=field) if value else None
