"""What failed, for the model and for the repeat check: failing test names and the output's tail.

A test run's output is far too long to send back whole, and its end is where runners summarise
what failed. The summary names the failing tests (pytest, go test, cargo test, jest/npm and
unittest styles are recognised; anything else still gets the tail) and then as much of the end of
the output as fits the token budget. Paths of the scratch copy are shown relative, as the model
knows the files.

The *signature* of a failure decides "the same failure twice": the failing test names plus the
last lines of output with what changes from run to run anyway (timings, memory addresses, the
scratch path) masked. Any real change (another assertion value, another test failing) differs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from app.core.fix_loop.runner import CommandRun

TokenCounter = Callable[[str], int]
DEFAULT_SUMMARY_TOKENS = 1200
MAX_NAMED_TESTS = 30
SIGNATURE_LINES = 12

_FAILING = [
    re.compile(r"^(?:FAILED|ERROR) (\S+)"),  # pytest short summary
    re.compile(r"^--- FAIL: (\S+)"),  # go test
    re.compile(r"^test (\S+) \.\.\. FAILED"),  # cargo test
    re.compile(r"^\s*[✕×] (.+?)(?: \(\d+ ?m?s\))?$"),  # jest
    re.compile(r"^(?:FAIL|ERROR): (\S+ \(\S+\))"),  # unittest
]
_TIMING = re.compile(r"\b\d+(?:\.\d+)?\s?(?:s|ms|sec|seconds)\b")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


@dataclass(frozen=True, slots=True)
class FailureSummary:
    failing: tuple[str, ...]  # failing test names as the runner printed them
    text: str  # what goes back to the model
    signature: str


def failing_tests(output: str) -> tuple[str, ...]:
    found: list[str] = []
    for line in output.splitlines():
        for pattern in _FAILING:
            match = pattern.match(line)
            if match and match.group(1) not in found:
                found.append(match.group(1))
                break
    return tuple(found)


def relative_output(output: str, scratch_root: str) -> str:
    """The output with the scratch copy's absolute path taken out of file paths."""
    root = scratch_root.rstrip("/\\")
    return output.replace(root + "/", "").replace(root + "\\", "").replace(root, ".")


def signature(run: CommandRun, failing: tuple[str, ...]) -> str:
    lines = [line.rstrip() for line in run.output.splitlines() if line.strip()]
    tail = [_ADDRESS.sub("0x…", _TIMING.sub("…s", line)) for line in lines[-SIGNATURE_LINES:]]
    state = "timeout" if run.timed_out else f"exit {run.exit_code}"
    return "\n".join([state, *sorted(failing), "--", *tail])


def summarise(
    run: CommandRun,
    count_tokens: TokenCounter,
    budget_tokens: int = DEFAULT_SUMMARY_TOKENS,
    *,
    scratch_root: str = "",
) -> FailureSummary:
    """The failing tests and the tail of `run`'s output, within `budget_tokens` tokens."""
    output = relative_output(run.output, scratch_root) if scratch_root else run.output
    shown = CommandRun(run.command, run.exit_code, output, run.seconds, run.timed_out,
                       run.dropped_bytes)  # fmt: skip
    failing = failing_tests(output)
    head = [f"The command `{run.command}` {run.describe()}."]
    if failing:
        names = list(failing[:MAX_NAMED_TESTS])
        more = len(failing) - len(names)
        head.append("Failing: " + ", ".join(names) + (f" and {more} more" if more else "") + ".")
    intro = "\n".join(head)
    # Tokens do not add up across a join (a tokenizer may merge across it), so the whole text is
    # measured and the tail shortened until it fits.
    room = budget_tokens - count_tokens(intro) - 8
    while True:
        tail = _tail_within(output, count_tokens, room)
        text = intro + ("\nThe end of its output:\n```\n" + tail + "\n```" if tail else "")
        over = count_tokens(text) - budget_tokens
        if over <= 0 or not tail:
            break
        room -= over
    return FailureSummary(failing, text, signature(shown, failing))


def _tail_within(output: str, count_tokens: TokenCounter, budget: int) -> str:
    """The longest run of final lines of `output` that fits `budget` tokens."""
    if budget <= 0:
        return ""
    lines = output.rstrip().splitlines()
    # A first cut by characters (no tokenizer yields more than a token per character), then
    # whole lines are dropped from the front until the count fits.
    text = "\n".join(lines)[-budget * 4 :]
    kept = text.splitlines()
    if len(text) < len("\n".join(lines)) and len(kept) > 1:
        kept = kept[1:]  # the first line was cut in the middle
    while kept:
        candidate = "\n".join(kept)
        tokens = count_tokens(candidate)
        if tokens <= budget:
            return candidate
        if len(kept) == 1:  # one long line: keep its end
            line = kept[0]
            keep = int(len(line) * budget / tokens * 0.9)
            kept = [line[-keep:]] if keep > 0 else []
            continue
        share = max(1, int(len(kept) * (1 - budget / tokens)))
        kept = kept[share:]
    return ""
