"""Pruned vs unpruned on the same model and seed: the comparison and its exports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.evals.compare import BOTH_EMPTY, model_quantization, run_comparison
from app.core.llm.engine import Engine, GenerationEvent, SamplingParams
from app.core.thinking.policy import UNPRUNED, ThinkingPolicy

ASK = [{"role": "user", "content": "Is 17 a prime number? Explain."}]


def test_same_policy_twice_gives_identical_replies(engine: Engine) -> None:
    result = run_comparison(
        engine, ASK, UNPRUNED, UNPRUNED, SamplingParams(max_tokens=60, seed=11),
        force_thinking=True,
    )  # fmt: skip
    assert result.a.thinking == result.b.thinking
    assert result.a.answer == result.b.answer
    assert result.answer_diff() == []
    # Each side started from an empty cache, so both paid the whole prompt.
    assert result.a.stats.cached_prompt_tokens == result.b.stats.cached_prompt_tokens == 0


def test_budget_side_thinks_less_and_both_stream(engine: Engine) -> None:
    seen: dict[str, list[GenerationEvent]] = {"a": [], "b": []}
    capped = ThinkingPolicy(name="Capped", budget=16)
    result = run_comparison(
        engine, ASK, UNPRUNED, capped, SamplingParams(max_tokens=150, seed=3),
        force_thinking=True, on_event=lambda side, ev: seen[side].append(ev),
    )  # fmt: skip
    assert seen["a"] and seen["b"]
    assert seen["a"][-1].kind == seen["b"][-1].kind == "done"
    sa, sb = result.a.stats, result.b.stats
    assert sb.budget_hits == 1
    assert sb.thinking_tokens - sb.forced_tokens < sa.thinking_tokens
    assert result.b.answer.strip()
    rows = {name: (x, y, change) for name, x, y, change in result.rows()}
    assert rows["thinking tokens"][0] == str(sa.thinking_tokens)
    assert rows["thinking tokens"][1] == str(sb.thinking_tokens)

    markdown = result.to_markdown()
    assert "| thinking tokens |" in markdown and "## Capped" in markdown and "```diff" in markdown
    data = json.loads(result.to_json())
    assert data["a"]["policy"]["name"] == "Unpruned" and data["b"]["policy"]["budget"] == 16
    assert data["b"]["stats"]["budget_hits"] == 1
    assert data["seed"] == 3

    # Every export names what it ran on: model, quantization, seed, both policies in full.
    assert engine.info is not None
    quant = model_quantization(engine.info)
    assert quant != "unknown" and quant in engine.info.path.name.upper()
    assert f"- Model: {engine.info.name}" in markdown and f"- Quantization: {quant}" in markdown
    assert "- Seed: 3" in markdown
    assert "- Policy A: Unpruned (" in markdown and "- Policy B: Capped (" in markdown
    assert "budget=16" in markdown and "budget=None" in markdown
    assert data["model"] == engine.info.name and data["quantization"] == quant
    # What each side saved against the other, in tokens and seconds.
    # Both sides may fill max_tokens (the capped side answers at greater length): then the
    # thinking is what it saved, and neither side claims a token saving it did not make.
    saved = sa.generated_tokens - sb.generated_tokens
    b_word, a_word = ("saved", "spent") if saved > 0 else ("spent", "saved")
    if saved == 0:
        b_word = a_word = "saved"
    assert result.savings("b").startswith(f"{b_word} {abs(saved)} tokens (")
    assert result.savings("a").startswith(f"{a_word} {abs(saved)} tokens (")
    assert f"- B (Capped) {result.savings('b')}." in markdown
    assert data["savings"] == {"a": result.savings("a"), "b": result.savings("b")}


def test_two_empty_answers_are_no_answer_not_identical(engine: Engine) -> None:
    """Four tokens, all spent thinking: neither side gets to answer."""
    result = run_comparison(
        engine, ASK, UNPRUNED, UNPRUNED, SamplingParams(max_tokens=4, seed=5),
        force_thinking=True,
    )  # fmt: skip
    assert result.a.answer == result.b.answer == "" and result.a.thinking
    assert result.answers() == BOTH_EMPTY
    data = json.loads(result.to_json())
    assert data["answers"] == "no answer on either side" and data["identical_answers"] is False
    assert "No answer on either side" in result.to_markdown()
    assert "identical" not in result.to_markdown().lower()


@pytest.mark.model  # --model starter, without the starter_path fixture
def test_cli_compare_json_and_markdown(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    result = subprocess.run(
        [
            sys.executable, "-m", "app", "compare", "--model", "starter", "--force-thinking",
            "--policy-b", "aggressive", "--think-budget-b", "20", "--max-tokens", "100",
            "--json", "--markdown", str(report), "Is 17 prime?",
        ],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["a"]["policy"]["name"] == "Unpruned"
    assert data["b"]["policy"]["name"] == "Aggressive (budget 20)"
    assert data["b"]["stats"]["budget_hits"] == 1
    assert report.read_text().startswith("# LeanCoder comparison")


@pytest.mark.model  # --model starter, without the starter_path fixture
def test_cli_compare_table() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "compare", "--model", "starter", "--max-tokens", "30",
         "Say hi."],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["measure", "Unpruned", "Balanced", "change"]
    assert "== answer diff ==" in result.stdout
    # The starter has no thinking format: the policies cannot differ, so neither do the answers.
    assert "The two answers are identical." in result.stdout
