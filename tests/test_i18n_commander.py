"""The commander's own words per language (issue 14): ``--message`` in the company's default
language and ``--message-de`` / ``--message-file`` per language. A customer whose language has
a text reads it; the others read the default text inside their own-language frame, with a line
saying so in their language. Stored with the round, so holding updates restate it likewise."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from babel import Locale

from outagecomms import App
from outagecomms.errors import InputError
from outagecomms.incidents.messages import Message, read_message_file
from outagecomms.rendering.i18n import Catalogs
from outagecomms.store import incidents as incidents_db
from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv

pytestmark = pytest.mark.catalogs

EN = "We are failing over the primary database."
DE = "Wir schalten auf die Ersatzdatenbank um."
NOTE = "What our team wrote is in %(language)s: we do not have it in your language yet."
GERMAN, FRENCH, ENGLISH = "c0000008", "c0000021", "c0000010"  # de_DE, fr_FR, en_GB


def note_in(lang: str) -> str:
    words = Catalogs().translations(lang)
    name = Locale.parse("en").get_language_name(Locale.parse(lang))
    return str(words.pgettext("commander", NOTE)) % {"language": name}


def texts(smtp: SmtpServer, kind: str) -> dict[str, str]:
    return {m.customer: m.text() for m in smtp.handler.snapshot() if m.kind == kind}


def test_each_customer_reads_the_commanders_words_in_their_language_or_is_told(
    smtp_server: SmtpServer, make_config: Callable[..., Path], cli: Callable[..., Any]
) -> None:
    cfg = str(make_config(smtp_server))
    assert cli("--config", cfg, "customers", "import", str(sample_csv())).exit_code == 0
    res = cli(
        "--config", cfg, "declare", "Database errors", "-s", "sev2", "-c", "database",
        "-m", EN, "--message-de", DE, "--yes", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    sent = texts(smtp_server, "acknowledgement")
    assert DE in sent[GERMAN] and EN not in sent[GERMAN]
    assert note_in("de") not in sent[GERMAN]
    assert EN in sent[FRENCH] and note_in("fr") in sent[FRENCH]  # their frame, told why
    assert note_in("fr") != NOTE  # the French catalog has the line
    assert EN in sent[ENGLISH] and DE not in sent[ENGLISH]
    assert "we do not have it in your language" not in sent[ENGLISH]
    # a commander's update from a file: the default text, then a section per language
    upd = Path(cfg).parent / "update.txt"
    upd.write_text("Failover done.\n\n[de]\nUmschaltung erledigt.\n\n[fr]\nBascule terminée.\n")
    iid = json.loads(res.stdout)["incident"]
    res = cli(
        "--config", cfg, "update", iid, "", "--message-file", str(upd), "--yes", "--json"
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    sent = texts(smtp_server, "update")
    assert "Umschaltung erledigt." in sent[GERMAN]
    assert "Bascule terminée." in sent[FRENCH] and note_in("fr") not in sent[FRENCH]
    assert "Failover done." in sent[ENGLISH]
    # stored with the round: a reader in another process reads the same
    with App.open(cfg) as app, app.store.read() as conn:
        rnd = incidents_db.list_rounds(conn, int(iid.split("-")[1]))[-1]
        assert dict(getattr(rnd.message, "translations", {})) == {
            "de": "Umschaltung erledigt.",
            "fr": "Bascule terminée.",
        }


def test_a_message_file_is_read_or_refused_naming_the_line(tmp_path: Path) -> None:
    f = tmp_path / "m.txt"
    f.write_text("Default text.\n[fr-ca]\nTexte.\n[pt_BR]\nTexto.\n")
    assert read_message_file(f) == ("Default text.", {"fr_CA": "Texte.", "pt_BR": "Texto."})
    f.write_text("x\n[de]\na\n[de]\nb\n")
    with pytest.raises(InputError, match=r"m.txt:4: \[de\] appears twice"):
        read_message_file(f)
    f.write_text("x\n[not a language]\nb\n")
    with pytest.raises(InputError, match=r"m.txt:2"):
        read_message_file(f)
    f.write_text("x\n[de]\n\n")
    with pytest.raises(InputError, match=r"\[de\] section is empty"):
        read_message_file(f)


def test_bad_message_options_are_refused_and_nothing_is_written(
    smtp_server: SmtpServer, make_config: Callable[..., Path], cli: Callable[..., Any]
) -> None:
    cfg = str(make_config(smtp_server))
    cli("--config", cfg, "customers", "import", str(sample_csv()))
    res = cli(
        "--config", cfg, "declare", "Database errors", "-s", "sev2", "-c", "database",
        "--message-de", DE, "--yes",
    )  # fmt: skip
    assert res.exit_code == 2 and "default language" in res.stderr
    res = cli(
        "--config", cfg, "declare", "Database errors", "-s", "sev2", "-c", "database",
        "-m", EN, "--message-de", "bad\x1b[2Jtext", "--yes",
    )  # fmt: skip
    assert res.exit_code == 2 and "--message-de" in res.stderr
    with App.open(cfg) as app:
        assert app.incidents() == []
    assert smtp_server.handler.snapshot() == []


def test_a_message_survives_pickling_for_the_sender_processes() -> None:
    import pickle

    m = Message("hello", {"de": "hallo"})
    back = pickle.loads(pickle.dumps(m))
    assert back == "hello" and dict(back.translations) == {"de": "hallo"}
    assert datetime.now(UTC)  # the module imports stay used
