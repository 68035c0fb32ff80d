"""The meters panel: thinking against its budget (soft mark, counts, held thinking), context as a
stacked bar by part, memory, speed with its sparkline; empty states; New chat clears the figures;
the status bar keeps one short line. Standalone meters get scripted ReplyStats (named so); the
window tests chat with the real starter model."""

from __future__ import annotations

import re

from pytestqt.qtbot import QtBot

from app.core.llm.engine import ReplyStats
from app.core.session.meters import ContextUsage
from app.core.thinking.parser import ThinkingFormat
from app.core.thinking.policy import BALANCED, UNPRUNED
from app.ui.meters_panel import MetersPanel
from app.ui.resource_meters import PART_LABELS
from app.ui.thinking_meter import NO_FORMAT
from tests.ui_support import SHORT_PROMPT, WindowFactory, stored, type_and_send, wait_reply_done


def panel(qtbot: QtBot) -> MetersPanel:
    meters = MetersPanel()
    qtbot.addWidget(meters)
    meters.resize(1100, 80)
    meters.show()
    qtbot.waitExposed(meters)
    return meters


def test_thinking_bar_has_the_soft_budget_mark_and_counts_what_the_policy_did(
    qtbot: QtBot,
) -> None:
    meters = panel(qtbot)  # kept: the meters live while their panel does
    meter = meters.thinking
    meter.set_idle(ThinkingFormat.THINK_TAGS, BALANCED)
    assert meter.summary == "Thinking: Balanced, budget 2,048"
    assert meter.caption.full_text == "Balanced policy: nothing yet"
    # Scripted statistics: 1,700 of 2,048 thinking tokens, past the 80% warning.
    stats = ReplyStats(
        thinking_block_tokens=1700, thinking_tokens=1700, suppressed_tokens=4, forced_tokens=2,
        loops_broken=1,
    )  # fmt: skip
    meter.update_stats(stats, BALANCED.budget)
    assert meter.bar.mark == BALANCED.soft_budget_fraction == 0.8
    assert meter.bar.segments == [(1700, "warn")] and meter.level == "warn"
    assert meter.value.text() == "1,700 / 2,048"
    assert meter.caption.full_text == "4 suppressed · 2 forced · 1 loop broken"
    meter.update_stats(ReplyStats(thinking_block_tokens=2100, forced_tokens=30), 2048)
    assert meter.level == "full" and meter.bar.fraction == 1.0
    # No budget: a count, no bar to fill.
    meter.set_idle(ThinkingFormat.THINK_TAGS, UNPRUNED)
    meter.update_stats(ReplyStats(thinking_block_tokens=120), None)
    assert meter.value.text() == "120 tokens" and meter.bar.total == 0
    assert meter.caption.full_text == "nothing pruned yet"


def test_held_thinking_and_speculative_decoding_show_when_the_stats_carry_them(
    qtbot: QtBot,
) -> None:
    meters = panel(qtbot)
    meters.thinking.set_idle(ThinkingFormat.THINK_TAGS, BALANCED)
    stats = ReplyStats(
        thinking_block_tokens=300, thinking_tokens=900, thinking_held_tokens=300,
        thinking_evicted_tokens=600, kv_compactions=2, answer_tokens=50, drafted_tokens=120,
        accepted_tokens=80, decode_seconds=2.0, time_to_first_token_s=0.25,
    )  # fmt: skip
    meters.thinking.update_stats(stats, 2048)
    assert meters.thinking.caption.full_text == "thinking 900 tokens, 300 held"
    meters.speed.update_stats(stats)
    speed = meters.speed
    assert speed.value.text() == f"{stats.decode_tokens_per_s:.1f} tok/s"
    assert speed.caption.full_text == (
        "first token 0.25 s · 950 tokens · 120 drafted, 80 accepted"
    )
    first = stats.decode_tokens_per_s  # 949 sampled tokens in 2 s
    faster = ReplyStats(answer_tokens=2001, decode_seconds=2.0)  # 1,000 tok/s
    speed.update_stats(faster)
    assert list(speed.sparkline.values) == [first, 1000.0]
    assert speed.bar.segments == [(1000, "link")]  # the fastest so far fills the bar
    speed.update_stats(stats)
    assert speed.bar.segments == [(int(1000 * first / 1000.0), "link")]


def test_context_is_a_stacked_bar_by_part_with_a_legend(qtbot: QtBot) -> None:
    meters = panel(qtbot)
    meter = meters.context
    usage = ContextUsage(
        n_ctx=1000, system=100, files=200, history=50, message=20, template=10, thinking=300,
        answer=120,
    )  # fmt: skip
    meter.show_usage(usage)
    assert meter.bar.total == 1000
    assert [v for v, _ in meter.bar.segments] == [100, 200, 50, 20, 10, 300, 120]
    assert len({c for _, c in meter.bar.segments}) == 7  # one colour per part
    assert meter.value.text() == "800 / 1,000 (80%)"
    assert meter.caption.full_text == "thinking 300 · folder files 200 · answer 120"
    assert all(label in meter.toolTip() for label in PART_LABELS.values())
    meter.show_usage(ContextUsage(n_ctx=1000, history=900, message=50))
    assert meter.caption.full_text.startswith("Nearly full · ")
    meter.clear(1000)
    assert meter.usage is None and meter.bar.segments == []
    assert meter.caption.full_text == "Empty: fills as you chat"


def test_empty_states_say_what_is_missing(qtbot: QtBot) -> None:
    meters = panel(qtbot)
    meters.set_model(None, None)
    assert meters.thinking.caption.full_text == "No model loaded"
    assert meters.context.caption.full_text == "No model loaded"
    assert meters.speed.caption.full_text == "No model loaded"
    memory = meters.memory.caption.full_text
    assert re.fullmatch(r"No model loaded · [\d.,]+ [KMGT]iB free", memory), memory
    meters.thinking.set_idle(ThinkingFormat.NONE, BALANCED)
    assert meters.thinking.caption.full_text == NO_FORMAT
    # A long caption is elided on screen, never cut mid-word or widening the card.
    meters.resize(760, 80)
    qtbot.waitUntil(lambda: meters.thinking.caption.text() != NO_FORMAT, timeout=2_000)
    assert meters.thinking.caption.text().endswith("…")
    assert meters.thinking.width() <= meters.width()


def test_a_real_reply_fills_the_meters_and_new_chat_clears_them(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window()
    assert window.model_info is not None
    assert window.model_info.thinking_format is ThinkingFormat.NONE  # the starter's template
    # "no thinking format" is said once in the window: by the thinking meter, not the model label.
    assert window.thinking_meter.caption.full_text == NO_FORMAT
    assert "thinking" not in window.model_label.text().lower()
    assert window.context_meter.value.text() == "0 / 1,024"

    type_and_send(qtbot, window, SHORT_PROMPT)
    wait_reply_done(qtbot, window)
    stats = stored(window)[-1].stats
    usage = window.context_meter.usage
    assert usage is not None and usage.n_ctx == 1024
    assert usage.used == stats["prompt_tokens"] + stats["generated_tokens"]
    assert window.context_meter.bar.fraction == usage.used / 1024
    assert window.speed_meter.value.text() == f"{stats['decode_tokens_per_s']:.1f} tok/s"
    assert f"{stats['generated_tokens']:,} tokens" in window.speed_meter.caption.full_text
    assert "first token " in window.speed_meter.caption.full_text
    memory = window.memory_meter.caption.full_text
    assert re.fullmatch(r"model [\d.,]+ MiB · KV [\d.,]+ MiB · [\d.,]+ [MG]iB free", memory), memory

    # A theme switch draws the chat again in the new colours and keeps the figures.
    window.theme.set_choice("dark")
    assert window.context_meter.usage is usage and len(window.chat_view.messages) == 2
    window.theme.set_choice("light")

    window.new_chat()
    assert window.context_meter.usage is None
    assert window.context_meter.value.text() == "0 / 1,024"
    assert window.context_meter.caption.full_text == "Empty: fills as you chat"
    assert window.speed_meter.value.text() == ""


def test_the_status_bar_keeps_one_short_line_at_1280_px(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window()
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.width() == 1280, timeout=2_000)
    label = window.model_label
    # A readable name, not GGUF's general.name ("Smollm2 135M 8k Lc100K Mix1 Ep2").
    assert label.text() == "SmolLM2 135M Instruct (starter) · Q4_1 · context 1,024"
    status = window.statusBar()
    # A passing message (the fit plan's note after a load) replaces the line for a while: it
    # must fit as well. Then the line itself.
    message = status.currentMessage()
    assert status.fontMetrics().horizontalAdvance(message) <= status.width() - 24, message
    status.clearMessage()
    shown = [w for w in status.findChildren(type(label)) if w.isVisible()]
    assert label in shown
    for widget in shown:  # nothing cut off
        assert widget.fontMetrics().horizontalAdvance(widget.text()) <= widget.width()
    for i, a in enumerate(shown):  # nothing overlapping
        for b in shown[i + 1 :]:
            assert not a.geometry().intersects(b.geometry())
    assert status.height() < 2 * label.fontMetrics().height() + 12  # one line
    # The meters are in their own row, always there while generating.
    assert window.meters.isVisible()
    type_and_send(qtbot, window, SHORT_PROMPT)
    assert window.meters.isVisible() and window.speed_meter.caption.full_text
    wait_reply_done(qtbot, window)
