"""Function calling for the local API: OpenAI's `tools` in, the model's tool calls out.

A request's `tools` and `tool_choice` are checked here (`ToolRequest.from_body`), then handed to
the model's own chat template, which is how the model was trained to see them (Hugging Face
templates read `tools`). The model answers a call in the Hermes/Qwen form,
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, or Qwen3-Coder's XML form inside the
same tags (`<function=name><parameter=p>value</parameter></function>`). `ToolCallStream` reads
the streamed answer text and splits it into plain text and finished calls, in order, so the
server can stream calls as OpenAI `tool_calls` deltas.

A call is only reported once its closing tag has arrived and it parsed: a half-written call is
never streamed. Anything LeanCoder cannot read as a call (bad JSON, a function the request did
not declare, a call cut off by the token limit, no call where `tool_choice` demanded one) raises
`ToolCallFormatError` with the model's words quoted, rather than passing the markup off as text
that a coding tool would show or, worse, act on.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import LeanCoderError
from app.core.llm.chat_template import ToolSpec

OPEN_TAG = "<tool_call>"
CLOSE_TAG = "</tool_call>"
# Bounds on what a request may declare and what one reply may call: generous for real tools
# (Cline declares ~20 functions, a file write is one large argument), small enough to hold.
MAX_TOOLS = 128
MAX_TOOLS_JSON_CHARS = 256 * 1024
MAX_CALL_CHARS = 1024 * 1024
MAX_CALLS = 64
QUOTE_CHARS = 200  # of the model's text quoted in an error
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # OpenAI's rule for function names (plus ".")
_CODER_FUNCTION = re.compile(r"<function=([^>\n]+)>(.*?)</function>", re.DOTALL)
_CODER_PARAMETER = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?</parameter>", re.DOTALL)


class ToolRequestError(LeanCoderError):
    """The request's `tools` or `tool_choice` are malformed (an HTTP 400 for the client);
    `param` names the field."""

    def __init__(self, message: str, param: str = "tools") -> None:
        super().__init__(message)
        self.param = param


class ToolCallFormatError(LeanCoderError):
    """The model wrote a tool call LeanCoder cannot read; the message quotes what it wrote."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One finished call: `arguments` is the JSON object text OpenAI clients expect."""

    index: int
    id: str
    name: str
    arguments: str

    def message_form(self) -> dict[str, Any]:
        """As in a non-streamed `message.tool_calls` entry."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    def delta_form(self) -> dict[str, Any]:
        """As in a streamed `delta.tool_calls` entry: the whole call in one delta."""
        return {"index": self.index, **self.message_form()}


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """What a request declared: `tools` for the template, and whether a call is required."""

    tools: tuple[ToolSpec, ...]
    names: frozenset[str]
    required: str | None = None  # "" any function, else that function's name
    render: bool = True  # False for tool_choice "none": the model is not offered the tools

    @property
    def template_tools(self) -> list[ToolSpec] | None:
        return list(self.tools) if self.render and self.tools else None

    @staticmethod
    def from_body(body: Mapping[str, Any]) -> ToolRequest | None:
        """The request's tools, checked; None when it declares none. Raises ToolRequestError."""
        raw = body.get("tools")
        choice = body.get("tool_choice")
        if raw is None or raw == []:
            if choice not in (None, "none", "auto"):
                raise ToolRequestError(
                    "`tool_choice` needs `tools`: the request declares none.", "tool_choice"
                )
            return None
        if not isinstance(raw, list):
            raise ToolRequestError("`tools` must be a list of function definitions.")
        if len(raw) > MAX_TOOLS:
            raise ToolRequestError(f"`tools` lists {len(raw):,} functions; at most {MAX_TOOLS}.")
        size = len(json.dumps(raw, ensure_ascii=False))
        if size > MAX_TOOLS_JSON_CHARS:
            raise ToolRequestError(
                f"`tools` is {size:,} characters of JSON; at most {MAX_TOOLS_JSON_CHARS:,}."
            )
        tools = tuple(_checked_tool(i, tool) for i, tool in enumerate(raw))
        names = [t["function"]["name"] for t in tools]
        if len(set(names)) != len(names):
            raise ToolRequestError("`tools` declares the same function name twice.")
        request = ToolRequest(tools, frozenset(names))
        if choice is None or choice == "auto":
            return request
        if choice == "none":
            return ToolRequest(tools, request.names, render=False)
        if choice == "required":
            return ToolRequest(tools, request.names, required="")
        if isinstance(choice, Mapping) and choice.get("type") == "function":
            function = choice.get("function")
            name = function.get("name") if isinstance(function, Mapping) else None
            if not isinstance(name, str) or name not in request.names:
                raise ToolRequestError(
                    f"`tool_choice` names a function the request does not declare: {name!r}.",
                    "tool_choice",
                )
            # Offer only that function, as OpenAI's forced choice means.
            only = tuple(t for t in tools if t["function"]["name"] == name)
            return ToolRequest(only, frozenset([name]), required=name)
        raise ToolRequestError(
            '`tool_choice` must be "auto", "none", "required" or '
            '{"type": "function", "function": {"name": ...}}.',
            "tool_choice",
        )


def _checked_tool(index: int, tool: Any) -> ToolSpec:
    where = f"`tools[{index}]`"
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        raise ToolRequestError(f'{where} must be {{"type": "function", "function": {{...}}}}.')
    function = tool.get("function")
    if not isinstance(function, Mapping):
        raise ToolRequestError(f"{where} has no `function` object.")
    name = function.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ToolRequestError(
            f"{where} needs a function `name` of 1-64 letters, digits, '_', '-' or '.'."
        )
    description = function.get("description", "")
    if not isinstance(description, str):
        raise ToolRequestError(f"{where}: `description` must be a string.")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, Mapping):
        raise ToolRequestError(f"{where}: `parameters` must be a JSON Schema object.")
    checked: dict[str, Any] = {"name": name, "description": description}
    checked["parameters"] = dict(parameters)
    return {"type": "function", "function": checked}


def template_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI history as templates read it: an assistant's `tool_calls` carry `arguments` as an
    object (Hugging Face's convention; Qwen's template writes them with `tojson`), and a `tool`
    message keeps its `tool_call_id` and `name`. Other messages pass through unchanged."""
    converted: list[dict[str, Any]] = []
    for message in messages:
        item = dict(message)
        calls = item.get("tool_calls")
        if isinstance(calls, list):
            item["tool_calls"] = [_template_call(call) for call in calls]
        if item.get("content") is None:
            item["content"] = ""  # an assistant turn that only called tools
        converted.append(item)
    return converted


def _template_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
        raise ToolRequestError(
            "An assistant message's `tool_calls` entry has no `function`.", "messages"
        )
    function = dict(call["function"])
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolRequestError(
                f"An earlier tool call's `arguments` is not JSON ({exc.msg}).", "messages"
            ) from None
    function["arguments"] = arguments
    return {"id": call.get("id", ""), "type": "function", "function": function}


@dataclass
class ToolCallStream:
    """Splits streamed answer text into plain text and tool calls (see the module docstring).

    `feed` and `finish` return the pieces in order: `str` for text, `ToolCall` for a call.
    Whitespace around calls is dropped; a reply without calls comes back unchanged.
    """

    request: ToolRequest
    calls: list[ToolCall] = field(default_factory=list)
    _pending: str = ""  # text that may yet turn out to start a tag, or whitespace held back
    _inside: list[str] | None = None  # a call's body so far, while between the tags
    _body_chars: int = 0
    _after_call: bool = False  # the whitespace separating a call from what follows goes

    def feed(self, text: str) -> list[str | ToolCall]:
        out: list[str | ToolCall] = []
        self._pending += text
        while self._pending:
            if self._inside is not None:
                if not self._read_body(out):
                    break
                continue
            start = self._pending.find(OPEN_TAG)
            if start >= 0:
                self._text(self._pending[:start], out)  # whitespace before a call goes
                self._pending = self._pending[start + len(OPEN_TAG) :]
                self._inside, self._body_chars = [], 0
                continue
            keep = _partial_tag_length(self._pending, OPEN_TAG)
            cut = len(self._pending) - keep
            head, tail = self._pending[:cut], self._pending[cut:]
            self._pending = self._text(head, out) + tail
            break
        return out

    def finish(self) -> list[str | ToolCall]:
        """The rest, at the end of the reply. Raises ToolCallFormatError for a call left open
        or a required call that never came."""
        if self._inside is not None:
            body = "".join(self._inside) + self._pending
            raise ToolCallFormatError(
                "The model's tool call was cut off before its closing </tool_call> (the reply "
                f"ended, probably at the token limit): {_quote(OPEN_TAG + body)}"
            )
        out: list[str | ToolCall] = []
        rest, self._pending = self._pending, ""
        if self.calls:
            rest = rest.strip()
        if rest:
            out.append(rest)
        if self.request.required is not None and not self.calls:
            wanted = f"`{self.request.required}`" if self.request.required else "a function"
            raise ToolCallFormatError(
                f"`tool_choice` required a call to {wanted}, but the model answered with text "
                "and no tool call."
            )
        return out

    def _text(self, text: str, out: list[str | ToolCall]) -> str:
        """Emit `text` but hold back its trailing whitespace, which may only separate it from
        a call (then it is dropped, however the stream was split); returns what is held."""
        end = len(text.rstrip())
        start = len(text) - len(text.lstrip()) if self._after_call else 0
        if start < end:
            out.append(text[start:end])
            self._after_call = False
        return text[end:]

    def _read_body(self, out: list[str | ToolCall]) -> bool:
        """Consume a call's body from `_pending`; True when the call closed."""
        assert self._inside is not None
        end = self._pending.find(CLOSE_TAG)
        if end < 0:
            keep = _partial_tag_length(self._pending, CLOSE_TAG)
            chunk = self._pending[: len(self._pending) - keep] if keep else self._pending
            self._pending = self._pending[len(chunk) :]
            self._grow(chunk)
            return False
        self._grow(self._pending[:end])
        self._pending = self._pending[end + len(CLOSE_TAG) :]
        body, self._inside = "".join(self._inside), None
        if len(self.calls) >= MAX_CALLS:
            raise ToolCallFormatError(
                f"The model made more than {MAX_CALLS} tool calls in one reply."
            )
        name, arguments = parse_call_body(body, self.request)
        call = ToolCall(len(self.calls), "call_" + secrets.token_hex(12), name, arguments)
        self.calls.append(call)
        out.append(call)
        self._after_call = True
        return True

    def _grow(self, chunk: str) -> None:
        assert self._inside is not None
        self._body_chars += len(chunk)
        if self._body_chars > MAX_CALL_CHARS:
            raise ToolCallFormatError(
                f"The model's tool call grew past {MAX_CALL_CHARS:,} characters without a "
                f"closing </tool_call>: {_quote(''.join(self._inside))}"
            )
        self._inside.append(chunk)


def parse_call_body(body: str, request: ToolRequest) -> tuple[str, str]:
    """(function name, arguments as JSON object text) of one call's body. Raises
    ToolCallFormatError."""
    text = body.strip()
    if text.startswith("<function="):
        name, arguments = _parse_coder_call(text, request)
    else:
        name, arguments = _parse_json_call(text)
    if name not in request.names:
        declared = ", ".join(sorted(request.names))
        raise ToolCallFormatError(
            f"The model called a function `{name}` that the request did not declare (declared: "
            f"{declared}): {_quote(text)}"
        )
    return name, json.dumps(arguments, ensure_ascii=False)


def _parse_json_call(text: str) -> tuple[str, dict[str, Any]]:
    try:
        call = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolCallFormatError(
            f"The model's tool call is not valid JSON ({exc.msg} at character {exc.pos}): "
            f"{_quote(text)}"
        ) from None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ToolCallFormatError(
            'The model\'s tool call is JSON but not {"name": ..., "arguments": {...}}: '
            f"{_quote(text)}"
        )
    arguments = call.get("arguments", call.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        with contextlib.suppress(json.JSONDecodeError):
            arguments = json.loads(arguments)
    if not isinstance(arguments, dict):
        raise ToolCallFormatError(
            f"The model's tool call has `arguments` that are not a JSON object: {_quote(text)}"
        )
    return call["name"], arguments


def _parse_coder_call(text: str, request: ToolRequest) -> tuple[str, dict[str, Any]]:
    match = _CODER_FUNCTION.fullmatch(text)
    if match is None:
        raise ToolCallFormatError(
            "The model's tool call opens <function=...> but is not "
            f"<function=name><parameter=p>value</parameter></function>: {_quote(text)}"
        )
    name = match.group(1).strip()
    schema = _parameter_schema(request, name)
    arguments: dict[str, Any] = {}
    for param in _CODER_PARAMETER.finditer(match.group(2)):
        key, value = param.group(1).strip(), param.group(2)
        try:
            arguments[key] = _typed_value(value, schema.get(key))
        except ValueError as exc:
            raise ToolCallFormatError(
                f"The model's tool call gives `{key}` the value {_quote(value)}, which is not "
                f"{exc} (the type `{name}` declares for it): {_quote(text)}"
            ) from None
    return name, arguments


def _parameter_schema(request: ToolRequest, name: str) -> dict[str, Any]:
    for tool in request.tools:
        if tool["function"]["name"] == name:
            properties = tool["function"]["parameters"].get("properties", {})
            return dict(properties) if isinstance(properties, Mapping) else {}
    return {}


def _typed_value(value: str, schema: Any) -> Any:
    """Qwen3-Coder writes every parameter as text; the declared type says how to read it.
    Raises ValueError naming the type."""
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    if kind in (None, "string") or not isinstance(kind, str):
        return value
    article = "an" if kind[:1] in "aeiou" else "a"
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(f"{article} {kind}") from None


def _partial_tag_length(text: str, tag: str) -> int:
    """How many characters at the end of `text` could be the start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def _quote(text: str) -> str:
    text = text.strip()
    if len(text) > QUOTE_CHARS:
        text = text[:QUOTE_CHARS] + "…"
    return json.dumps(text, ensure_ascii=False)
