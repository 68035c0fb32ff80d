"""Hostile chat templates (issue #10 item 3) are stopped by time, work and size limits.

Each case runs through the real pieces: ChatTemplate itself; real GGUF files (the starter model
with its `tokenizer.chat_template` rewritten, tests/gguf_rewrite.py) loaded by the real Engine and
llama.cpp; and the real CLI in a subprocess whose address space is capped at 2 GB, which must exit
with the clear message rather than a signal. Normal templates render byte-identical to Jinja's
plain immutable sandbox, which is how LeanCoder rendered them before the limits.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jinja2
import jinja2.ext
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.core.llm import chat_template as chat_template_module
from app.core.llm.chat_template import ChatTemplate
from app.core.llm.engine import Engine, LoadOptions, SamplingParams, run_to_completion
from app.core.llm.template_limits import RenderLimits, TemplateCancelled, TemplateLimitError
from tests.gguf_rewrite import StringRewriter

LIMIT_S = RenderLimits().seconds
MESSAGES = [{"role": "user", "content": "hi"}]

HOSTILE = {
    "repeat": "{{ 'a' * 10**9 }}",
    "doubling": (
        "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s | length }}"
    ),
    "tojson_indent": "{{ messages | tojson(indent=10**8) }}",
    "nested_loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "power_folded_at_compile": "{{ 9**(9**9) }}",
    "center_filter": "{{ 'a' | center(1000000000) }}",
    "center_method": "{{ 'a'.center(1000000000) }}",
    "shared_list_doubling": (
        "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ ns.l }}"
    ),
    "format_width": "{{ '{:>1000000000}'.format('a') }}",
    "printf_width": "{{ '%0999999999d' % 1 }}",
    "printf_star": "{{ '%*d' % (999999999, 1) }}",
    "replace_growth": (
        "{% set ns = namespace(s='aaaa') %}{% for i in range(30) %}"
        "{% set ns.s = ns.s | replace('a', 'aa') %}{% endfor %}"
    ),
    "indent_lines": "{{ ('\n' * 100000) | indent(100000) }}",
    "join_copies": "{% set s = 'a' * 100000 %}{{ ([s] * 1000) | join }}",
    "output_flood": "{% for i in range(100000) %}{{ 'a' * 1000 }}{% endfor %}",
    "expandtabs": "{{ ('\t' * 1000).expandtabs(1000000) }}",
    "slow_c_lines": (
        "{% for i in range(100000) %}{% for j in range(100000) %}"
        "{% set x = ('a' * 500000).replace('a', 'b') %}{% endfor %}{% endfor %}"
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_template_stops_with_clear_error(case: str) -> None:
    start = time.monotonic()
    with pytest.raises(TemplateLimitError) as caught:
        ChatTemplate(HOSTILE[case], label=f"{case} chat template").render(MESSAGES)
    elapsed = time.monotonic() - start
    assert elapsed < 3 * LIMIT_S, f"{case} took {elapsed:.1f} s"
    message = str(caught.value)
    assert f"The {case} chat template " in message
    assert "--template default" in message


def test_template_source_size_is_bounded() -> None:
    with pytest.raises(chat_template_module.TemplateError, match="characters long"):
        ChatTemplate("x" * (chat_template_module.MAX_SOURCE_CHARS + 1))


def test_conversation_larger_than_the_context_is_refused_before_rendering() -> None:
    template = ChatTemplate(None, limits=RenderLimits.for_context(2048))
    huge = [{"role": "user", "content": "a" * (RenderLimits.for_context(2048).max_chars + 1)}]
    with pytest.raises(chat_template_module.GenerationError, match="more than the context"):
        template.render(huge)


def test_cancel_flag_stops_a_running_render() -> None:
    template = ChatTemplate(HOSTILE["slow_c_lines"], limits=RenderLimits(seconds=30))
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(TemplateCancelled):
            template.render(MESSAGES, cancel=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 1.5


def test_limits_leave_an_outer_tracer_in_place() -> None:
    """A debugger's or coverage's trace function is restored after a render."""
    seen: list[str] = []

    def outer(_frame: object, event: str, _arg: object) -> None:
        seen.append(event)

    sys.settrace(outer)  # type: ignore[arg-type]
    try:
        ChatTemplate(None).render(MESSAGES)
        assert sys.gettrace() is outer
    finally:
        sys.settrace(None)


# -- normal templates: byte-identical to the plain sandbox --------------------------------------

QWEN3_TEMPLATE = (Path(__file__).parent / "templates" / "qwen3.jinja").read_text(encoding="utf-8")

CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"},
        {"role": "user", "content": "And 3+3? Answer with {braces}, % signs and \"quotes\"."},
    ],
    [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "ls", "arguments": {"path": ".", "all": True}}}
        ]},
        {"role": "tool", "content": "a.py\nb.py"},
        {"role": "user", "content": "ünïcödé ✓ " * 200},
    ],
]


def _plain_render(source: str, messages: list[dict[str, object]], **extra: object) -> str:
    """How LeanCoder rendered before the limits: Jinja's immutable sandbox, nothing else."""
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[chat_template_module._IgnoreGenerationTags, jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = lambda v, ensure_ascii=False, indent=None, separators=None, \
        sort_keys=False: __import__("json").dumps(
            v, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )
    env.globals["raise_exception"] = chat_template_module._raise_exception
    env.globals["strftime_now"] = chat_template_module._strftime_now
    return env.from_string(source).render(
        messages=messages, add_generation_prompt=True, bos_token="<s>", eos_token="</s>",
        tools=None, **extra,
    )


@pytest.mark.parametrize("which", ["starter", "qwen3", "default"])
@pytest.mark.parametrize("conversation", range(len(CONVERSATIONS)))
def test_normal_templates_render_byte_identical(
    starter_path: Path, which: str, conversation: int
) -> None:
    from app.core.gguf.header import read_header

    source = {
        "starter": read_header(starter_path).chat_template,
        "qwen3": QWEN3_TEMPLATE,
        "default": chat_template_module.DEFAULT_TEMPLATE,
    }[which]
    assert source
    messages = CONVERSATIONS[conversation]
    template = ChatTemplate(source, bos_token="<s>", eos_token="</s>")
    for extra in ({}, {"enable_thinking": False}):
        expected = _plain_render(source, [dict(m) for m in messages], **extra)
        assert template.render(messages, **extra) == expected  # type: ignore[arg-type]


# -- real GGUF files through the real load path and the real CLI --------------------------------

GGUF_CASES = ["repeat", "doubling", "tojson_indent", "nested_loops", "power_folded_at_compile"]


@pytest.fixture(scope="module")
def hostile_models(starter_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    dict[str, Path]
]:
    folder = tmp_path_factory.mktemp("hostile-templates")
    rewriter = StringRewriter(starter_path)
    yield {
        case: rewriter.write(folder / f"{case}.gguf", "tokenizer.chat_template", HOSTILE[case])
        for case in GGUF_CASES
    }


@pytest.mark.model
@pytest.mark.parametrize("case", GGUF_CASES)
def test_engine_loads_and_stops_hostile_template(
    hostile_models: dict[str, Path], case: str
) -> None:
    engine = Engine()
    try:
        start = time.monotonic()
        engine.load(hostile_models[case], LoadOptions(n_ctx=512))  # llama_cpp compiles nothing
        assert time.monotonic() - start < 3 * LIMIT_S
        start = time.monotonic()
        with pytest.raises(TemplateLimitError, match=rf"template of {case}\.gguf .*--template"):
            run_to_completion(engine, MESSAGES, SamplingParams(max_tokens=2))
        assert time.monotonic() - start < 3 * LIMIT_S
    finally:
        engine.unload()


def _cli(*args: str, limit_gb: int = 2) -> subprocess.CompletedProcess[str]:
    def cap_memory() -> None:
        size = limit_gb * 1024**3
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap_memory,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.model
@pytest.mark.parametrize("case", GGUF_CASES)
def test_cli_ask_with_hostile_template_exits_clearly_under_2gb(
    hostile_models: dict[str, Path], case: str
) -> None:
    path = hostile_models[case]
    start = time.monotonic()
    result = _cli("ask", "--model", str(path), "--ctx", "512", "--max-tokens", "2", "hi")
    elapsed = time.monotonic() - start
    assert result.returncode > 0, (result.returncode, result.stderr[-2000:])  # < 0: a signal
    assert f"chat template of {path.name}" in result.stderr
    assert "--template default" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 60  # load + the 2 s limit, well under the test timeout


@pytest.mark.model
def test_cli_template_default_ignores_the_hostile_template(
    hostile_models: dict[str, Path],
) -> None:
    path = hostile_models["power_folded_at_compile"]
    result = _cli(
        "ask", "--model", str(path), "--ctx", "512", "--max-tokens", "4", "--seed", "1",
        "--template", "default", "Say hi.",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()
