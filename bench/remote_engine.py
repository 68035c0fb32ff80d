"""The remote engine against the local one: decode speed through llama-cpp-python's own server on
loopback, and what enforcing a thinking budget over the wire costs.

One run, interleaved (the order alternates every round, so machine noise hits both alike): the
same prompt, greedy sampler and thread count go to LeanCoder's local Engine and to a RemoteEngine
pointed at `python -m llama_cpp.server` serving the same GGUF. Decode tokens per second are
LeanCoder's own ReplyStats on both sides (the remote side is measured on the client, so HTTP and
JSON overhead count against it). The local KV cache is cleared before each local run; the server
keeps its own.

Two more sides separate the HTTP path's cost from the server's own: a bare HTTP client (http.client,
counting SSE events) streaming the same rendered prompt from llama_cpp.server, which is that
server's ceiling whatever the client; and, when llama.cpp's own llama-server is built (as
bench/vs_llama_cpp.py builds it), a RemoteEngine pointed at it. Ratios are each round's own,
then the median.

Then budget enforcement: replies under a thinking budget (forced-open thinking), each cut by
cancel-and-continue. Per reply: the extra requests (ReplyStats.requests - 1), the prompt tokens
re-sent (ReplyStats.resent_prompt_tokens: what a server without a prefix cache evaluates again),
and the tokens the server really evaluated again, read from llama-cpp-python's own log line
("N prefix-match hit, remaining M prompt tokens to eval") for the continuation requests.

    .venv/bin/python bench/remote_engine.py [--rounds N] [--tokens N] [--budget-replies N]
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import platformdirs

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
LLAMA_SERVER = (
    Path(platformdirs.user_cache_dir("leancoder"))
    / f"llama.cpp-{importlib.metadata.version('llama-cpp-python')}" / "build" / "bin"
    / "llama-server"
)  # fmt: skip


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
    _wait_ready(process, f"{url}/models", "llama_cpp.server")
    return process, f"{url}#{model}"


def _wait_ready(process: subprocess.Popen[bytes], probe: str, name: str) -> None:
    deadline = time.monotonic() + 180
    with httpx2.Client() as client:
        while time.monotonic() < deadline:
            try:
                if client.get(probe).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"{name} did not start")


def start_llama_server(model: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(LLAMA_SERVER), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
         "-c", str(N_CTX), "-t", str(threads), "-tb", str(threads), "--alias", "starter"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_ready(process, f"http://127.0.0.1:{port}/health", "llama-server")
    return process, f"http://127.0.0.1:{port}/v1#starter"


def bare_client_rate(endpoint: str, prompt: str, tokens: int) -> float:
    """Decode tok/s a bare HTTP client sees: SSE events after the first over their time span."""
    host, port = endpoint.split("//", 1)[1].split("/", 1)[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=600)
    body = json.dumps({"prompt": prompt, "max_tokens": tokens, "temperature": 0, "seed": 1,
                       "stream": True}).encode()  # fmt: skip
    connection.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    events, first, last = 0, 0.0, 0.0
    while chunk := response.read1(65536):
        now = time.perf_counter()
        events += chunk.count(b"data: {")
        first, last = first or now, now
    connection.close()
    return (events - 1) / (last - first) if events > 1 and last > first else 0.0


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
    peer: RemoteEngine | None = None
    peer_process: subprocess.Popen[bytes] | None = None
    try:
        local.load(model, LoadOptions(n_ctx=N_CTX, n_threads=threads))
        remote.connect(parse_endpoint(endpoint), RemoteOptions(n_ctx=N_CTX))
        greedy = SamplingParams(temperature=0.0, seed=1, max_tokens=args.tokens)
        if LLAMA_SERVER.is_file():
            peer_process, peer_endpoint = start_llama_server(model, threads)
            peer = RemoteEngine()
            peer.connect(parse_endpoint(peer_endpoint), RemoteOptions(n_ctx=N_CTX))
        prompt = local.render_prompt(PROMPT)
        bare_url = endpoint.split("#", 1)[0]
        engines: dict[str, Engine | RemoteEngine] = {"local": local, "remote": remote}
        if peer is not None:
            engines["llama-server"] = peer
        sides = [*engines, "bare client"]
        speeds: dict[str, list[float]] = {side: [] for side in sides}
        for round_number in range(args.rounds + 1):  # round 0 warms every side up, not counted
            shift = round_number % len(sides)
            for side in sides[shift:] + sides[:shift]:  # the order rotates
                if side == "bare client":
                    tps = bare_client_rate(bare_url, prompt, args.tokens)
                else:
                    engine = engines[side]
                    engine.reset_cache()
                    events = engine.generate(PROMPT, greedy)
                    tps = next(e.stats for e in events if e.kind == "done").decode_tokens_per_s
                if round_number:
                    speeds[side].append(tps)
                print(f"round {round_number} {side}: {tps:.1f} tok/s", file=sys.stderr,
                      flush=True)  # fmt: skip

        def ratio(side: str) -> float:
            pairs = zip(speeds[side], speeds["local"], strict=True)
            return statistics.median(s / lo for s, lo in pairs)

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
        if peer is not None:
            peer.unload()
        for server in (process, peer_process):
            if server is not None:
                server.kill()
                server.wait(timeout=10)
    print(f"## Remote engine: llama-cpp-python's server on loopback vs the local engine "
          f"({time.strftime('%Y-%m-%d')})\n")  # fmt: skip
    print(f"{model.name}, n_ctx {N_CTX}, {threads} thread(s) on both sides, greedy, "
          f"{args.tokens} tokens, {args.rounds} interleaved rounds (median).\n")
    names = {"local": "local Engine", "remote": "RemoteEngine → llama_cpp.server",
             "bare client": "bare HTTP client → llama_cpp.server",
             "llama-server": "RemoteEngine → llama-server (llama.cpp)"}  # fmt: skip
    print("| engine | decode tok/s (median) | / local (median of rounds) |\n|---|---:|---:|")
    for side in sides:
        shown = "1" if side == "local" else f"{ratio(side):.3f}"
        print(f"| {names[side]} | {statistics.median(speeds[side]):.1f} | {shown} |")
    print("\nGoal: remote / local >= 0.9.\n")
    print(f"Budget enforcement by cancel-and-continue, forced-open thinking, "
          f"{args.budget_replies} replies each (mean per reply):\n")
    print("| policy | extra requests | prompt tokens re-sent | tokens the server re-evaluated |")
    print("|---|---|---|---|")
    for name, extra_n, resent_n, evaluated_n in costs:
        print(f"| {name} | {extra_n:.1f} | {resent_n:.0f} | {evaluated_n:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
