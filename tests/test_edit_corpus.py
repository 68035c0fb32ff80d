"""Every case of the edit corpus: block outcomes, exact bytes after apply and after undo."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.edit_corpus_support import CORPUS_DIR, Case, load_case, load_corpus, run_case

CASES = load_corpus()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    names = {case.name for case in CASES}
    assert len(names) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_corpus_case(case: Case, tmp_path: Path) -> None:
    outcome = run_case(case, tmp_path)
    assert not outcome.data_loss, outcome.data_loss
    assert outcome.passed, "\n".join(outcome.problems)


def test_a_wrong_expectation_is_caught(tmp_path: Path) -> None:
    """The runner is not a rubber stamp: a case whose expected bytes are wrong fails."""
    case = load_case(CORPUS_DIR / "001_exact_single.case")
    case.after["calc.py"] = type(case.after["calc.py"])(b"def add(a, b):\n    return b + a\n")
    outcome = run_case(case, tmp_path)
    assert not outcome.passed
    assert any("calc.py differs" in problem for problem in outcome.problems)
