"""The customer directory: parse and validate CSV / JSON / JSONL, then import all or nothing."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from outagecomms.directory import fields
from outagecomms.errors import InputError, quote
from outagecomms.invisible import find_invisible, invisible_message
from outagecomms.models import Customer

T = TypeVar("T")

FIELDS = (
    "id",
    "name",
    "email",
    "phone",
    "slack_webhook",
    "teams_webhook",
    "webhook_url",
    "tier",
    "monthly_fee",
    "currency",
    "components",
    "regions",
    "tags",
    "timezone",
    "locale",
    "channels",
    "account_manager",
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ParsedDirectory:
    customers: list[Customer]
    source: str


@lru_cache(maxsize=100_000)
def _valid_email(addr: str) -> tuple[str, str] | None:
    """(the normalised address, its domain in Unicode), or None when it is not a valid
    address."""
    from email_validator import EmailNotValidError, validate_email

    try:
        found = validate_email(addr, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return found.normalized, found.domain


def _url_ok(url: str) -> bool:
    return url.startswith(("https://", "http://")) and not _CTRL.search(url) and " " not in url


class _Row:
    def __init__(
        self, source: str, line: int | None, data: dict[str, Any], item: int | None = None
    ):
        self.source, self.line, self.data, self.item = source, line, data, item

    @property
    def where(self) -> str:
        """``line 7`` or ``item 3``"""
        return f"line {self.line}" if self.line is not None else f"item {self.item}"

    def err(self, field: str, message: str) -> InputError:
        return InputError(
            message, file=self.source, line=self.line, field=field, value=self.data.get(field),
            item=self.item,
        )  # fmt: skip

    def text(self, field: str) -> str:
        v = self.data.get(field)
        if v is None:
            return ""
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise self.err(field, "must be text")
        s = str(v)
        try:
            fields.check_size(field, s)
        except fields.FieldProblem as exc:
            raise self.err(field, str(exc)) from None
        s = s.strip()
        if _CTRL.search(s):
            raise self.err(field, "must not contain control characters (CR, LF, tab, ...)")
        return s

    def items(self, field: str) -> tuple[str, ...]:
        v = self.data.get(field)
        if v is None or v == "":
            return ()
        if isinstance(v, str) and not isinstance(v, _Number):
            self.text(field)  # its size
            parts = [p.strip() for p in v.split(";")]
        elif isinstance(v, list) and all(type(p) is str for p in v):
            parts = [p.strip() for p in v]
        else:
            raise self.err(field, "must be a list of names (in CSV: separated by ';')")
        parts = [p for p in parts if p]
        if len(parts) > fields.MAX_ITEMS:
            raise self.err(field, f"has more than {fields.MAX_ITEMS} names ({len(parts)})")
        for p in parts:
            if not _LABEL.match(p):
                raise self.err(
                    field,
                    f"{quote(p)} is not a valid name (letters, digits, . _ / -; at most "
                    f"{fields.MAX_ITEM_CHARS} characters)",
                )
        return tuple(dict.fromkeys(parts))

    def problem(self, field: str, check: Callable[[str], T], value: str) -> T:
        try:
            return check(value)
        except fields.FieldProblem as exc:
            raise self.err(field, str(exc)) from None

    def email(self, field: str, allow_mixed_script: bool) -> str:
        raw = self.text(field)
        if not raw:
            return ""
        found = _valid_email(raw)
        if found is None:
            raise self.err(field, "is not a valid email address")
        addr, domain = found
        label = None if allow_mixed_script else fields.mixed_script_label(domain)
        if label is not None:
            raise self.err(
                field,
                f"its domain mixes {fields.describe_scripts(label)} letters in {quote(label)}, "
                "as look-alike (homoglyph) domains do; if it is really the address, import with "
                "{field:allow_mixed_script}",
            )
        return addr


def _customer(row: _Row, allow_mixed_script: bool = False) -> Customer:
    for f in row.data:
        if f not in FIELDS:
            raise row.err(f, "unknown column; known columns: " + ", ".join(FIELDS))
    cid = row.text("id")
    if not cid:
        raise row.err("id", "is required")
    if not _ID.match(cid):
        raise row.err("id", "must be letters, digits and . _ : @ - (at most 200)")
    name = row.text("name")
    if not name:
        raise row.err("name", "is required")
    hidden = find_invisible(name)
    if hidden:
        raise row.err("name", invisible_message(hidden))
    email = row.email("email", allow_mixed_script)
    phone = row.text("phone").replace(" ", "")
    if phone and not _E164.match(phone):
        raise row.err("phone", "must be an E.164 number like +15550100123")
    for f in ("slack_webhook", "teams_webhook", "webhook_url"):
        u = row.text(f)
        if u and not _url_ok(u):
            raise row.err(f, "must be an http(s) URL")
    tier = row.text("tier") or "standard"
    if not _LABEL.match(tier):
        raise row.err("tier", "is not a valid tier name")
    currency = row.problem("currency", fields.check_currency, row.text("currency") or "USD")
    places = fields.currency_places(currency)
    fee = row.problem(
        "monthly_fee", lambda v: fields.parse_fee(v, places), row.text("monthly_fee") or "0"
    )
    tz = row.problem("timezone", fields.check_zone, row.text("timezone") or "UTC")
    locale = row.problem("locale", fields.normalise_locale, row.text("locale") or "en_US")
    manager = row.email("account_manager", allow_mixed_script)
    return Customer(
        id=cid,
        name=name,
        email=email,
        phone=phone,
        slack_webhook=row.text("slack_webhook"),
        teams_webhook=row.text("teams_webhook"),
        webhook_url=row.text("webhook_url"),
        tier=tier,
        monthly_fee=fee,
        currency=currency,
        components=row.items("components"),
        regions=row.items("regions"),
        tags=row.items("tags"),
        timezone=tz,
        locale=locale,
        channels=row.items("channels"),
        account_manager=manager,
    )


def _rows_csv(text: str, source: str) -> Iterator[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    if not reader.fieldnames:
        raise InputError("the file is empty: a CSV needs a header row", file=source, line=1)
    header = [h.strip() for h in reader.fieldnames]
    if "id" not in header or "name" not in header:
        raise InputError(
            "the header row must name at least the columns id and name", file=source, line=1
        )
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise InputError(
            f"duplicate column(s) in the header: {', '.join(sorted(dupes))}", file=source, line=1
        )
    unknown = [h for h in header if h not in FIELDS]
    if unknown:
        raise InputError(
            "unknown column; known columns: " + ", ".join(FIELDS),
            file=source,
            line=1,
            field=unknown[0],
        )
    reader.fieldnames = header
    try:
        for rec in reader:
            # line_num is where the record ends; a quoted value may span lines: report the start
            line = reader.line_num - sum(
                len(_BREAK.findall(v)) for v in rec.values() if isinstance(v, str)
            )
            if None in rec:
                raise InputError(
                    f"has {len(header) + len(rec[None])} values but the header has {len(header)} columns",
                    file=source,
                    line=line,
                )
            if any(v is None for v in rec.values()):
                raise InputError(
                    f"has fewer values than the header's {len(header)} columns",
                    file=source,
                    line=line,
                )
            if not any((v or "").strip() for v in rec.values()):
                continue
            yield _Row(source, line, dict(rec))
    except csv.Error as exc:
        # the reader fails before it counts the line it was reading
        limit = "field larger than field limit"
        if str(exc).startswith(limit):
            raise InputError(
                f"a value is longer than {csv.field_size_limit()} characters",
                file=source,
                line=reader.line_num + 1,
            ) from None
        raise InputError(f"malformed CSV: {exc}", file=source, line=reader.line_num) from None


class _Number(str):
    """A JSON number, kept as its text: a fee is parsed by its own rule (no float rounding, no
    1e999999), and a 100,000-digit integer is no ValueError."""


def _load_json(text: str) -> Any:
    return json.loads(text, parse_float=_Number, parse_int=_Number)


def _rows_json(text: str, source: str) -> Iterator[_Row]:
    try:
        data = _load_json(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=source, line=exc.lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deeply for a directory", file=source) from None
    if isinstance(data, dict) and "customers" in data:
        data = data["customers"]
    if not isinstance(data, list):
        raise InputError("a JSON directory must be a list of customer objects", file=source, line=1)
    # Map each top-level object to the line where it starts, for error messages; where one
    # line holds several objects (an array on one line) the item's position says which.
    starts = _object_lines(text)
    shared = {n for n, times in Counter(starts).items() if times > 1}
    for i, item in enumerate(data):
        line = starts[i] if i < len(starts) else None
        if line in shared:
            line = None
        if not isinstance(item, dict):
            raise InputError(f"item {i + 1} must be an object", file=source, line=line)
        yield _Row(source, line, item, item=None if line is not None else i + 1)


#: what the scan for the customer objects' lines looks at: a whole string (skipped in one
#: step: a 10 MB name is one match) or a bracket
_JSON_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]')


def _object_lines(text: str) -> list[int]:
    """Line numbers where each object of the customer array starts (top-level array, or the
    array under a top-level ``customers`` key). ``text`` is valid JSON (it was parsed), so a
    string holds no line break: the lines are counted between the brackets."""
    target = 1 if text.lstrip().startswith("[") else 2
    out: list[int] = []
    depth, line, seen = 0, 1, 0
    for m in _JSON_STRUCTURE.finditer(text):
        ch = m.group()
        if ch in "[{":
            if ch == "{" and depth == target:
                line += text.count("\n", seen, m.start())
                seen = m.start()
                out.append(line)
            depth += 1
        elif ch in "]}":
            depth -= 1
    return out


def _rows_jsonl(text: str, source: str) -> Iterator[_Row]:
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = _load_json(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", file=source, line=n) from None
        except RecursionError:
            raise InputError(
                "JSON nested too deeply for a directory", file=source, line=n
            ) from None
        if not isinstance(item, dict):
            raise InputError("each line must be a JSON object", file=source, line=n)
        yield _Row(source, n, item)


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in ("csv", "json", "jsonl"):
            raise InputError(f"unknown format {fmt!r}; use csv, json or jsonl", field="format")
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "json", "jsonl"):
        return suffix
    if suffix == "ndjson":
        return "jsonl"
    raise InputError(
        "cannot tell the format from the file name; pass {field:format} csv|json|jsonl", file=path
    )


def parse_directory(
    path: Path, fmt: str | None = None, *, allow_mixed_script: bool = False
) -> ParsedDirectory:
    """Read and validate every row; raise InputError at the first bad one (nothing is kept).
    ``allow_mixed_script``: accept email domains that mix scripts (look-alike domains)."""
    source = str(path)
    kind = detect_format(path, fmt)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("file not found", file=source) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", file=source) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=source) from None
    rows = {"csv": _rows_csv, "json": _rows_json, "jsonl": _rows_jsonl}[kind](text, source)
    seen: dict[str, str] = {}
    out: list[Customer] = []
    for row in rows:
        c = _customer(row, allow_mixed_script)
        if c.id in seen:
            raise row.err("id", f"duplicate id (first at {seen[c.id]})")
        seen[c.id] = row.where
        out.append(c)
    return ParsedDirectory(out, source)
