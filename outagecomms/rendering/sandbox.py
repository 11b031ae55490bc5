"""The template sandbox with limits: a hostile override cannot hang or flood a sender.

Jinja's ``SandboxedEnvironment`` keeps templates away from Python's internals; it does not
bound what they compute. :class:`LimitedSandbox` adds, per rendered part:

- **size**: no value a template builds (a string, a list, a macro's or a block's output, the
  output itself) may exceed ``[templates] max_body`` characters. An operation whose result
  would be larger is refused *before* it runs when its arguments decide the size (``'B' *
  10**8``, ``s.replace('B', s)``, ``|center(10**9)``, ``'%9999999s' % x``); any other
  result is measured after it (they grow by a small factor of their inputs at most).
- **numbers**: integers of at most :data:`MAX_DIGITS` digits (``7 ** 10**8`` is refused
  before Python spends minutes on it); ``range()`` of at most :data:`MAX_RANGE` items.
- **steps**: every loop iteration, call, filter, operator and ``~`` is a step; at most
  ``[templates] max_steps`` of them, and none after ``[templates] render_timeout``.
- **no constant folding**: Jinja evaluates constant expressions at compile time (even in an
  ``{% if false %}`` branch); the optimizer is off, and intercepted operators are never folded.

An over-limit template raises :class:`TemplateLimitError` (a Jinja ``SecurityError``), which
the renderer turns into a ``TemplateError`` naming the template, the line and the limit.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum

from outagecomms.config.model import TemplateLimits

#: the most digits an integer a template computes may have (Python's own limit for printing one)
MAX_DIGITS = 4300
_MAX_BITS = int(MAX_DIGITS / math.log10(2)) + 1
#: the most items a template's ``range()`` may have
MAX_RANGE = 10_000
#: an estimate that stands for "far too much" (a width of 10**30 digits)
_IMMENSE = 10**18

#: bumped whenever the generated code changes: compiled templates cached on disk by an older
#: version (without the limits) are then never loaded
CODE_VERSION = "limits-1"


class TemplateLimitError(SecurityError):
    """A template went past one of its limits (size, digits, range, steps, time)."""


@dataclass
class _Budget:
    limits: TemplateLimits
    deadline: float
    steps: int = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("outagecomms_template_budget", default=None)


@contextmanager
def budget(limits: TemplateLimits) -> Iterator[None]:
    """Count the steps and time of one render (one template part, its includes too)."""
    token = _BUDGET.set(_Budget(limits, time.monotonic() + limits.render_timeout.total_seconds()))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _step() -> None:
    b = _BUDGET.get()
    if b is None:
        return
    b.steps += 1
    if b.steps > b.limits.max_steps:
        raise TemplateLimitError(
            f"took more than {b.limits.max_steps} steps (loop iterations, calls and operators),"
            " the limit [templates] max_steps sets"
        )
    if time.monotonic() > b.deadline:
        raise TemplateLimitError(
            f"took longer than {b.limits.render_timeout.total_seconds():g}s to render,"
            " the limit [templates] render_timeout sets"
        )


def size(value: Any, limit: int) -> int:
    """An upper bound of the characters ``value`` prints as, containers deeply (a list of
    10,000 references to one string counts the string 10,000 times). Stops past ``limit``:
    every object visited counts at least 1, so this takes at most ``limit`` steps (a list
    that contains itself is simply too big)."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str | bytes | bytearray):
            total += len(v) or 1
        elif isinstance(v, bool) or v is None:
            total += 5
        elif isinstance(v, int):
            total += _digits(v)
        elif isinstance(v, float):
            total += 24
        elif isinstance(v, Mapping):
            total += len(v) + 1
            for k, x in v.items():
                stack.append(k)
                stack.append(x)
        elif isinstance(v, list | tuple | set | frozenset):
            total += len(v) + 1
            stack.extend(v)
        elif isinstance(v, Namespace):
            total += 1
            stack.append(dict(v._Namespace__attrs))
        else:
            total += 1
        if total > limit:
            return total
    return total


def _digits(n: int) -> int:
    """Decimal digits of ``n`` (an upper bound, without printing it)."""
    return int(abs(n).bit_length() * 0.30103) + 2


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class _LimitedCodeGenerator(CodeGenerator):
    """Every for loop iterates through ``environment.guard_loop`` and ``~`` joins through
    ``environment.checked_join``, so both count as steps and are bounded."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("guard_loop", lineno=node.lineno),
            [node.iter],
            [],
            None,
            None,
            lineno=node.lineno,
        )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            func = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func = "markup_join"
        else:
            func = "str_join"
        self.write(f"environment.checked_join({func}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class LimitedSandbox(SandboxedEnvironment):
    """A ``SandboxedEnvironment`` whose templates are bounded in size, numbers, steps and time
    (see the module docstring). ``limits`` may be replaced; templates need not recompile."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _LimitedCodeGenerator

    def __init__(self, *, limits: TemplateLimits, **options: Any) -> None:
        super().__init__(**options)
        #: Jinja's optimizer folds constants at compile time, where no limit applies
        self.optimized = False
        self.limits = limits
        self.globals["range"] = self._range
        self.filters = {n: self._checked_filter(n, f) for n, f in self.filters.items()}

    def add_filter(self, name: str, func: Callable[..., Any]) -> None:
        """Add a filter the templates may use, checked like the built-in ones."""
        self.filters[name] = self._checked_filter(name, func)

    # --- the checks -----------------------------------------------------------------------

    @property
    def cap(self) -> int:
        return self.limits.max_body

    def _refuse_size(self, what: str, chars: int) -> TemplateLimitError:
        shown = f"{chars} characters" if chars < _IMMENSE else "an immense text"
        return TemplateLimitError(
            f"{what} would build {shown}, more than [templates] max_body ({self.cap}) allows"
        )

    def _check_size(self, what: str, estimate: int) -> None:
        if estimate > self.cap:
            raise self._refuse_size(what, estimate)

    def _check_result(self, what: str, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if value.bit_length() > _MAX_BITS:
                raise TemplateLimitError(
                    f"{what} gives a number of more than {MAX_DIGITS} digits, the most a"
                    " template may compute"
                )
            return value
        if isinstance(value, str | list | tuple | dict | set | frozenset | Namespace):
            self._check_size(what, size(value, self.cap))
        return value

    def _size(self, value: Any) -> int:
        return size(value, self.cap)

    # --- operators, concatenation, output -------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _step()
        what = f"the operator {operator!r}"
        if operator == "**":
            self._check_power(left, right)
        elif operator == "*":
            self._check_multiply(left, right)
        elif operator == "+" and not isinstance(left, int | float):
            self._check_size(what, self._size(left) + self._size(right))
        elif operator == "%" and isinstance(left, str):
            self._check_size(what, self._percent_estimate(left, right))
        return self._check_result(what, super().call_binop(context, operator, left, right))

    def _check_power(self, base: Any, exp: Any) -> None:
        b, e = _int(base, 2), _int(exp, -1)
        if e < 0 or not isinstance(base, int) or abs(b) <= 1:
            return  # a float, a fraction, 0 or 1: no giant integer
        bits = e * math.log2(abs(b)) if e < 10**9 else _IMMENSE
        if bits > _MAX_BITS:
            raise TemplateLimitError(
                f"{b} ** {e} would be a number of about {int(e * math.log10(abs(b)))} digits;"
                f" a template may compute numbers of at most {MAX_DIGITS} digits"
            )

    def _check_multiply(self, left: Any, right: Any) -> None:
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > _MAX_BITS + 1:
                raise TemplateLimitError(
                    f"the product would be a number of more than {MAX_DIGITS} digits, the most"
                    " a template may compute"
                )
            return
        seq, n = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(n, int) and isinstance(seq, str | list | tuple | bytes):
            est = self._size(seq) * max(n, 0) if n < 10**12 else _IMMENSE
            if est > self.cap:
                if isinstance(seq, str):
                    shown = repr(seq) if len(seq) <= 20 else f"{seq[:20]!r}... ({len(seq)} chars)"
                else:
                    shown = f"a {type(seq).__name__} of {len(seq)} items"
                raise self._refuse_size(f"{shown} * {n}", est)

    def _percent_estimate(self, fmt: str, args: Any) -> int:
        """``fmt % args``: the literal text plus each conversion's argument and width."""
        mapping = args if isinstance(args, Mapping) else None
        seq = list(args) if isinstance(args, tuple) else [args]
        ints = [abs(_int(a)) for a in seq]
        total, i = len(fmt), 0
        for m in _PERCENT.finditer(fmt):
            if m["type"] == "%":
                continue
            for part in (m["width"], m["prec"]):
                if part == "*":
                    total += ints[i] if i < len(ints) else 0
                    i += 1
                elif part:
                    total += int(part) if len(part) < 12 else _IMMENSE
            if m["key"] is not None and mapping is not None:
                total += self._size(mapping.get(m["key"]))
            elif i < len(seq):
                total += self._size(seq[i])
                i += 1
        return total

    def checked_join(self, join: Callable[[Any], str], parts: tuple[Any, ...]) -> str:
        """The ``~`` operator: refused before it joins when the result would be too long."""
        _step()
        self._check_size("the operator '~'", sum(self._size(p) for p in parts))
        joined = join(parts)
        self._check_result("the operator '~'", joined)
        return joined

    def concat(self, parts: Iterable[str]) -> str:
        """Every output (the template's, a macro's, a ``{% set %}`` block's) is joined here:
        stopped as soon as it is too long, before it is built."""
        cap = self.limits.max_body
        out: list[str] = []
        append = out.append
        n = 0
        for p in parts:
            n += len(p)
            if n > cap:
                raise TemplateLimitError(
                    f"the output is longer than [templates] max_body ({cap} characters) allows"
                )
            append(p)
        return "".join(out)

    # --- loops and calls -----------------------------------------------------------------

    def _range(self, *args: int) -> range:
        _step()
        rng = range(*args)
        if len(rng) > MAX_RANGE:
            raise TemplateLimitError(
                f"range() of {len(rng)} items; a template may loop over at most {MAX_RANGE}"
            )
        return rng

    def guard_loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Every for loop iterates through this: each iteration is a step."""
        for item in iterable:
            _step()
            yield item

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _step()
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's loop(children)
            args = (__self.guard_loop(args[0]), *args[1:])
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            args = __self._check_str_method(owner, name, args, kwargs)
        elif __obj is generate_lorem_ipsum:  # n paragraphs of up to ``max`` words
            params = inspect.signature(__obj).bind_partial(*args, **kwargs).arguments
            n, most = _int(params.get("n"), 5), _int(params.get("max"), 100)
            __self._check_size("lipsum()", max(n, 0) * max(most, 0) * 16)
        result = SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
        what = f"{name}()" if name else "a call"
        if isinstance(owner, list | dict | set):  # append, extend, update... in place
            __self._check_result(what, owner)
        return __self._check_result(what, result)

    def _check_str_method(
        self, s: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, ...]:
        """The string methods whose arguments decide how long their result is."""
        what = f"{name}()"
        n = len(s)
        arg0 = args[0] if args else None
        if name in ("center", "ljust", "rjust", "zfill"):
            self._check_size(what, max(n, _int(arg0 if args else kwargs.get("width"))))
        elif name == "expandtabs":
            tab = _int(arg0 if args else kwargs.get("tabsize"), 8)
            self._check_size(what, n + s.count("\t") * max(tab, 0))
        elif name == "replace" and len(args) >= 2:
            self._check_size(what, _replace_estimate(s, args[0], args[1], args[2:]))
        elif name == "join" and args:
            items = arg0 if isinstance(arg0, list | tuple) else list(arg0)  # type: ignore[arg-type]
            self._check_size(what, sum(self._size(x) for x in items) + n * len(items))
            args = (items, *args[1:])
        elif name == "translate" and isinstance(arg0, Mapping):
            longest = max((self._size(v) for v in arg0.values()), default=1)
            self._check_size(what, n * max(longest, 1))
        return args

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` / ``format_map``: each field adds its argument and its width."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__
        is_map = value.__name__ == "format_map"

        @functools.wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> str:
            _step()
            values = dict(args[0]) if is_map and args and isinstance(args[0], Mapping) else kwargs
            self._check_size(f"{value.__name__}()", self._format_estimate(fmt, args, values))
            return wrapped(*args, **kwargs)

        return checked

    def _format_estimate(self, fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
        try:
            fields = list(string.Formatter().parse(fmt))
        except ValueError:
            return len(fmt)  # Python refuses it itself
        ints = [abs(_int(a)) for a in (*args, *kwargs.values())]
        total, auto = len(fmt), 0
        for _, field, spec, _ in fields:
            if field is None:
                continue
            first = re.split(r"[.\[]", field, maxsplit=1)[0]
            if first == "":
                arg = args[auto] if auto < len(args) else None
                auto += 1
            elif first.isdigit():
                arg = args[int(first)] if int(first) < len(args) else None
            else:
                arg = kwargs.get(first)
            total += self._size(arg)
            if spec and "{" in spec:
                total += max(ints, default=0)  # a width given by an argument
            elif spec:
                total += sum(int(d) if len(d) < 12 else _IMMENSE for d in re.findall(r"\d+", spec))
        return total

    # --- filters ------------------------------------------------------------------------

    def _checked_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(func, "_outagecomms_checked", False):
            return func
        estimate = _FILTER_ESTIMATES.get(name)
        binder = _Binder.of(func) if estimate is not None else None
        what = f"the filter {name!r}"

        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            _step()
            if estimate is not None and binder is not None:
                params = binder.bind(args, kwargs)
                est, replaced = estimate(self, params)
                self._check_size(what, est)
                if replaced is not None:  # an iterator, read once: give the filter the list
                    args, kwargs = binder.replace(args, kwargs, *replaced)
            return self._check_result(what, func(*args, **kwargs))

        checked._outagecomms_checked = True  # type: ignore[attr-defined]
        return checked


class _Binder:
    """A filter's arguments by parameter name (what ``inspect.Signature.bind`` gives, without
    its cost on every call): the context/environment a filter takes first is left out."""

    def __init__(self, signature: inspect.Signature, passes: bool) -> None:
        params = list(signature.parameters.values())[1 if passes else 0 :]
        self.offset = 1 if passes else 0
        self.names = [
            p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        self.defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self.star = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), None)
        self.stars = next((p.name for p in params if p.kind == p.VAR_KEYWORD), None)

    @classmethod
    def of(cls, func: Callable[..., Any]) -> _Binder | None:
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return None
        return cls(signature, getattr(func, "jinja_pass_arg", None) is not None)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        own = args[self.offset :]
        out = dict(self.defaults)
        out.update(zip(self.names, own, strict=False))
        if self.star is not None:
            out[self.star] = own[len(self.names) :]
        if self.stars is not None:
            out[self.stars] = {k: v for k, v in kwargs.items() if k not in self.names}
        out.update((k, v) for k, v in kwargs.items() if k in self.names)
        return out

    def replace(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], name: str, value: Any
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments with parameter ``name`` set to ``value``."""
        if name in kwargs:
            return args, {**kwargs, name: value}
        i = self.offset + self.names.index(name)
        return (*args[:i], value, *args[i + 1 :]), kwargs


_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?[hlL]?"
    r"(?P<type>[diouxXeEfFgGcrsa%])"
)


def _replace_estimate(s: str, old: Any, new: Any, rest: tuple[Any, ...] | list[Any]) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(s)
    times = (len(s) + 1) if old == "" else s.count(old)
    count = _int(rest[0], -1) if rest else -1
    if count is not None and count >= 0:
        times = min(times, count)
    return len(s) + times * max(len(new) - len(old), 0)


_Estimate = Callable[[LimitedSandbox, dict[str, Any]], tuple[int, tuple[str, list[Any]] | None]]


def _f_center(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, None]:
    return max(env._size(p.get("value")), _int(p.get("width"))), None


def _f_indent(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, None]:
    s, width = str(p.get("s", "")), p.get("width")
    w = len(width) if isinstance(width, str) else _int(width)
    return len(s) + (s.count("\n") + 1) * max(w, 0), None


def _f_replace(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, None]:
    count = p.get("count")
    return _replace_estimate(str(p.get("s", "")), p.get("old"), p.get("new"), [count]), None


def _f_join(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, tuple[str, list[Any]] | None]:
    value = p.get("value")
    if isinstance(value, list | tuple):
        items: list[Any] = list(value)
        replaced = None
    elif isinstance(value, Iterable) and not isinstance(value, str | Mapping):
        items = list(value)
        replaced = ("value", items)
    else:
        return env._size(value), None
    sep = str(p.get("d", ""))
    return sum(env._size(x) for x in items) + len(sep) * len(items), replaced


def _f_format(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, None]:
    value, args, kwargs = str(p.get("value", "")), p.get("args", ()), p.get("kwargs", {})
    return env._percent_estimate(value, kwargs or tuple(args)), None


def _f_wordwrap(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, None]:
    s, wrap = str(p.get("s", "")), p.get("wrapstring")
    extra = len(wrap) if isinstance(wrap, str) and len(wrap) > 2 else 0
    return len(s) * (1 + extra), None


def _f_tojson(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, None]:
    indent = _int(p.get("indent"))
    return env._size(p.get("value")) * (1 + max(indent, 0)), None


def _f_count(key: str) -> Callable[[LimitedSandbox, dict[str, Any]], tuple[int, None]]:
    """batch(linecount) / slice(slices): as many lists (or fill-ins) as that number."""

    def estimate(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, None]:
        return max(_int(p.get(key)), 0), None

    return estimate


def _f_sum(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, None]:
    start = p.get("start", 0)
    if not isinstance(start, int | float):  # sum of lists: quadratic, and no use in a notice
        raise TemplateLimitError("the filter 'sum' adds numbers only")
    return 0, None


def _f_urlize(env: LimitedSandbox, p: dict[str, Any]) -> tuple[int, None]:
    value = str(p.get("value", ""))
    extra = sum(len(x) for x in (p.get("target"), p.get("rel")) if isinstance(x, str))
    return len(value) + len(value.split()) * extra, None


_FILTER_ESTIMATES: dict[str, _Estimate] = {
    "center": _f_center,
    "indent": _f_indent,
    "replace": _f_replace,
    "join": _f_join,
    "format": _f_format,
    "wordwrap": _f_wordwrap,
    "tojson": _f_tojson,
    "batch": _f_count("linecount"),
    "slice": _f_count("slices"),
    "sum": _f_sum,
    "urlize": _f_urlize,
}
