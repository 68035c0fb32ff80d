"""The conversation core: prompt building, one event stream per reply, saving while streaming, and
the edit feedback loop. Control flow uses scripted replies (tests/session_support.py) on the real
loaded starter; one end-to-end test streams a real reply from the starter model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.edits import choose_edit_format, edit_system_prompt
from app.core.edits.feedback import MAX_RETRIES
from app.core.llm.engine import Engine, LoadOptions, SamplingParams
from app.core.session.chat import (
    FEEDBACK_PREFIX,
    SAVE_INTERVAL_S,
    ChatSession,
    FolderChoice,
    SessionEvent,
)
from app.core.storage import chat_store
from app.core.storage.chat_store import ChatStore
from app.core.workspace.scan import scan_all
from tests.session_support import FAIL, ScriptedReplies

SOURCE = "def add(a, b):\n    return a + b\n\n\ndef twice(x):\n    return 2 * x\n" + "\n" * 30
GOOD = """shapes.py
<<<<<<< SEARCH
def add(a, b):
    return a + b
=======
def add(a, b):
    return b + a
>>>>>>> REPLACE
"""
BAD = """shapes.py
<<<<<<< SEARCH
def nothing_like_this_exists(q):
    return q ** 17
=======
def nothing(q):
    return q
>>>>>>> REPLACE
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "shapes.py").write_text(SOURCE)
    (folder / "notes.md").write_text("# Notes\n")
    return folder


@pytest.fixture
def scripted(starter_path: Path) -> ScriptedReplies:
    engine = ScriptedReplies([])
    engine.load(starter_path, LoadOptions(n_ctx=2048))
    yield engine  # type: ignore[misc]
    engine.unload()


def folder_choice(project: Path, selected: tuple[str, ...] = ("shapes.py",)) -> FolderChoice:
    return FolderChoice(project, tuple(f.path for f in scan_all(project).files), selected)


def kinds(events: list[SessionEvent]) -> list[str]:
    return [e.kind for e in events if e.kind != "text"]


def test_a_reply_streams_as_one_event_stream_and_is_saved(
    scripted: ScriptedReplies, tmp_path: Path
) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    session = ChatSession(store)
    scripted.replies = ["Hello\nthere\n"]
    events = list(session.send(scripted, "hi"))
    assert kinds(events) == ["user", "prompt", "reply_start", "done"]
    assert "".join(e.text for e in events if e.kind == "text") == "Hello\nthere\n"
    assert session.chat_id is not None
    saved = store.messages(session.chat_id)
    assert [(m.role, m.content, m.status) for m in saved] == [
        ("user", "hi", chat_store.COMPLETE),
        ("assistant", "Hello\nthere\n", chat_store.COMPLETE),
    ]
    assert saved[1].stats["finish_reason"] == "stop"
    assert saved[1].meta["policy"]["name"] == "Unpruned"
    assert store.chat_title(session.chat_id) == "hi"
    # A session reopened from the store continues the same conversation.
    again = ChatSession(store, session.chat_id)
    assert again.history() == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello\nthere\n"},
    ]
    store.close()


def test_the_prompt_holds_folder_edit_rules_system_and_history(
    scripted: ScriptedReplies, project: Path
) -> None:
    session = ChatSession()
    session.folder = folder_choice(project)
    session.system_prompt = "Answer briefly."
    session.propose_edits = True
    scripted.replies = ["first answer", "second answer"]
    list(session.send(scripted, "one"))
    list(session.send(scripted, "two"))
    first, second = scripted.prompts
    assert [m["role"] for m in second] == ["system", "system", "user", "assistant", "user"]
    folder_message = second[0]["content"]
    assert scripted.info is not None
    rules = edit_system_prompt(choose_edit_format(scripted.info.n_params, [len(SOURCE)]))
    assert folder_message.startswith(rules + "\n\n")  # the edit rules, then the folder
    assert "def twice(x):" in folder_message and "notes.md" in folder_message
    assert second[1]["content"] == "Answer briefly."
    assert [m["content"] for m in second[2:]] == ["one", "first answer", "two"]
    assert first[0] == second[0]  # the same folder and selection give the same context


def test_a_failure_is_an_event_and_the_partial_reply_is_kept(
    scripted: ScriptedReplies, tmp_path: Path
) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    session = ChatSession(store)
    scripted.replies = [FAIL]
    events = list(session.send(scripted, "go"))
    assert kinds(events) == ["user", "prompt", "reply_start", "failed"]
    assert events[-1].text == "The scripted model failed mid-reply."
    assert session.chat_id is not None
    reply = store.messages(session.chat_id)[1]
    assert (reply.content, reply.status) == ("half a", chat_store.FAILED)
    store.close()


def test_failed_blocks_go_back_exactly_max_retries_times(
    scripted: ScriptedReplies, project: Path
) -> None:
    session = ChatSession()
    session.folder = folder_choice(project)
    session.propose_edits = True
    scripted.replies = [BAD] * (MAX_RETRIES + 1) + ["never asked for"]
    events = list(session.send(scripted, "rename things"))
    assert [e.round for e in events if e.kind == "feedback"] == list(range(1, MAX_RETRIES + 1))
    assert kinds(events).count("reply_start") == MAX_RETRIES + 1
    assert scripted.replies == ["never asked for"]
    users = [t.content for t in session.turns if t.role == "user"]
    assert users[0] == "rename things"
    assert all(u.startswith(FEEDBACK_PREFIX) and "could not be applied" in u for u in users[1:])
    final = events[-1]
    assert final.kind == "proposal" and final.proposal is not None
    assert not final.proposal.files  # nothing applies, and nothing is guessed
    assert (project / "shapes.py").read_text() == SOURCE  # a proposal never touches disk


def test_a_retry_that_applies_ends_the_loop_with_its_proposal(
    scripted: ScriptedReplies, project: Path
) -> None:
    session = ChatSession()
    session.folder = folder_choice(project)
    session.propose_edits = True
    scripted.replies = [BAD, GOOD]
    events = list(session.send(scripted, "swap the operands"))
    assert kinds(events).count("feedback") == 1
    final = events[-1]
    assert final.kind == "proposal" and final.proposal is not None
    assert [change.path for change in final.proposal.files] == ["shapes.py"]
    assert "return b + a" in final.proposal.unified_diff()
    assert (project / "shapes.py").read_text() == SOURCE


def test_a_reply_without_edits_says_so(scripted: ScriptedReplies, project: Path) -> None:
    session = ChatSession()
    session.folder = folder_choice(project)
    session.propose_edits = True
    scripted.replies = ["I would rather not."]
    events = list(session.send(scripted, "change it"))
    assert events[-1].kind == "no_edits"
    assert events[-1].text == "I would rather not."


@pytest.mark.model
def test_the_real_model_streams_and_the_reply_is_saved_while_it_streams(
    starter_path: Path, tmp_path: Path
) -> None:
    engine = Engine()
    engine.load(starter_path, LoadOptions(n_ctx=1024))
    store = ChatStore(tmp_path / "chats.sqlite3")
    reader = ChatStore(tmp_path / "chats.sqlite3")  # as a second window would see it
    session = ChatSession(store)
    seen_while_streaming: list[str] = []
    started = 0.0
    try:
        sampling = SamplingParams(temperature=0.0, max_tokens=120, seed=1)
        for event in session.send(engine, "Tell me a long story about a lighthouse.", sampling):
            if event.kind == "reply_start":
                started = time.monotonic()
            elif event.kind == "text" and time.monotonic() - started > 2 * SAVE_INTERVAL_S:
                assert session.chat_id is not None
                live = reader.messages(session.chat_id)[-1]
                if live.status == chat_store.STREAMING and live.content:
                    seen_while_streaming.append(live.content)
        assert session.chat_id is not None
        final = reader.messages(session.chat_id)[-1]
    finally:
        engine.unload()
        store.close()
        reader.close()
    assert seen_while_streaming, "nothing was saved before the reply ended"
    assert final.status == chat_store.COMPLETE and final.content
    assert final.content.startswith(seen_while_streaming[0])
    assert session.turns[-1].content == final.content
