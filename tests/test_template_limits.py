"""The template sandbox's limits (``rendering.sandbox``) beyond the hardening table's rows:
what counts as a step, that the limits come from ``[templates]``, and that code compiled
without them is never loaded from the bytecode cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from outagecomms.config.model import CompanyConfig, TemplateLimits
from outagecomms.errors import TemplateError
from outagecomms.models import RoundKind
from outagecomms.rendering import templates
from outagecomms.rendering.sandbox import CODE_VERSION, LimitedSandbox, TemplateLimitError, budget
from outagecomms.rendering.templates import Renderer
from tests.support.builders import customer, incident, round_

COMPANY = CompanyConfig(name="S1 Technology")


def context(r: Renderer) -> dict[str, object]:
    return r.context(
        incident=incident(), round=round_(RoundKind.ACKNOWLEDGEMENT), customer=customer()
    )


def render(source: str, limits: TemplateLimits | None = None, **ctx: object) -> str:
    limits = limits or TemplateLimits()
    env = LimitedSandbox(limits=limits)
    with budget(limits):
        return env.from_string(source).render(**ctx)


def test_a_recursive_loop_counts_every_iteration() -> None:
    """``loop(children)`` iterates through the guard too: 10,000 calls that each iterate
    10,000 items are refused (the calls alone are far below max_steps)."""
    source = (
        "{% for x in items recursive %}{% if loop.depth < 2 %}{{ loop(items) }}{% endif %}"
        "{% endfor %}"
    )
    with pytest.raises(TemplateLimitError, match="max_steps"):
        render(source, items=list(range(10_000)))


def test_ordinary_templates_are_not_limited() -> None:
    source = (
        "{{ range(5)|join(', ') }}; {{ 'a %s b' % 'x' }}; {{ '{}-{}'.format(1, 2) }}; "
        "{{ [1, 2]|sum }}; {{ 2 ** 10 }}; {{ 'ab' * 3 }}; {{ 'x' ~ 'y' }}; "
        "{{ 'line\\nline'|indent(2) }}; {{ 'x'|center(5) }}|"
        "{{ [1, 2]|map('string')|join('-') }} {{ [3, 4]|map('string')|join(d='+') }}"
    )
    assert render(source) == (
        "0, 1, 2, 3, 4; a x b; 1-2; 3; 1024; ababab; xy; line\n  line;   x  |1-2 3+4"
    )


def test_the_limits_come_from_the_renderer(tmp_path: Path) -> None:
    """A smaller ``max_body``: an override that prints more fails naming it."""
    (tmp_path / "acknowledgement").mkdir()
    (tmp_path / "acknowledgement" / "email.txt.j2").write_text("{{ 'x' * 1500 }}\n")
    r = Renderer(company=COMPANY, user_dir=tmp_path, limits=TemplateLimits(max_body=1024))
    with pytest.raises(TemplateError) as info:
        r.render(RoundKind.ACKNOWLEDGEMENT, "email", context(r))
    assert info.value.template == "acknowledgement/email.txt.j2"
    assert "[templates] max_body (1024)" in str(info.value)
    # the packaged templates fit in it
    plain = Renderer(company=COMPANY, limits=TemplateLimits(max_body=4096))
    assert plain.render(RoundKind.ACKNOWLEDGEMENT, "email", context(plain)).text


def test_compiled_code_is_cached_per_sandbox_version() -> None:
    """An older outagecomms cached templates compiled without the limits: never loaded."""
    cache = templates._bytecode_cache()
    assert cache is not None
    assert Path(cache.directory).name == CODE_VERSION
