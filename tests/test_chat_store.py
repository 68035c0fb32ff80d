"""Chat persistence in a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from app.core.storage import chat_store
from app.core.storage.chat_store import ChatStore, history_for_model


def test_round_trip_across_reopen(tmp_path: Path) -> None:
    db = tmp_path / "chats.sqlite3"
    store = ChatStore(db)
    chat = store.create_chat("Fix the parser")
    store.add_message(chat, "user", "Why does it fail?")
    reply = store.add_message(chat, "assistant", status=chat_store.STREAMING, meta={"model": "m"})
    store.update_message(reply, content="Because", thinking="let me see")
    store.update_message(
        reply, content="Because of X.", status=chat_store.COMPLETE, stats={"generated_tokens": 4}
    )
    store.close()

    again = ChatStore(db)
    assert [c.title for c in again.list_chats()] == ["Fix the parser"]
    messages = again.messages(chat)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Why does it fail?"),
        ("assistant", "Because of X."),
    ]
    assert messages[1].thinking == "let me see"
    assert messages[1].stats == {"generated_tokens": 4}
    assert messages[1].meta == {"model": "m"}
    again.close()


def test_streaming_reply_is_marked_interrupted_after_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "chats.sqlite3"
    store = ChatStore(db)
    chat = store.create_chat()
    reply = store.add_message(chat, "assistant", status=chat_store.STREAMING)
    store.update_message(reply, content="partial text already shown")
    # No close(): committed rows must survive. While this process lives the reply is still its
    # own (tests/test_chat_store_processes.py kills a real writer); an owner that is gone, as
    # after a crash, makes it an orphan.
    again = ChatStore(db)
    assert again.messages(chat)[0].status == chat_store.STREAMING
    again._db.execute("UPDATE messages SET owner=? WHERE id=?", ("999999999:0", reply))
    again.mark_orphans()
    message = again.messages(chat)[0]
    assert message.content == "partial text already shown"
    assert message.status == chat_store.INTERRUPTED
    again.close()
    store.close()


def test_most_recent_chat_first_and_delete(tmp_path: Path) -> None:
    store = ChatStore(tmp_path / "c.sqlite3")
    first = store.create_chat("first")
    second = store.create_chat("second")
    store.add_message(first, "user", "bump")  # touching a chat moves it up
    assert [c.id for c in store.list_chats()] == [first, second]
    store.delete_chat(first)
    assert [c.id for c in store.list_chats()] == [second]
    assert store.messages(first) == []
    store.close()


def test_history_for_model_drops_thinking_and_empty_replies(tmp_path: Path) -> None:
    store = ChatStore(tmp_path / "c.sqlite3")
    chat = store.create_chat()
    store.add_message(chat, "user", "q1")
    store.add_message(chat, "assistant", "a1", thinking="long thoughts")
    store.add_message(chat, "user", "q2")
    store.add_message(chat, "assistant", "", status=chat_store.CANCELLED)
    store.add_message(chat, "user", "q3")
    assert history_for_model(store.messages(chat)) == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "user", "content": "q3"},
    ]
    store.close()
