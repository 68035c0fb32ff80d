"""Prompt rendering in the sandbox: the model's template, the default, and broken templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import TemplateError
from app.core.gguf.header import read_header
from app.core.llm.chat_template import ChatTemplate

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
]


def test_renders_starter_template(starter_path: Path) -> None:
    template = ChatTemplate(read_header(starter_path).chat_template)
    prompt = template.render(MESSAGES)
    assert prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_default_template_is_chatml() -> None:
    template = ChatTemplate(None)
    assert template.is_default
    prompt = template.render([{"role": "user", "content": "hi"}])
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert not template.render(
        [{"role": "user", "content": "hi"}], add_generation_prompt=False
    ).endswith("assistant\n")


def test_hf_globals_available() -> None:
    source = (
        "{{ bos_token }}{% for m in messages %}{{ m['content'] | tojson }}{% endfor %}"
        "{{ strftime_now('%Y') | length }}"
    )
    out = ChatTemplate(source, bos_token="<s>").render([{"role": "user", "content": 'say "hi"'}])
    assert out == '<s>"say \\"hi\\""4'


def test_syntax_error_is_clear() -> None:
    with pytest.raises(TemplateError, match="invalid"):
        ChatTemplate("{% for m in messages %}{{ m.content }")


def test_runtime_error_is_clear() -> None:
    template = ChatTemplate("{{ messages[0]['content'].nonexistent_method() }}")
    with pytest.raises(TemplateError, match="failed to render"):
        template.render(MESSAGES)


def test_raise_exception_from_template() -> None:
    template = ChatTemplate("{{ raise_exception('Conversation roles must alternate') }}")
    with pytest.raises(TemplateError, match="roles must alternate"):
        template.render(MESSAGES)


def test_sandbox_blocks_python_internals() -> None:
    template = ChatTemplate("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateError):
        template.render(MESSAGES)


def test_sandbox_is_immutable() -> None:
    template = ChatTemplate("{% set _ = messages.append({'role': 'x'}) %}{{ messages | length }}")
    with pytest.raises(TemplateError):
        template.render(MESSAGES)
    assert len(MESSAGES) == 2
