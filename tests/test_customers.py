"""The customer directory: CSV / JSON / JSONL import (all rows or none), validation errors that
name ``file:line``, the field and the value, and the selectors of ``customers list``."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from outagecomms.directory.parse import FIELDS, parse_directory
from outagecomms.errors import InputError
from tests.support.data import sample_csv
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]
LIST_COLUMNS = ("components", "regions", "tags", "channels")


# --- helpers ----------------------------------------------------------------------------------


def sample_rows() -> list[dict[str, str]]:
    with sample_csv().open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def sample_header() -> list[str]:
    with sample_csv().open(newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


def write_csv(
    path: Path,
    rows: Sequence[dict[str, str]],
    header: Sequence[str] | None = None,
    *,
    quoting: int = csv.QUOTE_MINIMAL,
) -> Path:
    header = list(header or sample_header())
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header, lineterminator="\n", quoting=quoting)
        w.writeheader()
        w.writerows(rows)
    return path


def as_object(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a JSON customer object: lists as arrays, the fee as a number."""
    obj: dict[str, Any] = {}
    for k, v in row.items():
        if k in LIST_COLUMNS:
            obj[k] = [x for x in v.split(";") if x]
        elif k == "monthly_fee":
            obj[k] = float(v) if "." in v else int(v)
        elif v != "":
            obj[k] = v
    return obj


def write_json(path: Path, objs: Sequence[dict[str, Any]], *, wrap: bool = False) -> Path:
    data: Any = {"customers": list(objs)} if wrap else list(objs)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path: Path, objs: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


def object_start_line(path: Path, customer_id: str) -> int:
    """The 1-based line of the ``{`` that opens the object with this id (indented JSON)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = next(i for i, ln in enumerate(lines) if f'"id": "{customer_id}"' in ln)
    while lines[i].strip() != "{":
        i -= 1
    return i + 1


def refusal(path: Path) -> InputError:
    """The ``InputError`` that parsing ``path`` raises (the test fails if it parses)."""
    with pytest.raises(InputError) as info:
        parse_directory(path)
    return info.value


def json_error_names(
    path: Path, objs: list[dict[str, Any]], bad: int, field: str, **kw: Any
) -> int:
    """``objs`` written to ``path`` as indented JSON (``kw`` for ``write_json``): parsing it
    fails naming ``field`` at the line that opens object ``bad``; returns that line."""
    write_json(path, objs, **kw)
    line = object_start_line(path, objs[bad]["id"])
    with pytest.raises(InputError, match=rf"{re.escape(path.name)}:{line}: field '{field}'"):
        parse_directory(path)
    return line


def listed(cli: Cli, cfg: Path, *selectors: str) -> list[dict[str, Any]]:
    res = cli("--config", str(cfg), "customers", "list", *selectors, "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["count"] == len(data["customers"])
    return list(data["customers"])


def listed_ids(cli: Cli, cfg: Path, *selectors: str) -> list[str]:
    return [c["id"] for c in listed(cli, cfg, *selectors)]


def import_ok(cli: Cli, cfg: Path, path: Path, *extra: str) -> dict[str, Any]:
    res = cli("--config", str(cfg), "customers", "import", str(path), *extra, "--json")
    assert res.exit_code == 0, res.stderr
    return dict(json.loads(res.stdout))


@pytest.fixture
def cfg(make_config: Callable[..., Path]) -> Path:
    return make_config()


# --- parsing the three formats ----------------------------------------------------------------


def test_sample_csv_parses_40_customers() -> None:
    rows = sample_rows()
    parsed = parse_directory(sample_csv())
    assert len(parsed.customers) == 40 == len(rows)
    by_id = {c.id: c for c in parsed.customers}
    for r in rows:
        c = by_id[r["id"]]
        assert c.name == r["name"]
        assert c.email == r["email"]
        assert c.phone == r["phone"]
        assert c.tier == r["tier"]
        assert c.monthly_fee == Decimal(r["monthly_fee"])
        assert c.currency == r["currency"]
        assert list(c.components) == [x for x in r["components"].split(";") if x]
        assert list(c.regions) == [x for x in r["regions"].split(";") if x]
        assert list(c.tags) == [x for x in r["tags"].split(";") if x]
        assert c.timezone == r["timezone"]
        assert c.locale == r["locale"]


@pytest.mark.parametrize("variant", ["json", "json-wrapped", "jsonl", "json-as-.txt"])
def test_json_variants_parse_like_the_csv(tmp_path: Path, variant: str) -> None:
    objs = [as_object(r) for r in sample_rows()]
    if variant == "json":
        path, fmt = write_json(tmp_path / "dir.json", objs), None
    elif variant == "json-wrapped":
        path, fmt = write_json(tmp_path / "dir.json", objs, wrap=True), None
    elif variant == "jsonl":
        path, fmt = write_jsonl(tmp_path / "dir.jsonl", objs), None
    else:
        path, fmt = write_json(tmp_path / "dir.txt", objs), "json"
    from_json = parse_directory(path, fmt).customers
    from_csv = parse_directory(sample_csv()).customers
    assert len(from_json) == 40
    assert from_json == from_csv


def test_format_cannot_be_guessed(tmp_path: Path) -> None:
    path = write_json(tmp_path / "dir.txt", [as_object(sample_rows()[0])])
    with pytest.raises(InputError, match="pass format csv"):
        parse_directory(path)


def test_defaults_and_normalisation(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "min.csv",
        [{"id": "x1", "name": "  Acme  ", "email": "Ops@Example.COM", "locale": "de-DE"}],
        header=["id", "name", "email", "locale"],
    )
    (c,) = parse_directory(path).customers
    assert c.name == "Acme"
    assert c.email == "Ops@example.com"  # the domain is case-insensitive
    assert c.locale == "de_DE"
    assert (c.tier, c.currency, c.timezone, c.monthly_fee) == ("standard", "USD", "UTC", 0)


# --- validation errors ------------------------------------------------------------------------

# (column, bad value, fragment of the message)
BAD_VALUES: dict[str, tuple[str, str, str]] = {
    "invalid email": ("email", "ops-at-example.com", "email address"),
    "invalid phone (dashes)": ("phone", "555-157-4717", "E.164"),
    "invalid phone (no plus)": ("phone", "15551574717", "E.164"),
    "invalid timezone": ("timezone", "Mars/Olympus_Mons", "IANA"),
    "invalid locale": ("locale", "xx_YY", "locale"),
    "invalid currency": ("currency", "EURO", "ISO 4217"),
    "negative fee": ("monthly_fee", "-5", ">= 0"),
    "non-numeric fee": ("monthly_fee", "ten", "number"),
    "NaN fee": ("monthly_fee", "NaN", ">= 0"),
    "bad component name": ("components", "api;data base", "valid name"),
    "invalid account manager": ("account_manager", "boss@", "email address"),
    "missing name": ("name", "", "required"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES), ids=list(BAD_VALUES))
def test_bad_value_names_file_line_field_value(tmp_path: Path, case: str) -> None:
    field, value, fragment = BAD_VALUES[case]
    rows = sample_rows()
    rows[3][field] = value  # data row 4 is line 5 (the header is line 1)
    path = write_csv(tmp_path / "bad.csv", rows)
    err = refusal(path)
    msg = str(err)
    assert "bad.csv:5:" in msg
    assert f"'{field}'" in msg
    if value:
        assert repr(value) in msg
    assert fragment in msg
    assert (err.line, err.field) == (5, field)


@pytest.mark.parametrize(
    ("case", "expected"),
    [("too many", "15 values"), ("too few", "fewer values")],
)
def test_malformed_row(tmp_path: Path, case: str, expected: str) -> None:
    lines = sample_csv().read_text(encoding="utf-8").splitlines()
    lines[7] = lines[7] + ",surplus" if case == "too many" else lines[7].rsplit(",", 2)[0]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    msg = str(refusal(path))
    assert "bad.csv:8:" in msg
    assert expected in msg


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    rows = sample_rows()
    rows[9]["id"] = rows[2]["id"]  # line 11 repeats line 4
    path = write_csv(tmp_path / "bad.csv", rows)
    msg = str(refusal(path))
    assert "bad.csv:11:" in msg
    assert "'id'" in msg and repr(rows[2]["id"]) in msg
    assert "duplicate" in msg and "line 4" in msg


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r", "\r\nBcc: evil@example.net"])
def test_line_break_inside_a_name(tmp_path: Path, newline: str) -> None:
    rows = sample_rows()
    rows[3]["name"] = f"Pioneer{newline} Dynamic"
    # written with newline="" so the line break inside the quoted value survives as is
    # (quoted, since the csv module does not quote a lone CR when the line ends with LF)
    path = write_csv(tmp_path / "bad.csv", rows, quoting=csv.QUOTE_ALL)
    assert newline.encode() in path.read_bytes()
    msg = str(refusal(path))
    # the record starts on line 5, even though it spans two physical lines
    assert "bad.csv:5:" in msg
    assert "'name'" in msg
    assert "control characters" in msg


def test_line_numbers_stay_right_after_a_multiline_error_row(tmp_path: Path) -> None:
    rows = sample_rows()
    rows[1]["tags"] = "a\nb"  # line 3, spanning lines 3-4
    path = write_csv(tmp_path / "bad.csv", rows)
    msg = str(refusal(path))
    assert "bad.csv:3:" in msg


def test_control_character_in_name(tmp_path: Path) -> None:
    rows = sample_rows()
    rows[0]["name"] = "Acme\x07Bell"
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(InputError, match=r"bad\.csv:2: field 'name'"):
        parse_directory(path)


def test_unknown_column_names_header_line(tmp_path: Path) -> None:
    rows = [{**r, "colour": "red"} for r in sample_rows()]
    path = write_csv(tmp_path / "bad.csv", rows, header=[*sample_header(), "colour"])
    msg = str(refusal(path))
    assert "bad.csv:1:" in msg
    assert "'colour'" in msg
    assert "unknown column" in msg
    for known in FIELDS:
        assert known in msg


BAD_FILES = {
    # case: (file name, its whole text, what the error says: a regular expression)
    "header without id or name": (
        "bad.csv", "name,email\nAcme,ops@example.com\n", r"bad\.csv:1:.*id and name"
    ),
    "empty file": ("empty.csv", "", r"empty\.csv:1:"),
    "JSON syntax error": (
        "bad.json", '[\n  {"id": "a", "name": "A"},\n  {"id": "b" "name": "B"}\n]\n', r"bad\.json:3:"
    ),
}  # fmt: skip


@pytest.mark.parametrize(("name", "text", "says"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_names_file_and_line(tmp_path: Path, name: str, text: str, says: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=says):
        parse_directory(path)


def test_json_error_points_at_the_bad_objects_line(tmp_path: Path) -> None:
    objs = [as_object(r) for r in sample_rows()]
    objs[6]["email"] = "not an email"
    path = write_json(tmp_path / "bad.json", objs)
    expected = object_start_line(path, objs[6]["id"])
    assert expected > 100  # really the 7th object, not the start of the file
    msg = str(refusal(path))
    assert f"bad.json:{expected}:" in msg
    assert "'email'" in msg and "'not an email'" in msg


def test_json_wrapped_error_line(tmp_path: Path) -> None:
    objs = [as_object(r) for r in sample_rows()]
    objs[12]["timezone"] = "Europe/Atlantis"
    json_error_names(tmp_path / "bad.json", objs, 12, "timezone", wrap=True)


def test_json_braces_inside_strings_do_not_confuse_line_numbers(tmp_path: Path) -> None:
    objs = [as_object(r) for r in sample_rows()[:5]]
    objs[0]["name"] = 'Curly {Braces} "Inc" [1]'
    objs[3]["currency"] = "ZZZ"
    json_error_names(tmp_path / "bad.json", objs, 3, "currency")


def test_json_escapes_before_brackets_do_not_confuse_line_numbers(tmp_path: Path) -> None:
    """A backslash and an escaped quote just before a bracket (the scan skips whole strings)."""
    objs = [as_object(r) for r in sample_rows()[:5]]
    objs[0]["name"] = 'Back\\slash\\" {Inc} \\'
    objs[1]["name"] = '\\"[' * 3
    objs[3]["currency"] = "ZZZ"
    json_error_names(tmp_path / "bad.json", objs, 3, "currency")


def test_json_unknown_key_and_wrong_type(tmp_path: Path) -> None:
    objs = [as_object(r) for r in sample_rows()[:3]]
    objs[1]["colour"] = "red"
    line = json_error_names(tmp_path / "bad.json", objs, 1, "colour")
    objs[1].pop("colour")
    objs[1]["components"] = 7
    assert json_error_names(tmp_path / "bad.json", objs, 1, "components") == line


def test_jsonl_error_line(tmp_path: Path) -> None:
    objs = [as_object(r) for r in sample_rows()]
    objs[20]["phone"] = "+0123"
    path = write_jsonl(tmp_path / "bad.jsonl", objs)
    msg = str(refusal(path))
    assert "bad.jsonl:21:" in msg and "'phone'" in msg and "'+0123'" in msg


def test_jsonl_duplicate_id(tmp_path: Path) -> None:
    objs = [as_object(r) for r in sample_rows()[:4]]
    objs[3]["id"] = objs[0]["id"]
    path = write_jsonl(tmp_path / "bad.jsonl", objs)
    with pytest.raises(InputError, match=r"bad\.jsonl:4: field 'id'.*line 1"):
        parse_directory(path)


# --- through the CLI: all or nothing ----------------------------------------------------------


def test_cli_import_sample(cli: Cli, cfg: Path) -> None:
    res = import_ok(cli, cfg, sample_csv())
    assert (res["rows"], res["created"], res["updated"]) == (40, 40, 0)
    got = listed(cli, cfg)
    assert sorted(c["id"] for c in got) == sorted(r["id"] for r in sample_rows())


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_cli_import_json_formats(cli: Cli, cfg: Path, tmp_path: Path, fmt: str) -> None:
    objs = [as_object(r) for r in sample_rows()]
    path = (
        write_json(tmp_path / "dir.json", objs)
        if fmt == "json"
        else write_jsonl(tmp_path / "dir.jsonl", objs)
    )
    assert import_ok(cli, cfg, path)["created"] == 40
    got = {c["id"]: c for c in listed(cli, cfg)}
    for o in objs:
        assert got[o["id"]]["components"] == o["components"]
        assert got[o["id"]]["name"] == o["name"]


BAD_ROW_EDITS: dict[str, tuple[str, str]] = {
    "email": ("email", "nobody@"),
    "phone": ("phone", "+1 555 CALL ME"),
    "timezone": ("timezone", "CET+1"),
    "locale": ("locale", "klingon"),
    "currency": ("currency", "BTC"),
    "monthly_fee": ("monthly_fee", "-1.00"),
}


@pytest.mark.parametrize("case", list(BAD_ROW_EDITS), ids=list(BAD_ROW_EDITS))
def test_cli_bad_row_imports_nothing(cli: Cli, cfg: Path, tmp_path: Path, case: str) -> None:
    field, value = BAD_ROW_EDITS[case]
    rows = sample_rows()
    rows[3][field] = value  # rows 1-3 (lines 2-4) are good, line 5 is bad
    path = write_csv(tmp_path / "bad.csv", rows)
    assert listed(cli, cfg) == []
    res = cli("--config", str(cfg), "customers", "import", str(path))
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "bad.csv:5" in lines[0]
    assert field in lines[0]
    assert value in lines[0]
    assert listed(cli, cfg) == []  # not even the three good rows before it


def test_cli_bad_late_row_leaves_existing_directory_untouched(
    cli: Cli, cfg: Path, tmp_path: Path
) -> None:
    import_ok(cli, cfg, sample_csv())
    before = listed(cli, cfg)
    rows = sample_rows()
    for r in rows[:30]:
        r["name"] = r["name"] + " (renamed)"
    rows.append({**rows[0], "id": "c9999999", "name": "New Co"})  # a new one, good
    rows[35]["email"] = "broken@@example.com"  # line 37
    path = write_csv(tmp_path / "bad.csv", rows)
    res = cli("--config", str(cfg), "customers", "import", str(path), "--replace")
    assert res.exit_code == 2
    assert "bad.csv:37" in res.stderr and "email" in res.stderr
    assert listed(cli, cfg) == before


def test_cli_malformed_row(cli: Cli, cfg: Path, tmp_path: Path) -> None:
    lines = sample_csv().read_text(encoding="utf-8").splitlines()
    lines[4] += ",one-too-many"
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = cli("--config", str(cfg), "customers", "import", str(path))
    assert res.exit_code == 2
    assert "bad.csv:5" in res.stderr
    assert listed(cli, cfg) == []


def test_cli_missing_file(cli: Cli, cfg: Path, tmp_path: Path) -> None:
    res = cli("--config", str(cfg), "customers", "import", str(tmp_path / "nope.csv"))
    assert res.exit_code == 2
    assert "nope.csv" in res.stderr and "not found" in res.stderr


def test_cli_reimport_updates_by_id(cli: Cli, cfg: Path, tmp_path: Path) -> None:
    import_ok(cli, cfg, sample_csv())
    rows = sample_rows()
    rows[4]["name"] = "Renamed Holdings"
    rows[4]["components"] = "api"
    res = import_ok(cli, cfg, write_csv(tmp_path / "v2.csv", rows))
    assert (res["created"], res["updated"], res["removed"]) == (0, 40, 0)
    got = {c["id"]: c for c in listed(cli, cfg)}
    assert len(got) == 40
    assert got[rows[4]["id"]]["name"] == "Renamed Holdings"
    assert got[rows[4]["id"]]["components"] == ["api"]
    assert got[rows[5]["id"]]["name"] == rows[5]["name"]


def test_cli_partial_reimport_keeps_others_unless_replace(
    cli: Cli, cfg: Path, tmp_path: Path
) -> None:
    import_ok(cli, cfg, sample_csv())
    rows = sample_rows()[:10]
    rows.append({**rows[0], "id": "c0000100", "name": "Newcomer"})
    subset = write_csv(tmp_path / "subset.csv", rows)
    res = import_ok(cli, cfg, subset)
    assert (res["created"], res["updated"], res["removed"]) == (1, 10, 0)
    assert len(listed_ids(cli, cfg)) == 41
    res = import_ok(cli, cfg, subset, "--replace")
    assert (res["created"], res["updated"], res["removed"]) == (0, 11, 30)
    assert sorted(listed_ids(cli, cfg)) == sorted(r["id"] for r in rows)


# --- selectors --------------------------------------------------------------------------------


def expected_ids(
    *,
    component: Sequence[str] = (),
    region: Sequence[str] = (),
    tier: Sequence[str] = (),
    tag: Sequence[str] = (),
    customer: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[str]:
    """The selection computed straight from the CSV: kinds AND, values of one kind OR;
    --customer adds, --exclude removes; no selector at all lists everyone."""
    has_filters = bool(component or region or tier or tag)
    out = []
    for r in sample_rows():
        if r["id"] in exclude:
            continue
        comps = set(r["components"].split(";"))
        regs = set(r["regions"].split(";"))
        tags = set(r["tags"].split(";"))
        ok = (
            (not component or comps & set(component))
            and (not region or regs & set(region))
            and (not tier or r["tier"] in tier)
            and (not tag or tags & set(tag))
        )
        if r["id"] in customer or (has_filters and ok) or (not has_filters and not customer):
            out.append(r["id"])
    return sorted(out)


SELECTIONS: list[dict[str, list[str]]] = [
    {},
    {"component": ["auth"]},
    {"component": ["auth", "billing"]},
    {"component": ["database"], "region": ["eu-west"]},
    {"component": ["database", "dns"], "region": ["eu-west", "us-east"]},
    {"tier": ["business"]},
    {"tier": ["business", "enterprise"], "region": ["ap-south"]},
    {"tag": ["beta"]},
    {"tag": ["beta", "regulated"], "component": ["dns", "search"]},
    {"component": ["api"], "tier": ["standard"], "region": ["us-west"], "tag": []},
    {"component": ["auth"], "exclude": ["c0000001", "c0000007"]},
    {"component": ["search"], "customer": ["c0000010", "c0000040"]},
    {"customer": ["c0000003", "c0000004"]},
    {"customer": ["c0000003", "c0000004"], "exclude": ["c0000004"]},
    {"exclude": ["c0000001"]},
    {"region": ["us-east"], "tier": ["enterprise"]},  # matches nobody
]


@pytest.mark.parametrize("sel", SELECTIONS, ids=[json.dumps(s) for s in SELECTIONS])
def test_cli_list_selectors_match_the_csv(cli: Cli, cfg: Path, sel: dict[str, list[str]]) -> None:
    import_ok(cli, cfg, sample_csv())
    args = [arg for kind, vals in sel.items() for v in vals for arg in (f"--{kind}", v)]
    got = listed_ids(cli, cfg, *args)
    assert sorted(got) == expected_ids(**sel)
    assert len(got) == len(set(got))


def test_selection_is_not_trivial() -> None:
    """Guard the table above: the interesting cases select some but not all customers."""
    assert 0 < len(expected_ids(component=["database"], region=["eu-west"])) < 10
    assert len(expected_ids(component=["auth", "billing"])) > len(expected_ids(component=["auth"]))
    assert expected_ids(region=["us-east"], tier=["enterprise"]) == []


def test_cli_list_unknown_component(cli: Cli, cfg: Path) -> None:
    import_ok(cli, cfg, sample_csv())
    res = cli("--config", str(cfg), "customers", "list", "--component", "databse", "--json")
    assert res.exit_code == 2
    assert res.stdout == ""
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "--component" in line and "'databse'" in line
    listing = line.split("closest first:")[1]
    names = [n.strip() for n in listing.split(",")]
    assert names[0] == "database"
    all_components = {c for r in sample_rows() for c in r["components"].split(";")}
    assert set(names) == all_components


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--region", "eu-wset"),
        ("--tier", "gold"),
        ("--tag", "vip"),
        ("--customer", "c404"),
        ("--exclude", "c404"),
    ],
)
def test_cli_list_unknown_values(cli: Cli, cfg: Path, flag: str, value: str) -> None:
    import_ok(cli, cfg, sample_csv())
    res = cli("--config", str(cfg), "customers", "list", flag, value)
    assert res.exit_code == 2
    assert flag in res.stderr and repr(value) in res.stderr
    assert re.search(r"known \w+s, closest first: \S", res.stderr)


def test_excel_style_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    text = sample_csv().read_text(encoding="utf-8")
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    assert parse_directory(path).customers == parse_directory(sample_csv()).customers
    rows = sample_rows()
    rows[5]["currency"] = "EUROS"
    bad = tmp_path / "bad.csv"
    write_csv(bad, rows)
    bad.write_bytes(b"\xef\xbb\xbf" + bad.read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(InputError, match=r"bad\.csv:7: field 'currency'"):
        parse_directory(bad)


def test_cli_header_only_file(cli: Cli, cfg: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "empty.csv", [])
    res = cli("--config", str(cfg), "customers", "import", str(path))
    assert res.exit_code == 2
    assert "empty.csv" in res.stderr and "no customers" in res.stderr


def test_cli_unknown_format(cli: Cli, cfg: Path) -> None:
    res = cli("--config", str(cfg), "customers", "import", str(sample_csv()), "--format", "xml")
    assert res.exit_code == 2
    assert "--format" in res.stderr and "'xml'" in res.stderr
    assert listed(cli, cfg) == []


def test_cli_list_table_shows_names_literally(cli: Cli, cfg: Path, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "brackets.csv",
        [
            {"id": "x1", "name": "Acme [/] Corp", "email": "a@example.com", "components": "auth"},
            {
                "id": "x2",
                "name": "[red]Beta[/red] Ltd",
                "email": "b@example.com",
                "components": "auth",
            },
        ],
        header=["id", "name", "email", "components"],
    )
    import_ok(cli, cfg, path)
    assert sorted(c["name"] for c in listed(cli, cfg)) == ["Acme [/] Corp", "[red]Beta[/red] Ltd"]
    res = cli("--config", str(cfg), "customers", "list")
    assert res.exit_code == 0
    assert "Acme [/] Corp" in res.stdout
    assert "[red]Beta[/red] Ltd" in res.stdout
