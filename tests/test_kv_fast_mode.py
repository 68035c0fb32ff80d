"""Fast mode on the real starter model: spent thinking is cut out of the KV cache in place.

Exact mode (the default) is checked in tests/test_thinking_control.py
(test_second_turn_prefills_only_answer_and_new_turn): turn 2 prefills the previous answer and the
new turn. Here fast mode prefills the new turn only, its cache holds exactly the pruned history's
tokens, generation goes on from it, and it falls back to exact mode when it cannot apply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from app.core.llm.backend import LlamaBackend
from app.core.llm.engine import Engine, LoadOptions, ReplyStats, SamplingParams
from app.core.llm.kv_shift import MIN_PARTIAL_RUN, find_removed_span, shift_out_span
from app.core.storage.settings import Settings
from app.core.thinking.parser import Channel
from app.core.thinking.policy import ThinkingPolicy
from tests.tiny_mamba import write_tiny_mamba

QUESTION = [{"role": "user", "content": "Is 17 a prime number? Think step by step."}]
CAP = ThinkingPolicy(name="cap", budget=20)  # closes the thinking, so an answer follows


@pytest.fixture
def fast_engine(engine: Engine) -> Iterator[Engine]:
    """The shared starter engine in fast mode, from an empty cache; exact mode again after."""
    engine.reset_cache()
    engine.cache_mode = "fast"
    yield engine
    engine.cache_mode = "exact"
    engine.reset_cache()


def reply(
    engine: Engine,
    messages: list[dict[str, str]],
    seed: int,
    max_tokens: int,
    thinking: bool = False,
) -> tuple[str, str, ReplyStats]:
    events = list(
        engine.generate(
            messages,
            SamplingParams(max_tokens=max_tokens, seed=seed),
            policy=CAP if thinking else None,
            force_thinking=thinking,
        )
    )
    think = "".join(e.text for e in events if e.kind == "text" and e.channel is Channel.THINKING)
    answer = "".join(e.text for e in events if e.kind == "text" and e.channel is Channel.ANSWER)
    return think, answer, events[-1].stats


def follow_up(history: list[dict[str, str]], answer: str, text: str) -> list[dict[str, str]]:
    return [*history, {"role": "assistant", "content": answer}, {"role": "user", "content": text}]


def cache_positions(backend: LlamaBackend) -> tuple[int, int]:
    return backend.pos_min(0), backend.pos_max(0)


def test_fast_mode_prefills_only_the_new_turn(fast_engine: Engine) -> None:
    engine = fast_engine
    thinking, answer, first = reply(engine, QUESTION, seed=3, max_tokens=80, thinking=True)
    assert thinking and answer
    turn2 = follow_up(QUESTION, answer, "Why?")
    full = engine.tokenize_prompt(engine.render_prompt(turn2))
    history_text = engine.render_prompt(QUESTION) + answer
    rendered = engine.render_prompt(turn2)
    assert rendered.startswith(history_text)
    new_turn_text = rendered[len(history_text) :]  # "<|im_end|>\n<|im_start|>user\nWhy?..."

    _, _, fast = reply(engine, turn2, seed=3, max_tokens=5)
    outcome = engine.last_cache_outcome
    assert outcome is not None and outcome.mode == "fast", outcome
    assert fast.prompt_tokens == len(full)
    evaluated = full[fast.cached_prompt_tokens :]
    # Nothing of the history was evaluated again: exactly the new turn's tokens.
    assert engine.backend.detokenize(evaluated, special=True).decode() == new_turn_text
    assert len(evaluated) == engine.count_tokens(new_turn_text)
    assert outcome.removed >= first.thinking_tokens  # the whole thinking block left the cache
    assert 0 < outcome.shifted <= first.answer_tokens

    # The same first turn again (same seed), then exact mode: it evaluates the answer as well.
    engine.reset_cache()
    engine.cache_mode = "exact"
    _, again, _ = reply(engine, QUESTION, seed=3, max_tokens=80, thinking=True)
    assert again == answer
    _, _, exact = reply(engine, turn2, seed=3, max_tokens=5)
    exact_evaluated = exact.prompt_tokens - exact.cached_prompt_tokens
    assert exact.cached_prompt_tokens == len(engine.tokenize_prompt(engine.render_prompt(QUESTION)))
    assert exact_evaluated == len(evaluated) + outcome.shifted


def test_cache_after_the_shift_holds_the_pruned_history(fast_engine: Engine) -> None:
    engine = fast_engine
    llm = engine.backend
    _, answer, _ = reply(engine, QUESTION, seed=4, max_tokens=80, thinking=True)
    before = llm.n_tokens
    turn2 = follow_up(QUESTION, answer, "Can you explain that more simply?")
    full = engine.tokenize_prompt(engine.render_prompt(turn2))

    outcome = shift_out_span(llm, full)
    assert outcome.mode == "fast", outcome.reason
    assert llm.n_tokens == outcome.reused == before - outcome.removed
    # Token ids and KV positions are those of a fresh prefill of the pruned history's prefix.
    assert llm.token_ids().tolist() == full[: outcome.reused]
    assert cache_positions(llm) == (0, outcome.reused - 1)

    # The engine goes on from there: the prompt now extends the cache, nothing more to cut.
    _, text, stats = reply(engine, turn2, seed=4, max_tokens=10)
    assert engine.last_cache_outcome is not None
    assert "nothing to remove" in engine.last_cache_outcome.reason
    assert stats.cached_prompt_tokens == outcome.reused
    assert stats.generated_tokens > 0 and text.strip()
    assert llm.token_ids()[: len(full)].tolist() == full


def test_generation_after_fast_turns_stays_coherent(fast_engine: Engine) -> None:
    """Two shifts in a row (turns 2 and 3 both drop a thinking block); replies still come."""
    engine = fast_engine
    llm = engine.backend
    _, answer1, _ = reply(engine, QUESTION, seed=5, max_tokens=80, thinking=True)
    turn2 = follow_up(QUESTION, answer1, "Now check 19 the same way.")
    thinking2, answer2, second = reply(engine, turn2, seed=5, max_tokens=80, thinking=True)
    assert engine.last_cache_outcome is not None and engine.last_cache_outcome.mode == "fast"
    assert thinking2 and answer2.strip()
    assert second.finish_reason in ("stop", "length") and second.answer_tokens > 0

    turn3 = follow_up(turn2, answer2, "Thanks. Which of the two is larger?")
    full3 = engine.tokenize_prompt(engine.render_prompt(turn3))
    _, answer3, third = reply(engine, turn3, seed=5, max_tokens=30)
    outcome = engine.last_cache_outcome
    assert outcome is not None and outcome.mode == "fast", outcome
    assert third.cached_prompt_tokens == outcome.reused
    assert third.generated_tokens > 0 and answer3.strip()
    assert llm.token_ids()[: len(full3)].tolist() == full3
    low, high = cache_positions(llm)
    assert low == 0 and high == llm.n_tokens - 1

    # The next-token distribution after fast mode's cache stays near a fresh prefill's.
    assert llm.truncate(len(full3) - 1)  # drop the reply, keep the shifted history
    llm.evaluate(full3[-1:])
    fast_logits = _log_softmax(llm)
    engine.reset_cache()
    llm.evaluate(full3)
    fresh_logits = _log_softmax(llm)
    kl = float(np.sum(np.exp(fresh_logits) * (fresh_logits - fast_logits)))
    assert 0 <= kl < 2.0, f"fast mode moved the next token by {kl:.2f} nats"


def _log_softmax(backend: LlamaBackend) -> npt.NDArray[np.float64]:
    raw = backend.logits(-1)
    assert raw is not None
    logits = raw.astype(np.float64)
    logits -= logits.max()
    out: npt.NDArray[np.float64] = logits - np.log(np.exp(logits).sum())
    return out


def test_fallback_when_history_does_not_line_up(
    fast_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """An edited previous answer is not the cache minus a span: exact mode, reason logged."""
    engine = fast_engine
    _, answer, _ = reply(engine, QUESTION, seed=3, max_tokens=80, thinking=True)
    edited = follow_up(QUESTION, "I would rather not say, sorry.", "Why not?")
    assert answer != "I would rather not say, sorry."
    with caplog.at_level(logging.INFO, logger="app.core.llm.kv_shift"):
        _, text, stats = reply(engine, edited, seed=3, max_tokens=10)
    outcome = engine.last_cache_outcome
    assert outcome is not None and outcome.mode == "exact"
    assert "not the cached tokens minus one span" in outcome.reason
    assert outcome.reason in caplog.text
    # Exact mode's numbers: the prefix up to where the thinking began, the rest evaluated.
    prefix = engine.tokenize_prompt(engine.render_prompt(QUESTION))
    assert stats.cached_prompt_tokens == len(prefix)
    assert stats.generated_tokens > 0 and text


def test_plain_chat_without_thinking_behaves_as_exact_mode(fast_engine: Engine) -> None:
    engine = fast_engine
    _, answer, first = reply(engine, QUESTION, seed=6, max_tokens=20)
    _, _, second = reply(engine, follow_up(QUESTION, answer, "Thanks!"), seed=6, max_tokens=5)
    assert engine.last_cache_outcome is not None
    assert engine.last_cache_outcome.mode == "exact"
    assert "nothing to remove" in engine.last_cache_outcome.reason
    assert second.cached_prompt_tokens >= first.prompt_tokens
    # The same prompt again (a regenerated reply): the cache already holds it.
    _, _, again = reply(engine, QUESTION, seed=6, max_tokens=5)
    assert engine.last_cache_outcome is not None
    assert engine.last_cache_outcome.reason.endswith("the cache already holds the whole prompt")
    assert again.cached_prompt_tokens == again.prompt_tokens - 1


def test_recurrent_model_falls_back_to_exact_mode(starter_path: Path, tmp_path: Path) -> None:
    """A Mamba model keeps one running state, not its earlier positions: nothing to cut from."""
    model = write_tiny_mamba(tmp_path / "tiny-mamba.gguf", starter_path)
    eng = Engine()
    try:
        info = eng.load(model, LoadOptions(n_ctx=512, cache_mode="fast"))
        assert info.architecture == "mamba" and eng.cache_mode == "fast"
        llm = eng.backend
        answer = "The answer is 17."
        # Turn 1's cache, written directly: the random model's own text would not re-tokenize
        # to the same ids, and the point here is the cache, not the text.
        turn1 = eng.render_prompt(QUESTION) + "<think>\nLet me count.\n</think>\n\n" + answer
        llm.evaluate(eng.tokenize_prompt(turn1))
        turn2 = follow_up(QUESTION, answer, "Why?")
        full = eng.tokenize_prompt(eng.render_prompt(turn2))
        assert find_removed_span(llm.token_ids(), full) is not None
        _, _, stats = reply(eng, turn2, seed=1, max_tokens=8)
        outcome = eng.last_cache_outcome
        assert outcome is not None and outcome.mode == "exact"
        assert "does not keep every earlier position" in outcome.reason
        assert stats.generated_tokens > 0
        assert llm.token_ids()[: len(full)].tolist() == full
    finally:
        eng.unload()


def test_find_removed_span_rules() -> None:
    prefix, span, answer, new_turn = [1, 2, 3], [50, 51, 52, 53], [7, 8, 9], [90, 91, 92]
    plan = find_removed_span(prefix + span + answer, prefix + answer + new_turn)
    assert plan is not None
    assert (plan.start, plan.end, plan.kept_end) == (3, 7, 10)
    assert (plan.removed, plan.kept, plan.reused) == (4, 3, 6)
    # The prompt only extends the cache: nothing to cut.
    assert find_removed_span(prefix + answer, prefix + answer + new_turn) is None
    # The answer copied inside the thinking: on equal runs the later one (the answer) wins.
    plan = find_removed_span([*prefix, 50, *answer, 60, *answer], prefix + answer + new_turn)
    assert plan is not None and (plan.start, plan.end, plan.kept_end) == (3, 8, 11)
    # A short run that stops before the cache's end is a coincidence, not the answer.
    assert find_removed_span(prefix + span + [7, 8, 99], prefix + answer + new_turn) is None
    # A long run may leave a divergent tail behind (dropped, as exact mode drops it).
    long_answer = list(range(100, 100 + MIN_PARTIAL_RUN))
    plan = find_removed_span(prefix + span + long_answer + [5, 5], prefix + long_answer + new_turn)
    assert plan is not None and plan.kept == MIN_PARTIAL_RUN
    assert plan.kept_end == len(prefix + span + long_answer)
    # At least one prompt token is left to evaluate (sampling needs fresh logits).
    plan = find_removed_span(prefix + span + answer, prefix + answer)
    assert plan is not None and plan.reused == len(prefix + answer) - 1
    # Nothing in common after the prefix: no plan.
    assert find_removed_span(prefix + span + answer, [*prefix, 70, 71, *new_turn]) is None


def test_settings_keep_the_fast_mode_switch(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    assert Settings().kv_fast_mode is False  # opt-in: off by default
    Settings(kv_fast_mode=True).save(path)
    assert Settings.load(path).kv_fast_mode is True
    path.write_text(json.dumps({"kv_fast_mode": "yes"}), encoding="utf-8")
    assert Settings.load(path).kv_fast_mode is False  # a wrong type is ignored
