"""`leancoder ask` run as a real subprocess against the real starter model."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, limit_mb: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit_memory() -> None:
        if limit_mb is not None:
            size = limit_mb * 1024**2
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory if limit_mb else None,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.model  # --model starter, without the starter_path fixture
def test_ask_streams_answer_and_stats() -> None:
    result = run_cli("ask", "--model", "starter", "--max-tokens", "24", "--seed", "4", "Say hello.")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "[thinking]" not in result.stdout  # the starter model has no thinking format
    assert "prompt tokens" in result.stderr and "tok/s" in result.stderr


@pytest.mark.model  # --model starter, without the starter_path fixture
def test_ask_json() -> None:
    result = run_cli(
        "ask",
        "--model",
        "starter",
        "--ctx",
        "1024",
        "--max-tokens",
        "16",
        "--seed",
        "9",
        "--json",
        "What is Python?",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"text", "thinking", "stats", "model", "thinking_format"}
    assert data["text"].strip()
    assert data["thinking"] == ""
    assert data["thinking_format"] == "none"
    stats = data["stats"]
    assert stats["answer_tokens"] == stats["generated_tokens"] <= 16
    assert stats["prompt_tokens"] > 5
    assert stats["time_to_first_token_s"] > 0
    assert stats["decode_tokens_per_s"] > 0
    assert stats["finish_reason"] in ("stop", "length")


@pytest.mark.model  # --model starter, without the starter_path fixture
def test_json_is_deterministic_with_seed() -> None:
    args = (
        "ask",
        "--model",
        "starter",
        "--max-tokens",
        "12",
        "--seed",
        "42",
        "--json",
        "Name a color.",
    )
    first, second = run_cli(*args), run_cli(*args)
    assert json.loads(first.stdout)["text"] == json.loads(second.stdout)["text"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"#!/bin/sh\necho not a model\n", "not a GGUF model file"), (b"GGUF\x03\x00", "truncated")],
)
def test_bad_model_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    result = run_cli("ask", "--model", str(path), "hi")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_model_file(tmp_path: Path) -> None:
    result = run_cli("ask", "--model", str(tmp_path / "missing.gguf"), "hi")
    assert result.returncode == 2
    assert "not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_error_is_json(tmp_path: Path) -> None:
    result = run_cli("ask", "--model", str(tmp_path / "missing.gguf"), "--json", "hi")
    assert result.returncode == 2
    assert "not found" in json.loads(result.stdout)["error"]


@pytest.mark.model  # --model starter, without the starter_path fixture
@pytest.mark.parametrize("limit_mb", [450, 700])
def test_out_of_memory_load_is_a_clear_error(limit_mb: int) -> None:
    """A real allocation failure (address space capped) inside the load, not a simulated one."""
    result = run_cli("ask", "--model", "starter", "--ctx", "8192", "hi", limit_mb=limit_mb)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "could not load" in result.stderr
    assert "memory" in result.stderr or "allocate" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_error() -> None:
    result = run_cli("ask", "--ctx", "lots", "hi")
    assert result.returncode == 2
    assert "--ctx" in result.stderr and "not a whole number" in result.stderr


@pytest.mark.model  # --model starter, without the starter_path fixture
def test_ask_with_policy_budget_and_forced_thinking() -> None:
    result = run_cli(
        "ask", "--model", "starter", "--force-thinking", "--policy", "balanced",
        "--think-budget", "12", "--max-tokens", "80", "--seed", "2", "--json", "Is 17 prime?",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    stats = data["stats"]
    assert data["thinking_format"] == "think (forced)"
    assert data["thinking"].strip()
    assert stats["policy"] == "Balanced (budget 12)" == data["policy"]["name"]
    assert data["policy"]["budget"] == 12 and data["policy"]["suppress_fillers"] is True
    assert stats["budget_hits"] == 1
    assert stats["thinking_tokens"] - stats["forced_tokens"] <= 12 + 6
    assert {"suppressed_tokens", "forced_tokens", "loops_broken"} <= set(stats)


@pytest.mark.model  # --model starter, without the starter_path fixture
def test_ask_thinking_is_marked_on_plain_output() -> None:
    result = run_cli(
        "ask", "--model", "starter", "--force-thinking", "--think-budget", "8",
        "--max-tokens", "40", "--seed", "1", "Is 17 prime?",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[thinking]\n")
    assert "\n[/thinking]\n" in result.stdout
    assert "policy Unpruned (budget 8)" in result.stderr


def test_unknown_policy_is_a_clear_error() -> None:
    result = run_cli("ask", "--model", "starter", "--policy", "nope", "hi")
    assert result.returncode == 2
    assert "Unknown thinking policy" in result.stderr


def test_the_custom_policy_comes_from_the_apps_settings(data_dir: Path) -> None:
    from app.core.errors import LeanCoderError
    from app.core.storage.paths import settings_path
    from app.core.storage.settings import Settings
    from app.core.thinking.policy import AGGRESSIVE, policy_by_name

    with pytest.raises(LeanCoderError, match="No Custom policy saved yet"):
        policy_by_name("Custom")
    settings = Settings(custom_policy={**AGGRESSIVE.to_dict(), "budget": 99})
    settings.save(settings_path())
    policy = policy_by_name("custom")
    assert policy.name == "Custom" and policy.budget == 99 and policy.suppress_fillers
