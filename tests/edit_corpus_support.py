"""The edit corpus: model-style replies with their starting files and expected results.

Each `tests/edit_corpus/*.case` file holds one case in sections that start with `%%% `:

    %%% expect              JSON: {"blocks": ["applied:exact", "refused:<reason text>"], ...}
    %%% before PATH [flags] a starting file
    %%% reply [flags]       the model's reply, exactly
    %%% after PATH [flags]  a file's expected bytes after accepting everything and applying

Lines before the first section (starting with `#`) describe the case. A section's text is its
lines, each ending in "\\n". Flags turn that text into exact bytes: `crlf` ("\\n" -> "\\r\\n"),
`bom` (a UTF-8 BOM), `latin1` (Latin-1 instead of UTF-8), `noeol` (no final line break),
`escaped` (backslash escapes such as \\r, \\t, \\x00 are decoded), `mode=755` (permission bits).
Files without an `after` section must be left as they were; `expect.deleted` lists files the
edit removes. `expect.confirm` marks a change that needs confirmation (a big deletion);
`expect.setup` creates symlinks ({"symlinks": {"link": "target"}}, where "{outside}" is a folder
next to the project), FIFOs ({"fifos": ["name"]}) and files outside the project ({"outside":
{"name": "text"}}).

`run_case` proposes, checks every block's outcome, applies (confirming where expected), compares
every byte of the folder with the expectation, and undoes, checking the folder is back exactly as
it started. It reports problems and data-loss events (a file left with bytes that are neither its
old nor its expected ones, a file outside the project touched, an undo that does not restore).
"""

from __future__ import annotations

import codecs
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.edits import (
    ConfirmationRequiredError,
    EditError,
    Proposal,
    apply_proposal,
    propose,
    undo_last,
)
from app.core.edits.fsio import current_umask

CORPUS_DIR = Path(__file__).parent / "edit_corpus"
SECTION = "%%% "


@dataclass(frozen=True, slots=True)
class CaseFile:
    data: bytes
    mode: int | None = None


@dataclass(slots=True)
class Case:
    name: str
    description: str
    expect: dict[str, Any]
    reply: str
    before: dict[str, CaseFile] = field(default_factory=dict)
    after: dict[str, CaseFile] = field(default_factory=dict)


def _file_bytes(text: str, flags: list[str]) -> CaseFile:
    mode = None
    for flag in flags:
        if flag.startswith("mode="):
            mode = int(flag.split("=", 1)[1], 8)
    if "escaped" in flags:  # the escapes spell every byte, the final line break included
        text = text.removesuffix("\n")
        text = codecs.decode(text.encode("latin-1", "backslashreplace"), "unicode_escape")
    elif "noeol" in flags:
        text = text.removesuffix("\n")
    if "crlf" in flags:
        text = text.replace("\n", "\r\n")
    data = text.encode("latin-1" if "latin1" in flags else "utf-8")
    if "bom" in flags:
        data = b"\xef\xbb\xbf" + data
    return CaseFile(data, mode)


def load_case(path: Path) -> Case:
    text = path.read_text(encoding="utf-8")
    description: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        if line.startswith(SECTION):
            sections.append((line[len(SECTION) :].strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            description.append(line.lstrip("# "))
    case = Case(path.stem, " ".join(description).strip(), {}, "")
    for header, lines in sections:
        body = "".join(line + "\n" for line in lines)
        kind, *rest = header.replace("[", " ").replace("]", " ").replace(",", " ").split()
        if kind == "expect":
            case.expect = json.loads(body)
        elif kind == "reply":
            case.reply = _file_bytes(body, rest).data.decode("utf-8")
        elif kind in ("before", "after"):
            name, flags = rest[0], rest[1:]
            getattr(case, kind)[name] = _file_bytes(body, flags)
        else:
            raise ValueError(f"{path.name}: unknown section {header!r}")
    if "blocks" not in case.expect:
        raise ValueError(f"{path.name}: the expect section lists no blocks")
    return case


def load_corpus(folder: Path = CORPUS_DIR) -> list[Case]:
    return [load_case(path) for path in sorted(folder.glob("*.case"))]


@dataclass(slots=True)
class Outcome:
    name: str
    problems: list[str] = field(default_factory=list)
    data_loss: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and not self.data_loss


Snapshot = dict[str, tuple[str, bytes, int]]  # path -> (kind, bytes or link target, mode)


def snapshot(root: Path) -> Snapshot:
    """Every entry under `root`: regular files with bytes and mode, links, FIFOs, folders."""
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", os.readlink(path).encode(), 0)
            elif stat.S_ISREG(info.st_mode):
                found[rel] = ("file", path.read_bytes(), info.st_mode & 0o7777)
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("dir", b"", 0)
            else:
                found[rel] = ("special", b"", 0)
    return found


@contextmanager
def data_dir_at(path: Path) -> Iterator[None]:
    """LeanCoder's data (the undo store) in `path` for the duration."""
    old = os.environ.get("LEANCODER_DATA_DIR")
    os.environ["LEANCODER_DATA_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LEANCODER_DATA_DIR", None)
        else:
            os.environ["LEANCODER_DATA_DIR"] = old


def materialise(case: Case, workdir: Path) -> tuple[Path, Path]:
    root, outside = workdir / "project", workdir / "outside"
    root.mkdir(parents=True)
    outside.mkdir()
    setup = case.expect.get("setup", {})
    for name, text in setup.get("outside", {}).items():
        (outside / name).write_text(text, encoding="utf-8")
    for name, file in case.before.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.data)
        os.chmod(path, file.mode if file.mode is not None else 0o644)
    for link, target in setup.get("symlinks", {}).items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target.replace("{outside}", str(outside)), root / link)
    for name in setup.get("fifos", []):
        os.mkfifo(root / name)
    return root, outside


def expected_snapshot(case: Case, before: Snapshot) -> Snapshot:
    expected = {
        k: v for k, v in before.items() if not k.startswith("project/") or k[8:] not in
        case.expect.get("deleted", [])
    }  # fmt: skip
    for name, file in case.after.items():
        rel = f"project/{name}"
        parts = rel.split("/")
        for depth in range(2, len(parts)):
            expected.setdefault("/".join(parts[:depth]), ("dir", b"", 0))
        old_mode = before[rel][2] if rel in before else None
        new_mode = 0o666 & ~current_umask()
        mode = file.mode if file.mode is not None else old_mode
        mode = mode if mode is not None else new_mode
        expected[rel] = ("file", file.data, mode)
    for name in case.expect.get("deleted", []):
        expected.pop(f"project/{name}", None)
    return expected


def _check_blocks(case: Case, proposal: Proposal, outcome: Outcome) -> None:
    wanted: list[str] = case.expect["blocks"]
    got = proposal.blocks
    if len(got) != len(wanted):
        outcome.problems.append(
            f"expected {len(wanted)} blocks, got {len(got)}: {[b.describe() for b in got]}"
        )
        return
    for want, block in zip(wanted, got, strict=True):
        status, _, detail = want.partition(":")
        if block.status.value != status:
            outcome.problems.append(f"expected {want!r}, got {block.describe()!r}")
        elif status == "refused" and detail.lower() not in block.reason.lower():
            outcome.problems.append(f"expected a refusal mentioning {detail!r}: {block.reason!r}")
        elif status != "refused" and detail and block.method != detail:
            outcome.problems.append(f"expected method {detail!r}, got {block.describe()!r}")
    if case.expect.get("closest") and not any(b.closest for b in proposal.refused):
        outcome.problems.append("expected the closest real lines for a refused block")


def _compare(label: str, got: Snapshot, want: Snapshot, before: Snapshot, outcome: Outcome) -> None:
    for path in sorted(set(got) | set(want)):
        if got.get(path) == want.get(path):
            continue
        outcome.problems.append(f"{label}: {path} differs ({_short(got.get(path))} != wanted "
                                f"{_short(want.get(path))})")  # fmt: skip
        if path in before and got.get(path) not in (before[path], want.get(path)):
            outcome.data_loss.append(f"{label}: {path} holds neither its old nor its new bytes")


def _short(entry: tuple[str, bytes, int] | None) -> str:
    if entry is None:
        return "absent"
    kind, data, mode = entry
    return f"{kind} {data[:60]!r}{'...' if len(data) > 60 else ''} mode {oct(mode)}"


def run_case(case: Case, workdir: Path) -> Outcome:
    outcome = Outcome(case.name)
    data = workdir / "data"
    root, _ = materialise(case, workdir)
    before = {k: v for k, v in snapshot(workdir).items() if not k.startswith("data")}

    def now() -> Snapshot:
        return {k: v for k, v in snapshot(workdir).items() if not k.startswith("data")}

    with data_dir_at(data):
        try:
            proposal = propose(root, case.reply)
        except EditError as exc:
            outcome.problems.append(f"propose raised {exc!r}")
            return outcome
        _check_blocks(case, proposal, outcome)
        _compare("after propose", now(), before, before, outcome)
        proposal.accept_all()
        needs_confirmation = bool(proposal.big_deletions())
        if needs_confirmation != bool(case.expect.get("confirm", False)):
            outcome.problems.append(f"needs confirmation: {needs_confirmation}, expected "
                                    f"{bool(case.expect.get('confirm', False))}")  # fmt: skip
        if needs_confirmation:
            try:
                apply_proposal(proposal)
                outcome.problems.append("a big deletion was applied without confirmation")
            except ConfirmationRequiredError:
                _compare("after an unconfirmed apply", now(), before, before, outcome)
        try:
            result = apply_proposal(proposal, confirm_big_deletions=True)
        except EditError as exc:
            outcome.problems.append(f"apply raised {exc!r}")
            _compare("after a failed apply", now(), before, before, outcome)
            return outcome
        _compare("after apply", now(), expected_snapshot(case, before), before, outcome)
        if result.change_set is not None:
            undo_last(root)
        _compare("after undo", now(), before, before, outcome)
    return outcome
