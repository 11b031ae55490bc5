"""The wheel's gettext catalogs, compiled: every ``outagecomms/locale/<lang>/LC_MESSAGES/*.po``
is written as its ``.mo`` into the wheel (never committed: .gitignore). An editable install
or a checkout compiles the ``.po`` in memory instead (outagecomms.rendering.i18n)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CatalogsHook(BuildHookInterface):  # type: ignore[type-arg]  # generic in hatchling
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        self._tmp = tempfile.TemporaryDirectory(prefix="outagecomms-mo-")
        out = Path(self._tmp.name)
        for po in sorted((root / "outagecomms" / "locale").glob("*/LC_MESSAGES/*.po")):
            rel = po.relative_to(root).with_suffix(".mo")
            with po.open("rb") as fh:
                catalog = read_po(fh)
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)
            build_data["force_include"][str(target)] = rel.as_posix()

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            tmp.cleanup()
