"""The catalogs as CI checks them: ``pybabel extract`` over the templates (babel.cfg) finds no
string that a shipped catalog lacks, no catalog has a fuzzy or untranslated entry, every
catalog passes Babel's checks (its ``%(name)s`` placeholders are the msgid's) and compiles;
the wheel carries them compiled. A user's override templates with ``{% trans %}`` read the
user's own catalogs (``[templates] locale_dir``), merged over ours."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from outagecomms.config.loader import load_config
from outagecomms.errors import ConfigError
from outagecomms.models import RoundKind
from outagecomms.rendering.i18n import Catalogs, packaged_locale_dir
from outagecomms.rendering.templates import Renderer
from tests.support import builders

pytestmark = pytest.mark.catalogs
REPO = Path(__file__).resolve().parents[1]
LOCALE = REPO / "outagecomms" / "locale"
SHIPPED = sorted(LOCALE.glob("*/LC_MESSAGES/outagecomms.po"))


def _key(m: object) -> tuple[str | None, str]:
    mid = m.id  # type: ignore[attr-defined]
    return (m.context, mid[0] if isinstance(mid, tuple) else mid)  # type: ignore[attr-defined]


def _read(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """What the documented command (docs/languages.md) extracts today."""
    out = tmp_path_factory.mktemp("pot") / "outagecomms.pot"
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(REPO / "babel.cfg"), "-c", "Translators:",
         "--ignore-dirs", ".*", "-o", str(out), str(REPO)]
    )  # fmt: skip
    return _read(out)


def test_the_catalogs_are_the_packaged_ones() -> None:
    assert packaged_locale_dir() == LOCALE
    assert {"de", "es", "fr", "fr_CA", "ja", "pt_BR"} <= {p.parts[-3] for p in SHIPPED}


def test_extraction_finds_the_templates_and_the_status_labels(extracted: Catalog) -> None:
    keys = {_key(m) for m in extracted if m.id}
    assert len(keys) > 100
    assert ("status", "Investigating") in keys
    assert (None, "Reference: %(ref)s") in keys  # from _partials/ too (not skipped as "_*")
    where = extracted.get("%(components)s in %(regions)s")
    # the {# Translators: ... #} comment goes with it (the tag itself is dropped)
    assert where is not None and "affected components" in " ".join(where.auto_comments)


def test_the_template_pot_is_up_to_date(extracted: Catalog) -> None:
    pot = _read(LOCALE / "outagecomms.pot")
    assert {_key(m) for m in pot if m.id} == {_key(m) for m in extracted if m.id}


@pytest.mark.parametrize("po", SHIPPED, ids=[p.parts[-3] for p in SHIPPED])
def test_no_extracted_string_is_missing_from_a_catalog(po: Path, extracted: Catalog) -> None:
    have = {_key(m) for m in _read(po) if m.id}
    missing = sorted(str(k) for k in {_key(m) for m in extracted if m.id} - have)
    assert not missing, f"{po.parts[-3]}: run pybabel update (docs/languages.md): {missing[:5]}"


@pytest.mark.parametrize("po", SHIPPED, ids=[p.parts[-3] for p in SHIPPED])
def test_no_entry_is_fuzzy_or_untranslated_and_each_passes_the_checks(po: Path) -> None:
    catalog = _read(po)
    assert catalog.locale is not None and catalog.plural_forms.startswith("nplurals=")
    for m in catalog:
        if not m.id:
            continue
        assert not m.fuzzy, m.id
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert len(strings) == (catalog.num_plurals if m.pluralizable else 1), m.id
        assert all(s.strip() for s in strings), f"untranslated: {m.id!r}"
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert not problems
    buf = BytesIO()
    write_mo(buf, catalog)
    assert len(buf.getvalue()) > 1000


def _user_catalog(folder: Path, lang: str, entries: dict[str, str], *, mo: bool) -> None:
    cat = Catalog(locale=lang, domain="outagecomms")
    for msgid, msgstr in entries.items():
        cat.add(msgid, msgstr)
    target = folder / lang / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / ("outagecomms.mo" if mo else "outagecomms.po")).open("wb") as fh:
        (write_mo if mo else write_po)(fh, cat)


@pytest.mark.parametrize("mo", [False, True], ids=["po", "mo"])
def test_override_templates_read_the_users_catalogs_merged_over_ours(
    tmp_path: Path, mo: bool
) -> None:
    templates, locales = tmp_path / "templates", tmp_path / "locales"
    (templates / "update").mkdir(parents=True)
    (templates / "update" / "sms.txt.j2").write_text(
        "{% trans ref=incident.ref %}Our own words on {{ ref }}.{% endtrans %} "
        "{% trans ref=incident.ref %}Reference: {{ ref }}{% endtrans %} "
        "{% trans %}Why:{% endtrans %} {{ customer.name }}"
    )
    _user_catalog(
        locales, "de",
        {"Our own words on %(ref)s.": "Unsere eigenen Worte zu %(ref)s.",
         "Reference: %(ref)s": "Az.: %(ref)s"},
        mo=mo,
    )  # fmt: skip
    _user_catalog(
        locales, "nl", {"Our own words on %(ref)s.": "Onze eigen woorden over %(ref)s."}, mo=mo
    )
    r = Renderer(company=builders.COMPANY, user_dir=templates, locale_dir=locales)
    inc, rnd = builders.incident(), builders.round_(RoundKind.UPDATE)
    ours = Catalogs().translations("de")

    def sms(locale: str) -> str:
        c = builders.customer("Europe/Berlin", locale)
        return r.render_customer(RoundKind.UPDATE, "sms", incident=inc, round=rnd, customer=c).text

    german = sms("de_DE")
    assert german.startswith("Unsere eigenen Worte zu INC-42. Az.: INC-42 ")  # the user's win
    assert ours.gettext("Why:") in german and ours.gettext("Why:") != "Why:"  # ours stay
    assert sms("nl_NL").startswith("Onze eigen woorden over INC-42. Reference: INC-42 Why:")
    assert sms("en_US").startswith("Our own words on INC-42. Reference: INC-42 Why:")
    assert r._substitutable(RoundKind.UPDATE, "sms")  # {% trans %} keeps the fast path


def test_locale_dir_is_read_from_the_config_and_checked(tmp_path: Path) -> None:
    (tmp_path / "locales").mkdir()
    cfg = tmp_path / "outagecomms.toml"
    cfg.write_text('[company]\nlanguage = "de"\n[templates]\nlocale_dir = "locales"\n')
    config = load_config(cfg)
    assert config.locale_dir == tmp_path / "locales"
    assert config.company.language == "de"
    cfg.write_text('[templates]\nlocale_dir = "nowhere"\n')
    with pytest.raises(ConfigError, match=r"templates\.locale_dir.*does not exist"):
        load_config(cfg)
    cfg.write_text('[company]\nlanguage = "klingon-ish"\n')
    with pytest.raises(ConfigError, match=r"company\.language"):
        load_config(cfg)


@pytest.mark.slow
def test_the_wheel_carries_the_catalogs_compiled(tmp_path: Path) -> None:
    out = tmp_path / "wheel"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("outagecomms-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for po in SHIPPED:
        rel = po.relative_to(REPO).with_suffix(".mo").as_posix()
        assert rel in names
    assert not list(LOCALE.rglob("*.mo"))  # built into the wheel, never into the checkout
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "from outagecomms.rendering.i18n import Catalogs, packaged_locale_dir; "
        "c = Catalogs(); print(packaged_locale_dir()); print(c.resolve('de_AT')); "
        "print(c.translations('de').pgettext('status', 'Resolved'))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    where, lang, label = proc.stdout.splitlines()
    assert Path(where) == site / "outagecomms" / "locale"
    assert lang == "de"
    assert label == Catalogs([LOCALE]).translations("de").pgettext("status", "Resolved")


def test_preflight_renders_the_company_language_for_round_wide_messages(
    cli, make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status page is rendered in the company's language even when no customer reads it:
    doctor (and every pre-flight) renders it so, and a broken user catalog stops it."""
    monkeypatch.setenv("STATUSPAGE_API_KEY", "k" * 32)
    locales = tmp_path / "locales"
    _user_catalog(locales, "de", {"Reference: %(ref)s": "Az.: %(aktenzeichen)s"}, mo=False)
    cfg = make_config(extra='\n[channels.status]\nkind = "statuspage"\npage_id = "qfn30z5r6s5h"\n')
    text = cfg.read_text().replace("[company]\n", '[company]\nlanguage = "de"\n')
    cfg.write_text(text + f'\n[templates]\nlocale_dir = "{locales}"\n')
    res = cli("--config", str(cfg), "doctor", "--no-probe")  # no customers: a sample, en_US
    assert res.exit_code != 0
    assert "aktenzeichen" in res.stderr and "outagecomms.po" in res.stderr
    _user_catalog(tmp_path / "fixed", "de", {"Reference: %(ref)s": "Az.: %(ref)s"}, mo=False)
    cfg.write_text(text + f'\n[templates]\nlocale_dir = "{tmp_path / "fixed"}"\n')
    res = cli("--config", str(cfg), "doctor", "--no-probe")
    assert res.exit_code == 0, res.stderr


@pytest.mark.parametrize(
    ("msgstr", "shown"),
    [("Hallo %(name).3s", "%(name).3s"), ("100 % sicher, %(name)s", "% sicher"),
     ("Hallo %(nom)s", "%(nom)s"), ("Hallo %(name)d", "%(name)d")],
)  # fmt: skip
def test_a_users_translation_may_only_hold_the_msgids_placeholders(
    tmp_path: Path, msgstr: str, shown: str
) -> None:
    """Caught when the catalog is read (at the first render: a pre-flight), naming the file:
    a ``%(name).3s`` would cut the customer's name (and the shape cache's marker) apart."""
    _user_catalog(tmp_path, "de", {"Hello %(name)s,": msgstr, "Why:": "Warum: 100 %%"}, mo=False)
    r = Renderer(company=builders.COMPANY, locale_dir=tmp_path)
    ctx_customer = builders.customer()
    with pytest.raises(ConfigError, match=re.escape(shown)) as err:
        r.context(incident=builders.incident(), round=builders.round_(RoundKind.UPDATE),
                  customer=ctx_customer)  # fmt: skip
    assert "outagecomms.po" in str(err.value)
    ok = tmp_path / "ok"
    _user_catalog(ok, "de", {"Hello %(name)s,": "Moin %(name)s,", "Why:": "Warum: 100 %%"}, mo=True)
    fine = Renderer(company=builders.COMPANY, locale_dir=ok)
    assert fine.catalogs.translations("de").gettext("Hello %(name)s,") == "Moin %(name)s,"
