"""``init``: a new project folder (config with every key documented, templates, sample customers)."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from outagecomms.errors import InputError
from outagecomms.rendering.templates import default_templates_dir

TEMPLATES_README = """\
Template overrides for outagecomms.

A file here replaces the packaged default of the same path, e.g.

    acknowledgement/email.subject.j2
    acknowledgement/email.txt.j2
    acknowledgement/email.html.j2
    update/email.txt.j2      holding/email.txt.j2      resolution/email.txt.j2

Templates are Jinja2 (sandboxed, StrictUndefined; *.html.j2 is autoescaped). The context:
company, incident, round, customer, promised_next_by (in the customer's timezone and locale),
credit, feedback_url, status_page_url. Copy a default from
{defaults}
and edit it; `outagecomms doctor` renders every template to check it.
"""


def packaged_file(name: str) -> Path:
    """A file shipped in the wheel (force-included), or in the repository checkout."""
    p = resources.files("outagecomms") / name
    if p.is_file():
        return Path(str(p))
    return Path(__file__).resolve().parents[2] / name


def sample_customers_file() -> Path:
    return Path(__file__).resolve().parents[1] / "samples" / "customers.csv"


def init_project(directory: Path, *, force: bool = False) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / "outagecomms.toml"
    if cfg.exists() and not force:
        raise InputError(f"{cfg} already exists; pass {{field:force}} to overwrite it")
    written = []
    shutil.copyfile(packaged_file("config.example.toml"), cfg)
    written.append(cfg)
    tdir = directory / "templates"
    tdir.mkdir(exist_ok=True)
    readme = tdir / "README.txt"
    readme.write_text(TEMPLATES_README.format(defaults=default_templates_dir()))
    written.append(readme)
    customers = directory / "customers.csv"
    if not customers.exists() or force:
        shutil.copyfile(sample_customers_file(), customers)
        written.append(customers)
    return written
