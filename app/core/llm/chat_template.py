"""Render a conversation into a prompt with the model's own chat template.

Templates come from downloaded files, so they run in Jinja's immutable sandbox: a template can
format strings, but it cannot reach Python internals or mutate what we pass in. Both compiling
and rendering run under limits on time, work and size, and a render stops when its cancel flag
is set (`app.core.llm.template_limits`). The globals and filters are the ones Hugging Face's
`apply_chat_template` provides, so real-world templates work.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

import jinja2
import jinja2.ext
import jinja2.nodes

from app.core.errors import GenerationError, TemplateError
from app.core.llm.template_limits import CancelFlag, RenderLimits, active_guard, run_limited
from app.core.llm.template_sandbox import BoundedEnvironment

# ChatML: what most small instruct models (SmolLM2, Qwen) expect, and a sane default for the rest.
DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

Message = dict[str, str]
# A function the model may call, in OpenAI's form ({"type": "function", "function": {...}}), which
# is also what Hugging Face templates read from `tools`.
ToolSpec = dict[str, Any]
# The largest template source accepted: real ones are a few KB (tool-calling ones up to ~30 KB).
MAX_SOURCE_CHARS = 256 * 1024
# JSON indentation beyond this is no formatting a prompt needs, only a way to make it huge.
MAX_JSON_INDENT = 16


class _IgnoreGenerationTags(jinja2.ext.Extension):
    """Pass through HF's `{% generation %}` blocks (used to mark trainable spans)."""

    tags = {"generation"}  # noqa: RUF012 - jinja's Extension API declares it this way

    def parse(self, parser: Any) -> Any:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _raise_exception(message: str) -> NoReturn:
    raise TemplateError(f"The chat template refused the conversation: {message}")


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    width = len(indent) if isinstance(indent, str) else (indent or 0)
    if width > MAX_JSON_INDENT:
        raise TemplateError(
            f"The chat template asked for a JSON indent of {width:,}; at most "
            f"{MAX_JSON_INDENT} is allowed."
        )
    guard = active_guard()
    guard.check_size(guard.measure(value, indent=width), "JSON text")
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class ChatTemplate:
    """A compiled chat template. `source=None` uses the ChatML default.

    `limits` bound the compile and every render (`RenderLimits.for_context` sizes them to the
    context the prompt must fit).
    """

    def __init__(
        self,
        source: str | None,
        *,
        bos_token: str = "",
        eos_token: str = "",
        name: str = "",
        label: str = "",
        limits: RenderLimits | None = None,
    ) -> None:
        self.is_default = source is None
        self.source = source if source is not None else DEFAULT_TEMPLATE
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.name = name or ("default (ChatML)" if self.is_default else "model")
        # How errors name it: "model chat template of evil.gguf".
        self.label = label or f"{self.name} chat template"
        self.limits = limits or RenderLimits()
        if len(self.source) > MAX_SOURCE_CHARS:
            raise TemplateError(
                f"The {self.label} is {len(self.source):,} characters long, more "
                f"than the {MAX_SOURCE_CHARS:,} a chat template needs. Choose the generic chat "
                "format instead (CLI: --template default)."
            )
        env = BoundedEnvironment(
            loader=jinja2.BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[_IgnoreGenerationTags, jinja2.ext.loopcontrols],
        )
        env.set_filter("tojson", _tojson)
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        try:
            # Jinja folds constant expressions while compiling, so compiling is running code too.
            tree = run_limited(lambda: env.parse(self.source), self.limits, self.label)
            self._template = run_limited(lambda: env.from_string(tree), self.limits, self.label)
        except jinja2.TemplateError as exc:
            raise TemplateError(
                f"The model's chat template is invalid ({exc}). Choose the generic chat format "
                "instead (CLI: --template default)."
            ) from exc
        # A template that never reads `tools` would drop them silently: callers ask first.
        self.supports_tools = any(
            node.name == "tools" and node.ctx == "load" for node in tree.find_all(jinja2.nodes.Name)
        )

    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        cancel: CancelFlag | None = None,
        tools: Sequence[ToolSpec] | None = None,
        **extra: Any,
    ) -> str:
        """The prompt text. `tools` are the functions the model may call (only templates that
        read them render them: see `supports_tools`). Raises TemplateError (TemplateLimitError
        over a limit, TemplateCancelled when `cancel` is set meanwhile) or GenerationError when
        the conversation alone is more than the limits allow."""
        conversation = [dict(m) for m in messages]
        size = sum(len(str(v)) for m in conversation for v in m.values())
        if size > self.limits.max_chars:
            raise GenerationError(
                f"The conversation is {size:,} characters, more than the context can hold "
                f"(the limit is {self.limits.max_chars:,}). Start a new chat or shorten it."
            )

        def render() -> str:
            pieces: list[str] = []
            total = 0
            for piece in self._template.generate(
                messages=conversation,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                tools=[dict(t) for t in tools] if tools else None,
                **extra,
            ):
                total += len(piece)
                active_guard().check_size(total, "a prompt")
                pieces.append(piece)
            return "".join(pieces)

        try:
            return str(run_limited(render, self.limits, self.label, cancel))
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(
                f"The model's chat template failed to render: {type(exc).__name__}: {exc}. "
                "Choose the generic chat format instead (CLI: --template default)."
            ) from exc
