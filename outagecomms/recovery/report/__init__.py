"""The post-incident report (``outagecomms report INC``): what happened, who was told what and
when, whether the promises were kept, what it cost in credits and what customers said.

- ``model``: the report as typed, frozen values (``Report.to_json()`` for data);
- ``build``: ``build_report`` reads the ledger (through ``store.reporting``) into a ``Report``;
- ``markdown``, ``html`` (with ``chart``, the SVG of promised versus actual notice times):
  the renderers; ``tables`` holds the rows both show, ``units`` how figures read.
"""

from __future__ import annotations

from pathlib import Path

from outagecomms.app import App
from outagecomms.errors import InputError
from outagecomms.files import write_private
from outagecomms.recovery.report.build import build_report
from outagecomms.recovery.report.html import render_html
from outagecomms.recovery.report.markdown import render_markdown
from outagecomms.recovery.report.model import Report

__all__ = ["FORMATS", "Report", "build_report", "render_html", "render_markdown", "write_report"]

FORMATS = ("md", "html")


def write_report(app: App, incident_id: int, fmt: str = "md", output: Path | None = None) -> str:
    """Build and render the report; write it to ``output`` when given. Returns the text."""
    if fmt not in FORMATS:
        raise InputError("unknown report format; use md or html", field="format", value=fmt)
    report = build_report(app, incident_id)
    text = render_markdown(report) if fmt == "md" else render_html(report)
    if output is not None:
        try:
            write_private(output, text)
        except OSError as exc:
            raise InputError(
                f"cannot write the report: {exc.strerror or exc}", field="output", value=str(output)
            ) from None
    return text
