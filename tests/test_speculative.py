"""Prompt-lookup drafting and the adaptive draft length, without a model (app.core.llm.speculative);
the --speculative option, the stored setting, the window's switch and the reply footer.

The engine-level guarantees (same text with and without drafts, the KV cache after rejections)
are in tests/test_speculative_engine.py against the starter model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.core.llm.engine_types import ReplyStats
from app.core.llm.speculative import (
    CPU_LIMITS,
    DEFAULT_SPECULATIVE,
    GPU_LIMITS,
    DraftLength,
    DraftLimits,
    NgramDrafter,
    limits_for,
    speculative_mode,
)
from app.core.storage.settings import Settings

if TYPE_CHECKING:
    from pytestqt.qtbot import QtBot


def test_draft_continues_the_latest_earlier_occurrence() -> None:
    # "1 2 3" appears twice before the suffix "2 3": the later occurrence (followed by 7 8) wins.
    drafter = NgramDrafter([1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 6, 2, 3])
    assert drafter.draft(2) == [7, 8]
    assert drafter.draft(10) == [7, 8, 6, 2, 3]  # up to the end of what is known


def test_longest_ngram_wins_over_a_later_shorter_match() -> None:
    # Suffix "5 2 3": the 3-gram occurs once (followed by 40); the 2-gram "2 3" occurs later too.
    drafter = NgramDrafter([5, 2, 3, 40, 41, 9, 2, 3, 50, 51, 5, 2, 3], max_ngram=3, min_ngram=2)
    assert drafter.draft(2) == [40, 41]


def test_no_match_no_draft_and_limits_are_respected() -> None:
    drafter = NgramDrafter([1, 2, 3, 4, 5])
    assert drafter.draft(4) == []  # "4 5" never occurred before
    assert drafter.draft(0) == []
    assert NgramDrafter([]).draft(4) == []
    assert NgramDrafter([7, 7]).draft(4) == []  # too short for a 2-gram with a continuation


def test_the_index_follows_tokens_added_later() -> None:
    drafter = NgramDrafter([10, 11, 12, 13, 14])
    drafter.extend([20, 10, 11])
    assert drafter.draft(3) == [12, 13, 14]
    drafter.extend([12, 99])  # the reply departs from the copy
    assert drafter.draft(3) == []
    drafter.extend([13])  # "99 13" is new, "13" alone is below min_ngram
    assert drafter.draft(3) == []
    drafter.extend([10, 11])  # "10 11" again: its latest occurrence is the reply's own
    assert drafter.draft(2) == [12, 99]
    assert len(drafter) == 13


def test_repeating_pattern_drafts_its_continuation() -> None:
    drafter = NgramDrafter([1, 2, 1, 2, 1, 2])
    assert drafter.draft(3) == [1, 2]  # the latest earlier "1 2" is followed by "1 2" (the end)


def test_bad_ngram_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        NgramDrafter([], max_ngram=1, min_ngram=2)
    with pytest.raises(ValueError):
        NgramDrafter([], max_ngram=3, min_ngram=0)


def test_drafts_are_short_on_cpu_and_longer_on_gpu() -> None:
    assert limits_for(on_gpu=False) is CPU_LIMITS
    assert limits_for(on_gpu=True) is GPU_LIMITS
    assert CPU_LIMITS.longest < GPU_LIMITS.longest
    assert CPU_LIMITS.token_cost > GPU_LIMITS.token_cost


def test_length_grows_on_full_acceptance_and_shrinks_on_rejection() -> None:
    lengths = DraftLength("on", DraftLimits(start=4, longest=8, token_cost=0.5))
    assert lengths.next_length() == 4
    lengths.record(4, 4)
    assert lengths.next_length() == 6
    lengths.record(6, 6)
    lengths.record(8, 8)
    assert lengths.next_length() == 8  # capped at longest
    for _ in range(20):
        lengths.record(8, 0)
    assert lengths.next_length() == 1  # never below one token
    assert not lengths.paused and lengths.pauses == 0  # "on" never pauses


def test_auto_pauses_when_drafts_do_not_pay_and_probes_again() -> None:
    limits = DraftLimits(start=4, longest=8, token_cost=0.2)
    lengths = DraftLength("auto", limits, window=4, pause=3, longest_pause=12, margin=1.5)
    # Break-even: 1.5 × 0.2 = 30% of drafted tokens accepted. 4 drafts at 25% is below it.
    for _ in range(4):
        assert lengths.next_length() > 0
        lengths.record(4, 1)
    assert lengths.paused and lengths.pauses == 1
    assert [lengths.next_length() for _ in range(3)] == [0, 0, 0]
    assert lengths.next_length() > 0  # the probe after the pause
    for _ in range(4):
        lengths.record(4, 0)
    assert lengths.pauses == 2
    assert [lengths.next_length() for _ in range(6)] == [0] * 6  # the pause doubled
    assert lengths.next_length() > 0
    for _ in range(4):
        lengths.record(4, 3)  # 75%: pays, and the next pause is short again
    assert not lengths.paused and lengths.pauses == 2
    for _ in range(4):
        lengths.record(4, 0)
    assert [lengths.next_length() for _ in range(4)] == [0, 0, 0, lengths.length]


def test_pauses_stop_doubling_at_the_longest_pause() -> None:
    limits = DraftLimits(start=2, longest=4, token_cost=0.5)
    lengths = DraftLength("auto", limits, window=1, pause=4, longest_pause=10)
    waits = []
    for _ in range(4):
        lengths.record(2, 0)
        wait = 0
        while lengths.next_length() == 0:
            wait += 1
        waits.append(wait)
    assert waits == [4, 8, 10, 10]


def test_off_never_drafts() -> None:
    lengths = DraftLength("off", CPU_LIMITS)
    assert all(lengths.next_length() == 0 for _ in range(5))


def test_the_cli_takes_a_speculative_mode_for_every_sampling_command() -> None:
    from app.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["ask", "hi"]).speculative == DEFAULT_SPECULATIVE == "off"
    assert parser.parse_args(["ask", "--speculative", "auto", "hi"]).speculative == "auto"
    assert parser.parse_args(["ask", "--speculative", "off", "hi"]).speculative == "off"
    edit = parser.parse_args(["edit", "--folder", ".", "--speculative", "on", "x"])
    assert edit.speculative == "on"
    with pytest.raises(SystemExit):
        parser.parse_args(["ask", "--speculative", "fast", "hi"])


def test_stored_modes_are_read_safely(tmp_path: Path) -> None:
    assert [speculative_mode(m) for m in ("auto", "on", "off")] == ["auto", "on", "off"]
    assert speculative_mode("ON") == speculative_mode(3) == DEFAULT_SPECULATIVE
    path = tmp_path / "settings.json"
    settings = Settings()
    assert settings.speculative == DEFAULT_SPECULATIVE
    settings.speculative = "auto"
    settings.save(path)
    assert Settings.load(path).speculative == "auto"
    path.write_text(json.dumps({"speculative": 7}), encoding="utf-8")
    assert Settings.load(path).speculative == DEFAULT_SPECULATIVE  # a wrong type is not taken


def test_the_window_switch_saves_the_setting(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QWidget

    from app.ui.policy_picker import speculative_action

    parent = QWidget()
    qtbot.addWidget(parent)
    settings = Settings()
    saves: list[str] = []
    action = speculative_action(settings, parent, lambda: saves.append(settings.speculative))
    assert action.isCheckable() and not action.isChecked()  # off by default
    action.setChecked(True)
    assert settings.speculative == "auto" and saves == ["auto"]
    action.setChecked(False)
    assert settings.speculative == "off" and saves == ["auto", "off"]
    settings.speculative = "on"
    assert speculative_action(settings, parent, lambda: None).isChecked()


def test_the_reply_footer_shows_drafted_and_accepted_tokens() -> None:
    from app.ui.chat_view import format_stats

    stats = ReplyStats(answer_tokens=50, decode_seconds=1.0, drafted_tokens=40, accepted_tokens=31)
    assert "31 of 40 drafted accepted" in format_stats(stats)
    assert "drafted" not in format_stats(ReplyStats(answer_tokens=50, decode_seconds=1.0))
    assert stats.to_dict()["drafted_tokens"] == 40 and stats.to_dict()["accepted_tokens"] == 31
