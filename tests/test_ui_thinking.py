"""The window with a thinking model: the thinking meter, Stop thinking, and the stored policy.

The starter model gets a chat template that opens `<think>` in the generation prompt, which makes
it a (weak) thinking model: its reply streams into the thinking span until LeanCoder closes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.core.llm.engine import LoadOptions, ReplyStats
from app.core.thinking.parser import ThinkingFormat
from app.core.thinking.policy import ThinkingPolicy
from app.ui.meter_bars import theme_colour
from app.ui.theme import LIGHT
from app.ui.thinking_meter import ThinkingMeter
from tests.ui_support import (
    LOAD_TIMEOUT_MS,
    WindowFactory,
    stored,
    type_and_send,
    wait_reply_done,
)

THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}<|im_start|>assistant\n<think>\n"
)


def load_thinking_starter(qtbot: QtBot, window: object, starter_path: Path) -> None:
    from app.ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    options = LoadOptions(n_ctx=1024, template_override=THINKING_TEMPLATE)
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        window.bridge.load(starter_path, options)
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)
    assert window.model_info is not None
    assert window.model_info.thinking_format is ThinkingFormat.THINK_TAGS


def test_stop_thinking_closes_thinking_and_the_answer_follows(
    qtbot: QtBot, make_window: WindowFactory, starter_path: Path
) -> None:
    window = make_window(load=False)
    window.policy_picker.setCurrentText("Unpruned")
    load_thinking_starter(qtbot, window, starter_path)
    assert "Unpruned, no budget" in window.thinking_meter.summary

    type_and_send(qtbot, window, "Tell me a long story about a robot who paints.")
    live = window.chat_view.messages[-1]
    qtbot.waitUntil(lambda: live.thinking_tokens >= 5, timeout=30_000)
    qtbot.waitUntil(window.stop_thinking_button.isEnabled, timeout=5_000)
    assert window.thinking_meter.summary.startswith("Thinking ")
    window.stop_thinking_button.click()
    # The answer follows; once it is under way, stop it (a long story is not the point here).
    qtbot.waitUntil(lambda: bool(live.answer.strip()), timeout=30_000)
    window.stop()
    wait_reply_done(qtbot, window)

    reply = stored(window)[-1]
    assert reply.thinking.strip() and reply.content.strip()
    assert reply.stats["answer_tokens"] > 0
    assert reply.meta["policy"]["name"] == "Unpruned"
    assert "</think>" not in reply.content
    assert not window.stop_thinking_button.isEnabled()
    assert live.thinking_section.isVisible()
    assert live.thinking_section.toggle.text().startswith("Thought for ")


def test_budget_meter_fills_red_at_the_budget_and_the_policy_is_stored(
    qtbot: QtBot, make_window: WindowFactory, starter_path: Path
) -> None:
    window = make_window(load=False)
    window.policy_picker.setCurrentText("Aggressive")
    load_thinking_starter(qtbot, window, starter_path)
    assert window.thinking_meter.summary == "Thinking: Aggressive, budget 768"
    # A Custom 40-token budget, and greedy sampling so the reply is the same on every run: the
    # starter would think on past 40 tokens here, so the budget closes its thinking (measured:
    # 40 thinking tokens, a word boundary at the budget, then 27 forced closing tokens).
    window.settings.temperature = 0.0
    window.settings.custom_policy = ThinkingPolicy(budget=40).to_dict()
    window.policy_picker.setCurrentText("Custom")
    assert window.thinking_meter.summary == "Thinking: Custom, budget 40"
    assert window.settings.policy == "Custom"

    type_and_send(qtbot, window, "Is 17 a prime number?")
    wait_reply_done(qtbot, window)
    reply = stored(window)[-1]
    assert reply.meta["policy"]["name"] == "Custom"
    assert reply.meta["policy"]["budget"] == 40
    assert reply.stats["policy"] == "Custom"
    assert (reply.stats["budget_hits"], reply.stats["thinking_block_tokens"]) == (1, 40)
    meter = window.thinking_meter
    assert meter.summary == "Thinking 40 / 40 · 27 forced"
    assert meter.bar.fraction == 1.0 and meter.level == "full"
    assert meter.bar.segments == [(40, "full")]
    assert theme_colour("full", LIGHT).name() == "#cf222e"  # red
    # The context meter adds up prompt and reply; the memory meter shows the model and KV cache.
    assert (reply.stats["prompt_tokens"], reply.stats["generated_tokens"]) == (20, 100)
    assert window.context_meter.text() == "Context 120 / 1,024 (12%)"
    assert window.context_meter.usage is not None
    assert window.context_meter.usage.thinking == reply.stats["thinking_tokens"]
    assert "thinking" in window.context_meter.toolTip()
    assert "model " in window.memory_meter.text() and "KV " in window.memory_meter.text()
    assert window.memory_meter.text().startswith("RSS ")


@pytest.mark.parametrize(
    ("used", "fraction", "level", "colour"),
    [
        (10, 0.25, "ok", "#2da44e"),  # green
        (31, 0.775, "ok", "#2da44e"),
        (32, 0.8, "warn", "#d29922"),  # amber from 80%
        (39, 0.975, "warn", "#d29922"),
        (40, 1.0, "full", "#cf222e"),  # red at the budget
        (46, 1.0, "full", "#cf222e"),  # finishing the last word may pass it
    ],
)
def test_the_meter_turns_amber_at_80_percent_and_red_at_the_budget(
    qtbot: QtBot, used: int, fraction: float, level: str, colour: str
) -> None:
    meter = ThinkingMeter()
    qtbot.addWidget(meter)
    meter.update_stats(ReplyStats(thinking_block_tokens=used, suppressed_tokens=3), 40)
    assert meter.summary == f"Thinking {used} / 40 · 3 suppressed"
    assert meter.bar.fraction == pytest.approx(fraction) and meter.level == level
    assert theme_colour(meter.bar.segments[0][1], LIGHT).name() == colour
