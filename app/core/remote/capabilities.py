"""What a remote server offers, found by asking it, and said in words for the thinking meter.

Probes, each a cheap request that answers 404 where the server lacks it:
- `GET /v1/models`: the model names (and vLLM's `max_model_len`, Ollama/LM Studio context fields);
- `GET /props` (llama-server): `n_ctx`, the chat template, BOS/EOS text; its presence also means
  the per-request `thinking_budget_tokens` field and `timings` in answers;
- `owned_by: "leancoder"` in the model list: LeanCoder's own server, which takes the thinking
  policy itself (the `leancoder` request extension);
- tokenize: llama-cpp-python's `POST /extras/tokenize {"input"}`, llama-server's `POST /tokenize
  {"content"}`, vLLM's `POST /tokenize {"model", "prompt"}`: the first that answers with token ids.

Nothing is assumed silently: every control the engine cannot give over this server becomes a
sentence in `notes`, shown where the local engine's load notes are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.remote.endpoint import RemoteError, RemoteSpec
from app.core.remote.http import RemoteClient

TokenizeStyle = Literal["extras", "llama-server", "vllm", "none"]
ServerKind = Literal[
    "llama-server", "vllm", "llama-cpp-python", "leancoder", "openai-compatible"
]
MAX_TEMPLATE_CHARS = 256 * 1024


@dataclass(slots=True)
class ServerCapabilities:
    kind: ServerKind = "openai-compatible"
    models: list[str] = field(default_factory=list)
    model: str = ""  # the one requests name
    n_ctx: int | None = None  # as the server publishes it
    chat_template: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    tokenize: TokenizeStyle = "none"
    budget_field: str | None = None  # the server's own per-request thinking budget field
    timings: bool = False  # answers carry llama-server's per-request `timings`
    notes: list[str] = field(default_factory=list)


def detect(client: RemoteClient, spec: RemoteSpec) -> ServerCapabilities:
    """Ask the server what it offers. Raises RemoteError when it cannot be used at all (down,
    401, the named model missing)."""
    caps = ServerCapabilities()
    listing = client.get_json("/v1/models")  # unreachable / 401 surface here, first
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        raise RemoteError(
            f"The server at {spec.host} answered /v1/models without a model list; is "
            f"{spec.base_url} the OpenAI-compatible base URL (usually ending in /v1)?"
        )
    by_id: dict[str, dict[str, Any]] = {}
    for entry in entries[:1000]:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            by_id[entry["id"]] = entry
    caps.models = list(by_id)
    if not caps.models:
        raise RemoteError(f"The server at {spec.host} lists no models.")
    if spec.model and spec.model not in by_id:
        shown = ", ".join(caps.models[:5])
        raise RemoteError(
            f"The server at {spec.host} has no model named '{spec.model}'; it serves: {shown}."
        )
    caps.model = spec.model or caps.models[0]
    entry = by_id[caps.model]
    own = entry.get("leancoder")
    if entry.get("owned_by") == "leancoder" or isinstance(own, dict):
        # LeanCoder's own server (`leancoder serve`) runs the whole thinking policy itself.
        caps.kind = "leancoder"
        caps.budget_field = "thinking_budget_tokens"
        n_ctx = own.get("n_ctx") if isinstance(own, dict) else None
        caps.n_ctx = n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None
        _find_tokenizer(client, caps)
        return caps
    for key in ("max_model_len", "context_length", "n_ctx", "max_context_length"):
        value = entry.get(key)
        if isinstance(value, int) and value > 0:
            caps.n_ctx = value
            if key == "max_model_len":
                caps.kind = "vllm"
            break
    _read_props(client, caps)
    _find_tokenizer(client, caps)
    if caps.kind == "vllm":
        caps.budget_field = "thinking_token_budget"
    return caps


def _read_props(client: RemoteClient, caps: ServerCapabilities) -> None:
    props = client.try_json("GET", "/props")
    if not isinstance(props, dict):
        return
    caps.kind = "llama-server"
    caps.timings = True
    caps.budget_field = "thinking_budget_tokens"
    settings = props.get("default_generation_settings")
    for source in (props, settings if isinstance(settings, dict) else {}):
        n_ctx = source.get("n_ctx")
        if isinstance(n_ctx, int) and n_ctx > 0:
            caps.n_ctx = n_ctx
    template = props.get("chat_template")
    if isinstance(template, str) and template.strip() and len(template) <= MAX_TEMPLATE_CHARS:
        caps.chat_template = template
    for key in ("bos_token", "eos_token"):
        value = props.get(key)
        if isinstance(value, str) and len(value) < 64:
            setattr(caps, key, value)


def _find_tokenizer(client: RemoteClient, caps: ServerCapabilities) -> None:
    probes: list[tuple[TokenizeStyle, str, dict[str, Any]]] = [
        ("extras", "/extras/tokenize", {"input": "a", "model": caps.model}),
        ("llama-server", "/tokenize", {"content": "a", "add_special": False}),
        ("vllm", "/tokenize", {"model": caps.model, "prompt": "a", "add_special_tokens": False}),
    ]
    for style, path, body in probes:
        try:
            answer = client.try_json("POST", path, body)
        except RemoteError:
            continue
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if isinstance(tokens, list) and tokens and all(isinstance(t, int) for t in tokens):
            caps.tokenize = style
            if style == "extras" and caps.kind == "openai-compatible":
                caps.kind = "llama-cpp-python"
            return


def tokenize_request(style: TokenizeStyle, model: str, text: str) -> tuple[str, dict[str, Any]]:
    """The path and body that tokenize `text` (without BOS where the server lets us say so)."""
    if style == "extras":
        return "/extras/tokenize", {"input": text, "model": model}
    if style == "llama-server":
        return "/tokenize", {"content": text, "add_special": False}
    return "/tokenize", {"model": model, "prompt": text, "add_special_tokens": False}
