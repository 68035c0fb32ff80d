"""The Custom thinking policy: every knob in the editor, the filler list's real token matches,
saved to settings, used for the next reply and offered in the compare view."""

from __future__ import annotations

from PySide6.QtWidgets import QPlainTextEdit
from pytestqt.qtbot import QtBot

from app.core.storage.settings import Settings
from app.core.thinking.policy import AGGRESSIVE, ThinkingPolicy
from app.ui.policy_editor import CUSTOM, PolicyEditor
from tests.ui_support import WindowFactory


def test_every_policy_knob_is_in_the_form(qtbot: QtBot) -> None:
    editor = PolicyEditor(AGGRESSIVE)
    qtbot.addWidget(editor)
    import dataclasses

    knobs = {f.name for f in dataclasses.fields(ThinkingPolicy)} - {"name", "extra"}
    assert set(editor.knobs) == knobs
    round_trip = editor.policy()
    assert round_trip.name == CUSTOM
    assert dataclasses.replace(round_trip, name=AGGRESSIVE.name) == AGGRESSIVE


def test_optional_knobs_turn_off(qtbot: QtBot) -> None:
    editor = PolicyEditor(AGGRESSIVE)
    qtbot.addWidget(editor)
    budget = editor.knobs["budget"]
    assert budget.enabled is not None and budget.enabled.isChecked()
    budget.enabled.setChecked(False)
    assert editor.policy().budget is None
    penalty = editor.knobs["filler_penalty"]
    assert penalty.enabled is not None
    penalty.enabled.setChecked(True)
    penalty.widget.setValue(2.5)  # type: ignore[attr-defined]
    assert editor.policy().filler_penalty == 2.5


def test_custom_policy_from_the_window(make_window: WindowFactory, qtbot: QtBot) -> None:
    window = make_window()
    window.edit_policy_action.trigger()
    editor = window.policy_picker.editor
    assert editor is not None
    # The default list's matches in the starter's vocabulary arrive from the model thread.
    qtbot.waitUntil(lambda: "match" in editor.matches.text(), timeout=10_000)
    words = editor.knobs["filler_words"].widget
    assert isinstance(words, QPlainTextEdit)
    words.setPlainText("wait\nhmm\nokay")
    qtbot.waitUntil(lambda: "'okay'" in editor.matches.text().lower(), timeout=10_000)
    assert "'know'" not in editor.matches.text()
    editor.knobs["budget"].widget.setValue(64)  # type: ignore[attr-defined]
    editor.save()

    assert window.policy_picker.currentText() == CUSTOM
    policy = window.policy
    assert policy.name == CUSTOM and policy.budget == 64
    assert policy.filler_words == ("wait", "hmm", "okay")
    saved = Settings.load(window.settings_path)
    assert saved.policy == CUSTOM and saved.custom_policy["budget"] == 64
    compare = window.open_compare()
    assert compare.policy_b.currentText() == CUSTOM
    compare.close()


def test_fast_kv_mode_is_opt_in_and_reaches_the_engine(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    window = make_window()
    assert not window.fast_kv_action.isChecked()
    assert window.bridge._engine.cache_mode == "exact"
    window.fast_kv_action.setChecked(True)
    assert Settings.load(window.settings_path).kv_fast_mode
    from tests.ui_support import load_starter

    load_starter(qtbot, window)
    assert window.bridge._engine.cache_mode == "fast"
