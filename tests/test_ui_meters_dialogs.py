"""The window's welcome state, the grouped Custom policy editor, the network dialog's errors and
width, and Compare fitted to a small screen (the offscreen screen is 800 px wide)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox, QGroupBox, QLabel, QLineEdit
from pytestqt.qtbot import QtBot

from app.core.thinking.policy import AGGRESSIVE, ThinkingPolicy
from app.ui.network_settings_dialog import TRUST_FILE, NetworkSettingsDialog
from app.ui.policy_editor import GROUPS, OTHER_GROUP, PolicyEditor
from app.ui.welcome import EXAMPLE_PROMPTS
from tests.ui_support import (
    SHORT_PROMPT,
    WindowFactory,
    load_starter,
    type_and_send,
    wait_reply_done,
)


def test_an_empty_chat_welcomes_with_the_models_status_and_example_prompts(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    welcome = window.welcome
    assert welcome.isVisible()
    assert welcome.model_status.text().startswith("No model loaded yet")
    assert welcome.choose_model.isVisible()
    assert [b.text() for b in welcome.example_buttons] == list(EXAMPLE_PROMPTS)
    welcome.example_buttons[0].click()
    assert window.prompt.toPlainText() == EXAMPLE_PROMPTS[0]  # filled, not sent
    assert not window.generating
    window.prompt.clear()

    load_starter(qtbot, window)
    qtbot.waitUntil(lambda: welcome.model_status.text().startswith("Ready: "), timeout=5_000)
    assert "SmolLM2 135M Instruct (starter) · Q4_1" in welcome.model_status.text()
    assert not welcome.choose_model.isVisible()

    type_and_send(qtbot, window, SHORT_PROMPT)
    qtbot.waitUntil(lambda: not welcome.isVisible(), timeout=5_000)
    wait_reply_done(qtbot, window)
    window.new_chat()
    qtbot.waitUntil(welcome.isVisible, timeout=5_000)


def test_the_policy_editor_is_grouped_and_starts_from_the_selected_preset(qtbot: QtBot) -> None:
    custom = ThinkingPolicy(name="Custom", budget=64)
    editor = PolicyEditor(custom, selected="Aggressive")
    qtbot.addWidget(editor)
    assert editor.start_from.currentText() == "Aggressive"
    assert dataclasses.replace(editor.policy(), name=AGGRESSIVE.name) == AGGRESSIVE
    titles = [g[0] for g in GROUPS]
    for name, knob in editor.knobs.items():
        box = knob.widget.parentWidget()
        while box is not None and not isinstance(box, QGroupBox):
            box = box.parentWidget()
        assert box is not None and box.title() in titles, name  # every knob has its group
    for title, about, _members in GROUPS:
        group = editor.groups[title]
        explanations = [label.text() for label in group.findChildren(QLabel)]
        assert about in explanations
    assert editor.groups[OTHER_GROUP[0]].isHidden()  # no knob without a group today
    # The saved Custom policy when Custom is what the window has selected.
    again = PolicyEditor(custom, selected="Custom")
    qtbot.addWidget(again)
    assert again.policy().budget == 64
    screen = editor.screen().availableGeometry()
    assert editor.width() <= screen.width() and editor.height() <= screen.height()


def test_the_network_dialog_clears_a_fixed_error_and_fits_its_placeholders(
    qtbot: QtBot, data_dir: Path, tmp_path: Path
) -> None:
    dialog = NetworkSettingsDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    for field in dialog.findChildren(QLineEdit):
        hint = field.placeholderText()
        assert field.width() >= field.fontMetrics().horizontalAdvance(hint), hint
        assert "`" not in hint and "hf auth" not in hint  # no shell commands in the dialog
    dialog.proxy.setText("proxy.corp:3128")
    save = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    assert save is not None
    save.click()
    assert dialog.error.isVisible() and "proxy URL" in dialog.error.text()
    dialog.proxy.setText("http://proxy.corp:3128")  # fixed: the error goes without a Save
    assert dialog.error.isHidden()

    garbage = tmp_path / "corp.pem"
    garbage.write_text("not a certificate\n")
    dialog.trust.setCurrentIndex(TRUST_FILE)
    dialog.ca_file.setText(str(garbage))
    save.click()
    text = dialog.error.text()
    assert "holds no readable PEM certificates" in text
    assert "[" not in text and "_ssl.c" not in text and "Errno" not in text
    dialog.ca_file.setText("")
    dialog.trust.setCurrentIndex(0)
    assert dialog.error.isHidden()


def test_compare_fits_a_screen_smaller_than_it_asks_for(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window()
    compare = window.open_compare()
    qtbot.waitExposed(compare)
    available = compare.screen().availableGeometry()
    assert available.width() < 1200  # the width Compare asks for
    assert available.contains(compare.geometry()), (available, compare.geometry())
    # Centring on the window is checked with fitted_rect in test_ui_theme.


def test_the_model_chooser_and_the_remote_dialog_open_inside_a_small_screen(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    wizard = window.model_menu.open_wizard()
    qtbot.waitExposed(wizard)
    available = wizard.screen().availableGeometry()
    assert available.width() < 980  # the chooser asks for 980x680
    assert available.contains(wizard.geometry()), (available, wizard.geometry())
    wizard.reject()
    remote = window.model_menu.open_remote()
    qtbot.waitExposed(remote)
    assert available.contains(remote.geometry()), (available, remote.geometry())
    remote.reject()
