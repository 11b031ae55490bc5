"""The README's Python example runs as printed: a script that reads the README learns an API
that works."""

from __future__ import annotations

import mailbox
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.data import REPO

SECTION = "## Using it from Python"


def readme_python_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, flags=re.S | re.M)
    assert len(blocks) == 1, f"expected one ```python block under {SECTION!r}, got {len(blocks)}"
    return str(blocks[0])


def test_the_readme_python_block_declares_updates_and_resolves_to_a_maildir(
    tmp_path: Path,
) -> None:
    code = readme_python_block()
    assert re.findall(r"^(?:from|import) ([A-Za-z_][\w.]*)", code, flags=re.M) == [
        "mailbox",
        "tempfile",
        "pathlib",
        "outagecomms",
    ], "the example uses outagecomms' public names only"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},  # where the example's mkdtemp() goes
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (work,) = scratch.iterdir()
    box = mailbox.Maildir(str(work / "maildir"), create=False)
    got = sorted(
        (str(m["X-Outagecomms-Customer"]), str(m["X-Outagecomms-Round"]).split()[1]) for m in box
    )
    # the two customers on component auth, each told three times; globex (billing) never
    assert got == sorted(
        (c, kind)
        for c in ("acme", "initech")
        for kind in ("acknowledgement", "update", "resolution")
    )
    assert "INC-1: told 2 customers" in proc.stdout
    assert "promises kept 6/6" in proc.stdout
