"""Chat persistence in a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import LeanCoderError
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


def _chat_with_reply(store: ChatStore, title: str, question: str, answer: str) -> int:
    chat = store.create_chat(title)
    store.add_message(chat, "user", question)
    reply = store.add_message(chat, "assistant", status=chat_store.STREAMING, meta={"model": "m"})
    store.update_message(
        reply, content=answer, thinking="hm", status=chat_store.COMPLETE, stats={"x": 1}
    )
    return chat


def test_rename_folds_whitespace_bounds_length_and_refuses_empty(tmp_path: Path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    chat = store.create_chat("old")
    assert store.rename_chat(chat, "  Parser\n bug  ") == "Parser bug"
    assert store.chat_title(chat) == "Parser bug"
    assert len(store.rename_chat(chat, "x" * 5000)) == chat_store.MAX_TITLE
    with pytest.raises(LeanCoderError, match="cannot be empty"):
        store.rename_chat(chat, " \n\t")
    assert store.chat_title(chat) == "x" * chat_store.MAX_TITLE


def test_a_deleted_chat_comes_back_exactly_with_undo_even_after_reopen(tmp_path: Path) -> None:
    db = tmp_path / "chats.sqlite3"
    store = ChatStore(db)
    older = _chat_with_reply(store, "Older", "q1", "a1")
    chat = _chat_with_reply(store, "Parser", "Why does it fail?", "Because of X.")
    before = store.messages(chat)
    listed = store.list_chats()
    deleted = store.delete_chat(chat)
    assert deleted is not None
    assert [c.id for c in store.list_chats()] == [older]
    assert store.messages(chat) == []
    assert store.delete_chat(chat) is None  # already gone
    store.close()
    store = ChatStore(db)
    assert store.restore_chat(deleted) == chat
    assert store.messages(chat) == before  # ids, thinking, status, stats and meta
    assert store.list_chats() == listed  # same title and time, so the same order


def test_search_matches_titles_and_messages_and_treats_wildcards_literally(
    tmp_path: Path,
) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    parser = _chat_with_reply(store, "Parser bug", "Why does tokenize() fail?", "An off-by-one.")
    percent = _chat_with_reply(store, "Coverage", "Is 100% enough?", "No.")
    other = _chat_with_reply(store, "Docs", "Write a README", "Here it is.")
    assert [c.id for c in store.search_chats("parser")] == [parser]
    assert [c.id for c in store.search_chats("OFF-BY")] == [parser]  # the reply matches too
    assert [c.id for c in store.search_chats("100%")] == [percent]
    assert store.search_chats("%") == [c for c in store.list_chats() if c.id == percent]
    assert store.search_chats("_") == []
    assert [c.id for c in store.search_chats("  ")] == [other, percent, parser]
    assert store.search_chats("nothing like this") == []


def test_delete_messages_from_keeps_what_came_before(tmp_path: Path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    chat = _chat_with_reply(store, "t", "first", "one")
    second = store.add_message(chat, "user", "second")
    store.add_message(chat, "assistant", "two")
    other = _chat_with_reply(store, "u", "elsewhere", "kept")
    assert store.delete_messages_from(chat, second) == 2
    assert [m.content for m in store.messages(chat)] == ["first", "one"]
    assert [m.content for m in store.messages(other)] == ["elsewhere", "kept"]
