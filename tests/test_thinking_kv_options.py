"""The thinking KV cap's importance rules and its three doors: the Custom policy (editor and
saved settings), the CLI (`--think-kv-cap`) and the API's `leancoder.think_kv_cap`. The
compaction itself runs on the real model in tests/test_thinking_kv.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from app.cli import options as opt
from app.cli.main import build_parser
from app.core.thinking.importance import ImportanceMarks, entropy_of, states_a_result
from app.core.thinking.policy import ThinkingPolicy, check_thinking_kv_cap
from app.server.errors import ApiError
from app.server.thinking_options import thinking_choice
from app.ui.policy_editor import FIT, PolicyEditor


def _feed(marks: ImportanceMarks, pieces: list[str]) -> None:
    for i, piece in enumerate(pieces):
        marks.observe(i, piece)


def test_structural_rule_marks_results_code_and_conclusions() -> None:
    marks = ImportanceMarks("structural")
    pieces = ["I", " wonder", " about", " it", ".\n"]  # 0-4: musing
    pieces += ["x", " =", " 3", " +", " 4", "\n"]  # 5-10: an equation
    pieces += ["Let", " me", " look", ".\n"]  # 11-14
    pieces += ["So", " the", " answer", " is", " 7", "."]  # 15-20: a conclusion
    pieces += ["`", "return", " x", "`", "\n"]  # 21-25: code
    _feed(marks, pieces)
    assert marks.marked == set(range(5, 11)) | set(range(15, 21)) | set(range(21, 26))
    assert states_a_result("Therefore n is odd.")
    assert not states_a_result("Hmm, let me think about this again.")


def test_entropy_rule_marks_sharp_drops() -> None:
    marks = ImportanceMarks("entropy")
    assert marks.wants_entropy
    for i, h in enumerate([3.0, 2.8, 0.2, 1.0, 0.9, 0.8]):
        marks.observe(i, "t", h)
    assert marks.marked == {2, 3}  # the decisive token and the one after it
    marks.forget_before(3)
    assert marks.marked == {3}
    assert entropy_of(np.zeros(8, dtype=np.float32)) == pytest.approx(math.log(8))


def test_the_cap_is_checked_everywhere() -> None:
    assert check_thinking_kv_cap("fit") == "fit"
    assert check_thinking_kv_cap(None) is None
    assert check_thinking_kv_cap(512) == 512
    for bad in (16, True, "512", 2.5):
        with pytest.raises(ValueError):
            check_thinking_kv_cap(bad)
    with pytest.raises(ValueError, match="importance rule"):
        ThinkingPolicy(thinking_kv_rule="attention")  # type: ignore[arg-type]
    saved = ThinkingPolicy(thinking_kv_cap="fit", thinking_kv_rule="entropy").to_dict()
    again = ThinkingPolicy.from_dict(saved)
    assert (again.thinking_kv_cap, again.thinking_kv_rule) == ("fit", "entropy")


def test_cli_think_kv_cap(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["ask", "--think-kv-cap", "fit", "hello"])
    assert opt.thinking_policy(args).thinking_kv_cap == "fit"
    args = parser.parse_args(["ask", "--think-kv-cap", "2048", "--think-budget", "900", "hi"])
    policy = opt.thinking_policy(args)
    assert (policy.thinking_kv_cap, policy.budget) == (2048, 900)
    assert opt.thinking_policy(parser.parse_args(["ask", "hi"])).thinking_kv_cap is None
    with pytest.raises(SystemExit):
        parser.parse_args(["ask", "--think-kv-cap", "8", "hi"])
    assert "at least 32 tokens" in capsys.readouterr().err


def test_api_think_kv_cap() -> None:
    choice = thinking_choice({"leancoder": {"think_kv_cap": 1024}}, "Unpruned")
    assert choice.policy.thinking_kv_cap == 1024
    assert thinking_choice({"leancoder": {"think_kv_cap": "fit"}}, "Balanced").policy.budget
    for bad in (4, "lots", -1, False):
        with pytest.raises(ApiError, match="think_kv_cap"):
            thinking_choice({"leancoder": {"think_kv_cap": bad}}, "Unpruned")


def test_policy_editor_sets_the_cap_and_rule(qtbot: QtBot) -> None:
    editor = PolicyEditor(ThinkingPolicy(thinking_kv_cap="fit", thinking_kv_rule="entropy"))
    qtbot.addWidget(editor)
    cap = editor.knobs["thinking_kv_cap"]
    assert cap.enabled is not None and cap.enabled.isChecked()
    assert cap.widget.value() == FIT  # type: ignore[attr-defined]
    assert editor.policy().thinking_kv_cap == "fit"
    assert editor.policy().thinking_kv_rule == "entropy"
    cap.widget.setValue(3000)  # type: ignore[attr-defined]
    editor.knobs["thinking_kv_rule"].widget.setCurrentText("structural")  # type: ignore[attr-defined]
    assert (editor.policy().thinking_kv_cap, editor.policy().thinking_kv_rule) == (
        3000,
        "structural",
    )
    cap.enabled.setChecked(False)
    assert editor.policy().thinking_kv_cap is None
