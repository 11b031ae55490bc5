"""docs/cli.md is generated from the commands' --help: it must match the code."""

from __future__ import annotations

from pathlib import Path

from outagecomms.cli import reference

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_docs_cli_md_is_current() -> None:
    current = DOCS.read_text(encoding="utf-8")
    assert reference.render(current) == current, (
        f"docs/cli.md is stale: run `{reference.COMMAND}` in the repository root and commit it"
    )


def test_every_command_is_in_the_reference() -> None:
    text = reference.generated()
    for path in (
        "outagecomms declare", "outagecomms deliveries retry", "outagecomms customers import",
        "outagecomms feedback record", "outagecomms db upgrade", "outagecomms drafts dismiss",
    ):  # fmt: skip
        assert f"## `{path}`" in text
    assert "--queue-only" in text and "Usage: outagecomms update [OPTIONS] INCIDENT MESSAGE" in text


def test_the_hand_written_part_is_kept(tmp_path: Path) -> None:
    """Regenerating keeps what follows the marker, and a file without one gets the marker."""
    stale = "# old\n\n" + reference.MANUAL_MARKER + "\n\n## Exit codes\n\nby hand\n"
    fresh = reference.render(stale)
    assert fresh.startswith(reference.generated())
    assert fresh.endswith(reference.MANUAL_MARKER + "\n\n## Exit codes\n\nby hand\n")
    assert reference.render("").endswith(reference.MANUAL_MARKER + "\n")
    out = tmp_path / "cli.md"
    out.write_text(stale, encoding="utf-8")
    assert reference.main(["--check", str(out)]) == 1
    assert reference.main([str(out)]) == 0
    assert reference.main(["--check", str(out)]) == 0


def test_every_argument_shows_its_help() -> None:
    """Each argument's help text reaches ``--help`` (and so docs/cli.md): a click release once
    dropped what typer sets on arguments."""
    import click
    import typer

    from outagecomms.cli import app

    text = " ".join(reference.generated().split())
    helps: list[tuple[str, str]] = []

    def walk(cmd: click.Command, path: str) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")
            return
        for param in cmd.params:
            help_ = getattr(param, "help", None)
            if isinstance(param, click.Argument) and help_:
                helps.append((f"{path} {param.name}", " ".join(help_.split())))

    walk(typer.main.get_command(app), "outagecomms")
    assert len(helps) >= 5
    missing = [where for where, help_ in helps if help_ not in text]
    assert not missing, f"argument help not shown by --help: {missing}"
