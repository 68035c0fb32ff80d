"""A remote inference server as an engine: the same events, statistics and thinking control as the
local `Engine`, over HTTP.

With a chat template (see template_choice) every reply is a chain of streamed raw completions
(`/v1/completions`), the prompt rendered here. Thinking control is cancel-and-continue: when the
thinking controller (the local engine's own, app.core.thinking.control) closes the thinking at the
budget, for a loop or for Stop thinking, or adds a wrap-up hint, the stream is closed (the server
stops generating when the client goes away) and a new raw completion continues from the rendered
conversation, the reply so far and the closing text. Filler words are banned with `logit_bias`,
ids from the server's tokenizer, on legs that run inside the thinking only: when the thinking
ends, the leg is cut and the answer continues without the bias. Each intervention costs one
request and one re-sent prompt (servers with a prefix cache evaluate only the new tail); both are
counted in the reply's statistics.

Without a template the reply is one chat completion: the server's own thinking budget field where
it has one, and notes that say which controls are off. What the server cannot do is never skipped
silently: `info.notes` lists every control and how (or whether) it works on this server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.core.errors import GenerationError
from app.core.llm.chat_template import ChatTemplate, Message
from app.core.llm.engine_types import (
    CancelToken,
    EventKind,
    GenerationEvent,
    ModelInfo,
    ReplyStats,
    SamplingParams,
    stats_with_counters,
)
from app.core.llm.template_limits import TemplateCancelled
from app.core.models.network import NetworkSettings
from app.core.remote.capabilities import ServerCapabilities, detect
from app.core.remote.endpoint import RemoteDroppedError, RemoteError, RemoteSpec
from app.core.remote.http import DEFAULT_READ_TIMEOUT_S, EventStream, RemoteClient
from app.core.remote.template_choice import choose_template
from app.core.remote.tokens import RemoteTokenizer
from app.core.remote.wire import completion_chunk, control_notes, read_meters
from app.core.thinking.control import Action, ThinkingController
from app.core.thinking.filler_words import FillerMatch
from app.core.thinking.parser import (
    Channel,
    ParseEvent,
    ThinkingFormat,
    ThinkingParser,
    detect_format,
    open_marker_for,
    prompt_opens_thinking,
)
from app.core.thinking.policy import UNPRUNED, ThinkingPolicy

ASSUMED_CONTEXT = 4096
MAX_LOGIT_BIAS = 100.0  # OpenAI's range is [-100, 100]; -100 bans a token on every server
MAX_TEXT_IDS = 100_000


@dataclass(frozen=True, slots=True)
class RemoteOptions:
    api_key: str | None = None
    n_ctx: int | None = None  # the user's figure, used where the server publishes none
    template: Literal["model", "default"] = "model"  # "default": the user picked ChatML
    template_gguf: Path | None = None  # a local copy of the model's GGUF, for its template
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    network: NetworkSettings | None = None  # None: the saved network settings


class RemoteEngine:
    """A model on an OpenAI-compatible server. `connect` first; then as `Engine`."""

    def __init__(self) -> None:
        self.info: ModelInfo | None = None
        self.spec: RemoteSpec | None = None
        self.caps: ServerCapabilities | None = None
        self._client: RemoteClient | None = None
        self._tokenizer: RemoteTokenizer | None = None
        self._template: ChatTemplate | None = None
        self._fresh_prompt = False
        self._text_ids: dict[str, int] = {}
        self._encoded: dict[tuple[int, ...], str] = {}
        self._encode_cache: dict[str, list[int]] = {}

    @property
    def loaded(self) -> bool:
        return self.info is not None

    def connect(self, spec: RemoteSpec, options: RemoteOptions | None = None) -> ModelInfo:
        """Reach the server, detect what it offers, choose the template. RemoteError if the
        server cannot be used (unreachable, 401, no such model)."""
        options = options or RemoteOptions()
        self.unload()
        client = RemoteClient(
            spec, options.api_key, network=options.network, read_timeout_s=options.read_timeout_s
        )
        try:
            caps = detect(client, spec)
            notes: list[str] = []
            n_ctx = caps.n_ctx or options.n_ctx or ASSUMED_CONTEXT
            if caps.n_ctx is None:
                how = "your figure" if options.n_ctx else "an assumption; give --ctx"
                notes.append(f"The server does not publish its context size: {n_ctx:,} tokens "
                             f"({how}).")  # fmt: skip
            choice = choose_template(caps, spec.host, n_ctx, picked=options.template,
                                     template_gguf=options.template_gguf)  # fmt: skip
        except BaseException:
            client.close()
            raise
        self._client, self.spec, self.caps = client, spec, caps
        self._tokenizer = RemoteTokenizer(client, caps)
        self._template = choice.template
        fmt = detect_format(choice.template.source if choice.template else None)
        notes += control_notes(caps, choice.source, self._template is not None)
        self.info = ModelInfo(
            path=Path(caps.model),
            name=f"{Path(caps.model).name} on {spec.host}",
            architecture=f"remote ({caps.kind})",
            file_size=0,
            n_ctx=n_ctx,
            n_ctx_train=choice.n_ctx_train or n_ctx,
            n_params=0,
            thinking_format=fmt,
            template_name=choice.source,
            notes=notes,
        )
        return self.info

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._tokenizer = self._template = None
        self.info = self.caps = None
        self._text_ids, self._encoded, self._encode_cache = {}, {}, {}

    def reset_cache(self) -> None:
        """The server's cache is its own: ask it (llama-server's `cache_prompt: false`) to
        evaluate the next prompt in full, for fair comparisons."""
        self._fresh_prompt = True

    def count_tokens(self, text: str) -> int:
        return self._require_tokenizer().count(text)

    def filler_matches(self, words: Sequence[str]) -> list[FillerMatch]:
        return self._require_tokenizer().filler_matches(words)

    def render_prompt(self, messages: Sequence[Message], cancel: CancelToken | None = None) -> str:
        if self._template is None:
            raise GenerationError("This server's model has no chat template here.")
        return self._template.render(messages, add_generation_prompt=True, cancel=cancel)

    def _require_tokenizer(self) -> RemoteTokenizer:
        if self._tokenizer is None:
            raise GenerationError("No remote engine is connected. Choose a model first.")
        return self._tokenizer

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[Message],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
        policy: ThinkingPolicy | None = None,
        stop_thinking: CancelToken | None = None,
        force_thinking: bool = False,
    ) -> Iterator[GenerationEvent]:
        """Stream a reply, as `Engine.generate` does (see the module doc for how)."""
        if self.info is None or self._client is None:
            raise GenerationError("No remote engine is connected. Choose a model first.")
        sampling = sampling or SamplingParams()
        policy = policy or UNPRUNED
        if self._template is None or (self.caps is not None and self.caps.kind == "leancoder"):
            from app.core.remote.chat_reply import stream_chat_reply

            yield from stream_chat_reply(self, messages, sampling, cancel, policy, force_thinking)
            return
        try:
            prompt = self.render_prompt(messages, cancel)
        except TemplateCancelled:
            stopped = ReplyStats(policy=policy.name, finish_reason="cancelled")
            yield GenerationEvent("done", Channel.ANSWER, "", stopped)
            return
        fmt = self.info.thinking_format
        if force_thinking:
            fmt = fmt if fmt is not ThinkingFormat.NONE else ThinkingFormat.THINK_TAGS
            if not prompt_opens_thinking(prompt, fmt):
                prompt += open_marker_for(fmt)
        yield from self._raw_reply(prompt, fmt, sampling, cancel, policy, stop_thinking)

    def _raw_reply(
        self,
        prompt: str,
        fmt: ThinkingFormat,
        sampling: SamplingParams,
        cancel: CancelToken | None,
        policy: ThinkingPolicy,
        stop_thinking: CancelToken | None,
    ) -> Iterator[GenerationEvent]:
        assert self.info is not None and self._client is not None
        tokenizer = self._require_tokenizer()
        n_ctx = self.info.n_ctx
        stats = ReplyStats(prompt_tokens=tokenizer.count(prompt), policy=policy.name)
        if stats.prompt_tokens >= n_ctx:
            raise GenerationError(
                f"The conversation is {stats.prompt_tokens:,} tokens but the server's context "
                f"holds {n_ctx:,}. Start a new chat, or use a server with a larger context."
            )
        parser = ThinkingParser(fmt, start_in_thinking=prompt_opens_thinking(prompt, fmt))
        filler_ids = (
            [m.token_id for m in tokenizer.filler_matches(policy.filler_words)]
            if policy.suppress_fillers and fmt is not ThinkingFormat.NONE
            else []
        )
        control = ThinkingController(policy, fmt, self._encode, filler_ids, stop_thinking)
        bias = control.logit_bias()
        room = n_ctx - stats.prompt_tokens
        limit = min(room, sampling.max_tokens) if sampling.max_tokens else room
        reason = "context" if limit == room else "length"
        written: list[str] = []
        start = time.perf_counter()
        first = 0.0

        def publish(events: Sequence[ParseEvent]) -> Iterator[GenerationEvent]:
            snapshot = stats_with_counters(stats, control)
            for ev in events:
                if ev.kind == "open":
                    control.on_block_open()
                kind: EventKind = "text" if ev.kind == "text" else f"thinking_{ev.kind}"  # type: ignore[assignment]
                yield GenerationEvent(kind, ev.channel, ev.text, snapshot)

        def feed(text: str, tokens: int) -> Iterator[GenerationEvent]:
            was_thinking = parser.in_thinking
            events = parser.feed(text)
            if was_thinking or parser.in_thinking:
                stats.thinking_tokens += tokens
            else:
                stats.answer_tokens += tokens
            control.in_thinking = parser.in_thinking
            written.append(text)
            yield from publish(events)

        yield from publish(parser.feed(""))
        control.in_thinking = parser.in_thinking
        leg = 0
        while stats.generated_tokens < limit:
            leg_bias = bias if bias and control.in_thinking else None
            body = self._completion_body(prompt + "".join(written), sampling, leg, leg_bias,
                                         limit - stats.generated_tokens)  # fmt: skip
            stats.requests += 1
            if leg:
                stats.resent_prompt_tokens += stats.prompt_tokens + stats.generated_tokens
            leg += 1
            continued = False
            finished = ""
            with self._client.stream("/v1/completions", body) as stream:
                while True:
                    event = stream.next_event(cancel)
                    if event is EventStream.CANCELLED:
                        finished = "cancelled"
                        break
                    if event is None:
                        break
                    text, finish = completion_chunk(event, self._client.spec.host)
                    read_meters(event, stats, leg == 1)
                    if text:
                        now = time.perf_counter()
                        if not first:
                            first = now
                            stats.prompt_seconds = stats.time_to_first_token_s = now - start
                        stats.decode_seconds = now - first
                        action = (
                            control.step(self._text_id(text), text, False)
                            if control.in_thinking
                            else None
                        )
                        if action is None:
                            yield from feed(text, 1)
                        else:
                            yield from self._apply(action, text, feed)
                            continued = True
                            break
                        if bool(leg_bias) != bool(bias and control.in_thinking):
                            continued = True  # the thinking ended: the answer goes unbiased
                            break
                    if finish:
                        finished = "length" if finish == "length" else "stop"
                        if "stream_options" in body:  # the usage event follows the finish
                            _drain_usage(stream, stats, leg == 1, cancel)
                        break
            if finished == "cancelled":
                reason = "cancelled"
                break
            if not continued:
                if not finished:
                    raise RemoteDroppedError(
                        f"The server at {self._client.spec.host} ended the reply without "
                        "saying it was finished. What arrived so far is kept; send it again "
                        "to retry."
                    )
                if finished == "stop" or stats.generated_tokens < limit:
                    reason = "stop" if finished == "stop" else reason
                break
        tail = parser.flush()
        stats.total_seconds = time.perf_counter() - start
        stats.finish_reason = reason
        yield from publish(tail)
        yield GenerationEvent("done", parser.channel, "", stats_with_counters(stats, control))

    def _apply(self, action: Action, text: str, feed: Any) -> Iterator[GenerationEvent]:
        """What an intervention writes: the closing (or hint) instead of, or after, `text`."""
        forced = self._encoded.get(tuple(action.tokens), "")
        if not action.replace:
            yield from feed(text, 1)
        yield from feed(forced, len(action.tokens))

    def _completion_body(
        self,
        prompt: str,
        sampling: SamplingParams,
        leg: int,
        bias: dict[int, float] | None,
        max_tokens: int,
    ) -> dict[str, Any]:
        assert self.caps is not None
        body: dict[str, Any] = {
            "model": self.caps.model,
            "prompt": prompt,
            "stream": True,
            "max_tokens": max(1, max_tokens),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if self.caps.kind != "openai-compatible":
            body.update(top_k=sampling.top_k, min_p=sampling.min_p)
            key = "repetition_penalty" if self.caps.kind == "vllm" else "repeat_penalty"
            body[key] = sampling.repeat_penalty
        if self.caps.kind in ("llama-server", "vllm"):
            body["stream_options"] = {"include_usage": True}
        if sampling.seed is not None:
            body["seed"] = sampling.seed + leg  # a continuation is not a replay of the first leg
        if bias:
            body["logit_bias"] = {
                str(token): max(-MAX_LOGIT_BIAS, value) for token, value in bias.items()
            }
        if self._fresh_prompt and self.caps.kind == "llama-server":
            body["cache_prompt"] = False
        self._fresh_prompt = False
        return body

    def _encode(self, text: str) -> list[int]:
        """For the thinking controller: the server's ids for a closing or hint text, remembered
        so the text can be sent on (the ids only say how many tokens it costs)."""
        ids = self._encode_cache.get(text)
        if ids is None:
            tokenizer = self._require_tokenizer()
            ids = tokenizer.tokenize(text) if tokenizer.available else [-1] * tokenizer.count(text)
            self._encode_cache[text] = ids
        self._encoded[tuple(ids)] = text
        return ids

    def _text_id(self, text: str) -> int:
        """A stable id per streamed piece, for the loop detector (it compares ids)."""
        if len(self._text_ids) > MAX_TEXT_IDS:
            self._text_ids.clear()
        return self._text_ids.setdefault(text, len(self._text_ids))


def _drain_usage(
    stream: EventStream, stats: ReplyStats, first_leg: bool, cancel: CancelToken | None
) -> None:
    """Read the few events after the finish (usage, then [DONE]); a fault there costs nothing,
    the reply is complete."""
    for _ in range(4):
        try:
            event = stream.next_event(cancel)
        except RemoteError:
            return
        if event is None or event is EventStream.CANCELLED:
            return
        read_meters(event, stats, first_leg)
