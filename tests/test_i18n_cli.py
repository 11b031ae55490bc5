"""What people see of the languages: ``customers list --json`` says the language each
customer's messages are written in, ``doctor`` how many read the company default because
their language has no catalog."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from outagecomms.rendering.i18n import Catalogs

pytestmark = pytest.mark.catalogs
#: nl_BE and sv_SE: languages no shipped catalog has (fr_CA and pt_BR have catalogs now)
LOCALES = {"b1": "de_DE", "b2": "de_AT", "m1": "nl_BE", "m2": "nl_BE", "p1": "sv_SE", "n1": "en_US"}


def _directory(tmp_path: Path) -> Path:
    csv = tmp_path / "customers.csv"
    lines = ["id,name,email,locale,timezone,tier"]
    lines += [
        f"{cid},Customer {cid},{cid}@example.com,{loc},UTC,standard" for cid, loc in LOCALES.items()
    ]
    csv.write_text("\n".join(lines) + "\n")
    return csv


@pytest.mark.parametrize("default", ["en", "de"])
def test_customers_list_and_doctor_show_the_languages(
    cli, make_config: Callable[..., Path], tmp_path: Path, default: str
) -> None:
    cfg = make_config()
    cfg.write_text(cfg.read_text().replace("[company]\n", f'[company]\nlanguage = "{default}"\n'))
    res = cli("--config", str(cfg), "customers", "import", str(_directory(tmp_path)))
    assert res.exit_code == 0, res.stderr
    res = cli("--config", str(cfg), "customers", "list", "--json")
    assert res.exit_code == 0, res.stderr
    rows = {r["id"]: r for r in json.loads(res.stdout)["customers"]}
    catalogs = Catalogs(default=default)
    assert {cid: r["language"] for cid, r in rows.items()} == {
        cid: catalogs.resolve(loc) for cid, loc in LOCALES.items()
    }
    assert rows["b2"]["language"] == "de" and rows["m1"]["language"] == default
    assert rows["b1"]["locale"] == "de_DE" and "flagged" in rows["b1"]  # the keys stay
    res = cli("--config", str(cfg), "doctor", "--no-probe")
    assert res.exit_code == 0, res.stderr
    (line,) = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.startswith("languages:")]
    # nl_BE x2 and sv_SE have no catalog: they read the default
    assert f"3 customers read the company default ({default})" in line
    assert "nl_BE 2, sv_SE 1" in line
    assert f"catalogs: {', '.join(catalogs.languages())})" in line
    assert {"de", "en", "fr", "fr_CA"} <= set(catalogs.languages())


def test_the_report_shows_the_audience_by_language(
    cli, make_config: Callable[..., Path], smtp_server, tmp_path: Path, clock
) -> None:
    from outagecomms.app import App
    from outagecomms.recovery.report.build import build_report
    from outagecomms.recovery.report.markdown import render_markdown

    cfg = make_config(smtp_server)
    assert (
        cli("--config", str(cfg), "customers", "import", str(_directory(tmp_path))).exit_code == 0
    )
    res = cli(
        "--config",
        str(cfg),
        "declare",
        "API errors",
        "--severity",
        "sev2",
        "--tier",
        "standard",
        "--yes",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    with App.open(cfg, clock=clock) as app:
        report = build_report(app, 1)
    catalogs = Catalogs()
    want: dict[str, int] = {}
    for loc in LOCALES.values():
        want[catalogs.resolve(loc)] = want.get(catalogs.resolve(loc), 0) + 1
    assert report.audience.by_language == dict(sorted(want.items())) == {"de": 2, "en": 4}
    assert report.to_json()["audience"]["by_language"] == {"de": 2, "en": 4}
    md = render_markdown(report)
    assert "| Language | Customers |" in md and "| de | 2 |" in md
    # the German customers were told in German, the others (nl_BE, sv_SE: no catalog) in English
    hello = Catalogs().translations("de").gettext("Hello %(name)s,")
    assert hello != "Hello %(name)s,"
    for m in smtp_server.handler.wait_for(lambda ms: len(ms) >= len(LOCALES)):
        greeting = hello if LOCALES[m.customer].startswith("de") else "Hello %(name)s,"
        assert m.text().startswith(greeting % {"name": f"Customer {m.customer}"}), m.customer
