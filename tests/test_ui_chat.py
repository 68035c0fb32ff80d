"""The main window end to end: the real starter model streaming into a real window (offscreen).

Every test drives the window the way a user does (typing, Enter, clicks) and checks what the user
would see (the rendered message, the footer, the buttons) against what was persisted in the chat
store. Windows are closed by the fixture, so a failing test never leaks the model worker thread.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from app.core.models.catalog import load_catalog
from app.core.models.display_name import readable_model_name
from app.core.models.starter import starter_model_path
from app.core.storage import chat_store
from app.ui.chat_view import ChatView, MessageWidget
from tests.ui_support import (
    LOAD_TIMEOUT_MS,
    LONG_PROMPT,
    SHORT_PROMPT,
    WindowFactory,
    load_starter,
    stored,
    type_and_send,
    wait_reply_done,
)

pytestmark = pytest.mark.model

# -- streaming ---------------------------------------------------------------------------------


def test_reply_streams_live_then_is_rendered_and_persisted(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(n_ctx=512)
    assert not window.stop_button.isEnabled()
    type_and_send(qtbot, window, LONG_PROMPT)

    assert [m.role for m in window.chat_view.messages] == ["user", "assistant"]
    assert window.chat_view.messages[0].answer == LONG_PROMPT
    widget = window.chat_view.messages[-1]
    assert window.stop_button.isEnabled()
    assert not window.send_button.isEnabled()

    seen_live: list[str] = []

    def shown_while_generating() -> bool:
        shown = widget.body.toPlainText().strip()
        if window.generating and widget.answer and shown:
            seen_live.append(shown)
            return True
        return False

    # Text must be on screen while the reply is still streaming, not only at the end.
    # The first token can take 20 s when the machine is shared (prompt evaluation on 2 busy cores).
    qtbot.waitUntil(shown_while_generating, timeout=60_000)
    # The stored row follows the stream too (it is what a crash would keep).
    qtbot.waitUntil(lambda: window.generating and stored(window)[-1].content != "", timeout=20_000)
    assert stored(window)[-1].status == chat_store.STREAMING

    wait_reply_done(qtbot, window, timeout_ms=180_000)  # a 512-token context, shared cores
    answer = widget.answer
    assert len(answer) > len(seen_live[0])  # it kept growing after the first sight
    assert not widget.live

    footer = widget.footer.text()
    assert widget.footer.isVisible()
    assert "tok/s" in footer and "tokens" in footer

    html = widget.body.toHtml()
    words = re.findall(r"[A-Za-z]{4,}", answer)
    assert len(words) >= 20
    missing = [w for w in words if w not in html]
    assert not missing, f"words of the answer not in the rendered HTML: {missing[:10]}"

    messages = stored(window)
    assert [(m.role, m.status) for m in messages] == [
        ("user", chat_store.COMPLETE),
        ("assistant", chat_store.COMPLETE),
    ]
    assert messages[0].content == LONG_PROMPT
    assert messages[1].content == answer
    stats = messages[1].stats
    assert stats["finish_reason"] in ("stop", "length", "context")
    assert stats["generated_tokens"] > 20
    assert f"{stats['generated_tokens']} tokens" in footer

    assert not window.stop_button.isEnabled()
    assert window.send_button.isEnabled()
    assert window.chat_list.count() == 1
    assert window.chat_list.item(0).text() == LONG_PROMPT


def test_stop_cancels_the_reply_and_the_app_stays_usable(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    n_ctx = 1024
    window = make_window(n_ctx=n_ctx)
    type_and_send(qtbot, window, LONG_PROMPT)
    widget = window.chat_view.messages[-1]
    qtbot.waitUntil(lambda: len(widget.answer.split()) >= 5, timeout=60_000)
    assert window.generating
    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.generating, timeout=10_000)

    reply = stored(window)[-1]
    assert reply.role == "assistant"
    assert reply.status == chat_store.CANCELLED
    assert reply.content == widget.answer
    assert reply.content.strip()
    assert reply.stats["finish_reason"] == "cancelled"
    room = n_ctx - int(reply.stats["prompt_tokens"])
    assert 0 < reply.stats["generated_tokens"] < room // 10
    assert "stopped" in widget.footer.text()
    assert not window.stop_button.isEnabled()
    assert window.send_button.isEnabled()

    # Nothing is left behind: a second prompt gets its own complete reply.
    type_and_send(qtbot, window, SHORT_PROMPT, enter=False)
    second = window.chat_view.messages[-1]
    assert second is not widget
    wait_reply_done(qtbot, window)
    messages = stored(window)
    assert [(m.role, m.status) for m in messages] == [
        ("user", chat_store.COMPLETE),
        ("assistant", chat_store.CANCELLED),
        ("user", chat_store.COMPLETE),
        ("assistant", chat_store.COMPLETE),
    ]
    assert messages[3].content == second.answer != ""
    assert messages[1].content == widget.answer  # the stopped reply was not touched again
    assert "tok/s" in second.footer.text()


# -- persistence -------------------------------------------------------------------------------


def test_chat_survives_a_restart(qtbot: QtBot, make_window: WindowFactory) -> None:
    first = make_window(n_ctx=512)
    type_and_send(qtbot, first, SHORT_PROMPT)
    wait_reply_done(qtbot, first)
    chat_id = first.chat_id
    shown = [(m.role, m.answer) for m in first.chat_view.messages]
    assert shown[0] == ("user", SHORT_PROMPT) and shown[1][1]
    first.close()
    first.store.close()

    second = make_window(load=False)
    assert second is not first
    assert second.chat_list.count() == 1
    item = second.chat_list.item(0)
    assert item.text() == SHORT_PROMPT
    # The window opens where the user left off: the most recent chat.
    assert second.chat_id == chat_id
    assert [(m.role, m.answer) for m in second.chat_view.messages] == shown

    # Away to a new chat and back through the chat list.
    second.new_chat()
    assert second.chat_id is None
    qtbot.waitUntil(lambda: not second.chat_view.messages, timeout=5_000)
    rect = second.chat_list.visualItemRect(item)
    qtbot.mouseClick(second.chat_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    assert second.chat_id == chat_id
    assert [(m.role, m.answer) for m in second.chat_view.messages] == shown
    assistant = second.chat_view.messages[1]
    assert shown[1][1].split()[0] in assistant.body.toPlainText()
    assert "tok/s" in assistant.footer.text()  # the stats came back with the message
    assert not second.send_button.isEnabled()  # no model loaded in this window


# -- errors ------------------------------------------------------------------------------------


def test_bad_model_file_shows_an_error_and_the_app_recovers(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path
) -> None:
    window = make_window(load=False)
    bad = tmp_path / "not_a_model.gguf"
    bad.write_text("This is a text file pretending to be a model.\n" * 20, encoding="utf-8")

    with qtbot.waitSignal(window.bridge.loadFailed, timeout=LOAD_TIMEOUT_MS) as failed:
        window.load_model(str(bad))
    assert "not a GGUF" in failed.args[0]
    qtbot.waitUntil(lambda: window.error_box is not None, timeout=5_000)
    box = window.error_box
    assert isinstance(box, QMessageBox)
    qtbot.waitUntil(box.isVisible, timeout=5_000)
    assert "not_a_model.gguf is not a GGUF model file" in box.text()
    assert box.icon() is QMessageBox.Icon.Warning
    assert window.model_info is None
    assert window.model_label.text() == "No model loaded"
    assert not window.send_button.isEnabled()
    assert window.model_picker.isEnabled()  # the user can pick another model

    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not shiboken6.isValid(box) or not box.isVisible(), timeout=5_000)

    load_starter(qtbot, window)
    type_and_send(qtbot, window, SHORT_PROMPT)
    wait_reply_done(qtbot, window)
    reply = stored(window)[-1]
    assert reply.status == chat_store.COMPLETE
    assert reply.content == window.chat_view.messages[-1].answer != ""

    # A bad file picked while a model is loaded is rejected before the loaded model is touched:
    # the window keeps that model, says so, and can still chat.
    loaded = window.model_info
    assert loaded is not None
    with qtbot.waitSignal(window.bridge.loadFailed, timeout=LOAD_TIMEOUT_MS):
        window.load_model(str(bad))
    assert window.model_info is loaded
    assert window.model_label.text().startswith(readable_model_name(loaded.path, loaded.name))
    assert window.send_button.isEnabled()
    assert window.model_picker.current_spec() == "starter"
    second_box = window.error_box
    assert second_box is not None and second_box is not box
    second_box.close()
    type_and_send(qtbot, window, SHORT_PROMPT)
    wait_reply_done(qtbot, window)
    assert stored(window)[-1].status == chat_store.COMPLETE


# -- rendering ---------------------------------------------------------------------------------


def test_code_fence_is_syntax_highlighted(qtbot: QtBot) -> None:
    widget = MessageWidget("assistant")
    qtbot.addWidget(widget)
    widget.set_content("Here:\n\n```python\ndef add(a, b):\n    return a + b\n```\n")
    html = widget.body.toHtml()
    # pygments colours keywords with inline styles; Qt keeps them as a span's colour.
    keyword = re.compile(r'<span style="[^"]*color:#[0-9a-fA-F]{6}[^"]*">(def|return)</span>')
    assert {m.group(1) for m in keyword.finditer(html)} == {"def", "return"}
    assert "```" not in widget.body.toPlainText()
    assert "def add(a, b):" in widget.body.toPlainText()


def test_thinking_section_is_collapsed_until_clicked(qtbot: QtBot) -> None:
    widget = MessageWidget("assistant")
    qtbot.addWidget(widget)
    widget.append("thinking", "step one")
    widget.append("answer", "The answer.")
    widget.thinking_tokens = 3
    widget.live = False
    widget.refresh()
    widget.show()
    qtbot.waitExposed(widget)

    section = widget.thinking_section
    assert section.isVisible()
    assert not section.expanded
    assert not section.body.isVisible()
    assert re.fullmatch(r"Thought for 3 tokens, \d+\.\d s", section.toggle.text())
    assert "step one" not in widget.body.toPlainText()  # thinking stays out of the answer

    qtbot.mouseClick(section.toggle, Qt.MouseButton.LeftButton)
    assert section.expanded
    assert section.body.isVisible()
    assert section.body.toPlainText() == "step one"

    qtbot.mouseClick(section.toggle, Qt.MouseButton.LeftButton)
    assert not section.body.isVisible()


def test_the_model_picker_shows_readable_names_not_file_names(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path
) -> None:
    starter = starter_model_path()
    assert starter is not None
    catalogued = tmp_path / load_catalog()[0].filename  # a catalogue file's name, never loaded
    catalogued.write_bytes(b"GGUF")
    renamed = tmp_path / "smollm2-135m-8k-lc100k-mix1-ep2-q4_1.gguf"
    renamed.symlink_to(starter)
    window = make_window(load=False)
    window.settings.recent_models = [str(catalogued)]
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        window.load_model(str(renamed))
    qtbot.waitUntil(lambda: window.model_picker.current_spec() == str(renamed), timeout=5_000)
    picker, info = window.model_picker, window.model_info
    assert info is not None
    assert picker.currentText() == readable_model_name(info.path, info.name) != renamed.name
    entry = load_catalog()[0]
    label = picker.itemText(picker.findData(str(catalogued)))
    assert label == f"{entry.name} · {entry.quant.quant}"
    assert picker.itemData(picker.currentIndex(), Qt.ItemDataRole.ToolTipRole) == str(renamed)


def test_thinking_that_arrives_in_one_batch_still_shows_its_time(qtbot: QtBot) -> None:
    widget = MessageWidget("assistant")
    qtbot.addWidget(widget)
    widget.start_live()
    qtbot.wait(120)  # the model thinks; the window gets the whole block in one batch
    widget.append("thinking", "all of it at once")
    widget.append("answer", "Done.")
    widget.thinking_tokens = 4
    widget.live = False
    widget.refresh()
    caption = widget.thinking_section.toggle.text()
    match = re.fullmatch(r"Thought for 4 tokens, (\d+\.\d) s", caption)
    assert match and float(match.group(1)) >= 0.1


def test_a_stored_reply_shows_its_thinking_time_from_its_statistics(qtbot: QtBot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    stats = {"thinking_tokens": 30, "answer_tokens": 10, "decode_seconds": 2.0}
    view.show_stored([
        chat_store.StoredMessage(1, 1, "assistant", "Answer.", "thought", stats=stats),
        chat_store.StoredMessage(2, 1, "assistant", "Old.", "thought"),
    ])  # fmt: skip
    first, second = (m.thinking_section.toggle.text() for m in view.messages)
    assert first == "Thought for 30 tokens, 1.5 s"  # 2.0 s of decoding, 30 of its 40 tokens
    assert second == "Thought for 0 tokens"  # no statistics: no made-up time
