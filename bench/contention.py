"""Decode speed while another program keeps cores busy: LeanCoder's automatic threads (fitted to
the free cores before each reply, app.core.llm.cpu_contention) against the same thread counts
pinned as an explicit setting, which is what every load got before.

`--hogs N` busy-looping processes (default: one, a build or a test run beside the app) run for
the whole bench; the two engines answer the same prompt greedily, interleaved, `--rounds` times.
The last line is the ratio of the medians (automatic / pinned).

`--mid-reply`: the machine is quiet when each reply starts and the busy processes start after its
eighth token (a build started while a long reply streams), ending with the reply; the automatic
engine has to notice between tokens.

    .venv/bin/python bench/contention.py [--hogs N] [--rounds N] [--tokens N] [--mid-reply]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from app.core.llm.engine import Engine, LoadOptions, SamplingParams, run_to_completion
from app.core.llm.threads import choose_threads, detect_cores
from app.core.models.starter import resolve_model

PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def _spin(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
            for _ in range(count)]  # fmt: skip


def _stop(hogs: list[subprocess.Popen[bytes]]) -> None:
    for hog in hogs:
        hog.kill()
        hog.wait()


def run_mid_reply(engine: Engine, sampling: SamplingParams, hogs: int) -> float:
    """Decode tok/s of one reply whose last tokens race `hogs` busy processes."""
    time.sleep(1.0)  # quiet, and a 1-token reply so the next look sees only quiet time
    run_to_completion(engine, PROMPT, SamplingParams(max_tokens=1, temperature=0.0, seed=1))
    engine.reset_cache()
    started: list[subprocess.Popen[bytes]] = []
    tokens = 0
    try:
        for event in engine.generate(PROMPT, sampling):
            tokens += event.kind == "text"
            if tokens == 8 and not started:
                started = _spin(hogs)
            if event.kind == "done":
                return event.stats.decode_tokens_per_s
    finally:
        _stop(started)
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--mid-reply", action="store_true")
    args = parser.parse_args()
    model = resolve_model("starter")
    chosen = choose_threads(detect_cores())
    automatic, pinned = Engine(), Engine()
    automatic.load(model, LoadOptions(n_ctx=1024))
    pinned.load(model, LoadOptions(n_ctx=1024, n_threads=chosen.decode))
    hogs = [] if args.mid_reply else _spin(args.hogs)
    speeds: dict[str, list[float]] = {"automatic": [], "pinned": []}
    try:
        time.sleep(1.0)
        sampling = SamplingParams(max_tokens=args.tokens, temperature=0.0, seed=1)
        for round_index in range(args.rounds):
            order = ["automatic", "pinned"] if round_index % 2 == 0 else ["pinned", "automatic"]
            for name in order:
                engine = automatic if name == "automatic" else pinned
                engine.reset_cache()
                if args.mid_reply:
                    tps = run_mid_reply(engine, sampling, args.hogs)
                else:
                    tps = run_to_completion(engine, PROMPT, sampling)[2].decode_tokens_per_s
                speeds[name].append(tps)
                threads = f"{engine.backend.n_threads()}+{engine.backend.n_threads_batch()}"
                print(f"round {round_index + 1} {name:9}: {tps:6.1f} tok/s "
                      f"({threads} threads at the end)", flush=True)  # fmt: skip
    finally:
        _stop(hogs)
    auto_tps = statistics.median(speeds["automatic"])
    pinned_tps = statistics.median(speeds["pinned"])
    when = "from each reply's 8th token" if args.mid_reply else "throughout"
    print(f"{args.hogs} busy process(es) {when} on {detect_cores().logical} logical cores; "
          f"chosen at load: {chosen.describe()}")  # fmt: skip
    print(f"decode tok/s: automatic {auto_tps:.1f}, pinned {pinned_tps:.1f}")
    print(f"ratio automatic / pinned: {auto_tps / pinned_tps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
