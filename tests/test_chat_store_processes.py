"""Two real processes on one chat store: a second opener leaves the first one's live reply alone
and marks only replies whose process is gone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from app.core.storage import chat_store
from app.core.storage.chat_store import ChatStore

# A writer that starts a streaming reply, says so, then keeps streaming until told to stop.
WRITER = """
import sys, time
from app.core.storage.chat_store import ChatStore, STREAMING, COMPLETE
store = ChatStore(sys.argv[1])
chat = store.create_chat("live")
reply = store.add_message(chat, "assistant", "", status=STREAMING)
print(reply, flush=True)
text = ""
while sys.stdin.readline().strip() == "more":
    text += "piece "
    store.update_message(reply, content=text)
    print("ok", flush=True)
store.update_message(reply, status=COMPLETE)
print("done", flush=True)
"""


def _writer(db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip


def _status(db: Path, message_id: int) -> str:
    store = ChatStore(db)
    try:
        return next(
            m.status for c in store.list_chats() for m in store.messages(c.id) if m.id == message_id
        )
    finally:
        store.close()


def test_a_second_process_leaves_a_live_reply_streaming(tmp_path: Path) -> None:
    db = tmp_path / "chats.db"
    with _writer(db) as writer:  # closes its pipes when done
        try:
            assert writer.stdout is not None and writer.stdin is not None
            reply = int(writer.stdout.readline())
            assert _status(db, reply) == chat_store.STREAMING  # opened by this second process
            writer.stdin.write("more\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "ok"  # the first process streams on
            assert _status(db, reply) == chat_store.STREAMING
            writer.stdin.write("stop\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "done"
            assert writer.wait(30) == 0
        finally:
            if writer.poll() is None:
                writer.kill()
    assert _status(db, reply) == chat_store.COMPLETE


def test_the_reply_of_a_killed_process_is_marked_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "chats.db"
    with _writer(db) as writer:
        assert writer.stdout is not None
        reply = int(writer.stdout.readline())
        writer.kill()  # kill -9: no chance to finish the reply
        writer.wait(30)
    deadline = time.monotonic() + 10
    while _status(db, reply) == chat_store.STREAMING and time.monotonic() < deadline:
        time.sleep(0.1)  # the pid may linger a moment as a zombie on some systems
    assert _status(db, reply) == chat_store.INTERRUPTED


def test_a_reused_pid_is_not_mistaken_for_the_owner(tmp_path: Path) -> None:
    """The owner is pid and start time: the same pid started at another time is someone else."""
    store = ChatStore(tmp_path / "chats.db")
    chat = store.create_chat()
    reply = store.add_message(chat, "assistant", status=chat_store.STREAMING)
    pid = chat_store.process_owner().split(":")[0]
    store._db.execute("UPDATE messages SET owner=? WHERE id=?", (f"{pid}:12345.000", reply))
    store._db.execute("UPDATE messages SET owner='' WHERE id<>?", (reply,))
    assert store.mark_orphans() == 1
    assert store.messages(chat)[0].status == chat_store.INTERRUPTED
    store.close()
