"""Render a conversation into a prompt with the model's own chat template.

Templates come from downloaded files, so they run in Jinja's immutable sandbox: a template can
format strings, but it cannot reach Python internals or mutate what we pass in. The globals and
filters are the ones Hugging Face's `apply_chat_template` provides, so real-world templates work.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.core.errors import TemplateError

# ChatML: what most small instruct models (SmolLM2, Qwen) expect, and a sane default for the rest.
DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

Message = dict[str, str]


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
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class ChatTemplate:
    """A compiled chat template. `source=None` uses the ChatML default."""

    def __init__(
        self, source: str | None, *, bos_token: str = "", eos_token: str = "", name: str = ""
    ) -> None:
        self.is_default = source is None
        self.source = source if source is not None else DEFAULT_TEMPLATE
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.name = name or ("default (ChatML)" if self.is_default else "model")
        env = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[_IgnoreGenerationTags, jinja2.ext.loopcontrols],
        )
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        try:
            self._template = env.from_string(self.source)
        except jinja2.TemplateError as exc:
            raise TemplateError(
                f"The model's chat template is invalid ({exc}). Choose the generic chat format "
                "instead (CLI: --template default)."
            ) from exc

    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        **extra: Any,
    ) -> str:
        try:
            return self._template.render(
                messages=[dict(m) for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                tools=None,
                **extra,
            )
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(
                f"The model's chat template failed to render: {type(exc).__name__}: {exc}. "
                "Choose the generic chat format instead (CLI: --template default)."
            ) from exc
