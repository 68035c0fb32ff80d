"""Run chat-template code under limits: time, work, the size of what it builds, and a cancel flag.

A GGUF's chat template is Jinja code from whoever made the file. The sandbox keeps it away from
Python internals, but not from spending: `{{ 'a' * 10**9 }}` allocates 1 GB in one C call, a
doubling loop runs out of memory, nested loops never end, and Jinja folds `{{ 9**(9**9) }}` while
*compiling*. Two mechanisms bound it, and each covers what the other cannot:

- A trace function (`sys.settrace`, this thread only) counts every Python line the template and
  Jinja's runtime execute. Every 64 lines it checks the deadline and the cancel flag, and it stops
  the run at a step budget. It raises `Abort`, a BaseException, so no `except Exception` inside
  Jinja can swallow it. This bounds time for everything written in Python.
- A single C call (string repetition, `str.center`, `json.dumps`, `str()` of a nested list) runs
  between two lines, so the trace cannot interrupt it. `BoundedEnvironment` therefore checks the
  *size a call will produce before making it*: every arithmetic operator goes through
  `call_binop` (which also stops Jinja's constant folding, see `nodes.BinExpr.as_const`), every
  method call through `call`, every filter through a checking wrapper, and every conversion to
  text (output, `~`, `join`, `format`, `tojson`) through `text_of`, which first measures the value
  with a walk that is itself traced. List, tuple and dict literals are measured as they are built,
  so no value a template holds can grow past the limit, even through shared references.

The limit on size is what the context can hold (`RenderLimits.for_context`): a prompt longer than
that could never be evaluated anyway.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

from jinja2.utils import Namespace

from app.core.errors import TemplateError


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RenderLimits:
    seconds: float = 2.0
    max_chars: int = 1 << 20  # any one value the template builds, and the whole prompt
    max_steps: int = 5_000_000  # Python lines executed (about 2-5 s of work on a desktop CPU)

    @classmethod
    def for_context(cls, n_ctx: int, seconds: float = 2.0) -> RenderLimits:
        """64 characters per token is more than any tokenizer packs into one (code's long runs
        of spaces included), so a larger prompt cannot fit the context; 1 MiB at least."""
        return cls(seconds=seconds, max_chars=max(1 << 20, 64 * n_ctx))


class TemplateLimitError(TemplateError):
    """The template went over a limit (time, work or size), or the user stopped it."""


class TemplateCancelled(TemplateLimitError):
    """The cancel flag was set while the template ran."""


class Abort(BaseException):  # a stop, not an error: no `except Exception` may swallow it
    def __init__(self, reason: str, cancelled: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cancelled = cancelled


_active = threading.local()


class Guard:
    """The limits of one compile or render, active on this thread inside `with`."""

    def __init__(self, limits: RenderLimits, cancel: CancelFlag | None = None) -> None:
        self.limits = limits
        self._cancel = cancel
        self._steps = 0
        self._deadline = 0.0
        self._previous_trace: Any = None
        self._previous_guard: Guard | None = None
        self._sizes: dict[int, tuple[Any, int]] = {}  # id -> (value kept alive, measured size)

    def __enter__(self) -> Guard:
        self._deadline = time.monotonic() + self.limits.seconds
        self._previous_guard = getattr(_active, "guard", None)
        _active.guard = self
        self._previous_trace = sys.gettrace()
        sys.settrace(self._trace)
        return self

    def __exit__(self, *_exc: object) -> None:
        sys.settrace(self._previous_trace)
        _active.guard = self._previous_guard
        self._sizes.clear()

    def _trace(self, _frame: FrameType, _event: str, _arg: Any) -> Any:
        self._steps += 1
        if not self._steps & 63:
            self.check_time()
        return self._trace

    def check_time(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise Abort("was stopped", cancelled=True)
        if time.monotonic() > self._deadline:
            raise Abort(f"ran longer than {self.limits.seconds:g} s")
        if self._steps > self.limits.max_steps:
            raise Abort(f"did more than {self.limits.max_steps:,} steps of work")

    def check_size(self, n: int, what: str = "a value") -> None:
        if n > self.limits.max_chars:
            raise Abort(
                f"tried to build {what} of about {n:,} characters, over the limit of "
                f"{self.limits.max_chars:,} (more than the context can hold)"
            )

    def measure(self, value: Any, indent: int = 0) -> int:
        """About how many characters `str(value)` or `tojson` would produce, counting shared
        references each time they occur; aborts as soon as the limit is passed. `indent`: JSON
        indentation, which writes indent x depth spaces before each item."""
        total = 0
        stack = [(value, 0)]
        cap = self.limits.max_chars
        while stack:
            item, depth = stack.pop()
            total += indent * depth
            if isinstance(item, str | bytes):
                total += len(item) + 2
            elif isinstance(item, list | tuple | set | frozenset | dict | Namespace):
                known = None if indent else self._sizes.get(id(item))
                if known is not None and known[0] is item:
                    total += known[1]
                elif isinstance(item, Namespace):
                    attrs = item._Namespace__attrs
                    stack.append((dict(attrs), depth))
                elif isinstance(item, dict):
                    total += 2 + 4 * len(item)
                    stack.extend((k, depth + 1) for k in item)
                    stack.extend((v, depth + 1) for v in item.values())
                else:
                    total += 2 + 2 * len(item)
                    stack.extend((v, depth + 1) for v in item)
            else:
                total += 8  # numbers (big ones are checked where they are made), None, Undefined
            if total > cap:
                self.check_size(total)
        return total

    def remember(self, value: Any) -> Any:
        """Measure a container the template just built, so later measures reuse the figure."""
        if isinstance(value, list | tuple | dict | set | frozenset):
            size = self.measure(value)
            self.check_size(size)
            self._sizes[id(value)] = (value, size)
        elif isinstance(value, str | bytes):
            self.check_size(len(value))
        return value


def active_guard() -> Guard:
    guard: Guard | None = getattr(_active, "guard", None)
    if guard is None:  # template code only runs inside a Guard; refuse rather than run unbounded
        raise Abort("ran outside its limits")
    return guard


def run_limited(
    action: Callable[[], Any], limits: RenderLimits, name: str, cancel: CancelFlag | None = None
) -> Any:
    """Run `action` under a Guard; a limit gives a TemplateLimitError that names the template
    (`name`, e.g. "model chat template of evil.gguf")."""
    try:
        with Guard(limits, cancel):
            return action()
    except Abort as stop:
        if stop.cancelled:
            raise TemplateCancelled(f"Rendering the {name} was stopped.") from None
        raise TemplateLimitError(
            f"The {name} {stop.reason}, so LeanCoder stopped it. The template may be broken or "
            "hostile: choose the generic chat format instead (CLI: --template default)."
        ) from None
    except MemoryError:
        raise TemplateLimitError(
            f"The {name} ran out of memory. Choose the generic chat format instead "
            "(CLI: --template default)."
        ) from None
