"""The chat list and conversation actions (issue #12 item 9): search, rename, delete with undo, a
right-click that acts on the row clicked, regenerate, edit and send again, and a list that stays
usable while a reply streams. Chats are real rows in the test's SQLite store; replies come from
the starter model.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication, QLineEdit, QMenu
from pytestqt.qtbot import QtBot

from app.core.storage import chat_store
from app.ui import chat_list
from app.ui.main_window import MainWindow
from tests.ui_support import (
    LONG_PROMPT,
    SHORT_PROMPT,
    WindowFactory,
    stored,
    type_and_send,
    wait_reply_done,
)

REPLY_MS = 90_000  # the machine running the tests is often shared and loaded


def add_chat(window: MainWindow, title: str, question: str, answer: str) -> int:
    chat = window.store.create_chat(title)
    window.store.add_message(chat, "user", question)
    window.store.add_message(chat, "assistant", answer)
    window.refresh_chat_list()
    return chat


def focus_list(qtbot: QtBot, window: MainWindow) -> None:
    """Keys reach shortcuts only in the active window (as for a user)."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    window.chat_list.setFocus()


def titles(window: MainWindow) -> list[str]:
    return [window.chat_list.item(i).text() for i in range(window.chat_list.count())]


def row_centre(window: MainWindow, chat_id: int) -> QPoint:
    item = window.chats.item_for(chat_id)
    assert item is not None
    return window.chat_list.visualItemRect(item).center()


def right_click_menu(qtbot: QtBot, window: MainWindow, chat_id: int) -> QMenu:
    """The menu a right-click on the chat's row opens (built for that row, as `_show_menu`
    builds it; not popped up: the offscreen platform warns of popups it cannot grab)."""
    menu = window.chats.menu_at(row_centre(window, chat_id))
    assert isinstance(menu, QMenu)
    return menu


def choose(menu: QMenu, text: str) -> None:
    [action] = [a for a in menu.actions() if a.text() == text]
    assert action.isEnabled()
    action.trigger()
    menu.close()


def test_search_filters_by_title_and_message_text(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window(load=False)
    add_chat(window, "Parser bug", "Why does tokenize() fail?", "An off-by-one in the lexer.")
    add_chat(window, "Docs", "Write a README", "Here it is.")
    assert titles(window) == ["Docs", "Parser bug"]
    qtbot.keyClicks(window.chats.search, "lexer")
    qtbot.waitUntil(lambda: titles(window) == ["Parser bug"], timeout=5_000)
    window.chats.search.clear()
    qtbot.waitUntil(lambda: titles(window) == ["Docs", "Parser bug"], timeout=5_000)
    qtbot.keyClicks(window.chats.search, "nowhere at all")
    qtbot.waitUntil(lambda: window.chat_list.count() == 0, timeout=5_000)
    assert window.chats.empty_label.isVisible()
    assert window.chats.empty_label.text() == "No chat contains “nowhere at all”."


def test_right_click_deletes_the_row_clicked_and_undo_brings_it_back(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    kept = add_chat(window, "Keep me", "q1", "a1")
    doomed = add_chat(window, "Delete me", "q2", "a2")
    window.open_chat(kept)
    window.chats.select(kept)
    before = window.store.messages(doomed)

    choose(right_click_menu(qtbot, window, doomed), "Delete")
    assert titles(window) == ["Keep me"]
    assert window.chat_id == kept  # the open chat was not the one clicked
    assert [m.answer for m in window.chat_view.messages] == ["q1", "a1"]
    assert window.chats.undo_bar.isVisible()
    assert window.chats.undo_label.text() == "Deleted “Delete me”."

    qtbot.mouseClick(window.chats.undo_button, Qt.MouseButton.LeftButton)
    assert titles(window) == ["Delete me", "Keep me"]
    assert window.store.messages(doomed) == before
    assert window.chat_id == doomed  # the chat brought back is shown
    assert not window.chats.undo_bar.isVisible()


def test_deleting_the_open_chat_leaves_it_and_the_undo_offer_expires(
    qtbot: QtBot, make_window: WindowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chat_list, "UNDO_SECONDS", 0.3)
    window = make_window(load=False)
    chat = add_chat(window, "Open one", "q", "a")
    window.open_chat(chat)
    window.chats.select(chat)
    focus_list(qtbot, window)
    qtbot.keyClick(window.chat_list, Qt.Key.Key_Delete)
    assert window.store.chat_title(chat) is None
    assert window.chat_id is None and not window.chat_view.messages
    qtbot.waitUntil(lambda: not window.chats.undo_bar.isVisible(), timeout=5_000)
    assert not window.chats.can_undo
    assert window.chats.undo_delete() is None  # too late: nothing comes back
    assert window.store.list_chats() == []


def test_rename_in_place_with_f2_and_an_empty_title_keeps_the_old(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    chat = add_chat(window, "Untitled", "q", "a")
    window.chats.select(chat)
    focus_list(qtbot, window)
    qtbot.keyClick(window.chat_list, Qt.Key.Key_F2)
    editor = window.chat_list.findChild(QLineEdit)
    assert isinstance(editor, QLineEdit) and editor.isVisible()
    editor.selectAll()
    qtbot.keyClicks(editor, "  Parser   bug ")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.store.chat_title(chat) == "Parser bug", timeout=5_000)
    assert titles(window) == ["Parser bug"]

    choose(right_click_menu(qtbot, window, chat), "Rename…")
    qtbot.waitUntil(lambda: window.chat_list.findChild(QLineEdit) is not None, timeout=5_000)
    editor = window.chat_list.findChild(QLineEdit)
    assert isinstance(editor, QLineEdit)
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: titles(window) == ["Parser bug"], timeout=5_000)
    assert window.store.chat_title(chat) == "Parser bug"


@pytest.mark.model
def test_the_list_stays_usable_while_a_reply_streams(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(n_ctx=512)
    other = add_chat(window, "Earlier chat", "An older question", "An older answer")
    type_and_send(qtbot, window, LONG_PROMPT)
    live = window.chat_view.messages[-1]
    qtbot.waitUntil(lambda: len(live.answer.split()) >= 3, timeout=60_000)  # a loaded machine
    streaming = window.chat_id
    assert streaming is not None and window.generating
    assert window.chat_list.isEnabled()

    # The streaming chat cannot be deleted; the other one opens while the reply goes on.
    menu = right_click_menu(qtbot, window, streaming)
    assert not next(a for a in menu.actions() if a.text() == "Delete").isEnabled()
    menu.close()
    qtbot.mouseClick(
        window.chat_list.viewport(), Qt.MouseButton.LeftButton, pos=row_centre(window, other)
    )
    assert window.chat_id == other
    assert [m.answer for m in window.chat_view.messages] == ["An older question", "An older answer"]
    assert window.generating  # the reply was not stopped
    qtbot.keyClicks(window.chats.search, "older")
    qtbot.waitUntil(lambda: titles(window) == ["Earlier chat"], timeout=5_000)
    window.chats.search.clear()
    qtbot.waitUntil(lambda: window.chat_list.count() == 2, timeout=5_000)

    # Back to the streaming chat before it ends: what was saved so far, then all of it.
    qtbot.mouseClick(
        window.chat_list.viewport(), Qt.MouseButton.LeftButton, pos=row_centre(window, streaming)
    )
    assert window.chat_id == streaming
    assert window.generating
    window.stop()  # (a full 500-token story takes long on a loaded machine)
    wait_reply_done(qtbot, window)
    reply = stored(window)[-1]
    assert reply.status == chat_store.CANCELLED and reply.content.strip()
    qtbot.waitUntil(
        lambda: [m.answer for m in window.chat_view.messages] == [LONG_PROMPT, reply.content],
        timeout=5_000,
    )
    assert "tok/s" in window.chat_view.messages[-1].footer.text()
    assert [m.answer for m in window.chat_view.messages].count(LONG_PROMPT) == 1
    other_messages = window.store.messages(other)
    assert [m.content for m in other_messages] == ["An older question", "An older answer"]


@pytest.mark.model
def test_regenerate_replaces_the_last_reply(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window(n_ctx=512)
    window.settings.temperature = 0.0  # greedy: a short reply, not a ramble to the context's end
    type_and_send(qtbot, window, SHORT_PROMPT)
    wait_reply_done(qtbot, window, REPLY_MS)
    first = stored(window)
    assert window.shell.regenerate_action.isEnabled()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    with qtbot.waitSignal(window.replyFinished, timeout=REPLY_MS):
        qtbot.keyClick(window.prompt, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
        assert window.generating
    wait_reply_done(qtbot, window)
    again = stored(window)
    assert [(m.role, m.content) for m in again][:1] == [("user", SHORT_PROMPT)]
    assert [m.role for m in again] == ["user", "assistant"]  # replaced, not added
    assert again[1].status == chat_store.COMPLETE and again[1].content.strip()
    assert first[1].content.strip()
    assert [m.answer for m in window.chat_view.messages] == [SHORT_PROMPT, again[1].content]
    assert [c.id for c in window.store.list_chats()] == [window.chat_id]  # no second chat


@pytest.mark.model
def test_edit_and_send_again_replaces_the_message_and_its_reply(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(n_ctx=512)
    window.settings.temperature = 0.0
    type_and_send(qtbot, window, SHORT_PROMPT)
    wait_reply_done(qtbot, window, REPLY_MS)
    type_and_send(qtbot, window, "And one more sentence.")
    wait_reply_done(qtbot, window, REPLY_MS)
    window.shell.edit_last_action.trigger()
    dialog = window.shell.chat_actions.dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=5_000)
    assert dialog.text() == "And one more sentence."
    dialog.editor.setPlainText("")
    assert not dialog.send_button.isEnabled()  # nothing to send
    qtbot.keyClicks(dialog.editor, "Say goodbye.")
    qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
    assert window.generating
    wait_reply_done(qtbot, window, REPLY_MS)
    messages = stored(window)
    assert [(m.role, m.content) for m in messages][:3] == [
        ("user", SHORT_PROMPT),
        ("assistant", messages[1].content),
        ("user", "Say goodbye."),
    ]
    assert len(messages) == 4 and messages[3].status == chat_store.COMPLETE
    assert [m.answer for m in window.chat_view.messages][2] == "Say goodbye."
    assert len(window.chat_view.messages) == 4


def test_a_code_blocks_copy_link_puts_its_exact_code_on_the_clipboard(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    code = "def f(x):\n    return {'a': x}  # keep <this> & that\n"
    chat = add_chat(window, "Code", "Show me f", f"Here:\n\n```python\n{code}```\n\nDone.")
    window.open_chat(chat)
    body = window.chat_view.messages[-1].body
    qtbot.waitUntil(lambda: "Copy" in body.toPlainText(), timeout=5_000)
    QApplication.clipboard().clear()

    def copy_spot() -> QPoint:  # between "Co" and "py", once the view has laid the text out
        found = body.document().find("Copy")
        middle = QTextCursor(body.document())
        middle.setPosition(found.position() - 2)
        return body.cursorRect(middle).center()

    qtbot.waitUntil(lambda: body.anchorAt(copy_spot()).startswith("leancoder-copy:"), timeout=5_000)
    spot = copy_spot()
    qtbot.mouseClick(body.viewport(), Qt.MouseButton.LeftButton, pos=spot)
    qtbot.waitUntil(lambda: QApplication.clipboard().text() == code, timeout=5_000)


def test_each_message_has_its_own_menu_and_copy_message(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    chat = add_chat(window, "Menus", "First question", "First answer")
    window.open_chat(chat)
    question, answer = window.chat_view.messages
    actions = window.shell.chat_actions
    qtbot.waitUntil(lambda: bool(answer.property("leancoderMessageMenu")), timeout=5_000)
    menu = actions.message_menu(question, QPoint(4, 4))
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert "Edit and send again…" in texts and "Copy message" in texts
    assert any("Copy" in t for t in texts[: texts.index("Edit and send again…")])  # the text's own
    edit = next(a for a in menu.actions() if a.text() == "Edit and send again…")
    assert not edit.isEnabled()  # no model loaded: nothing can be sent
    menu.close()
    menu = actions.message_menu(answer)
    assert [a.text() for a in menu.actions()] == ["Regenerate this reply", "Copy message"]
    QApplication.clipboard().clear()
    next(a for a in menu.actions() if a.text() == "Copy message").trigger()
    assert QApplication.clipboard().text() == "First answer"
    menu.close()


@pytest.mark.model
def test_regenerating_an_earlier_reply_drops_what_came_after_it(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(n_ctx=512)
    window.settings.temperature = 0.0
    type_and_send(qtbot, window, SHORT_PROMPT)
    wait_reply_done(qtbot, window, REPLY_MS)
    type_and_send(qtbot, window, "And one more sentence.")
    wait_reply_done(qtbot, window, REPLY_MS)
    assert len(stored(window)) == 4
    first_reply = window.chat_view.messages[1]
    menu = window.shell.chat_actions.message_menu(first_reply)
    regenerate = next(a for a in menu.actions() if a.text() == "Regenerate this reply")
    assert regenerate.isEnabled()
    regenerate.trigger()
    menu.close()
    assert window.generating
    wait_reply_done(qtbot, window, REPLY_MS)
    messages = stored(window)
    assert [(m.role, m.status) for m in messages] == [
        ("user", chat_store.COMPLETE),
        ("assistant", chat_store.COMPLETE),
    ]
    assert messages[0].content == SHORT_PROMPT
    assert [m.answer for m in window.chat_view.messages] == [SHORT_PROMPT, messages[1].content]
