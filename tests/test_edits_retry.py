"""Feedback to the model and the retry loop; end to end with the real starter model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from app.core.edits import (
    ApplyResult,
    BlockStatus,
    ConfirmationRequiredError,
    EditFormat,
    apply_proposal,
    choose_edit_format,
    edit_system_prompt,
    feedback_message,
    list_change_sets,
    propose,
    propose_with_retries,
    undo_last,
)
from app.core.edits.feedback import Generate
from app.core.llm.engine import Engine, SamplingParams
from app.core.thinking.parser import Channel

SOURCE = (
    "def area(width, height):\n"
    "    return width * height\n"
    "\n"
    "\n"
    "def perimeter(width, height):\n"
    "    return 2 * (width + height)\n"
)
GOOD = (
    "shapes.py\n<<<<<<< SEARCH\ndef area(width, height):\n=======\ndef area(w, h):\n"
    ">>>>>>> REPLACE\n"
)
BAD = (
    "shapes.py\n<<<<<<< SEARCH\ndef perimeter(a, b):\n    return a + a + b + b\n"
    "=======\ndef perimeter(w, h):\n    return 2 * (w + h)\n>>>>>>> REPLACE\n"
)
FIXED = (
    "shapes.py\n<<<<<<< SEARCH\ndef perimeter(width, height):\n    return 2 * (width + height)\n"
    "=======\ndef perimeter(w, h):\n    return 2 * (w + h)\n>>>>>>> REPLACE\n"
)


class ScriptedModel:
    """A stand-in for the model: answers with the given replies in turn, recording each prompt."""

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.prompts: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]]) -> str:
        self.prompts.append(messages)
        return self.replies.pop(0)


@pytest.fixture
def project(tmp_path: Path, data_dir: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "shapes.py").write_text(SOURCE)
    return folder


def test_feedback_names_failed_blocks_with_closest_lines(project: Path) -> None:
    proposal = propose(project, GOOD + "\n" + BAD)
    message = feedback_message(proposal)
    assert message is not None
    assert "1 of your edit block(s) could not be applied" in message
    assert "Block 2 (shapes.py, line 9 of your reply)" in message
    assert "def perimeter(width, height):" in message  # the real lines, to copy
    assert "The other 1 block(s) applied and are kept" in message
    assert feedback_message(propose(project, GOOD)) is None


def test_retry_fixes_the_failed_block_and_keeps_the_good_one(project: Path) -> None:
    model = ScriptedModel([GOOD + "\n" + BAD, FIXED])
    outcome = propose_with_retries(project, [{"role": "user", "content": "rename"}], model)
    assert outcome.retries == 1
    assert len(model.prompts) == 2
    feedback = model.prompts[1][-1]
    assert feedback["role"] == "user" and "could not be applied" in feedback["content"]
    assert model.prompts[1][-2] == {"role": "assistant", "content": GOOD + "\n" + BAD}
    proposal = outcome.proposal
    assert [(b.round, b.status) for b in proposal.blocks] == [
        (0, BlockStatus.APPLIED),
        (0, BlockStatus.REFUSED),
        (1, BlockStatus.APPLIED),
    ]
    proposal.accept_all()
    final = proposal.files[0].final_bytes()
    assert final == b"def area(w, h):\n    return width * height\n\n\n" + (
        b"def perimeter(w, h):\n    return 2 * (w + h)\n"
    )
    assert (project / "shapes.py").read_text() == SOURCE  # still nothing written


def test_at_most_two_retries(project: Path) -> None:
    model = ScriptedModel([GOOD + "\n" + BAD, BAD, BAD, FIXED])
    outcome = propose_with_retries(project, [{"role": "user", "content": "rename"}], model)
    assert outcome.retries == 2 and len(model.prompts) == 3
    statuses = [b.status for b in outcome.proposal.blocks]
    assert statuses.count(BlockStatus.APPLIED) == 1  # the good block stayed proposed
    assert feedback_message(outcome.proposal) is not None


def test_a_given_first_reply_is_not_regenerated(project: Path) -> None:
    model = ScriptedModel([])
    outcome = propose_with_retries(project, [], model, first_reply=GOOD)
    assert model.prompts == [] and outcome.retries == 0
    assert outcome.proposal.blocks[0].status is BlockStatus.APPLIED


RENAMED = SOURCE.replace("width", "w").replace("height", "h")
WHOLE_FILE_REPLY = f"Here it is.\n\nshapes.py\n```python\n{RENAMED}```\n"
EMPTIED_REPLY = "shapes.py\n```python\n# nothing left\n```\n"  # removes most of the file
WHOLE_FILE_MESSAGES = [
    {"role": "system", "content": edit_system_prompt(EditFormat.WHOLE_FILE)},
    {"role": "user", "content": f"shapes.py:\n```python\n{SOURCE}```\nRename width to w."},
]


def _apply_all_and_check_each_file(project: Path, generate: Generate) -> ApplyResult:
    """Propose with retries, accept everything, apply (confirming a big deletion), and check that
    every file holds exactly its proposed-and-accepted bytes, or is untouched."""
    outcome = propose_with_retries(project, WHOLE_FILE_MESSAGES, generate)
    assert 1 <= len(outcome.replies) <= 3
    proposal = outcome.proposal
    proposal.accept_all()
    expected = {c.real_path: c.final_bytes() for c in proposal.files if c.writes}
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    try:
        result = apply_proposal(proposal)
    except ConfirmationRequiredError:
        result = apply_proposal(proposal, confirm_big_deletions=True)
    for path in {*before, *expected, *(p for p in project.rglob("*") if p.is_file())}:
        now = path.read_bytes() if path.exists() else None
        assert now == expected.get(path, before.get(path))
    return result


def test_a_whole_file_reply_is_written_then_undone_byte_for_byte(project: Path) -> None:
    result = _apply_all_and_check_each_file(project, ScriptedModel([WHOLE_FILE_REPLY]))
    assert result.change_set is not None and result.modified == ["shapes.py"]
    assert (project / "shapes.py").read_text() == RENAMED
    assert [c.id for c in list_change_sets(project)] == [result.change_set]
    undo_last(project)
    assert (project / "shapes.py").read_text() == SOURCE
    assert list_change_sets(project) == []


def test_a_reply_that_empties_the_file_needs_confirmation_and_is_undoable(project: Path) -> None:
    proposal = propose(project, EMPTIED_REPLY)
    proposal.accept_all()
    with pytest.raises(ConfirmationRequiredError, match=r"remove more than half of shapes\.py"):
        apply_proposal(proposal)
    assert (project / "shapes.py").read_text() == SOURCE  # refused: nothing written
    result = _apply_all_and_check_each_file(project, ScriptedModel([EMPTIED_REPLY]))
    assert result.modified == ["shapes.py"]
    assert (project / "shapes.py").read_text() == "# nothing left\n"
    undo_last(project)
    assert (project / "shapes.py").read_text() == SOURCE


@pytest.mark.model
def test_the_starters_own_reply_never_corrupts_a_file(engine: Engine, project: Path) -> None:
    """End to end with the real model's words (usually no edit at all: it is a 135M model)."""
    assert choose_edit_format(135_000_000, [len(SOURCE)]) is EditFormat.WHOLE_FILE

    def generate(history: list[dict[str, str]]) -> str:
        sampling = SamplingParams(temperature=0.7, max_tokens=200, seed=7)
        events = engine.generate(history, sampling)
        return "".join(e.text for e in events if e.kind == "text" and e.channel is Channel.ANSWER)

    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    result = _apply_all_and_check_each_file(project, generate)
    assert (result.change_set is None) == (list_change_sets(project) == [])
    if result.change_set is not None:
        undo_last(project)
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before
    assert list_change_sets(project) == []
