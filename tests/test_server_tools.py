"""Function calling through the local API (issue #13): `tools` rendered by the model's own chat
template, Hermes/Qwen `<tool_call>` replies parsed into OpenAI `tool_calls`, and calls LeanCoder
cannot read reported as errors.

The parser tests feed real model-shaped text in every split a stream can produce. The API tests
run `leancoder`'s server on loopback with the official `openai` client against a copy of the
starter model whose chat template is a Hermes-style tool template (tests/templates/
hermes_tools.jinja, written for these tests). The 135M starter does not write tool calls, so the
tests that need one use scripted answers (tests/scripted_answers.py: the real model runs on the
real prompt, its answer text is replaced by the script); the end-to-end test lets the real model
answer with the tools in its prompt.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from app.core.llm.chat_template import ChatTemplate
from app.server.config import ServerConfig
from app.server.model_service import ModelService
from app.server.tool_calls import (
    MAX_CALL_CHARS,
    ToolCall,
    ToolCallFormatError,
    ToolCallStream,
    ToolRequest,
    ToolRequestError,
    template_messages,
)
from tests.gguf_rewrite import StringRewriter
from tests.scripted_answers import ScriptedAnswers
from tests.server_support import model_service, running_server

TEMPLATE_PATH = Path(__file__).parent / "templates" / "hermes_tools.jinja"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
READ_FILE = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "Read a file of the project.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    },
}
TWO_CALLS = (
    "Let me look that up.\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n'
    "</tool_call>\n"
    '<tool_call>\n{"name": "read_file", "arguments": {"path": "src/main.py"}}\n</tool_call>'
)


def _tools(*tools: dict[str, object], **body: object) -> ToolRequest:
    request = ToolRequest.from_body({"tools": list(tools), **body})
    assert request is not None
    return request


def _run(stream: ToolCallStream, text: str, step: int) -> list[str | ToolCall]:
    """Feed `text` in pieces of `step` characters; adjacent text pieces merged."""
    pieces: list[str | ToolCall] = []
    for i in range(0, len(text), step):
        pieces += stream.feed(text[i : i + step])
    pieces += stream.finish()
    merged: list[str | ToolCall] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


@pytest.mark.parametrize("step", [1, 2, 5, 13, 10_000])
def test_calls_parse_the_same_however_the_stream_is_split(step: int) -> None:
    pieces = _run(ToolCallStream(_tools(WEATHER, READ_FILE)), TWO_CALLS, step)
    assert pieces[0] == "Let me look that up."
    calls = pieces[1:]
    read = [(c.index, c.name, json.loads(c.arguments)) for c in calls if isinstance(c, ToolCall)]
    assert read == [
        (0, "get_weather", {"city": "Paris", "days": 2}),
        (1, "read_file", {"path": "src/main.py"}),
    ]
    assert len(calls) == 2
    ids = {c.id for c in calls if isinstance(c, ToolCall)}
    assert len(ids) == 2 and all(i.startswith("call_") for i in ids)


@pytest.mark.parametrize("step", [1, 3, 10_000])
def test_text_without_calls_comes_back_unchanged(step: int) -> None:
    text = "  Use `a < b` and <tool here, then\n\n a list:\n- one  \n"
    assert _run(ToolCallStream(_tools(WEATHER)), text, step) == [text]


def test_a_half_written_tag_is_never_streamed_as_text() -> None:
    stream = ToolCallStream(_tools(WEATHER))
    assert stream.feed("Checking <tool_") == ["Checking"]
    assert stream.feed('call>{"name": "get_weather", ') == []
    (call,) = stream.feed('"arguments": {"city": "Oslo"}}</tool_call>')
    assert isinstance(call, ToolCall) and json.loads(call.arguments) == {"city": "Oslo"}
    assert stream.finish() == []


def test_qwen3_coder_xml_calls_take_types_from_the_schema() -> None:
    text = (
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n"
        "<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>"
    )
    (call,) = _run(ToolCallStream(_tools(WEATHER)), text, 4)
    assert isinstance(call, ToolCall)
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "New York", "days": 3}


def test_arguments_written_as_a_json_string_are_read_as_the_object() -> None:
    text = '<tool_call>{"name": "read_file", "arguments": "{\\"path\\": \\"a.py\\"}"}</tool_call>'
    (call,) = _run(ToolCallStream(_tools(READ_FILE)), text, 7)
    assert isinstance(call, ToolCall) and json.loads(call.arguments) == {"path": "a.py"}


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        ("<tool_call>{'name': 'get_weather'}</tool_call>", "not valid JSON"),
        ('<tool_call>{"name": "delete_repo", "arguments": {}}</tool_call>', "did not declare"),
        ('<tool_call>["get_weather"]</tool_call>', 'not {"name": ..., "arguments"'),
        ('<tool_call>{"name": "get_weather", "arguments": [1]}</tool_call>', "not a JSON object"),
        ('<tool_call>{"name": "get_weather", "arguments": {"ci', "cut off"),
        ("<tool_call><function=get_weather><parameter=days>soon</parameter></function></tool_call>",
         "not an integer"),
        ("<tool_call><function=get_weather>city=Paris</tool_call>", "<function=name>"),
    ],
)
def test_calls_leancoder_cannot_read_are_errors_quoting_the_model(reply: str, says: str) -> None:
    stream = ToolCallStream(_tools(WEATHER))
    with pytest.raises(ToolCallFormatError) as caught:
        stream.feed(reply)
        stream.finish()
    message = str(caught.value)
    assert message.startswith("The model")
    assert says in message
    assert reply[len("<tool_call>") : len("<tool_call>") + 12] in message.replace('\\"', '"')


def test_a_call_body_is_bounded() -> None:
    stream = ToolCallStream(_tools(WEATHER))
    stream.feed('<tool_call>{"name": "get_weather", "arguments": {"city": "')
    with pytest.raises(ToolCallFormatError, match="grew past"):
        for _ in range(MAX_CALL_CHARS // 10_000 + 2):
            stream.feed("x" * 10_000)


def test_tool_choice_required_and_named() -> None:
    required = _tools(WEATHER, READ_FILE, tool_choice="required")
    stream = ToolCallStream(required)
    stream.feed("It is sunny.")
    with pytest.raises(ToolCallFormatError, match="required a call to a function"):
        stream.finish()
    only_read = {"type": "function", "function": {"name": "read_file"}}
    named = _tools(WEATHER, READ_FILE, tool_choice=only_read)
    assert [t["function"]["name"] for t in named.template_tools or []] == ["read_file"]
    with pytest.raises(ToolCallFormatError, match="did not declare"):
        ToolCallStream(named).feed('<tool_call>{"name": "get_weather"}</tool_call>')
    none = _tools(WEATHER, tool_choice="none")
    assert none.template_tools is None


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"tools": {"name": "x"}}, "tools", "must be a list"),
        ({"tools": [{"type": "function"}]}, "tools", "no `function`"),
        ({"tools": [{"type": "function", "function": {"name": "rm -rf /"}}]}, "tools", "1-64"),
        ({"tools": [WEATHER, WEATHER]}, "tools", "twice"),
        ({"tools": [WEATHER] * 200}, "tools", "at most"),
        ({"tools": [WEATHER], "tool_choice": "always"}, "tool_choice", '"auto"'),
        ({"tool_choice": "required"}, "tool_choice", "declares none"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
            "does not declare",
        ),
    ],
)
def test_malformed_tools_are_refused_naming_the_field(
    body: dict[str, object], param: str, says: str
) -> None:
    with pytest.raises(ToolRequestError) as caught:
        ToolRequest.from_body(body)
    assert caught.value.param == param
    assert says in str(caught.value)


def test_the_hermes_template_renders_tools_and_tool_history() -> None:
    template = ChatTemplate(TEMPLATE_PATH.read_text())
    assert template.supports_tools
    assert not ChatTemplate(None).supports_tools
    history = template_messages(
        [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
        ]
    )
    prompt = template.render(history, tools=_tools(WEATHER).template_tools)
    assert "<tools>\n" + json.dumps(WEATHER, ensure_ascii=False) + "\n</tools>" in prompt
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert call in prompt
    assert "<tool_response>\nsunny, 21 C\n</tool_response>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


# -- through the server, with the official openai client ---------------------------------------


@dataclass
class Served:
    client: openai.OpenAI
    service: ModelService
    url: str


@contextlib.contextmanager
def _serve(model: Path) -> Iterator[Served]:
    """`leancoder serve`'s app (its default hooks) over `model`, with an openai client."""
    with model_service(model, n_ctx=2048) as service, running_server(
        service, ServerConfig(port=0)
    ) as server:
        client = server.client(timeout=120)
        try:
            yield Served(client, service, server.url)
        finally:
            client.close()


@pytest.fixture(scope="module")
def hermes_model(starter_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The starter with the Hermes-style tool template as its own `tokenizer.chat_template`."""
    target = tmp_path_factory.mktemp("hermes") / "starter-hermes-tools.gguf"
    return StringRewriter(starter_path).write(
        target, "tokenizer.chat_template", TEMPLATE_PATH.read_text()
    )


@pytest.fixture(scope="module")
def served(hermes_model: Path) -> Iterator[Served]:
    with _serve(hermes_model) as served:
        info = served.service.engine.info
        assert info is not None and info.supports_tools
        yield served


WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_scripted_calls_stream_as_tool_call_deltas(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ScriptedAnswers(monkeypatch, [TWO_CALLS])
    stream = served.client.chat.completions.create(
        model="any", messages=WEATHER_QUESTION, tools=[WEATHER, READ_FILE], stream=True
    )
    content, calls, finish = "", [], []
    for chunk in stream:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            calls += choice.delta.tool_calls or []
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert script.asked == 1
    assert content == "Let me look that up."
    assert finish == ["tool_calls"]
    assert [(c.index, c.type, c.function.name) for c in calls] == [
        (0, "function", "get_weather"),
        (1, "function", "read_file"),
    ]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris", "days": 2}
    assert calls[0].id != calls[1].id


def test_scripted_calls_in_a_whole_reply(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    ScriptedAnswers(monkeypatch, [TWO_CALLS.split("Let me look that up.\n")[1]])
    reply = served.client.chat.completions.create(
        model="any", messages=WEATHER_QUESTION, tools=[WEATHER, READ_FILE]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.content
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "read_file"]
    assert json.loads(calls[1].function.arguments) == {"path": "src/main.py"}


def test_an_unreadable_call_is_an_error_the_client_sees_once(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = '<tool_call>\n{"name": "get_weather", "arguments": {city: Paris}}\n</tool_call>'
    script = ScriptedAnswers(monkeypatch, [bad, bad])
    retrying = openai.OpenAI(base_url=served.url, api_key="unused", max_retries=2, timeout=120)
    with pytest.raises(openai.InternalServerError) as caught:
        retrying.chat.completions.create(
            model="any", messages=WEATHER_QUESTION, tools=[WEATHER]
        )
    retrying.close()
    assert script.asked == 1  # x-should-retry: false, so the SDK did not run the turn again
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "tool_call_parse_error"
    assert "not valid JSON" in body["message"] and "{city: Paris}" in body["message"]

    stream = served.client.chat.completions.create(
        model="any", messages=WEATHER_QUESTION, tools=[WEATHER], stream=True
    )
    text = ""
    with pytest.raises(openai.APIError, match="not valid JSON"):
        for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert "<tool_call>" not in text


def test_tool_choice_required_without_a_call_is_an_error(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    ScriptedAnswers(monkeypatch, ["It is probably sunny."])
    with pytest.raises(openai.InternalServerError, match="required a call to `get_weather`"):
        served.client.chat.completions.create(
            model="any",
            messages=WEATHER_QUESTION,
            tools=[WEATHER, READ_FILE],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )


def test_tool_history_reaches_the_template_as_objects(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ScriptedAnswers(monkeypatch, ["It is sunny in Paris, 21 C."])
    call = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    reply = served.client.chat.completions.create(
        model="any",
        tools=[WEATHER],
        messages=[
            *WEATHER_QUESTION,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_abc", "content": "sunny, 21 C"},
        ],
    )
    assert reply.choices[0].message.content == "It is sunny in Paris, 21 C."
    sent = script.prompts[0]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert sent[2]["role"] == "tool" and sent[2]["tool_call_id"] == "call_abc"


def test_malformed_tools_are_a_400_naming_the_field(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        served.client.chat.completions.create(
            model="any",
            messages=WEATHER_QUESTION,
            tools=[{"type": "function", "function": {"name": "no spaces allowed"}}],
        )
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == "tools" and "1-64" in body["message"]


def test_the_model_list_says_the_template_takes_tools(served: Served) -> None:
    """Zed and Continue read tool support from /v1/models: this template reads `tools`."""
    model = served.client.models.list().data[0]
    assert (model.model_extra or {})["capabilities"] == {"tools": True}


def test_the_real_model_answers_with_the_tools_in_its_own_template(served: Served) -> None:
    """End to end, nothing scripted: the tools reach the model through its template (the prompt
    is exactly the template's rendering with them), and its reply comes back well formed."""
    stream = served.client.chat.completions.create(
        model="any",
        messages=WEATHER_QUESTION,
        tools=[WEATHER],
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,
        seed=7,
        max_tokens=48,
    )
    content, calls, finish, usage = "", [], "", None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            content += choice.delta.content or ""
            calls += choice.delta.tool_calls or []
            finish = choice.finish_reason or finish
    engine = served.service.engine  # idle now: the reply has ended
    expected = engine.tokenize_prompt(
        engine.render_prompt(WEATHER_QUESTION, tools=_tools(WEATHER).template_tools)
    )
    plain = engine.tokenize_prompt(engine.render_prompt(WEATHER_QUESTION))
    assert usage is not None and usage.prompt_tokens == len(expected) > len(plain) + 50
    assert "<tool_call>" not in content and "</tool_call>" not in content
    assert finish in ("stop", "length", "tool_calls")
    assert (finish == "tool_calls") == bool(calls)
    assert content or calls


def test_a_template_without_tools_refuses_them(starter_path: Path) -> None:
    """The starter's own ChatML template never reads `tools`: a 400, not a model that silently
    never saw them; `tool_choice: "none"` still answers."""
    with _serve(starter_path) as served:
        with pytest.raises(openai.BadRequestError, match="does not support tools"):
            served.client.chat.completions.create(
                model="any", messages=WEATHER_QUESTION, tools=[WEATHER]
            )
        reply = served.client.chat.completions.create(
            model="any", messages=WEATHER_QUESTION, tools=[WEATHER], tool_choice="none",
            max_tokens=4,
        )
        assert reply.choices[0].finish_reason in ("stop", "length")
