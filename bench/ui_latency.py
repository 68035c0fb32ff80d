"""GUI responsiveness while the main window streams a long reply from the starter model.

What it measures: a `QTimer` on the GUI thread fires every 5 ms and records its lateness (the
actual interval minus 5 ms). Lateness is how long the event loop was busy with something else:
rendering Markdown, laying out the message, saving the reply to SQLite, waiting for the GIL held by
the model worker thread. It is sampled

- while the real main window (offscreen platform, shown) streams replies from the starter model at
  full speed, until at least 600 tokens have streamed (more prompts are sent if the model stops
  early), and
- for 2 s with the same window idle, in the same process, as a baseline.

Goals while streaming: max lateness < 50 ms and p99 lateness < 20 ms.

`--scripted` streams one 3,000-token Markdown reply (headings, paragraphs, lists, code blocks)
instead of the model's words: SCRIPTED tokens, named so. The starter model still runs on the real
prompt (cut at a few tokens), and everything after it is the window's real path: the session
saves the reply, the bridge batches events, LiveReply and the chat pane render it. The 135M
starter rarely writes 3,000 tokens in one reply, and a long reply is what made every render
cost more (each re-rendered the whole answer); the script paces tokens at --rate tok/s.

It also times the GUI-thread work the window does per render (`ChatView._render`: Markdown ->
HTML -> `setHtml`; the session saves the reply on the model thread) to point at the cause.
Chats go to a temporary LEANCODER_DATA_DIR; the user's own chats are never touched.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/ui_latency.py [--tokens N] [--seed S]
     QT_QPA_PLATFORM=offscreen .venv/bin/python bench/ui_latency.py --scripted [--rate 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEvent, QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication

import app.ui.markdown_stream as markdown_stream_module
from app.core.llm.engine import Engine, GenerationEvent, ReplyStats, SamplingParams
from app.core.thinking.parser import Channel
from app.ui.application import create_main_window
from app.ui.chat_view import MessageWidget
from app.ui.main_window import MainWindow
from app.ui.markdown_html import markdown_to_html

TICK_MS = 5
IDLE_SECONDS = 2.0
GOAL_MAX_MS = 50.0
GOAL_P99_MS = 20.0
PROMPTS = [
    "Write a long story about a robot who learns to paint. Describe every day of its journey "
    "in detail, with many characters, places and conversations.",
    "Write a long, detailed essay about the history of computers, from the abacus to today.",
    "Tell me a long fairy tale about a dragon and a lighthouse keeper, with many chapters.",
]

SCRIPTED_TOKENS = 3000


def scripted_reply_pieces(tokens: int) -> list[str]:
    """A long Markdown answer as `tokens` pieces (a word and its space, or a line break)."""
    pieces: list[str] = []
    section = 0
    while len(pieces) < tokens:
        section += 1
        pieces += [f"## Part {section}", "\n\n"]
        pieces += [f"word{k} " for k in range(40)] + ["with `code` and *emphasis*.", "\n\n"]
        pieces += ["```python", "\n", f"def part_{section}(items):", "\n"]
        for k in range(6):
            pieces += ["    total", " =", f" sum(item * {k}", " for item", " in items)", "\n"]
        pieces += ["    return", " total", "\n", "```", "\n\n"]
        for k in range(4):
            pieces += ["- point", f" {k}", " of", f" part {section}", "\n"]
        pieces += ["\n"]
    return pieces[:tokens]


def script_replies(tokens: int, rate: float) -> None:
    """Patch Engine.generate: the real model on the real prompt (4 tokens), then the SCRIPTED
    reply at `rate` tokens per second, with statistics as the engine reports them."""
    real_generate = Engine.generate
    pieces = scripted_reply_pieces(tokens)

    def generate(
        engine: Engine, messages: Any, sampling: SamplingParams | None = None, *args: Any,
        **kwargs: Any,
    ) -> Iterator[GenerationEvent]:  # fmt: skip
        cancel = args[0] if args else kwargs.get("cancel")
        short = dataclasses.replace(sampling or SamplingParams(), max_tokens=4)
        real = ReplyStats()
        for event in real_generate(engine, messages, short, *args, **kwargs):
            if event.kind == "done":
                real = event.stats
        started = time.perf_counter()
        stats = dataclasses.replace(real, thinking_tokens=0, answer_tokens=0)
        for index, piece in enumerate(pieces, 1):
            if cancel is not None and cancel.is_set():
                stats.finish_reason = "cancelled"
                break
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elapsed = time.perf_counter() - started
            stats = dataclasses.replace(
                stats, answer_tokens=index, decode_seconds=elapsed,
                total_seconds=real.prompt_seconds + elapsed, finish_reason="stop",
            )  # fmt: skip
            yield GenerationEvent("text", Channel.ANSWER, piece, stats)
        yield GenerationEvent("done", Channel.ANSWER, "", stats)

    Engine.generate = generate  # type: ignore[assignment]


P = ParamSpec("P")
R = TypeVar("R")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class LatencyProbe:
    """A 5 ms timer on the GUI thread; lateness samples are kept only while `recording`."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.recording = False
        self._clock = QElapsedTimer()
        self._last_ns = 0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._clock.start()
        self._last_ns = self._clock.nsecsElapsed()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = self._clock.nsecsElapsed()
        if self.recording:
            self.samples.append(max(0.0, (now - self._last_ns) / 1e6 - TICK_MS))
        self._last_ns = now

    def take(self) -> list[float]:
        samples, self.samples = self.samples, []
        return samples


@dataclass
class Timing:
    """Wall time of every call of one wrapped function (ms)."""

    name: str
    calls: list[float] = field(default_factory=list)

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.calls.append((time.perf_counter() - started) * 1000)

        return timed


def spin_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Run the event loop until `condition()` holds; False on timeout."""
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()

    def check() -> None:
        if condition() or time.monotonic() > deadline:
            loop.quit()

    poll = QTimer()
    poll.setInterval(10)
    poll.timeout.connect(check)
    poll.start()
    if not condition():
        loop.exec()
    poll.stop()
    return condition()


def spin_for(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


@dataclass
class StreamResult:
    lateness: list[float]
    # Samples from each reply's first token on: the steady stream, without the burst of work
    # that sending does (new message widgets, their first layout and paint, SQLite inserts).
    steady: list[float]
    tokens: int
    seconds: float
    replies: list[ReplyStats]


class TokenCounter:
    """Counts the live reply's tokens from the events the window takes (a wrapper, GUI thread)."""

    def __init__(self, window: MainWindow, probe: LatencyProbe) -> None:
        self.live = 0
        self.first_token_sample: int | None = None  # index into probe.samples
        take = window.bridge.take_events

        def counted(request: int) -> list[tuple[str, GenerationEvent]]:
            events = take(request)
            for _key, event in events:
                if event.stats is not None:  # a session's user/prompt events carry none
                    self.live = max(self.live, event.stats.generated_tokens)
            if self.live and self.first_token_sample is None:
                self.first_token_sample = len(probe.samples)
            return events

        window.bridge.take_events = counted  # type: ignore[method-assign]


def stream(
    window: MainWindow, probe: LatencyProbe, min_tokens: int, timeout_s: float
) -> StreamResult:
    """Stream replies (a new chat per prompt) until `min_tokens` tokens; sample meanwhile.

    Measuring ends the moment the target is reached: the reply is then stopped, unmeasured.
    """
    replies: list[ReplyStats] = []
    failures: list[str] = []
    window.replyFinished.connect(replies.append)
    window.replyFailed.connect(failures.append)
    counter = TokenCounter(window, probe)
    lateness: list[float] = []
    steady: list[float] = []
    streamed_s = 0.0
    done_tokens = 0
    deadline = time.monotonic() + timeout_s
    prompt_index = 0
    while done_tokens < min_tokens and time.monotonic() < deadline and not failures:
        window.new_chat()
        window.prompt.setPlainText(PROMPTS[prompt_index % len(PROMPTS)])
        prompt_index += 1
        counter.live = 0
        counter.first_token_sample = None
        target = len(replies) + 1

        def finished_or_enough(target: int = target, before: int = done_tokens) -> bool:
            ended = (len(replies) >= target or failures) and not window.generating
            return ended or before + counter.live >= min_tokens

        started = time.perf_counter()
        probe.take()
        probe.recording = True
        window.send()
        spin_until(finished_or_enough, max(1.0, deadline - time.monotonic()))
        probe.recording = False
        streamed_s += time.perf_counter() - started
        samples = probe.take()
        lateness.extend(samples)
        if counter.first_token_sample is not None:
            steady.extend(samples[counter.first_token_sample :])
        window.stop()  # a no-op when the reply already ended
        spin_until(lambda: not window.generating, 30)
        done_tokens += counter.live
    if failures:
        print(f"a reply failed: {failures[0]}", file=sys.stderr)
    return StreamResult(lateness, steady, done_tokens, streamed_s, replies)


def row(name: str, samples: list[float]) -> str:
    return (
        f"{name:<10}{len(samples):>8}{percentile(samples, 50):>9.2f}{percentile(samples, 99):>9.2f}"
        f"{max(samples, default=0.0):>9.2f}"
    )


def work_row(timing: Timing) -> str:
    calls = timing.calls
    total = sum(calls)
    return (
        f"{timing.name:<26}{len(calls):>7}{total / max(1, len(calls)):>9.2f}"
        f"{percentile(calls, 99):>9.2f}{max(calls, default=0.0):>9.2f}{total:>10.0f}"
    )


@dataclass
class WorkTimings:
    send: Timing = field(default_factory=lambda: Timing("MainWindow.send"))
    render: Timing = field(default_factory=lambda: Timing("ChatView._render (total)"))
    markdown: Timing = field(default_factory=lambda: Timing("  markdown_to_html"))
    refresh: Timing = field(default_factory=lambda: Timing("  MessageWidget.refresh"))
    # markdown_to_html runs only on what changed: the open block, and each closed one once

    def all(self) -> tuple[Timing, ...]:
        return (self.send, self.render, self.markdown, self.refresh)


def instrument(window: MainWindow) -> WorkTimings:
    """Time the GUI-thread work behind each render of the live reply (wrappers on instances)."""
    work = WorkTimings()
    view = window.chat_view
    window.send = work.send.wrap(window.send)  # type: ignore[method-assign]
    view._render = work.render.wrap(view._render)  # type: ignore[method-assign]
    markdown_stream_module.markdown_to_html = work.markdown.wrap(markdown_to_html)  # type: ignore[attr-defined]
    original_add = view.add_message

    def add_message(role: str) -> MessageWidget:
        widget = original_add(role)
        widget.refresh = work.refresh.wrap(widget.refresh)  # type: ignore[method-assign]
        return widget

    view.add_message = add_message  # type: ignore[method-assign]
    return work


@dataclass
class BenchResult:
    idle: list[float]
    streaming: StreamResult
    work: WorkTimings
    threads: tuple[int, int] = (0, 0)  # decode, prompt: as llama.cpp reports them


def run(
    window: MainWindow, min_tokens: int, timeout_s: float, threads: int = 0
) -> BenchResult | None:
    """One measurement with the model loaded on `threads` CPU threads (0: the window's default)."""
    work = instrument(window)
    window.show()
    window.settings.n_threads = threads
    window.model_info = None
    window.load_model("starter")
    spin_until(lambda: window.model_info is not None or window.error_box is not None, 60)
    if window.model_info is None:
        print("the starter model did not load", file=sys.stderr)
        return None
    probe = LatencyProbe()
    probe.start()
    spin_for(0.2)  # let the first layout and paint settle
    probe.take()
    probe.recording = True
    spin_for(IDLE_SECONDS)
    probe.recording = False
    idle = probe.take()
    streaming = stream(window, probe, min_tokens, timeout_s)
    probe.stop()
    info = window.model_info
    return BenchResult(idle, streaming, work, (info.n_threads, info.n_threads_batch))


def decode_median(result: BenchResult) -> float:
    decode = [r.decode_tokens_per_s for r in result.streaming.replies if r.decode_tokens_per_s > 0]
    return statistics.median(decode) if decode else 0.0


def report_threads(results: list[BenchResult]) -> None:
    """One row per thread count, medians over its rounds: the figures the window's rule uses."""
    print(f"{'decode threads':<16}{'rounds':>7}{'decode tok/s':>14}{'steady p99':>12}"
          f"{'stream p99':>12}{'stream max':>12}")  # fmt: skip
    for threads in sorted({r.threads[0] for r in results}):
        mine = [r for r in results if r.threads[0] == threads]
        print(
            f"{threads:<16}{len(mine):>7}"
            f"{statistics.median(decode_median(r) for r in mine):>14.1f}"
            f"{statistics.median(percentile(r.streaming.steady, 99) for r in mine):>12.2f}"
            f"{statistics.median(percentile(r.streaming.lateness, 99) for r in mine):>12.2f}"
            f"{statistics.median(max(r.streaming.lateness, default=0.0) for r in mine):>12.2f}"
        )


def report(result: BenchResult, min_tokens: int) -> None:
    streamed = result.streaming
    tok_s = streamed.tokens / streamed.seconds if streamed.seconds > 0 else 0.0
    decode = [r.decode_tokens_per_s for r in streamed.replies if r.decode_tokens_per_s > 0]
    p99_stream = percentile(streamed.lateness, 99)
    max_stream = max(streamed.lateness, default=0.0)
    p99_idle = percentile(result.idle, 99)
    reasons = ", ".join(r.finish_reason for r in streamed.replies)

    threads = result.threads
    print(f"LeanCoder UI latency: {TICK_MS} ms timer lateness (ms), offscreen, starter model, "
          f"{threads[0]} decode / {threads[1]} prompt threads")  # fmt: skip
    print(f"{'period':<10}{'samples':>8}{'p50':>9}{'p99':>9}{'max':>9}")
    print(row("idle", result.idle))
    print(row("streaming", streamed.lateness))
    print(row(" steady", streamed.steady) + "   (from each reply's first token on)")
    ratio = p99_stream / p99_idle if p99_idle > 0 else float("inf")
    print(f"p99 streaming / idle: {ratio:.1f}x")
    print(
        f"streamed {streamed.tokens} tokens in {len(streamed.replies)} replies "
        f"({reasons}), {streamed.seconds:.1f} s: {tok_s:.1f} tok/s end to end, "
        f"decode {min(decode, default=0):.1f}-{max(decode, default=0):.1f} tok/s"
    )
    print()
    print(f"{'GUI-thread work (ms)':<26}{'calls':>7}{'mean':>9}{'p99':>9}{'max':>9}{'total':>10}")
    for timing in result.work.all():
        print(work_row(timing))
    renders = result.work.render.calls
    if len(renders) >= 20:
        tenth = len(renders) // 10
        first, last = renders[:tenth], renders[-tenth:]
        print(
            f"render cost grows with the reply: first 10% of renders {sum(first) / tenth:.2f} ms "
            f"mean, last 10% {sum(last) / tenth:.2f} ms mean"
        )
    print()
    for name, value, goal in (("max", max_stream, GOAL_MAX_MS), ("p99", p99_stream, GOAL_P99_MS)):
        verdict = "met" if value < goal else "NOT met"
        print(f"goal {name} < {goal:.0f} ms: {verdict} ({value:.1f} ms)")
    if streamed.tokens < min_tokens:
        print(f"warning: only {streamed.tokens} of {min_tokens} tokens streamed before the timeout")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} on {os.cpu_count()} CPUs (other processes add lateness)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GUI event-loop lateness while streaming.")
    parser.add_argument("--tokens", type=int, default=600, help="stream at least this many")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds for streaming")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument(
        "--threads",
        default="0",
        help="decode thread counts to compare, e.g. 1,2 (0: the window's default)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds over the thread counts")
    parser.add_argument(
        "--scripted",
        action="store_true",
        help=f"stream one SCRIPTED {SCRIPTED_TOKENS:,}-token Markdown reply (the model still runs "
        "on the prompt); --tokens defaults to its length",
    )
    parser.add_argument("--rate", type=float, default=100.0, help="scripted tokens per second")
    args = parser.parse_args(argv)
    if args.scripted:
        if args.tokens == 600:  # the default: the whole scripted reply
            args.tokens = SCRIPTED_TOKENS
        script_replies(args.tokens, args.rate)
        print(f"SCRIPTED reply: {args.tokens} tokens of Markdown at {args.rate:.0f} tok/s "
              "(the model's own words are not used)")  # fmt: skip
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="leancoder-bench-") as data_dir:
        os.environ["LEANCODER_DATA_DIR"] = data_dir  # never the user's own chats
        window = create_main_window(autoload=False)
        window.settings.temperature = args.temperature
        results: list[BenchResult] = []
        try:
            for round_index in range(max(1, args.rounds)):
                shift = round_index % len(thread_counts)  # alternate the order: noise hits all
                for threads in thread_counts[shift:] + thread_counts[:shift]:
                    result = run(window, args.tokens, args.timeout, threads)
                    if result is None:
                        return 1
                    report(result, args.tokens)
                    print()
                    results.append(result)
        finally:
            window.close()  # ends the model worker thread
            window.store.close()
            # Destroy the window here, on the GUI thread: left to the cyclic GC it may be
            # collected on another thread, which crashes shiboken 6.11.3.
            window.deleteLater()
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            gc.collect()
            qapp.processEvents()
    if len(results) > 1:
        report_threads(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
