"""Fix until the tests pass, over the bundled buggy projects: rounds, tokens, passing at the end.

For every project in `tests/fix_projects/` (each a few lines with one bug its own tests catch and
a `task.txt`) it copies the project to a temporary folder, runs the fix loop (`run_fix`, exactly
what `leancoder fix` and the window run) with the given model and budgets, and reports per run:
why it stopped, the rounds, thinking and answer tokens per round, whether the tests pass at the
end, and the wall time. It also checks that the project folder is byte-identical afterwards (the
loop only edits its scratch copy).

With the 135M starter this measures the mechanics (budgets, stops, test runs), not skill: it
rarely writes an edit block. For a real model:

    .venv/bin/python bench/fix_loop.py --model PATH/TO/qwen2.5-coder-7b-instruct-q4_k_m.gguf \
        --ctx 8192 --rounds 3 --task-budget 12000 --round-budget 4000

Run: .venv/bin/python bench/fix_loop.py [--model starter] [--git] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package

from app.core.fix_loop.loop import FixSettings, run_fix
from app.core.llm.engine import Engine, LoadOptions, SamplingParams
from app.core.models.starter import starter_model_path
from tests.fix_support import PROJECTS, PYTEST, copy_project, files_outside_git, folder_choice


def run_project(engine: Engine, name: str, settings: FixSettings, git: bool,
                sampling: SamplingParams) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fix-bench-") as where:
        folder = copy_project(name, Path(where), git=git)
        before = files_outside_git(folder)
        task = (folder / "task.txt").read_text().strip()
        started = time.perf_counter()
        events = run_fix(engine, folder_choice(folder), task, settings, sampling)
        report = None
        for event in events:
            if event.kind == "done":
                report = event.report
        assert report is not None
        seconds = time.perf_counter() - started
        final = report.final
        return {
            "project": name,
            "git": git,
            "stopped": report.stopped,
            "rounds": len(report.rounds),
            "tokens_per_round": [r.tokens for r in report.rounds],
            "thinking_per_round": [r.thinking_tokens for r in report.rounds],
            "tokens": report.tokens,
            "passed": bool(final and final.passed and report.rounds),
            "edits_proposed": report.proposal is not None,
            "folder_untouched": files_outside_git(folder) == before,
            "seconds": round(seconds, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="starter", help="a GGUF path, or 'starter'")
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--task-budget", type=int, default=1200)
    parser.add_argument("--round-budget", type=int, default=400)
    parser.add_argument("--git", action="store_true", help="make each project a git repository")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args(argv)
    path = starter_model_path() if args.model == "starter" else Path(args.model)
    if path is None:
        parser.error("the starter model is not installed")
    engine = Engine()
    engine.load(path, LoadOptions(n_ctx=args.ctx))
    settings = FixSettings(PYTEST, rounds=args.rounds, task_budget=args.task_budget,
                           round_budget=args.round_budget)  # fmt: skip
    sampling = SamplingParams(temperature=0.2, seed=1234)
    names = sorted(p.name for p in PROJECTS.iterdir() if (p / "task.txt").is_file())
    results = []
    try:
        for name in names:
            result = run_project(engine, name, settings, args.git, sampling)
            results.append(result)
            if args.json:
                print(json.dumps(result), flush=True)
    finally:
        engine.unload()
    if not args.json:
        kind = "git" if args.git else "plain"
        print(f"model {path.name}, rounds {args.rounds}, task budget {args.task_budget}, "
              f"round budget {args.round_budget}, {kind} folders")  # fmt: skip
        print("| project | stopped | rounds | tokens per round (thinking) | passes at end | "
              "folder untouched | s |")  # fmt: skip
        print("|---|---|---:|---|---|---|---:|")
        for r in results:
            pairs = zip(r["tokens_per_round"], r["thinking_per_round"], strict=True)
            per_round = ", ".join(f"{t} ({k})" for t, k in pairs)
            print(f"| {r['project']} | {r['stopped']} | {r['rounds']} | {per_round} | "
                  f"{'yes' if r['passed'] else 'no'} | "
                  f"{'yes' if r['folder_untouched'] else 'NO'} | {r['seconds']} |")  # fmt: skip
    return 0 if all(r["folder_untouched"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
