"""Thinking KV compaction on the real starter model, thinking forced open, long budgets.

One small context (128 tokens) so a reply longer than the context stays cheap on a shared CPU;
every model run is made once (module-scoped) and checked by several tests. At every streamed
event the cache is read back from llama.cpp (pos_min/pos_max, token ids) and compared with the
compactor's own record of kept tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.core.llm.backend import LlamaBackend
from app.core.llm.engine import Engine, LoadOptions, ReplyStats, SamplingParams
from app.core.llm.speculative import SpeculativeMode
from app.core.llm.thinking_kv import SINK_TOKENS, ThinkingCompactor
from app.core.thinking.parser import (
    Channel,
    ThinkingFormat,
    open_marker_for,
    prompt_opens_thinking,
)
from app.core.thinking.policy import ThinkingKVCap, ThinkingPolicy

N_CTX = 128
QUESTION = [{"role": "user", "content": "Is 17 a prime number? Think step by step."}]
BUDGET = 50  # thinking tokens before the budget closes the block and an answer follows
MAX_TOKENS = 140  # more than the context holds: only compaction can finish this reply

pytestmark = pytest.mark.model


@dataclass
class Run:
    thinking: str
    answer: str
    stats: ReplyStats
    done_text: str
    compactor: ThinkingCompactor | None
    prompt_ids: list[int]
    cache_ids: list[int]  # the whole cache after the reply
    held_at_each_step: list[int] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def small_engine(starter_path: Path) -> Iterator[Engine]:
    eng = Engine()
    eng.load(starter_path, LoadOptions(n_ctx=N_CTX))
    yield eng
    eng.unload()


def _check_cache(backend: LlamaBackend, comp: ThinkingCompactor, run: Run) -> None:
    """The cache as llama.cpp holds it against the compactor's record, at one event."""
    n = backend.n_tokens
    lo, hi = backend.pos_min(0), backend.pos_max(0)
    if lo != 0 or hi != n - 1:
        run.mismatches.append(f"positions {lo}..{hi} with n_tokens {n}")
    cached = backend.token_ids()[comp.prompt_len :].tolist()
    record = [comp.tokens[o] for o in comp.kept]
    m = min(len(cached), len(record))  # fed tokens may not be evaluated yet, a draft not verified
    if cached[:m] != record[:m]:
        run.mismatches.append(f"cache ids differ from the record at n_tokens {n}")
    if backend.token_ids()[: comp.prompt_len].tolist() != run.prompt_ids:
        run.mismatches.append("the prompt's cells changed")
    if comp.block_start is not None:
        block = [o for o in comp.kept[:m] if o >= comp.block_start and comp.thinking[o]]
        run.held_at_each_step.append(len(block))


def _reply(
    engine: Engine,
    cap: ThinkingKVCap | None,
    max_tokens: int = MAX_TOKENS,
    speculative: SpeculativeMode = "off",
) -> Run:
    engine.reset_cache()
    policy = ThinkingPolicy(name="kv", budget=BUDGET, thinking_kv_cap=cap)
    sampling = SamplingParams(
        max_tokens=max_tokens, seed=3, temperature=0.0, speculative=speculative
    )
    backend = engine._require()
    assert engine.info is not None
    fmt = engine.info.thinking_format
    fmt = fmt if fmt is not ThinkingFormat.NONE else ThinkingFormat.THINK_TAGS
    prompt = engine.render_prompt(QUESTION)
    if not prompt_opens_thinking(prompt, fmt):
        prompt += open_marker_for(fmt)
    prompt_ids = engine.tokenize_prompt(prompt)
    run = Run("", "", ReplyStats(), "", None, [], [])
    thinking: list[str] = []
    answer: list[str] = []
    for event in engine.generate(QUESTION, sampling, policy=policy, force_thinking=True):
        comp = engine.last_compactor
        if comp is not None and (run.prompt_ids or backend.n_tokens >= comp.prompt_len):
            run.prompt_ids = run.prompt_ids or backend.token_ids()[: comp.prompt_len].tolist()
            _check_cache(backend, comp, run)
        if event.kind == "text":
            (thinking if event.channel is Channel.THINKING else answer).append(event.text)
        if event.kind == "done":
            run.stats, run.done_text = event.stats, event.text
    run.thinking, run.answer = "".join(thinking), "".join(answer)
    run.compactor = engine.last_compactor
    run.cache_ids = backend.token_ids().tolist()
    assert run.prompt_ids in ([], prompt_ids)  # the prompt's cells are the prompt
    return run


@pytest.fixture(scope="module")
def capped(small_engine: Engine) -> Run:
    """A 32-token cap, with speculative decoding on: compactions and drafts in one reply."""
    return _reply(small_engine, 32, speculative="on")


@pytest.fixture(scope="module")
def uncapped(small_engine: Engine) -> Run:
    return _reply(small_engine, None)


@pytest.fixture(scope="module")
def fitted(small_engine: Engine) -> Run:
    return _reply(small_engine, "fit")


def test_positions_stay_contiguous_and_match_the_record(capped: Run) -> None:
    assert capped.stats.kv_compactions >= 2
    assert capped.mismatches == []
    comp = capped.compactor
    assert comp is not None
    held = comp.prompt_len + len(comp.cached_ordinals(0))
    # After the reply the last sampled token may be fed but never evaluated.
    assert capped.cache_ids[comp.prompt_len :] == [comp.tokens[o] for o in comp.kept][
        : len(capped.cache_ids) - comp.prompt_len
    ]
    assert len(capped.cache_ids) in (held, held - 1)


def test_the_cap_holds_at_every_step(capped: Run) -> None:
    assert capped.held_at_each_step, "the reply thought"
    assert max(capped.held_at_each_step) <= 32
    stats = capped.stats
    assert stats.thinking_evicted_tokens + stats.thinking_held_tokens == stats.thinking_tokens
    assert stats.thinking_held_tokens <= 32


def test_prompt_and_answer_are_never_evicted(capped: Run) -> None:
    comp = capped.compactor
    assert comp is not None and capped.answer, "an answer followed the thinking"
    evicted = set(range(len(comp.tokens))) - set(comp.kept)
    assert evicted and all(comp.thinking[o] for o in evicted)
    assert all(o in comp.kept for o, t in enumerate(comp.thinking) if not t)
    # The attention sinks, the block's first tokens, are held.
    assert all(o in comp.kept for o in range(SINK_TOKENS))
    for ev in comp.evictions:
        assert ev.runs[0][0] >= comp.prompt_len + SINK_TOKENS


def test_speculative_drafts_agree_with_the_compacted_positions(capped: Run) -> None:
    # Drafts are verified against the compacted cache: no position disagreement was seen above
    # (test_positions_stay_contiguous_and_match_the_record), and drafting did happen.
    assert capped.stats.drafted_tokens > 0
    assert capped.stats.kv_compactions > 0


def test_a_reply_longer_than_the_context_completes_with_compaction(
    capped: Run, fitted: Run, uncapped: Run
) -> None:
    assert uncapped.stats.finish_reason == "context"
    assert uncapped.stats.generated_tokens < N_CTX
    for run in (capped, fitted):
        assert run.stats.generated_tokens + run.stats.prompt_tokens > N_CTX
        assert run.stats.budget_hits == 1 and run.answer  # the thinking ran to its end
    # The thinking ran to its budget past the context; an answer longer than the room left
    # (a quarter in "fit", what the cap leaves otherwise) still ends at the context: the answer
    # is never evicted.
    for run in (capped, fitted):
        assert run.stats.finish_reason in ("stop", "length", "context")
        assert run.stats.thinking_tokens > N_CTX - run.stats.prompt_tokens - run.stats.answer_tokens
    assert fitted.mismatches == []
    # "fit" compacts only because the context would fill, and the done event says so.
    assert "context filled while thinking" in fitted.done_text
    assert capped.done_text == ""  # a plain cap is not a rescue


def test_a_cap_never_reached_is_bit_identical(small_engine: Engine, uncapped: Run) -> None:
    never = _reply(small_engine, 1000, max_tokens=40)
    assert never.stats.kv_compactions == 0
    assert never.stats.thinking_evicted_tokens == 0
    assert (never.thinking + never.answer) and uncapped.thinking.startswith(never.thinking)
