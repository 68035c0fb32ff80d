"""Repo map: top-level symbols from real files in many languages, never an exception."""

from __future__ import annotations

import time
from pathlib import Path

from app.core.workspace.repo_map import (
    MAX_SYMBOLS,
    file_symbols,
    map_lines,
    render_entry,
    source_symbols,
)


def rendered(name: str, source: str) -> list[str]:
    return [symbol.render() for symbol in source_symbols(name, source)]


def test_python_top_level_symbols_via_ast(tmp_path: Path) -> None:
    source = (
        "import os\nMAX_SIZE = 10\n_PRIVATE = 1\nname: str = 'x'\nTIMEOUT: float = 1.5\n\n"
        "class Engine(Base):\n    LIMIT = 3\n    def load(self): ...\n"
        "    async def run(self): ...\n"
        "    def _hidden(self): ...\n    class Inner: ...\n\n"
        "def helper(a, b):\n    def nested(): ...\n\nasync def fetch(): ...\n"
        "def _private(): ...\n"
    )
    path = tmp_path / "engine.py"
    path.write_text(source)
    assert [s.render() for s in file_symbols(path)] == [
        "MAX_SIZE",
        "TIMEOUT",
        "class Engine: load, run, Inner",
        "def helper",
        "async def fetch",
    ]


def test_python_with_a_syntax_error_falls_back_to_the_lexer() -> None:
    source = "class Broken:\n    def method(self:\n        pass\n\ndef later():\n    return 1\n"
    names = rendered("broken.py", source)
    assert any("Broken" in n for n in names)
    assert any("later" in n for n in names)


def test_other_languages_through_pygments() -> None:
    assert rendered("a.js", "export function foo(a) { function inner() {} }\n"
                    "class Bar extends Baz { method() { call() } other() {} }\n") == [
        "function foo", "class Bar: method, other",
    ]  # fmt: skip
    assert rendered("a.go", "package main\nfunc Foo(a int) int { return 1 }\n"
                    "type Bar struct { x int }\n") == ["func Foo", "type Bar"]  # fmt: skip
    assert rendered("a.rs", "pub fn foo() -> i32 { 1 }\nstruct Bar { x: i32 }\n"
                    "impl Bar { fn method(&self) {} }\n") == [
        "fn foo", "struct Bar", "impl Bar: method",
    ]  # fmt: skip
    assert rendered("A.java", "public class Foo { public void bar() {} int baz() { return 1; } }\n"
                    ) == ["class Foo: bar, baz"]  # fmt: skip
    assert rendered("a.cpp", "namespace n { class Foo { void bar(); }; int baz() { return 0; } }\n"
                    ) == ["class Foo: bar", "function baz"]  # fmt: skip
    assert rendered("a.ts", "interface Thing { a: string }\ntype Alias = string;\n") == [
        "interface Thing", "type Alias",
    ]  # fmt: skip


def test_files_without_symbols_are_just_their_path(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Title\n\nfunction notcode() {}\n")
    (tmp_path / "data.unknownext").write_text("whatever\n")
    entries = dict(map_lines(tmp_path, ["README.md", "data.unknownext", "missing.py"]))
    assert entries == {
        "README.md": "README.md\n",
        "data.unknownext": "data.unknownext\n",
        "missing.py": "missing.py\n",  # vanished since the scan: still mapped, no error
    }


def test_odd_encodings_are_read(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes("# café\nclass Crème:\n    pass\n".encode("latin-1"))
    (tmp_path / "wide.py").write_bytes("def ünïcode():\n    return 1\n".encode("utf-16"))
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbfdef with_bom():\n    pass\n")
    assert [s.render() for s in file_symbols(tmp_path / "latin.py")] == ["class Crème"]
    assert [s.render() for s in file_symbols(tmp_path / "wide.py")] == ["def ünïcode"]
    assert [s.render() for s in file_symbols(tmp_path / "bom.py")] == ["def with_bom"]


def test_garbage_and_huge_files_are_bounded(tmp_path: Path) -> None:
    (tmp_path / "noise.js").write_bytes(bytes(range(256)) * 400)
    (tmp_path / "noise.py").write_bytes(b"\x00\xff{{{((" * 10_000)
    huge = "".join(f"function f{i}(a) {{ return a + {i} }}\n" for i in range(100_000))
    (tmp_path / "huge.js").write_text(huge)
    start = time.perf_counter()
    assert isinstance(file_symbols(tmp_path / "noise.js"), list)
    assert isinstance(file_symbols(tmp_path / "noise.py"), list)
    symbols = file_symbols(tmp_path / "huge.js")
    assert time.perf_counter() - start < 5
    assert len(symbols) == MAX_SYMBOLS
    assert symbols[0].render() == "function f0"


def test_members_are_capped_in_the_rendered_line() -> None:
    methods = "".join(f"    def m{i}(self): ...\n" for i in range(20))
    (symbol,) = source_symbols("big.py", f"class Big:\n{methods}")
    assert symbol.render().endswith("m11, +8 more")
    assert render_entry("big.py", [symbol]) == f"big.py:\n  {symbol.render()}\n"
