"""The engine on the real starter GGUF: streaming, cancel, stats, thinking channels, bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import llama_cpp
import pytest

from app.core.errors import GenerationError, ModelFileError, ModelLoadError, TemplateError
from app.core.gguf.header import read_header
from app.core.llm.engine import (
    Engine,
    GenerationEvent,
    LoadOptions,
    SamplingParams,
    kv_cache_bytes,
    run_to_completion,
)
from app.core.llm.llama_log import clear_log, recent_log
from app.core.llm.load_checks import check_memory
from app.core.thinking.parser import Channel, ThinkingFormat

ASK = [{"role": "user", "content": "Write a Python function that returns the square of x."}]
STORY = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]


def test_tokens_stream_and_stats_are_plausible(engine: Engine) -> None:
    events = list(engine.generate(ASK, SamplingParams(max_tokens=40, seed=7)))
    texts = [e for e in events if e.kind == "text"]
    done = events[-1]
    assert done.kind == "done"
    assert all(e.kind != "done" for e in events[:-1])
    assert len(texts) >= 10, "a reply should arrive as many pieces, not one block"
    answer = "".join(e.text for e in texts)
    assert answer.strip()
    stats = done.stats
    assert stats.prompt_tokens == len(engine.tokenize_prompt(engine.render_prompt(ASK)))
    assert 0 < stats.time_to_first_token_s < 30
    # Time to first token counts from the request (template and tokenizer included), the
    # prompt's time from the prefill's start: the second is within the first.
    assert 0 < stats.prompt_seconds <= stats.time_to_first_token_s
    assert stats.answer_tokens == stats.generated_tokens <= 40
    assert stats.thinking_tokens == 0
    assert stats.decode_tokens_per_s > 1
    assert stats.prompt_tokens_per_s > 1
    assert stats.finish_reason in ("stop", "length")
    assert stats.total_seconds >= stats.time_to_first_token_s + stats.decode_seconds - 1e-6
    # Running stats ride along on every event and only ever grow.
    counts = [e.stats.generated_tokens for e in texts]
    assert counts == sorted(counts) and counts[-1] <= stats.generated_tokens


def test_same_seed_same_reply(engine: Engine) -> None:
    _, first, _ = run_to_completion(engine, ASK, SamplingParams(max_tokens=30, seed=123))
    _, second, _ = run_to_completion(engine, ASK, SamplingParams(max_tokens=30, seed=123))
    assert first == second


def test_max_tokens_is_respected(engine: Engine) -> None:
    _, _, stats = run_to_completion(engine, STORY, SamplingParams(max_tokens=12, seed=1))
    assert stats.generated_tokens == 12
    assert stats.finish_reason == "length"


def test_cancel_stops_within_one_token(engine: Engine) -> None:
    cancel = threading.Event()
    seen = 0
    tokens_at_cancel = -1
    last: GenerationEvent | None = None
    for event in engine.generate(STORY, SamplingParams(max_tokens=400, seed=3), cancel):
        last = event
        if event.kind == "text":
            seen += 1
            if seen == 5:
                cancel.set()
                tokens_at_cancel = event.stats.generated_tokens
    assert last is not None and last.kind == "done"
    assert last.stats.finish_reason == "cancelled"
    assert last.stats.generated_tokens <= tokens_at_cancel + 1


def test_cancel_before_start_generates_nothing(engine: Engine) -> None:
    cancel = threading.Event()
    cancel.set()
    events = list(engine.generate(STORY, SamplingParams(max_tokens=50), cancel))
    assert [e.kind for e in events] == ["done"]
    assert events[0].stats.generated_tokens == 0
    assert events[0].stats.finish_reason == "cancelled"


def test_second_turn_reuses_cached_prefix(engine: Engine) -> None:
    _, answer, first = run_to_completion(engine, ASK, SamplingParams(max_tokens=20, seed=5))
    turn2 = [*ASK, {"role": "assistant", "content": answer}, {"role": "user", "content": "Thanks!"}]
    _, _, second = run_to_completion(engine, turn2, SamplingParams(max_tokens=5, seed=5))
    # The first turn's prompt is a prefix of the second; llama.cpp must not evaluate it again.
    assert second.cached_prompt_tokens >= first.prompt_tokens - 1
    assert second.prompt_tokens > first.prompt_tokens


def test_a_reply_cut_at_max_tokens_is_wholly_in_the_cache_for_the_next_turn(
    engine: Engine,
) -> None:
    # The last sampled token of a cut reply was never evaluated: the loop puts it into the KV
    # cache after "done", so the next turn (which resends the reply) prefills only what is new.
    sampling = SamplingParams(max_tokens=12, seed=2, temperature=0.0)
    _, answer, first = run_to_completion(engine, STORY, sampling)
    assert first.finish_reason == "length" and first.generated_tokens == 12
    assert engine._require().n_tokens == first.prompt_tokens + 12
    turn2 = [*STORY, {"role": "assistant", "content": answer}, {"role": "user", "content": "More."}]
    _, _, second = run_to_completion(engine, turn2, SamplingParams(max_tokens=3, seed=2))
    assert second.cached_prompt_tokens == first.prompt_tokens + 12


def test_flash_attention_is_left_to_llama_cpp_as_its_own_tools_do(starter_path: Path) -> None:
    # llama-cpp-python forces flash attention on or off; LeanCoder loads with llama.cpp's "auto"
    # (measured faster on prompts, bench/RESULTS.md), which the CPU build turns on: the graph
    # llama.cpp reserves at load then uses its flash attention operation.
    engine = Engine()
    clear_log()
    engine.load(starter_path, LoadOptions(n_ctx=512))
    try:
        llm = engine._require().llama
        assert llm.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        assert any("FLASH_ATTN_EXT" in line for line in recent_log(5000, debug=True))
        _, answer, _ = run_to_completion(engine, ASK, SamplingParams(max_tokens=4, seed=1))
        assert answer
    finally:
        engine.unload()


def test_prompt_longer_than_context_is_refused(engine: Engine) -> None:
    huge = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(GenerationError, match="context holds"):
        list(engine.generate(huge))


def test_forced_thinking_template_streams_thinking_channel(starter_path: Path) -> None:
    """A template that opens <think> in the generation prompt puts the reply in thinking."""
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}<|im_start|>assistant\n<think>\n"
    )
    eng = Engine()
    try:
        info = eng.load(starter_path, LoadOptions(n_ctx=1024, template_override=template))
        assert info.thinking_format is ThinkingFormat.THINK_TAGS
        events = list(eng.generate(ASK, SamplingParams(max_tokens=25, seed=2)))
        kinds = [e.kind for e in events]
        assert kinds[0] == "thinking_open"
        thinking = "".join(
            e.text for e in events if e.kind == "text" and e.channel is Channel.THINKING
        )
        assert thinking
        assert "<think>" not in thinking
        done = events[-1].stats
        assert done.thinking_tokens > 0
        assert done.thinking_tokens + done.answer_tokens == done.generated_tokens
    finally:
        eng.unload()


def test_starter_has_no_thinking_format(engine: Engine) -> None:
    assert engine.info is not None
    assert engine.info.thinking_format is ThinkingFormat.NONE


def test_load_reports_progress_and_info(starter_path: Path) -> None:
    seen: list[float] = []
    eng = Engine()
    try:
        info = eng.load(starter_path, LoadOptions(n_ctx=512), progress=seen.append)
        assert seen[0] == 0.0 and seen[-1] == 1.0
        assert seen == sorted(seen)
        assert len(seen) > 5, "llama.cpp's own load progress should come through"
        assert info.n_ctx == 512
        assert info.n_ctx_train == 8192
        assert info.architecture == "llama"
        assert info.n_params > 100_000_000
    finally:
        eng.unload()
    assert not eng.loaded


def test_context_above_training_is_reduced(starter_path: Path) -> None:
    eng = Engine()
    try:
        info = eng.load(starter_path, LoadOptions(n_ctx=100_000))
        assert info.n_ctx == 8192
        assert any("reduced" in note for note in info.notes)
    finally:
        eng.unload()


def test_cancelled_load(starter_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    eng = Engine()
    with pytest.raises(ModelLoadError, match="cancelled"):
        eng.load(starter_path, LoadOptions(n_ctx=512), cancel=cancel)
    assert not eng.loaded


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a model", "not a GGUF"),
        (None, "truncated"),
    ],
)
def test_bad_files_give_clear_errors_and_engine_stays_usable(
    starter_path: Path, tmp_path: Path, content: bytes | None, message: str
) -> None:
    bad = tmp_path / "bad.gguf"
    if content is None:
        data = starter_path.read_bytes()
        content = data[: len(data) - 1000]
    bad.write_bytes(content)
    eng = Engine()
    try:
        eng.load(starter_path, LoadOptions(n_ctx=512))
        with pytest.raises(ModelFileError, match=message):
            eng.load(bad)
        # A bad file is rejected before the loaded model is touched.
        assert eng.loaded
        _, answer, _ = run_to_completion(eng, ASK, SamplingParams(max_tokens=5, seed=1))
        assert answer
    finally:
        eng.unload()


def test_generate_without_model() -> None:
    with pytest.raises(GenerationError, match="No model"):
        list(Engine().generate(ASK))


def test_broken_template_is_a_clear_error(starter_path: Path) -> None:
    eng = Engine()
    try:
        eng.load(starter_path, LoadOptions(n_ctx=512, template_override="{{ messages[0].x.y() }}"))
        with pytest.raises(TemplateError, match="failed to render"):
            list(eng.generate(ASK))
        with pytest.raises(TemplateError, match="invalid"):
            eng.load(starter_path, LoadOptions(n_ctx=512, template_override="{% if %}"))
    finally:
        eng.unload()


def test_memory_guard_refuses_what_cannot_fit(starter_path: Path) -> None:
    header = read_header(starter_path)
    # SmolLM2-135M: 30 layers x 3 KV heads x (64 + 64) x f16 = 23,040 bytes per token.
    assert kv_cache_bytes(header, 1) == 30 * 3 * 128 * 2
    with pytest.raises(ModelLoadError, match=r"Not enough memory .* context of at most"):
        check_memory(header, 50_000_000, on_gpu=False)
    check_memory(header, 4096, on_gpu=False)
