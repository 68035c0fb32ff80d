"""Context from a real folder: ticked files in full, a map of the rest, the budget respected, and
every path not in the prompt reported with its reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.core.llm.engine import Engine
from app.core.workspace.context import NO_ROOM, build_context, estimate_tokens
from app.core.workspace.scan import scan_all
from tests.workspace_support import make_sample_folder


def _project(tmp_path: Path, n_modules: int = 5) -> tuple[Path, list[str]]:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "core.py").write_text("def core():\n    return 1\n")
    (root / "pkg" / "big.py").write_text("".join(f"VALUE_{i} = {i}\n" for i in range(3000)))
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("Use ```code``` and ````more```` fences.\n")
    for i in range(n_modules):
        (root / "lib").mkdir(exist_ok=True)
        (root / "lib" / f"mod{i:03d}.py").write_text(f"class Thing{i}:\n    def go(self): ...\n")
    return root, [f.path for f in scan_all(root).files]


def test_ticked_files_in_full_then_a_map_of_the_rest(tmp_path: Path) -> None:
    root, files = _project(tmp_path)
    ctx = build_context(root, files, ["pkg/core.py", "docs/guide.md"], 10_000)
    assert [i.path for i in ctx.included] == ["pkg/core.py", "docs/guide.md"]
    assert "### pkg/core.py\n```python\ndef core():\n    return 1\n```\n" in ctx.text
    # A fence longer than any backtick run inside the file keeps the file intact.
    assert (
        "### docs/guide.md\n`````markdown\nUse ```code``` and ````more```` fences.\n`````\n"
        in ctx.text
    )
    assert ctx.mapped[0] == "pkg/big.py"  # a neighbour of a ticked file comes first
    assert "lib/mod003.py:\n  class Thing3: go\n" in ctx.text
    assert set(ctx.mapped) == set(files) - {"pkg/core.py", "docs/guide.md"}
    assert ctx.left_out == []
    assert ctx.tokens == estimate_tokens(ctx.text) <= ctx.budget
    assert "Not shown" not in ctx.text and "not listed" not in ctx.text


def test_a_file_that_does_not_fit_is_left_out_whole_and_reported(tmp_path: Path) -> None:
    root, files = _project(tmp_path)
    big_text = (root / "pkg" / "big.py").read_text()
    ctx = build_context(root, files, ["pkg/big.py", "pkg/core.py"], 2_000)
    assert [i.path for i in ctx.included] == ["pkg/core.py"]  # the smaller one still fits
    (big,) = [item for item in ctx.left_out if item.path == "pkg/big.py"]
    match = re.fullmatch(
        r"does not fit the token budget \(needs ([\d,]+), ([\d,]+) left\)", big.reason
    )
    assert match is not None, big.reason
    assert int(match[1].replace(",", "")) >= estimate_tokens(big_text) > 2_000
    assert "VALUE_0 = 0" not in ctx.text  # not a single line of it: never cut mid-file
    assert "pkg/big.py" in ctx.mapped  # but the model still learns it exists
    assert f"Not shown: pkg/big.py ({big.reason})." in ctx.text
    assert ctx.tokens <= 2_000


def test_map_overflow_is_reported_and_every_path_is_accounted_for(tmp_path: Path) -> None:
    root, files = _project(tmp_path, n_modules=400)
    ctx = build_context(root, files, ["pkg/core.py"], 600)
    assert ctx.tokens <= 600
    assert ctx.mapped and any(item.reason == NO_ROOM for item in ctx.left_out)
    in_full = {i.path for i in ctx.included}
    out = {i.path for i in ctx.left_out}
    assert in_full | set(ctx.mapped) | out == set(files)
    assert not in_full & set(ctx.mapped) and not set(ctx.mapped) & out
    n_other = sum(1 for item in ctx.left_out if item.reason == NO_ROOM)
    assert f"{n_other:,} more file(s) not listed: {NO_ROOM}." in ctx.text
    assert ctx.summary().startswith(f"1 file(s) in full, {len(ctx.mapped)} in the map")


def test_secrets_and_paths_outside_are_refused_even_when_asked_for(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    files = [f.path for f in scan_all(root).files]
    wanted = [".env", "../outside.txt", "/etc/passwd", "build/out.js", "blob", "main.py", "nope.py"]
    ctx = build_context(root, files, wanted, 50_000)
    assert [i.path for i in ctx.included] == ["main.py"]
    reasons = {item.path: item.reason for item in ctx.left_out}
    assert reasons[".env"].startswith("looks like a secret")
    assert "not a path inside the folder" in reasons["../outside.txt"]
    assert "not a path inside the folder" in reasons["/etc/passwd"]
    assert reasons["build/out.js"] == "inside build/: ignored by .gitignore (pattern: build/)"
    assert reasons["blob"] == "binary file (contains NUL bytes)"
    assert reasons["nope.py"] == "nope.py is not a file in the folder."
    assert "abc123" not in ctx.text and "outside the folder" not in ctx.text


def test_non_utf8_files_are_included_with_their_encoding(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    files = [f.path for f in scan_all(root).files]
    ctx = build_context(root, files, ["latin1.py", "utf16.txt"], 5_000)
    encodings = {i.path: i.encoding for i in ctx.included}
    assert encodings == {"latin1.py": "latin-1", "utf16.txt": "utf-16"}
    assert "NAME = 'crème'" in ctx.text and "hello ütf-16" in ctx.text


def test_zero_budget_leaves_everything_out(tmp_path: Path) -> None:
    root, files = _project(tmp_path)
    ctx = build_context(root, files, ["pkg/core.py"], 0)
    assert ctx.text == "" and ctx.tokens == 0 and not ctx.included and not ctx.mapped
    assert {item.path for item in ctx.left_out} == set(files)


@pytest.mark.model
def test_budget_holds_with_the_models_own_tokenizer(tmp_path: Path, engine: Engine) -> None:
    root, files = _project(tmp_path, n_modules=200)
    ctx = build_context(root, files, ["pkg/core.py", "docs/guide.md"], 700, engine.count_tokens)
    assert ctx.tokens == engine.count_tokens(ctx.text)
    assert ctx.tokens <= 700
    assert len(ctx.included) == 2 and ctx.mapped and ctx.left_out
