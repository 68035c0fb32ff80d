"""Chats persisted in SQLite, written as they stream so a crash loses nothing already shown.

WAL mode with synchronous=NORMAL: a committed write survives the process dying (only an OS crash
can lose the last moments), and an UPDATE of one row costs well under a millisecond, so the chat
view can save every piece it shows. A reply that was still streaming when its process died is
marked `interrupted` on the next open instead of pretending it finished.

A streaming reply records its owner: the writing process's pid and start time (a pid alone is
reused). Opening the store marks only orphans, replies whose owner is gone, so a second window or
a CLI run never cuts off the reply the first window is still streaming.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from app.core.errors import LeanCoderError

SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    thinking TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'complete',
    stats TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    owner TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_by_chat ON messages(chat_id, id);
"""

STREAMING = "streaming"
COMPLETE = "complete"
INTERRUPTED = "interrupted"
CANCELLED = "cancelled"
FAILED = "error"
MAX_TITLE = 200
_MESSAGE_COLUMNS = "id, chat_id, role, content, thinking, status, stats, meta, created, owner"
_START_TIME_SLACK_S = 1.0  # psutil's start times are rounded differently on some systems


def process_owner(pid: int | None = None) -> str:
    """'pid:start time' of a process (this one by default): who owns a streaming reply."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{psutil.Process(pid).create_time():.3f}"


def owner_alive(owner: str) -> bool:
    """Whether the process that wrote `owner` still runs (the same process, not a reused pid)."""
    pid_text, _, started_text = owner.partition(":")
    try:
        pid, started = int(pid_text), float(started_text)
        return abs(psutil.Process(pid).create_time() - started) < _START_TIME_SLACK_S
    except (ValueError, psutil.Error):  # no owner recorded (an old store), or it is gone
        return False


@dataclass(frozen=True, slots=True)
class ChatSummary:
    id: int
    title: str
    updated: float


@dataclass(frozen=True, slots=True)
class DeletedChat:
    """A deleted chat's rows, as they were: what an undo puts back."""

    chat: tuple[Any, ...]
    messages: tuple[tuple[Any, ...], ...]


@dataclass(slots=True)
class StoredMessage:
    id: int
    chat_id: int
    role: str
    content: str
    thinking: str = ""
    status: str = COMPLETE
    stats: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


class ChatStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the GUI thread and the model worker (a session saves its reply
        # while it streams): every statement runs and is read out under one lock.
        self._db = _LockedConnection(
            sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        columns = {str(row[1]) for row in self._db.execute("PRAGMA table_info(messages)")}
        if "owner" not in columns:  # a store from before replies had owners
            # Another process may have added it a moment ago.
            with contextlib.suppress(sqlite3.OperationalError):
                self._db.execute("ALTER TABLE messages ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
        self.owner = process_owner()
        self.mark_orphans()

    def mark_orphans(self) -> int:
        """Mark streaming replies whose process is gone as interrupted; how many were."""
        rows = self._db.execute("SELECT id, owner FROM messages WHERE status=?", (STREAMING,))
        orphans = [(int(r[0]),) for r in rows.fetchall() if not owner_alive(str(r[1]))]
        if orphans:
            self._db.executemany(
                "UPDATE messages SET status=? WHERE id=? AND status=?",
                [(INTERRUPTED, ident, STREAMING) for (ident,) in orphans],
            )
        return len(orphans)

    def close(self) -> None:
        self._db.close()

    # -- chats ---------------------------------------------------------------------------------

    def create_chat(self, title: str = "New chat") -> int:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO chats(title, created, updated) VALUES (?, ?, ?)", (title, now, now)
        )
        return int(cur.lastrowid or 0)

    def list_chats(self) -> list[ChatSummary]:
        rows = self._db.execute(
            "SELECT id, title, updated FROM chats ORDER BY updated DESC, id DESC"
        )
        return [ChatSummary(int(r[0]), str(r[1]), float(r[2])) for r in rows]

    def rename_chat(self, chat_id: int, title: str) -> str:
        """Give a chat a new title (whitespace folded, at most MAX_TITLE characters); returns it.
        An empty title is refused: the list would show a blank row."""
        clean = " ".join(title.split())[:MAX_TITLE]
        if not clean:
            raise LeanCoderError("A chat's title cannot be empty.")
        self._db.execute("UPDATE chats SET title=? WHERE id=?", (clean, chat_id))
        return clean

    def delete_chat(self, chat_id: int) -> DeletedChat | None:
        """Delete a chat and its messages; what was deleted comes back, for `restore_chat`."""
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT id, title, created, updated FROM chats WHERE id=?", (chat_id,)
            ).fetchone()
            if row is None:
                return None
            messages = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE chat_id=? ORDER BY id", (chat_id,)
            ).fetchall()
            db.execute("DELETE FROM chats WHERE id=?", (chat_id,))
        return DeletedChat(tuple(row), tuple(tuple(m) for m in messages))

    def restore_chat(self, deleted: DeletedChat) -> int:
        """Undo `delete_chat`: the chat and its messages come back with their ids and times."""
        columns = _MESSAGE_COLUMNS
        marks = ", ".join("?" for _ in columns.split(","))
        with self._db.transaction() as db:
            db.execute("INSERT INTO chats(id, title, created, updated) VALUES (?, ?, ?, ?)",
                       deleted.chat)  # fmt: skip
            db.executemany(f"INSERT INTO messages({columns}) VALUES ({marks})", deleted.messages)
        return int(deleted.chat[0])

    def search_chats(self, text: str, limit: int = 200) -> list[ChatSummary]:
        """Chats whose title or any message contains `text` (SQLite's LIKE: case-insensitive
        for ASCII letters), newest first; `%` and `_` are matched as themselves."""
        needle = text.strip()
        if not needle:
            return self.list_chats()[:limit]
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        rows = self._db.execute(
            "SELECT id, title, updated FROM chats WHERE title LIKE ?1 ESCAPE '\\' OR id IN"
            " (SELECT chat_id FROM messages WHERE content LIKE ?1 ESCAPE '\\')"
            " ORDER BY updated DESC, id DESC LIMIT ?2",
            (pattern, limit),
        )
        return [ChatSummary(int(r[0]), str(r[1]), float(r[2])) for r in rows]

    def delete_messages_from(self, chat_id: int, message_id: int) -> int:
        """Delete a chat's message `message_id` and every later one (a regenerated reply, an
        edited message sent again); how many went."""
        where = "FROM messages WHERE chat_id=? AND id>=?"
        with self._db.transaction() as db:
            count = int(db.execute(f"SELECT count(*) {where}", (chat_id, message_id)).fetchone()[0])
            db.execute(f"DELETE {where}", (chat_id, message_id))
        return count

    def chat_title(self, chat_id: int) -> str | None:
        row = self._db.execute("SELECT title FROM chats WHERE id=?", (chat_id,)).fetchone()
        return str(row[0]) if row else None

    # -- messages ------------------------------------------------------------------------------

    def add_message(
        self,
        chat_id: int,
        role: str,
        content: str = "",
        *,
        thinking: str = "",
        status: str = COMPLETE,
        meta: dict[str, Any] | None = None,
    ) -> int:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO messages(chat_id, role, content, thinking, status, meta, created, owner)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (chat_id, role, content, thinking, status, json.dumps(meta or {}), now, self.owner),
        )
        self._db.execute("UPDATE chats SET updated=? WHERE id=?", (now, chat_id))
        return int(cur.lastrowid or 0)

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        thinking: str | None = None,
        status: str | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        sets: list[str] = []
        values: list[Any] = []
        for column, value in (("content", content), ("thinking", thinking), ("status", status)):
            if value is not None:
                sets.append(f"{column}=?")
                values.append(value)
        if status == STREAMING:  # a reply resumed here belongs to this process now
            sets.append("owner=?")
            values.append(self.owner)
        if stats is not None:
            sets.append("stats=?")
            values.append(json.dumps(stats))
        if sets:
            self._db.execute(
                f"UPDATE messages SET {', '.join(sets)} WHERE id=?", (*values, message_id)
            )

    def messages(self, chat_id: int) -> list[StoredMessage]:
        rows = self._db.execute(
            "SELECT id, chat_id, role, content, thinking, status, stats, meta FROM messages"
            " WHERE chat_id=? ORDER BY id",
            (chat_id,),
        )
        return [
            StoredMessage(
                id=int(r[0]),
                chat_id=int(r[1]),
                role=str(r[2]),
                content=str(r[3]),
                thinking=str(r[4]),
                status=str(r[5]),
                stats=json.loads(r[6] or "{}"),
                meta=json.loads(r[7] or "{}"),
            )
            for r in rows
        ]


class _Result:
    """A statement's rows, read out while the lock was held, and the row id it inserted."""

    def __init__(self, rows: list[Any], lastrowid: int | None) -> None:
        self._rows, self.lastrowid = rows, lastrowid

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return list(self._rows)


class _LockedConnection:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._conn, self._lock = db, threading.Lock()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        with self._lock:
            cur = self._conn.execute(sql, params)
            return _Result(cur.fetchall(), cur.lastrowid)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._conn.executemany(sql, rows)

    def executescript(self, script: str) -> None:
        with self._lock:
            self._conn.executescript(script)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_UnlockedConnection]:
        """Statements that land together or not at all, with no other thread's in between."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            inner = _UnlockedConnection(self._conn)
            try:
                yield inner
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _UnlockedConnection:
    """The connection inside a transaction, whose lock is already held."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._conn = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        cur = self._conn.execute(sql, params)
        return _Result(cur.fetchall(), cur.lastrowid)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


def history_for_model(messages: list[StoredMessage]) -> list[dict[str, str]]:
    """What the model sees of a chat: roles and answers. Old thinking stays out, as templates do."""
    out: list[dict[str, str]] = []
    for m in messages:
        if m.role == "assistant" and not m.content.strip():
            continue  # a reply that was stopped before it said anything
        out.append({"role": m.role, "content": m.content})
    return out
