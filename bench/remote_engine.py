"""The remote engine against the local one: decode speed through llama-cpp-python's own server on
loopback, and what enforcing a thinking budget over the wire costs.

One run, interleaved (the order alternates every round, so machine noise hits both alike): the
same prompt, greedy sampler and thread count go to LeanCoder's local Engine and to a RemoteEngine
pointed at `python -m llama_cpp.server` serving the same GGUF. Decode tokens per second are
LeanCoder's own ReplyStats on both sides (the remote side is measured on the client, so HTTP and
JSON overhead count against it). The local KV cache is cleared before each local run; the server
keeps its own.

Then budget enforcement: replies under a thinking budget (forced-open thinking), each cut by
cancel-and-continue. Per reply: the extra requests (ReplyStats.requests - 1), the prompt tokens
re-sent (ReplyStats.resent_prompt_tokens: what a server without a prefix cache evaluates again),
and the tokens the server really evaluated again, read from llama-cpp-python's own log line
("N prefix-match hit, remaining M prompt tokens to eval") for the continuation requests.

    .venv/bin/python bench/remote_engine.py [--rounds N] [--tokens N] [--budget-replies N]
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from app.core.llm.engine import Engine, LoadOptions, SamplingParams
from app.core.llm.threads import choose_threads, detect_cores
from app.core.models.starter import resolve_model
from app.core.remote.endpoint import parse_endpoint
from app.core.remote.engine import RemoteEngine, RemoteOptions
from app.core.thinking.policy import AGGRESSIVE, ThinkingPolicy

PROMPT = [{"role": "user", "content": "Write a Python function that checks whether a number is "
           "prime, and explain how it works."}]  # fmt: skip
N_CTX = 2048
_REMAINING = re.compile(r"prefix-match hit, remaining (\d+) prompt tokens to eval")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model: Path, threads: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", str(threads),
         "--n_threads_batch", str(threads)],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    with httpx2.Client() as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"{url}/models").status_code == 200:
                    return process, f"{url}#{model}"
            except httpx2.TransportError:
                pass
            time.sleep(0.3)
    process.kill()
    raise SystemExit("llama_cpp.server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--budget-replies", type=int, default=5)
    args = parser.parse_args()
    model = resolve_model("starter")
    threads = choose_threads(detect_cores()).decode
    log = Path(tempfile.mkdtemp(prefix="remote-bench-")) / "server.log"
    process, endpoint = start_server(model, threads, log)
    local, remote = Engine(), RemoteEngine()
    try:
        local.load(model, LoadOptions(n_ctx=N_CTX, n_threads=threads))
        remote.connect(parse_endpoint(endpoint), RemoteOptions(n_ctx=N_CTX))
        greedy = SamplingParams(temperature=0.0, seed=1, max_tokens=args.tokens)
        speeds: dict[str, list[float]] = {"local": [], "remote": []}
        for round_number in range(args.rounds + 1):  # round 0 warms both up, not counted
            order = ("local", "remote") if round_number % 2 else ("remote", "local")
            for side in order:
                engine = local if side == "local" else remote
                engine.reset_cache()
                stats = next(e.stats for e in engine.generate(PROMPT, greedy) if e.kind == "done")
                if round_number:
                    speeds[side].append(stats.decode_tokens_per_s)
                print(f"round {round_number} {side}: {stats.decode_tokens_per_s:.1f} tok/s",
                      file=sys.stderr, flush=True)  # fmt: skip
        local_tps = statistics.median(speeds["local"])
        remote_tps = statistics.median(speeds["remote"])

        costs = []
        for policy in (ThinkingPolicy(name="budget 32", budget=32),
                       AGGRESSIVE.with_budget(64)):  # fmt: skip
            extra, resent, evaluated = [], [], []
            for i in range(args.budget_replies):
                mark = log.stat().st_size
                sampling = SamplingParams(temperature=0.7, seed=100 + i, max_tokens=160)
                events = remote.generate(PROMPT, sampling, policy=policy, force_thinking=True)
                stats = next(e.stats for e in events if e.kind == "done")
                with log.open("rb") as stream:
                    stream.seek(mark)
                    lines = _REMAINING.findall(stream.read().decode("utf-8", "replace"))
                extra.append(stats.requests - 1)
                resent.append(stats.resent_prompt_tokens)
                evaluated.append(sum(int(n) for n in lines[1:]))  # the continuations only
                print(f"{policy.name} reply {i}: {stats.requests} requests, "
                      f"{stats.resent_prompt_tokens} re-sent, {evaluated[-1]} re-evaluated",
                      file=sys.stderr, flush=True)  # fmt: skip
            costs.append((policy.name, statistics.fmean(extra), statistics.fmean(resent),
                          statistics.fmean(evaluated)))  # fmt: skip
    finally:
        local.unload()
        remote.unload()
        process.kill()
        process.wait(timeout=10)
    print(f"## Remote engine: llama-cpp-python's server on loopback vs the local engine "
          f"({time.strftime('%Y-%m-%d')})\n")  # fmt: skip
    print(f"{model.name}, n_ctx {N_CTX}, {threads} thread(s) on both sides, greedy, "
          f"{args.tokens} tokens, {args.rounds} interleaved rounds (median).\n")
    print("| engine | decode tok/s |\n|---|---|")
    print(f"| local Engine | {local_tps:.1f} |\n| RemoteEngine → llama_cpp.server | "
          f"{remote_tps:.1f} |")  # fmt: skip
    print(f"\nremote / local: **{remote_tps / local_tps:.2f}** (goal >= 0.9)\n")
    print(f"Budget enforcement by cancel-and-continue, forced-open thinking, "
          f"{args.budget_replies} replies each (mean per reply):\n")
    print("| policy | extra requests | prompt tokens re-sent | tokens the server re-evaluated |")
    print("|---|---|---|---|")
    for name, extra_n, resent_n, evaluated_n in costs:
        print(f"| {name} | {extra_n:.1f} | {resent_n:.0f} | {evaluated_n:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
