"""Apply rate of the edit corpus: the share of model-style replies applied exactly as expected.

For every case in `tests/edit_corpus/` (see `tests/edit_corpus_support.py` for the format) it
proposes the reply's edits in a fresh temporary folder, checks each block's outcome (applied with
the expected method, or refused for the expected reason), applies everything accepted, compares
every byte of the folder with the expected files, undoes, and checks the folder is back exactly.

A data-loss event is any moment a file holds bytes that are neither its old nor its expected new
ones (after a propose, a refused or failed apply, an apply, or an undo), or a file outside the
project changes. Goals: 100% of the corpus as expected, 0 data-loss events.

Run: .venv/bin/python bench/apply_rate.py [--verbose]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package

from tests.edit_corpus_support import Outcome, load_corpus, run_case


def _category(name: str) -> str:
    """A case's topic from its file name ("019_ambiguous_repeat" -> "ambiguous")."""
    return name.split("_", 2)[1] if "_" in name else name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="list every case")
    args = parser.parse_args(argv)
    cases = load_corpus()
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leancoder-apply-rate-") as scratch:
        for number, case in enumerate(cases):
            workdir = Path(scratch) / f"{number:03d}"
            workdir.mkdir()
            outcomes.append(run_case(case, workdir))
    seconds = time.perf_counter() - started
    passed = sum(o.passed for o in outcomes)
    losses = sum(len(o.data_loss) for o in outcomes)
    applied = sum(
        1 for case in cases for block in case.expect["blocks"] if block.startswith("applied")
    )
    refused = sum(
        1 for case in cases for block in case.expect["blocks"] if block.startswith("refused")
    )
    by_topic: Counter[str] = Counter(_category(c.name) for c in cases)
    failed_by_topic: Counter[str] = Counter(_category(o.name) for o in outcomes if not o.passed)
    rows = [
        ("measure", "value", "goal"),
        ("cases", str(len(cases)), ">= 60"),
        ("as expected", f"{passed}/{len(cases)} ({passed / max(1, len(cases)):.1%})", "100%"),
        ("data-loss events", str(losses), "0"),
        ("blocks expected to apply", str(applied), ""),
        ("blocks expected to be refused", str(refused), ""),
        ("time", f"{seconds:.2f} s ({seconds / max(1, len(cases)) * 1000:.0f} ms per case)", ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = zip(row, widths, strict=True)
        print("  ".join(cell.ljust(width) for cell, width in cells).rstrip())
    if failed_by_topic:
        topics = [f"{t} {failed_by_topic[t]}/{by_topic[t]}" for t in sorted(failed_by_topic)]
        print("\nfailing topics: " + ", ".join(topics))
    for outcome in outcomes:
        if args.verbose or not outcome.passed:
            mark = "ok  " if outcome.passed else "FAIL"
            print(f"{mark} {outcome.name}")
            for problem in [*outcome.problems, *outcome.data_loss]:
                print(f"       {problem}")
    return 0 if passed == len(cases) and losses == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
