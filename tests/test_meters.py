"""Context and memory meters computed from the real model and the real process."""

from __future__ import annotations

from pathlib import Path

import psutil

from app.core.llm.engine import Engine, ReplyStats, SamplingParams, run_to_completion
from app.core.session.meters import context_usage, memory_usage, prompt_breakdown
from app.core.units import binary_bytes, short_bytes


def test_context_split_adds_up_to_what_the_window_holds(engine: Engine) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is a list in Python?"},
        {"role": "assistant", "content": "An ordered, mutable sequence."},
        {"role": "user", "content": "And a tuple?"},
    ]
    _, _, stats = run_to_completion(engine, messages, SamplingParams(max_tokens=20, seed=1))
    breakdown = prompt_breakdown(engine.count_tokens, messages)
    assert breakdown.system == engine.count_tokens("You are terse.")
    assert breakdown.message == engine.count_tokens("And a tuple?")
    assert breakdown.history == engine.count_tokens(
        "What is a list in Python?"
    ) + engine.count_tokens("An ordered, mutable sequence.")
    assert engine.info is not None
    usage = context_usage(breakdown, stats, engine.info.n_ctx)
    assert usage.used == stats.prompt_tokens + stats.generated_tokens
    assert usage.template > 0  # role markers around four messages
    assert dict(usage.parts())["answer"] == stats.answer_tokens
    assert 0 < usage.fraction < 1


def test_memory_reports_model_kv_and_process(engine: Engine) -> None:
    assert engine.info is not None
    usage = memory_usage(engine.info)
    # SmolLM2-135M: 30 layers x 3 KV heads x 128 x 2 bytes per token, at the engine's 2,048 tokens.
    assert usage.kv_bytes == 30 * 3 * 128 * 2 * 2048
    assert 80 * 1024**2 < usage.model_bytes < engine.info.file_size
    assert usage.rss_bytes >= psutil.Process().memory_info().rss // 2
    assert 0 < usage.free_ram_bytes <= usage.total_ram_bytes
    assert memory_usage(None).model_bytes == 0
    # the GPU list is llama.cpp's own: none on this CPU-only machine
    from app.core.llm.devices import list_devices

    assert len(usage.gpus) == sum(1 for d in list_devices() if d.is_gpu)


def test_a_code_folders_context_counts_as_files(engine: Engine, tmp_path: Path) -> None:
    from app.core.workspace.context import build_context

    (tmp_path / "app.py").write_text("def add(a, b):\n    return a + b\n")
    context = build_context(tmp_path, ["app.py"], ["app.py"], 1000, engine.count_tokens)
    messages = [
        {"role": "system", "content": "Edit carefully.\n\n" + context.text},
        {"role": "user", "content": "Rename add."},
    ]
    breakdown = prompt_breakdown(engine.count_tokens, messages)
    assert breakdown.files == engine.count_tokens(context.text)
    assert breakdown.system == engine.count_tokens("Edit carefully.\n\n")
    usage = context_usage(breakdown, ReplyStats(prompt_tokens=500), 2048)
    assert dict(usage.parts())["files"] == breakdown.files


def test_format_bytes() -> None:
    assert binary_bytes(1) == "1 byte"
    assert binary_bytes(512) == "512 bytes"
    assert binary_bytes(300 * 1024) == "300 KiB"
    assert binary_bytes(3 * 1024**2) == "3 MiB"
    assert binary_bytes(int(1.5 * 1024**3)) == "1.5 GiB"
    assert binary_bytes(int(23.14 * 1024**3)) == "23.1 GiB"
    assert binary_bytes(5 * 1024**4) == "5 TiB"


def test_short_bytes_keeps_three_digits_for_tight_captions() -> None:
    mib, gib = 2**20, 2**30
    assert short_bytes(512) == "512 bytes"
    assert short_bytes(int(92.1 * mib)) == "92.1 MiB"
    assert short_bytes(int(296.1 * mib)) == "296 MiB"
    assert short_bytes(int(21.9 * gib)) == "21.9 GiB"
    assert short_bytes(10 * mib) == "10 MiB"
