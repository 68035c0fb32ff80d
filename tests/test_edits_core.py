"""Parser, matcher, safety checks and proposal hunks of the edit pipeline (no writes here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.edits import (
    BlockKind,
    BlockStatus,
    ChangeKind,
    EditError,
    EditFormat,
    HunkStatus,
    UnsafePathError,
    apply_search_replace,
    choose_edit_format,
    edit_system_prompt,
    parse_reply,
    propose,
)
from app.core.edits.safety import is_placeholder, placeholder_problem, resolve_in_folder
from app.core.edits.textfile import decode, split_lines


def _texts(lines: object) -> list[str]:
    return [text for text, _ in lines]  # type: ignore[attr-defined]


# Parser ------------------------------------------------------------------------------------------


def test_parser_reads_paths_fences_and_kinds() -> None:
    reply = (
        "Intro text.\n\n"
        "src/a.py\n```python\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n```\n\n"
        "docs/b.md\n```\nwhole\nfile\n```\n\n"
        "DELETE FILE c.txt\n"
    )
    blocks = parse_reply(reply)
    assert [(b.kind, b.path) for b in blocks] == [
        (BlockKind.SEARCH_REPLACE, "src/a.py"),
        (BlockKind.WHOLE_FILE, "docs/b.md"),
        (BlockKind.DELETE_FILE, "c.txt"),
    ]
    assert (blocks[0].search, blocks[0].replace) == ("old\n", "new\n")
    assert blocks[1].replace == "whole\nfile\n"
    assert blocks[0].line == 5  # the SEARCH marker's line in the reply


@pytest.mark.parametrize("width", range(5, 10))
def test_parser_accepts_markers_of_5_to_9_characters(width: int) -> None:
    reply = f"a.py\n{'<' * width} SEARCH\nx\n{'=' * width}\ny\n{'>' * width} REPLACE\n"
    (block,) = parse_reply(reply)
    assert block.kind is BlockKind.SEARCH_REPLACE
    assert (block.search, block.replace) == ("x\n", "y\n")


@pytest.mark.parametrize("width", [3, 4, 10, 12])
def test_parser_reports_markers_of_other_widths(width: int) -> None:
    reply = f"a.py\n{'<' * width} SEARCH\nx\n{'=' * 7}\ny\n{'>' * width} REPLACE\n"
    blocks = parse_reply(reply)
    assert blocks[0].kind is BlockKind.MALFORMED
    assert f"{width} characters" in (blocks[0].problem or "")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("", []),
        ("<<<<<<< SEARCH", [(None, "the reply ends before =======; was it cut off?")]),
        ("=======\n>>>>>>> REPLACE", [(None, "'>>>>>>> REPLACE' closes no block")]),
        ("a.py\n<<<<<<< SEARCH\n=======\n=======\n", [("a.py", "a second ======= line")]),
        ("```\n```\n```", []),
        ("a.py\n```\n<<<<<<< SEARCH\n```\n", [("a.py", "not closed by >>>>>>> REPLACE")]),
        ("\x00\r\r\n<<<<<<<<<<<<<<<<<<<<<< SEARCH\n", [(None, "has 22 characters")]),
        ("DELETE FILE\n", []),  # prose, not an instruction
        ("DELETE FILE a b c\n", [(None, "the DELETE FILE line names no file path")]),
    ],
)
def test_parser_never_raises_on_garbage(
    reply: str, expected: list[tuple[str | None, str]]
) -> None:
    """Garbage is either no block at all or one malformed block that says what is wrong."""
    blocks = parse_reply(reply)
    assert [b.kind for b in blocks] == [BlockKind.MALFORMED] * len(expected)
    for block, (path, problem) in zip(blocks, expected, strict=True):
        assert block.path == path
        assert problem in (block.problem or ""), block.problem


@pytest.mark.parametrize(
    ("path_line", "path"),
    [
        ("`docs/my notes.txt`", "docs/my notes.txt"),
        ("// web/app.js", "web/app.js"),
        ("-- db/query.sql", "db/query.sql"),
        ("## File: `src/x.py`", "src/x.py"),
        ("Makefile", "Makefile"),
    ],
)
def test_path_line_styles(path_line: str, path: str) -> None:
    reply = f"{path_line}\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    (block,) = parse_reply(reply)
    assert block.path == path


def test_prose_lines_are_not_taken_for_paths() -> None:
    reply = "Here is the fix:\n```python\nprint('hi')\n```\n"
    assert parse_reply(reply) == []


# Matcher -----------------------------------------------------------------------------------------


FILE = [
    "class A:",
    "    def f(self):",
    "        return 1",
    "",
    "    def g(self):",
    "        return 2",
]


def test_exact_match_keeps_other_lines_and_their_indices() -> None:
    match = apply_search_replace(FILE, "        return 2\n", "        return 3\n")
    assert match.ok and match.method == "exact"
    assert _texts(match.lines)[-1] == "        return 3"
    assert [src for _, src in match.lines][:5] == [0, 1, 2, 3, 4]


def test_indentation_offset_reindents_the_replacement() -> None:
    match = apply_search_replace(
        FILE, "def g(self):\n    return 2\n", "def g(self):\n    return 4\n"
    )
    assert match.ok and match.method == "indentation"
    assert _texts(match.lines)[-2:] == ["    def g(self):", "        return 4"]


def test_ambiguous_match_is_refused_with_places() -> None:
    lines = ["x = 1", "y = 2", "x = 1"]
    match = apply_search_replace(lines, "x = 1\n", "x = 5\n")
    assert not match.ok
    assert "matches 2 places" in match.reason and "lines 1, 3" in match.reason


def test_failure_reports_closest_real_lines() -> None:
    lines = ["def compute(a, b):", "    total = a + b", "    return total", "", "print(1)"]
    match = apply_search_replace(lines, "def compute(a, c):\n    result = a + c\n", "pass\n")
    assert not match.ok
    assert match.closest is not None
    assert match.closest.start == 1
    assert match.closest.lines[0] == "def compute(a, b):"


def test_empty_search_is_not_a_match() -> None:
    assert not apply_search_replace(FILE, "", "x\n").ok


def test_fuzzy_needs_a_long_enough_search() -> None:
    match = apply_search_replace(["a = 1", "b = 2"], "a = 7\n", "a = 8\n")
    assert not match.ok


# Safety ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "# ... existing code ...",
        "// rest of file unchanged",
        "# ... keep the rest",
        "    // ... rest of the function",
        "/* ... */",
        "<!-- ... -->",
        "# (other imports omitted for brevity)",
    ],
)
def test_placeholders_are_recognised(line: str) -> None:
    assert is_placeholder(line)


@pytest.mark.parametrize(
    "line", ["# keep this in sync", "x = rest_of_file", "return ...", 'print("...")', "# TODO"]
)
def test_code_is_not_a_placeholder(line: str) -> None:
    assert not is_placeholder(line)


def test_placeholder_problem_only_where_real_lines_go() -> None:
    old = ["a = 1", "b = 2"]
    assert placeholder_problem(old, ["a = 1", "# ... existing code ..."]) is not None
    assert placeholder_problem(old, ["a = 1", "b = 2", "# ... more later"]) is None
    assert placeholder_problem([], ["# ... existing code ..."]) is None


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("/etc/passwd", "absolute"),
        ("C:\\Windows\\x.txt", "absolute"),
        ("~/x", "absolute"),
        ("a/../../x", "'..'"),
        (".git/hooks/pre-commit", ".git"),
        ("sub/.GIT/config", ".git"),
        ("", "no file path"),
        ("a\x00b", "control"),
        (".", "folder itself"),
    ],
)
def test_unsafe_paths_are_refused(tmp_path: Path, raw: str, words: str) -> None:
    with pytest.raises(UnsafePathError, match=None) as caught:
        resolve_in_folder(tmp_path, raw)
    assert words.lower() in str(caught.value).lower()


def test_symlink_loop_is_refused_not_raised(tmp_path: Path) -> None:
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    with pytest.raises(UnsafePathError):
        resolve_in_folder(tmp_path, "loop")


def test_new_file_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    with pytest.raises(UnsafePathError, match="is a file"):
        resolve_in_folder(tmp_path, "a.txt/b.txt")


# Text files --------------------------------------------------------------------------------------


def test_split_lines_only_breaks_on_newlines() -> None:
    assert split_lines("a\x0bb\x0cc\u2028d\re\r\nf\ng") == [
        "a\x0bb\x0cc\u2028d\r",
        "e\r\n",
        "f\n",
        "g",
    ]


def test_decode_refuses_utf16_and_binary() -> None:
    with pytest.raises(EditError, match="UTF-16"):
        decode("hi".encode("utf-16"), "a.txt")
    with pytest.raises(EditError, match="binary"):
        decode(b"ab\x00cd", "a.bin")


# Proposal and hunks ------------------------------------------------------------------------------


def _two_hunk_reply() -> tuple[str, str]:
    original = "".join(f"line {i}\n" for i in range(1, 21))
    reply = (
        "f.txt\n<<<<<<< SEARCH\nline 2\n=======\nline two\n>>>>>>> REPLACE\n\n"
        "f.txt\n<<<<<<< SEARCH\nline 18\n=======\nline eighteen\n>>>>>>> REPLACE\n"
    )
    return original, reply


def test_hunks_compose_only_accepted_changes(tmp_path: Path) -> None:
    original, reply = _two_hunk_reply()
    (tmp_path / "f.txt").write_text(original)
    proposal = propose(tmp_path, reply)
    (change,) = proposal.files
    assert change.kind is ChangeKind.MODIFY
    assert len(change.hunks) == 2
    assert not change.writes  # nothing accepted yet
    change.set_status(0, HunkStatus.ACCEPTED)
    change.set_status(1, HunkStatus.REJECTED)
    assert change.final_bytes() == original.replace("line 2\n", "line two\n").encode()
    change.set_hunk_text(1, "line XVIII")
    change.set_status(1, HunkStatus.ACCEPTED)
    assert change.hunks[1].edited
    expected = original.replace("line 2\n", "line two\n").replace("line 18\n", "line XVIII\n")
    assert change.final_bytes() == expected.encode()
    change.reset_hunk(1)
    assert not change.hunks[1].edited


def test_proposal_writes_nothing(tmp_path: Path) -> None:
    original, reply = _two_hunk_reply()
    (tmp_path / "f.txt").write_text(original)
    before = sorted(p.name for p in tmp_path.iterdir())
    proposal = propose(tmp_path, reply + "\nnew.txt\n```\nhello\n```\n")
    assert [b.status for b in proposal.blocks] == [BlockStatus.APPLIED] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "f.txt").read_text() == original


def test_unified_diff_names_files(tmp_path: Path) -> None:
    original, reply = _two_hunk_reply()
    (tmp_path / "f.txt").write_text(original)
    diff = propose(tmp_path, reply).unified_diff()
    assert "--- a/f.txt" in diff and "+line two" in diff and "-line 18" in diff


def test_deletion_cannot_be_edited(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x\n")
    change = propose(tmp_path, "DELETE FILE f.txt\n").files[0]
    assert change.kind is ChangeKind.DELETE
    with pytest.raises(EditError, match="reject it"):
        change.set_hunk_text(0, "y")


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EditError, match="does not exist"):
        propose(tmp_path / "nope", "x")


# Prompt ------------------------------------------------------------------------------------------


def test_edit_format_by_model_and_file_size() -> None:
    assert choose_edit_format(500_000_000, [4000]) is EditFormat.WHOLE_FILE
    assert choose_edit_format(32_000_000_000, [4000]) is EditFormat.SEARCH_REPLACE
    assert choose_edit_format(500_000_000, [60_000]) is EditFormat.SEARCH_REPLACE
    assert choose_edit_format(None, [4000]) is EditFormat.SEARCH_REPLACE
    assert choose_edit_format(70_000_000_000, [300]) is EditFormat.WHOLE_FILE
    assert choose_edit_format(None, []) is EditFormat.WHOLE_FILE


@pytest.mark.parametrize("edit_format", list(EditFormat))
def test_prompt_examples_parse_as_edits(edit_format: EditFormat, tmp_path: Path) -> None:
    """The example in each prompt is itself an edit the parser understands and can apply."""
    prompt = edit_system_prompt(edit_format)
    example = prompt[prompt.index("Example:") :]
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "greet.py").write_text('def greet(name):\n    return "Hello " + name\n')
    proposal = propose(tmp_path, example)
    assert [b.status for b in proposal.blocks] == [BlockStatus.APPLIED]
    proposal.accept_all()
    final = proposal.files[0].final_bytes()
    assert final == b'def greet(name):\n    return "Hi " + name\n'
