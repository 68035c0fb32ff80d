"""The window's menus and keyboard (issue #12 item 8) and its context size control (item 13).

Keys are pressed on the real window (offscreen) and must do what the menu says; the model tests
use the starter streaming a real reply.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from app.core.storage import chat_store
from app.core.storage.settings import DEFAULT_CONTEXT
from app.ui.help_menu import about_text
from app.ui.main_window import MainWindow
from tests.test_ui_thinking import load_thinking_starter
from tests.ui_support import (
    LOAD_TIMEOUT_MS,
    LONG_PROMPT,
    WindowFactory,
    stored,
    type_and_send,
    wait_reply_done,
)


def menu(window: MainWindow, title: str) -> QMenu:
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == title and isinstance(action.menu(), QMenu):
            found = action.menu()
            assert isinstance(found, QMenu)
            return found
    raise AssertionError(f"no {title} menu")


def entries(m: QMenu) -> list[tuple[str, str]]:
    """(text, shortcut as the menu shows it) of each entry, separators left out."""
    return [
        (a.text(), a.shortcut().toString(QKeySequence.SequenceFormat.PortableText))
        for a in m.actions()
        if not a.isSeparator() and a.menu() is None
    ]


def press(qtbot: QtBot, window: MainWindow, keys: str) -> None:
    """Press a key combination on the focused widget, as a user does."""
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5_000)
    sequence = QKeySequence(keys)[0]
    target = window.focusWidget() or window
    qtbot.keyClick(target, sequence.key(), sequence.keyboardModifiers())


def test_file_and_chat_menus_come_first_and_show_their_shortcuts(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles[:2] == ["File", "Chat"]
    assert {"Models", "Thinking", "Code", "Help"} <= set(titles)
    assert titles[-1] == "Help"
    assert entries(menu(window, "File")) == [
        ("New chat", "Ctrl+N"),
        ("Open folder…", "Ctrl+O"),
        ("&Quit", "Ctrl+Q"),
    ]
    assert entries(menu(window, "Chat")) == [
        ("Stop the reply", "Esc"),
        ("Stop thinking", "Shift+Esc"),
        ("Regenerate the reply", "Ctrl+R"),
        ("Edit and send again…", "Ctrl+E"),
        ("Compare…", "Ctrl+Shift+C"),
        ("Search chats", "Ctrl+F"),
        ("Rename chat", "F2"),
        ("Delete chat", "Del"),
    ]
    assert "(Esc)" in window.stop_button.toolTip()
    assert "(Shift+Esc)" in window.stop_thinking_button.toolTip()
    # With nothing streaming and no model, the reply actions wait.
    chat = {a.text(): a for a in menu(window, "Chat").actions()}
    assert not chat["Stop the reply"].isEnabled()
    assert not chat["Regenerate the reply"].isEnabled()


def test_ctrl_q_quits_and_ctrl_f_goes_to_the_search(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    window.prompt.setFocus()
    press(qtbot, window, "Ctrl+F")
    assert window.chats.search.hasFocus()
    press(qtbot, window, "Ctrl+Q")
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)


def test_ctrl_o_opens_the_chosen_folder(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    asked: list[str] = []

    def choose(parent: object, caption: str, start: str) -> str:  # the system's folder dialog
        asked.append(caption)
        return str(folder)

    monkeypatch.setattr("app.ui.code_workflow.QFileDialog.getExistingDirectory", choose)
    window = make_window(load=False)
    press(qtbot, window, "Ctrl+O")
    assert asked == ["Open a code folder"]
    assert window.code.folder == folder.resolve()
    qtbot.waitUntil(lambda: "main.py" in window.code.panel.files(), timeout=10_000)


def test_about_names_versions_and_licences(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window(load=False)
    box = window.help_menu.show_about()
    qtbot.waitUntil(box.isVisible, timeout=5_000)
    text = box.informativeText()
    assert "Licences:" in text
    assert "LeanCoder: Apache-2.0" in text
    assert "llama.cpp and llama-cpp-python: MIT" in text
    assert "Qt and PySide6: LGPL-3.0-only" in text
    assert "The starter model (SmolLM2): Apache-2.0" in text
    assert "Icons (Lucide): ISC" in text
    assert text.startswith(about_text().split("\n")[0])
    box.close()


@pytest.mark.model
def test_esc_stops_the_reply(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window(n_ctx=1024)
    type_and_send(qtbot, window, LONG_PROMPT)
    widget = window.chat_view.messages[-1]
    qtbot.waitUntil(lambda: len(widget.answer.split()) >= 3, timeout=60_000)  # a loaded machine
    press(qtbot, window, "Esc")
    wait_reply_done(qtbot, window)
    reply = stored(window)[-1]
    assert reply.status == chat_store.CANCELLED
    assert reply.stats["finish_reason"] == "cancelled"
    assert "stopped" in widget.footer.text()


@pytest.mark.model
def test_shift_esc_stops_thinking_and_the_answer_follows(
    qtbot: QtBot, make_window: WindowFactory, starter_path: Path
) -> None:
    window = make_window(load=False)
    window.policy_picker.setCurrentText("Unpruned")
    load_thinking_starter(qtbot, window, starter_path)
    type_and_send(qtbot, window, "Tell me a long story about a robot who paints.")
    live = window.chat_view.messages[-1]
    qtbot.waitUntil(lambda: live.thinking_tokens >= 5, timeout=60_000)
    qtbot.waitUntil(window.shell.stop_thinking_action.isEnabled, timeout=5_000)
    press(qtbot, window, "Shift+Esc")
    qtbot.waitUntil(lambda: bool(live.answer.strip()), timeout=60_000)
    press(qtbot, window, "Esc")
    wait_reply_done(qtbot, window)
    reply = stored(window)[-1]
    assert reply.thinking.strip() and reply.content.strip()
    assert "</think>" not in reply.content


@pytest.mark.model
def test_the_context_size_menu_saves_the_choice_and_reloads_the_model(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(n_ctx=1024)
    assert window.model_info is not None and window.model_info.n_ctx == 1024
    sizes = {a.text(): a for a in window.shell.context_menu.actions()}
    assert f"{DEFAULT_CONTEXT:,} tokens (default)" in sizes
    assert window.shell.context_menu in [
        a.menu() for a in menu(window, "Models").actions() if a.menu() is not None
    ]
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        sizes["4,096 tokens"].trigger()
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)
    assert window.model_info is not None and window.model_info.n_ctx == 4096
    assert sizes["4,096 tokens"].isChecked()
    assert not sizes[f"{DEFAULT_CONTEXT:,} tokens (default)"].isChecked()  # one choice at a time
    saved = json.loads(window.settings_path.read_text())
    assert saved["n_ctx"] == 4096 and saved["n_ctx_chosen"] is True
    assert window.model_menu.wanted_ctx == 4096


def test_a_context_size_without_a_model_applies_at_the_next_load(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    trained = [a for a in window.shell.context_menu.actions() if a.data() == 0]
    assert [a.text() for a in trained] == ["The model's trained context"]
    trained[0].trigger()
    assert window.settings.n_ctx == 0 and window.settings.n_ctx_chosen
    assert "next loaded" in window.statusBar().currentMessage()
    assert not window.models.loading
