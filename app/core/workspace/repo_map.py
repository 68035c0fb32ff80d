"""A compact map of a folder's files: each path and its top-level symbols.

Python is read with `ast` (top-level functions, classes with their methods, UPPER_CASE constants;
names starting with "_" are private and left out).
Other languages go through the pygments lexer for the file name: names it tags as functions or
classes, or that follow a declaration keyword (`function`, `func`, `fn`, `struct`...), at the top
level or directly inside a class body. Both are bounded (bytes read, tokens lexed, symbols kept)
and never raise: a file with a syntax error, an odd encoding or no known lexer is just its path.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.token import Keyword, Name, Punctuation, _TokenType, is_token_subtype
from pygments.util import ClassNotFound

from app.core.workspace.text import decode_source

MAP_READ_BYTES = 256 * 1024  # enough for any hand-written module; beyond, the head is mapped
LEX_CHARS = 64 * 1024
LEX_TOKENS = 20_000
MAX_SYMBOLS = 40
MAX_MEMBERS = 12

_DECLARATIONS = frozenset(
    {"function", "func", "fn", "fun", "def", "class", "struct", "interface", "trait", "enum",
     "type", "union", "module", "object", "protocol", "record", "namespace"}
)  # fmt: skip
_CONTAINERS = frozenset(
    {"class", "struct", "interface", "trait", "enum", "object", "protocol", "record", "impl"}
)
_TRANSPARENT = frozenset({"namespace", "module"})  # their bodies hold top-level symbols
# Extensions pygments would guess wrongly or uselessly for (data, prose): no symbols wanted.
_NO_SYMBOLS = frozenset({".txt", ".md", ".rst", ".json", ".lock", ".csv", ".svg", ".xml", ".log"})


@dataclass(frozen=True, slots=True)
class Symbol:
    kind: str  # "def", "class", "const", or the language's keyword ("func", "struct"...)
    name: str
    members: tuple[str, ...] = ()

    def render(self) -> str:
        head = self.name if self.kind == "const" else f"{self.kind} {self.name}"
        if not self.members:
            return head
        shown = list(self.members[:MAX_MEMBERS])
        if len(self.members) > MAX_MEMBERS:
            shown.append(f"+{len(self.members) - MAX_MEMBERS} more")
        return f"{head}: {', '.join(shown)}"


def file_symbols(path: str | os.PathLike[str]) -> list[Symbol]:
    """Top-level symbols of a source file; [] when there are none or it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAP_READ_BYTES)
    except OSError:
        return []
    name = os.path.basename(os.fspath(path))
    return source_symbols(name, decode_source(data).text)


def source_symbols(name: str, text: str) -> list[Symbol]:
    """Symbols of source text, the language chosen by the file name."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _NO_SYMBOLS:
        return []
    if suffix in (".py", ".pyi", ".pyw"):
        found = _python_symbols(text)
        if found is not None:
            return found[:MAX_SYMBOLS]
    lexer = lexer_for(suffix or name)
    if lexer is None:
        return []
    return _lexed_symbols(lexer, text[:LEX_CHARS])


def render_entry(rel: str, symbols: Iterable[Symbol]) -> str:
    """A file's lines in the map: its path, then one indented line per symbol."""
    lines = [rel + ":" if symbols else rel]
    lines.extend(f"  {symbol.render()}" for symbol in symbols)
    return "\n".join(lines) + "\n"


def map_lines(root: str | os.PathLike[str], rel_paths: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(path, rendered entry) per file, computed lazily so a caller can stop at its budget."""
    for rel in rel_paths:
        yield rel, render_entry(rel, file_symbols(os.path.join(root, *rel.split("/"))))


def _python_symbols(text: str) -> list[Symbol] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the lexer still finds the names of a file mid-edit
    symbols: list[Symbol] = []
    for node in tree.body:
        if isinstance(node, _NAMED) and node.name.startswith("_"):
            continue  # private by convention: the map shows a module's interface
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            kind = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
            symbols.append(Symbol(kind, node.name))
        elif isinstance(node, ast.ClassDef):
            members = tuple(
                child.name
                for child in node.body
                if isinstance(child, _NAMED) and not child.name.startswith("_")
            )
            symbols.append(Symbol("class", node.name, members))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and _is_constant_name(target.id):
                    symbols.append(Symbol("const", target.id))
    return symbols


_NAMED = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _is_constant_name(name: str) -> bool:
    return name.isupper() and not name.startswith("_")


@lru_cache(maxsize=512)
def lexer_for(key: str) -> Lexer | None:
    """The pygments lexer for a suffix (".go") or a bare name ("Makefile"); None if unknown."""
    filename = f"x{key}" if key.startswith(".") else key
    try:
        lexer: Lexer = get_lexer_for_filename(filename, stripnl=False, ensurenl=False)
        return lexer
    except ClassNotFound:
        return None


def _lexed_symbols(lexer: Lexer, text: str) -> list[Symbol]:
    symbols: list[Symbol] = []
    seen: set[tuple[str, str]] = set()
    braces: list[bool] = []  # one per open "{": True when it opens a namespace (transparent)
    depth = 0  # open braces that are not namespaces
    keyword = ""  # the last declaration keyword, until a name or punctuation takes it
    transparent_next = False  # the next "{" opens a namespace or module
    candidate = ""  # a bare name in a class body: a method if "(" follows
    container: tuple[int, list[str]] | None = None  # (index in symbols, its members)
    try:
        for n_tokens, (token, value) in enumerate(lexer.get_tokens(text)):
            if n_tokens >= LEX_TOKENS or len(symbols) >= MAX_SYMBOLS:
                break
            if not value.strip():
                continue
            if is_token_subtype(token, Punctuation):
                if candidate and value.startswith("(") and container is not None:
                    container[1].append(candidate)
                candidate, keyword = "", ""
                for char in value:
                    if char == "{":
                        braces.append(transparent_next)
                        depth += not transparent_next
                        transparent_next = False
                    elif char == "}" and braces:
                        depth -= not braces.pop()
                        if depth == 0 and container is not None:
                            _close(symbols, container)
                            container = None
                continue
            candidate = ""
            if is_token_subtype(token, Keyword):
                keyword = value.strip() if value.strip() in _DECLARATIONS | {"impl"} else ""
                continue
            kind = _declared_kind(token, keyword)
            keyword = ""
            if not value.isidentifier():
                continue
            if kind is None:
                if depth == 1 and container is not None and is_token_subtype(token, Name):
                    candidate = value
                continue
            if kind in _TRANSPARENT:
                transparent_next = True
            elif depth == 0 and (kind, value) not in seen:
                seen.add((kind, value))
                symbols.append(Symbol(kind, value))
                is_container = kind in _CONTAINERS or is_token_subtype(token, Name.Class)
                container = (len(symbols) - 1, []) if is_container else None
            elif depth == 1 and container is not None and kind not in _CONTAINERS:
                container[1].append(value)
    except Exception:  # a lexer bug on odd input must not break the map: keep what was found
        pass
    if container is not None:  # a class still open where lexing stopped
        _close(symbols, container)
    return symbols


def _close(symbols: list[Symbol], container: tuple[int, list[str]]) -> None:
    """Give a class-like symbol the members found in its body."""
    index, members = container
    symbols[index] = Symbol(symbols[index].kind, symbols[index].name, tuple(members))


def _declared_kind(token: _TokenType, keyword: str) -> str | None:
    """The kind of symbol a name token declares, or None when it declares nothing."""
    if is_token_subtype(token, Name.Function):
        return keyword if keyword and keyword not in _CONTAINERS else "function"
    if is_token_subtype(token, Name.Class):
        return keyword if keyword in _CONTAINERS else "class"
    if keyword and is_token_subtype(token, Name) and not is_token_subtype(token, Name.Builtin):
        return keyword
    return None
