"""The Jinja environment that checks, before each C-level call, what it would build.

See `app.core.llm.template_limits` for why: the trace there bounds Python-level work; this
module bounds the single calls a trace cannot interrupt (repetition, widths, joins, formatting,
`str()` of nested values), and routes `~` and container literals through the same checks.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.core.llm.template_limits import Abort, active_guard

# -- what one call would build, checked before it runs ---------------------------------------

_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def _text(value: Any) -> str:
    return value if isinstance(value, str) else text_of(value)


def text_of(value: Any) -> str:
    """`str(value)`, after checking what it would produce (output, `~`, joins)."""
    guard = active_guard()
    if isinstance(value, str):
        guard.check_size(len(value))
        return value
    guard.check_size(guard.measure(value))
    return str(value)


def _check_number_text(digits: str) -> None:
    """A width or precision written in a format string."""
    if len(digits) > 9:
        raise Abort(f"used a {len(digits)}-digit width in a format")
    active_guard().check_size(int(digits), "a width")


def _check_ints(args: Iterable[Any]) -> None:
    guard = active_guard()
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool):
            guard.check_size(abs(arg), "a width or count")


def _check_replace(s: str, old: Any, new: Any) -> None:
    if isinstance(old, str) and isinstance(new, str):
        hits = len(s) + 1 if not old else s.count(old)
        active_guard().check_size(len(s) + hits * max(0, len(new) - len(old)), "a string")


def _check_join(separator: str, items: list[Any]) -> None:
    guard = active_guard()
    total = len(separator) * max(0, len(items) - 1)
    for item in items:
        total += len(item) if isinstance(item, str) else guard.measure(item)
        guard.check_size(total, "a string")


def _check_printf(fmt: str, args: Any) -> None:
    guard = active_guard()
    for star_or_width, star_or_precision in _PRINTF_SPEC.findall(fmt):
        for part in (star_or_width, star_or_precision):
            if part == "*":
                raise Abort("used a '*' width in '%' formatting")
            if part:
                _check_number_text(part)
    guard.check_size(len(fmt) + guard.measure(args), "a string")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    guard = active_guard()
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
                guard.check_size(len(seq) * max(0, n), "a repeated value")
        if isinstance(left, int) and isinstance(right, int):
            guard.check_size((left.bit_length() + right.bit_length()) // 4, "a number")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if abs(left) > 1 and right > 0:
            guard.check_size(left.bit_length() * right // 4, "a number")
    elif operator == "+" and isinstance(left, str | bytes | list | tuple):
        if isinstance(right, str | bytes | list | tuple):
            guard.check_size(len(left) + len(right))
    elif operator == "%" and isinstance(left, str):
        _check_printf(left, right)


def _check_method(
    method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Pre-checks for the string methods whose output can be far larger than their input."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(method, "__name__", "")
    if name in _WIDTH_METHODS:
        _check_ints((*args, *kwargs.values()))
    elif name == "expandtabs" and isinstance(owner, str):
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            active_guard().check_size(len(owner) + owner.count("\t") * size, "a string")
    elif name == "replace" and len(args) >= 2 and isinstance(owner, str):
        _check_replace(owner, args[0], args[1])
    elif name == "join" and args and isinstance(owner, str):
        items = list(args[0])  # a generator is consumed here, so pass the list on
        _check_join(owner, items)
        args = (items, *args[1:])
    return args


def _check_filter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Pre-checks for the filters whose output can be far larger than their input."""
    _check_ints((*args[1:], *kwargs.values()))
    if not args:
        return args
    value = args[0]
    if name == "indent" and isinstance(value, str):
        width = args[1] if len(args) > 1 else kwargs.get("width", 4)
        per_line = len(width) if isinstance(width, str) else int(width or 0)
        active_guard().check_size(len(value) + (value.count("\n") + 1) * per_line, "a string")
    elif name == "replace" and len(args) >= 3:
        _check_replace(_text(value), args[1], args[2])
    elif name in ("join", "sum") and not isinstance(value, str):
        items = list(value)  # a generator is consumed here, so pass the list on
        if name == "join":
            separator = args[1] if len(args) > 1 else kwargs.get("d", "")
            _check_join(_text(separator), items)
        elif name == "sum":
            active_guard().check_size(sum(active_guard().measure(i) for i in items))
        args = (items, *args[1:])
    elif name == "format" and isinstance(value, str):
        _check_printf(value, (args[1:], kwargs))
    elif name in ("string", "pprint", "tojson", "wordwrap", "center", "truncate", "striptags"):
        text_size = len(value) if isinstance(value, str) else active_guard().measure(value)
        active_guard().check_size(text_size)
    return args


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja's pass_context/pass_environment marks
    def checked(*args: Any, **kwargs: Any) -> Any:
        # pass_* filters get the context/environment first; the value follows it.
        lead = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
        rest = _check_filter(name, args[lead:], kwargs)
        return active_guard().remember(func(*args[:lead], *rest, **kwargs))

    return checked


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with `~` and container literals routed through checks."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_checked((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _remembered(self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame) -> None:
        self.write("environment.remember(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._remembered(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._remembered(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx == "store":  # an assignment target (`for a, b in ...`), not a value
            super().visit_Tuple(node, frame)
        else:
            self._remembered(super().visit_Tuple, node, frame)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus the size checks above; use it only inside `run_limited`."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(optimized=False, finalize=text_of, **options)
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}
        # `lipsum(n)` writes n paragraphs in one call; no chat template needs placeholder text.
        self.globals.pop("lipsum", None)

    def set_filter(self, name: str, func: Callable[..., Any]) -> None:
        self.filters[name] = bounded_filter(name, func)

    @staticmethod
    def remember(value: Any) -> Any:
        return active_guard().remember(value)

    @staticmethod
    def concat_checked(parts: tuple[Any, ...]) -> str:
        texts = [text_of(part) for part in parts]
        active_guard().check_size(sum(map(len, texts)), "a string")
        return "".join(texts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return active_guard().remember(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        args = _check_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return active_guard().remember(result)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template: str = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            guard = active_guard()
            try:
                fields = list(string.Formatter().parse(template))
            except ValueError:
                fields = []  # malformed: the real call raises a clear error
            for _literal, _field, spec, _conversion in fields:
                if spec and "{" in spec:
                    raise Abort("used a nested width in str.format")
                for digits in re.findall(r"\d+", spec or ""):
                    _check_number_text(digits)
            guard.check_size(len(template) + guard.measure((args, kwargs)), "a string")
            return guard.remember(wrapped(*args, **kwargs))  # type: ignore[no-any-return]

        return checked
