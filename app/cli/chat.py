"""`leancoder ask`, `compare` and `bench-thinking`: one prompt (or a task set) through a model,
loaded as the window loads it (app.cli.options.load_model: the fit plan, the app's last model)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from app.cli import options as opt
from app.cli.code import add_allow_secrets
from app.cli.prompt_input import add_prompt_arguments, checked_text, resolve_prompt, stdin_bytes
from app.core.storage import logs

if TYPE_CHECKING:
    from app.core.llm.engine import ReplyStats

log = logging.getLogger(__name__)

EXIT_OK = 0
DIM = "\x1b[2m"
RESET = "\x1b[0m"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ask = sub.add_parser("ask", help="ask a model one question and stream the answer")
    add_prompt_arguments(ask, "prompt", "the question")
    opt.add_model(ask)
    opt.add_load_options(ask)
    opt.add_sampling(ask, temperature=0.7, seed=None, max_tokens=None)
    ask.add_argument("--system", default=None, help="a system message")
    opt.add_template(ask)
    opt.add_thinking(ask)
    opt.add_json(ask, "print one JSON object at the end")
    ask.add_argument("--folder", default=None, help="a code folder to answer about")
    ask.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="PATH",
        help="with --folder: a file to send in full (repeatable); the rest goes as a map",
    )
    add_allow_secrets(ask)
    ask.set_defaults(handler=_ask)

    compare = sub.add_parser(
        "compare", help="run one prompt under two thinking policies and compare them"
    )
    add_prompt_arguments(compare, "prompt", "the question")
    opt.add_model(compare)
    compare.add_argument(
        "--policy-a",
        default="Unpruned",
        help=f"first thinking policy: {opt.POLICY_NAMES} (default: Unpruned)",
    )
    compare.add_argument(
        "--policy-b",
        default="Balanced",
        help="second thinking policy, same names (default: Balanced)",
    )
    compare.add_argument(
        "--think-budget-b",
        type=opt.non_negative_int,
        default=None,
        help="most thinking tokens per block for policy B; overrides its budget",
    )
    opt.add_load_options(compare)
    opt.add_sampling(compare, temperature=0.6, seed=1234, max_tokens=None)
    opt.add_template(compare)
    opt.add_thinking(compare, policy=False)
    opt.add_json(compare, "print the comparison as JSON")
    compare.add_argument("--markdown", metavar="FILE", help="also write a Markdown report")
    compare.set_defaults(handler=_compare)

    bench = sub.add_parser(
        "bench-thinking", help="accuracy and thinking tokens of thinking policies on a task set"
    )
    opt.add_model(bench)
    bench.add_argument("--tasks", default=None, help="JSONL task file (default: the bundled set)")
    bench.add_argument(
        "--policies",
        default="Unpruned,Balanced,Aggressive",
        help="comma-separated thinking policies to run (default: Unpruned,Balanced,Aggressive)",
    )
    opt.add_load_options(bench)
    opt.add_sampling(bench, temperature=0.6, seed=1234, max_tokens=1024)
    opt.add_template(bench)
    opt.add_thinking(bench, policy=False)
    bench.add_argument(
        "--limit", type=opt.non_negative_int, default=None, help="run only the first N tasks"
    )
    bench.add_argument(
        "--out",
        default="bench-thinking",
        help="folder for the CSV and PNG (default: bench-thinking)",
    )
    bench.set_defaults(handler=_bench_thinking)


def _ask(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from app.cli.code import folder_choice, report_context
    from app.core.errors import GenerationError
    from app.core.llm.engine import ReplyStats, SamplingParams
    from app.core.session.chat import ChatSession, SessionEvent
    from app.core.thinking.parser import Channel

    engine = opt.engine_for(args)
    color = out.isatty() and not args.json
    thinking: list[str] = []
    answer: list[str] = []
    stats = ReplyStats()
    current: list[Channel | None] = [None]

    def show(event: SessionEvent) -> None:
        if event.kind != "text" or args.json:
            return
        if event.channel is not current[0]:
            if current[0] is Channel.THINKING:
                out.write(RESET if color else "\n[/thinking]\n")
            if event.channel is Channel.THINKING:
                out.write(DIM if color else "[thinking]\n")
            current[0] = event.channel
        out.write(event.text)
        out.flush()

    try:
        prompt = resolve_prompt(args.prompt, args.prompt_file, stdin_bytes())
        system = checked_text(args.system, "--system") if args.system else None
        policy = opt.thinking_policy(args)
        info = opt.load_model(engine, args, err, template=args.template)
        session = ChatSession()
        session.policy, session.system_prompt = policy, system
        session.force_thinking = args.force_thinking
        if args.folder:
            session.folder = folder_choice(Path(args.folder).expanduser(), args.select,
                                           args.allow_secrets)  # fmt: skip
        log.info("ask: %s", logs.content(prompt))
        sampling = SamplingParams(
            temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
            speculative=args.speculative,
        )
        for event in session.send(engine, prompt, sampling):
            if event.kind == "context" and event.context is not None:
                report_context(event.context, err)
            elif event.kind == "failed":
                raise GenerationError(event.text)
            show(event)
            if event.kind == "text":
                (thinking if event.channel is Channel.THINKING else answer).append(event.text)
            elif event.kind == "done" and event.stats is not None:
                stats = event.stats
    finally:
        engine.unload()
    log.info("ask: reply (%s): %s", stats.finish_reason, logs.content("".join(answer)))
    if args.json:
        result = {
            "model": str(info.path),
            "thinking_format": (
                "think (forced)"
                if args.force_thinking and info.thinking_format.value == "none"
                else info.thinking_format.value
            ),
            "thinking": "".join(thinking),
            "text": "".join(answer),
            "stats": stats.to_dict(),
            "policy": policy.to_dict(),
            # As llama.cpp reports them for the loaded context, after any clamping.
            "threads": {"decode": info.n_threads, "batch": info.n_threads_batch},
        }
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        return EXIT_OK
    if current[0] is Channel.THINKING:
        out.write(RESET if color else "\n[/thinking]\n")
    out.write("\n")
    err.write(_stats_line(stats) + "\n")
    return EXIT_OK


def _stats_line(stats: ReplyStats) -> str:
    return (
        f"[{stats.prompt_tokens} prompt tokens at {stats.prompt_tokens_per_s:.0f} tok/s, "
        f"first token {stats.time_to_first_token_s * 1000:.0f} ms, "
        f"{stats.thinking_tokens} thinking + {stats.answer_tokens} answer tokens at "
        f"{stats.decode_tokens_per_s:.1f} tok/s, finished: {stats.finish_reason}; "
        f"policy {stats.policy}: {stats.suppressed_tokens} suppressed, "
        f"{stats.forced_tokens} forced, {stats.loops_broken} loops broken"
        + (
            f"; {stats.accepted_tokens} of {stats.drafted_tokens} drafted tokens accepted]"
            if stats.drafted_tokens
            else "]"
        )
    )


def _compare(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from app.core.evals.compare import run_comparison
    from app.core.llm.engine import SamplingParams
    from app.core.storage.json_file import atomic_write_text
    from app.core.thinking.policy import policy_by_name

    engine = opt.engine_for(args)
    try:
        prompt = resolve_prompt(args.prompt, args.prompt_file, stdin_bytes())
        policy_a = policy_by_name(args.policy_a)
        policy_b = policy_by_name(args.policy_b)
        if args.think_budget_b is not None:
            policy_b = policy_b.with_budget(args.think_budget_b)
        opt.load_model(engine, args, err, template=args.template)
        sampling = SamplingParams(
            temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
            speculative=args.speculative,
        )
        if not args.json:
            err.write(f"running {policy_a.name}, then {policy_b.name} (seed {args.seed})…\n")
        result = run_comparison(
            engine,
            [{"role": "user", "content": prompt}],
            policy_a,
            policy_b,
            sampling,
            force_thinking=args.force_thinking,
        )
        if args.markdown:
            atomic_write_text(Path(args.markdown), result.to_markdown())
    finally:
        engine.unload()
    if args.json:
        out.write(result.to_json() + "\n")
        return EXIT_OK
    _write_table(
        out, [("measure", result.a.policy.name, result.b.policy.name, "change"), *result.rows()]
    )
    for side in (result.a, result.b):
        out.write(f"\n== {side.policy.name}: answer ==\n{side.answer.strip() or '(none)'}\n")
    out.write("\n== answer diff ==\n" + "\n".join(result.diff_summary()) + "\n")
    return EXIT_OK


def _bench_thinking(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from app.core.evals import thinking_bench as tb
    from app.core.llm.engine import SamplingParams
    from app.core.thinking.policy import policy_by_name

    engine = opt.engine_for(args)
    out_dir = Path(args.out)
    try:
        policies = [policy_by_name(name.strip()) for name in args.policies.split(",") if name]
        tasks = tb.load_tasks(Path(args.tasks) if args.tasks else tb.DEFAULT_TASKS)
        tasks = tasks[: args.limit] if args.limit else tasks
        model = opt.load_model(engine, args, err, template=args.template).path
        sampling = SamplingParams(
            temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
            speculative=args.speculative,
        )
        total = len(tasks) * len(policies)
        done = [0]

        def progress(result: tb.TaskResult) -> None:
            done[0] += 1
            mark = "ok " if result.correct else "no "
            err.write(f"[{done[0]}/{total}] {result.policy}: {result.task} {mark}"
                      f"({result.thinking_tokens} thinking tokens)\n")  # fmt: skip

        results = tb.run_bench(
            engine, tasks, policies, sampling,
            force_thinking=args.force_thinking, on_result=progress,
        )  # fmt: skip
        summaries = tb.summarize(results)
        tb.write_csv(out_dir / "results.csv", results)
        from app.ui.plot import plot_tokens_vs_accuracy  # Qt only for drawing the PNG

        plot_tokens_vs_accuracy(
            summaries, out_dir / "tokens_vs_accuracy.png", f"{model.name}: {len(tasks)} tasks"
        )
    finally:
        engine.unload()
    header = ("policy", "accuracy", "mean thinking", "median thinking", "time (s)",
              "loops broken", "acc/1k thinking", "OckScore")  # fmt: skip
    rows = [header] + [
        (s.policy, f"{s.accuracy:.0%}", f"{s.mean_thinking:.1f}", f"{s.median_thinking:.0f}",
         f"{s.seconds:.1f}", str(s.loops_broken),
         "n/a" if s.accuracy_per_1k_thinking is None else f"{s.accuracy_per_1k_thinking:.1f}",
         f"{s.ock_score:.2f}")
        for s in summaries
    ]  # fmt: skip
    _write_table(out, rows)
    out.write("\nacc/1k thinking: accuracy points per 1,000 mean thinking tokens. OckScore: "
              "accuracy points - 10 x ln(1 + mean tokens / 10,000), as OckBench ranks.\n")
    out.write(f"\nwrote {out_dir / 'results.csv'} and {out_dir / 'tokens_vs_accuracy.png'}\n")
    return EXIT_OK


def _write_table(out: TextIO, rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, two spaces apart (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
