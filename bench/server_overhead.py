"""What the local API costs over the engine itself (issue #13), all ratios from one run.

`leancoder serve` runs as users run it, its own process; the official `openai` client streams
from it. The engine side is the same model loaded here, with the same threads, context, prompt
and greedy sampling, so both sides generate the same tokens. Runs are interleaved (API, engine,
engine, API, ...) so machine noise hits both alike.

- decode tok/s through the API (client-side: tokens after the first over the time from the
  first streamed token to the last) over the engine's own decode rate measured the same way:
  goal >= 0.95. The server is run twice, as users run it (its stream paced, the default
  `--stream-interval`) and with `--stream-interval 0` (an event per token), to show what the
  pacing saves; each round's ratio is taken against that round's engine run;
- added latency to the first streamed byte: a raw HTTP client's time (http.client on an open
  keep-alive connection, so neither a TCP handshake nor an SDK is counted) from sending the
  request to the first byte of the stream, minus the engine's own time to first token for that
  same request (from `generate()`, template included; the server reports it in
  `usage.leancoder`): goal < 10 ms. The same figure through the openai client (to its first
  content chunk, its own parsing included) is printed beside it;
- a 10-turn conversation resent whole each turn: tokens prefilled (prompt - cached) over the
  turn's new tokens (prompt - the previous prompt and reply): goal <= 1.05.

    .venv/bin/python bench/server_overhead.py [--tokens N] [--rounds N] [--threads N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import psutil

from app.core.llm.engine import Engine, LoadOptions, SamplingParams
from app.core.models.starter import resolve_model
from app.core.thinking.parser import Channel

PROMPT = "Write a detailed, long story about a lighthouse keeper who learns to program."
TURNS = [
    "What is a Python list?", "How do I sort one?", "And in reverse?", "What about a dict?",
    "How do I loop over its keys?", "And its values?", "What is a set?", "How do I add to it?",
    "What is a tuple?", "When should I use each?",
]  # fmt: skip
CTX = 4096


@dataclass
class Run:
    ttft_s: float  # request to first content
    decode_tps: float
    tokens: int
    engine_ttft_s: float = 0.0  # the server's own, for API runs
    # CPU per token besides llama.cpp's two busiest threads (API runs): the client's (this
    # thread) and the server's other threads. Unlike tok/s, CPU time is immune to the noise of
    # a shared machine, and on 2 cores it is what decoding loses.
    client_cpu_ms: float = 0.0
    server_cpu_ms: float = 0.0


def _decode_rate(tokens: int, first: float, last: float) -> float:
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


def run_engine(engine: Engine, n_tokens: int) -> Run:
    sampling = SamplingParams(max_tokens=n_tokens, temperature=0.0, seed=1)
    start = time.perf_counter()
    first = last = 0.0
    tokens = 0
    for event in engine.generate([{"role": "user", "content": PROMPT}], sampling):
        now = time.perf_counter()
        if event.kind == "text" and event.channel is Channel.ANSWER and event.text:
            first = first or now
            last = now
        if event.kind == "done" and event.stats is not None:
            tokens = event.stats.generated_tokens
    return Run(first - start, _decode_rate(tokens, first, last), tokens)


def _server_threads(pid: int) -> list[float]:
    return [t.user_time + t.system_time for t in psutil.Process(pid).threads()]


def _thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def run_api(client: openai.OpenAI, n_tokens: int, pid: int) -> Run:
    before, client_before = _server_threads(pid), _thread_cpu()
    start = time.perf_counter()
    first = last = 0.0
    usage: Any = None
    stream = client.chat.completions.create(
        model="any", messages=[{"role": "user", "content": PROMPT}], stream=True,
        stream_options={"include_usage": True}, max_tokens=n_tokens, temperature=0, seed=1,
    )  # fmt: skip
    for chunk in stream:
        now = time.perf_counter()
        if any(c.delta.content for c in chunk.choices):
            first = first or now
            last = now
        usage = chunk.usage or usage
    client_cpu = _thread_cpu() - client_before
    # Threads keep their order; the two busiest are the model worker and llama.cpp's other one.
    after = _server_threads(pid)
    spent = sorted((b - a for a, b in zip(before, after, strict=False)), reverse=True)
    tokens = int(usage.completion_tokens)
    engine_ttft = float(usage.model_extra["leancoder"]["time_to_first_token_s"])
    return Run(first - start, _decode_rate(tokens, first, last), tokens, engine_ttft,
               client_cpu * 1000 / tokens, sum(spent[2:]) * 1000 / tokens)  # fmt: skip


def run_raw(url: str, n_tokens: int) -> Run:
    """The same request over a bare keep-alive connection; ttft_s is to the stream's first byte."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)
    connection.connect()
    body = json.dumps({
        "model": "any", "messages": [{"role": "user", "content": PROMPT}], "stream": True,
        "stream_options": {"include_usage": True}, "max_tokens": n_tokens, "temperature": 0,
        "seed": 1,
    }).encode()  # fmt: skip
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    path = parts.path.rstrip("/") + "/chat/completions"
    start = time.perf_counter()
    connection.request("POST", path, body, headers)
    response = connection.getresponse()
    head = response.read1(1)
    first_byte = time.perf_counter()
    rest = head + response.read()
    connection.close()
    usage: dict[str, Any] = {}
    for line in rest.decode().splitlines():
        if line.startswith("data: {"):
            usage = json.loads(line[6:]).get("usage") or usage
    engine_ttft = float(usage["leancoder"]["time_to_first_token_s"])
    return Run(first_byte - start, 0.0, int(usage["completion_tokens"]), engine_ttft)


def conversation(client: openai.OpenAI) -> list[tuple[int, int, float]]:
    """(prefilled, new, ratio) for turns 2..10."""
    messages: list[dict[str, str]] = []
    previous = 0  # the previous prompt plus its reply, in tokens
    rows = []
    for turn, question in enumerate(TURNS):
        messages.append({"role": "user", "content": question})
        reply = client.chat.completions.create(
            model="any", messages=messages, max_tokens=48, temperature=0, seed=1  # type: ignore[arg-type]
        )
        usage = reply.usage
        assert usage is not None
        cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
        prefilled = usage.prompt_tokens - (cached or 0)
        new = usage.prompt_tokens - previous
        if turn > 0:
            rows.append((prefilled, new, prefilled / new))
            print(f"turn {turn + 1}: prefilled {prefilled}, new {new}", flush=True)
        previous = usage.prompt_tokens + usage.completion_tokens
        messages.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
    return rows


def start_server(
    threads: int, data_dir: str, interval_ms: int | None = None
) -> tuple[subprocess.Popen[str], str]:
    command = [str(Path(sys.executable).with_name("leancoder")), "serve", "--model", "starter",
               "--port", "0", "--ctx", str(CTX), "--threads", str(threads)]  # fmt: skip
    if interval_ms is not None:
        command += ["--stream-interval", str(interval_ms)]
    env = {**os.environ, "LEANCODER_DATA_DIR": data_dir}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Serving "):
            threading.Thread(target=process.stdout.read, daemon=True).start()  # drain
            return process, line.split(" at ", 1)[1].split()[0]
    raise SystemExit(f"leancoder serve did not start (exit {process.wait()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stream-interval", type=int, default=None, metavar="MS",
                        help="the paced server's (default: leancoder serve's)")  # fmt: skip
    args = parser.parse_args()
    engine = Engine()
    engine.load(resolve_model("starter"), LoadOptions(n_ctx=CTX, n_threads=args.threads))
    with tempfile.TemporaryDirectory(prefix="leancoder-bench-") as data_dir:
        process, url = start_server(args.threads, data_dir, args.stream_interval)  # paced
        each_process, each_url = start_server(args.threads, data_dir, interval_ms=0)
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)
        each_client = openai.OpenAI(base_url=each_url, api_key="unused", max_retries=0,
                                    timeout=600)  # fmt: skip
        try:
            run_api(client, 8, process.pid), run_api(each_client, 8, each_process.pid)  # warm
            run_engine(engine, 8)
            print(f"serving at {url} (paced) and {each_url} (every token); warmed", flush=True)
            api: list[Run] = []
            each: list[Run] = []
            direct: list[Run] = []
            raw: list[Run] = []
            sides = (
                lambda: api.append(run_api(client, args.tokens, process.pid)),
                lambda: each.append(run_api(each_client, args.tokens, each_process.pid)),
                lambda: direct.append(run_engine(engine, args.tokens)),
            )
            for i in range(args.rounds):
                for k in range(3):  # the order rotates, so drift hits every side alike
                    sides[(i + k) % 3]()
                # An idle server: a request sent within a step of the last reply's end waits for
                # that step (the engine evaluates the reply's last token into the cache).
                time.sleep(0.25)
                raw.append(run_raw(url, args.tokens))
                print(f"round {i + 1}: API {api[-1].decode_tps:.1f}, every token "
                      f"{each[-1].decode_tps:.1f}, engine {direct[-1].decode_tps:.1f} tok/s; raw "
                      f"first byte +{(raw[-1].ttft_s - raw[-1].engine_ttft_s) * 1000:.1f} ms",
                      flush=True)  # fmt: skip
            turns = conversation(client)
        finally:
            client.close()
            each_client.close()
            for proc in (process, each_process):
                proc.terminate()
                proc.wait(30)
    engine.unload()

    def ratio(side: list[Run]) -> float:  # the median of each round's own ratio
        pairs = zip(side, direct, strict=True)
        return statistics.median(a.decode_tps / d.decode_tps for a, d in pairs)

    added_ms = statistics.median((r.ttft_s - r.engine_ttft_s) * 1000 for r in raw)
    added_sdk_ms = statistics.median((r.ttft_s - r.engine_ttft_s) * 1000 for r in api)
    median_tps = {name: statistics.median(r.decode_tps for r in side)
                  for name, side in (("api", api), ("each", each), ("engine", direct))}  # fmt: skip
    print(f"threads {args.threads}, {args.tokens} tokens, {args.rounds} rounds (medians)")
    print(f"tokens per reply: API {[r.tokens for r in api]}, engine {[r.tokens for r in direct]}")
    print(f"decode tok/s: API {median_tps['api']:.1f} (paced, the default), every token "
          f"{median_tps['each']:.1f}, engine {median_tps['engine']:.1f}")  # fmt: skip
    print(f"decode ratio API / engine, median of rounds: {ratio(api):.3f} (goal >= 0.95); "
          f"--stream-interval 0: {ratio(each):.3f}")  # fmt: skip
    for name, side in (("paced", api), ("every token", each)):
        print(f"CPU per token besides llama.cpp's threads, {name}: client "
              f"{statistics.median(r.client_cpu_ms for r in side):.3f} ms, server "
              f"{statistics.median(r.server_cpu_ms for r in side):.3f} ms")  # fmt: skip
    print(f"time to first token: API (client) {statistics.median(r.ttft_s for r in api) * 1000:.1f}"
          f" ms, engine direct {statistics.median(r.ttft_s for r in direct) * 1000:.1f} ms")
    print(f"through the openai client, to its first content chunk: {added_sdk_ms:.1f} ms "
          f"(each: {', '.join(f'{(r.ttft_s - r.engine_ttft_s) * 1000:.1f}' for r in api)})")
    print(f"added latency to the first streamed byte: {added_ms:.1f} ms (goal < 10 ms; each: "
          f"{', '.join(f'{(r.ttft_s - r.engine_ttft_s) * 1000:.1f}' for r in raw)})")
    print("conversation (turn: prefilled / new = ratio):")
    for n, (prefilled, new, ratio) in enumerate(turns, start=2):
        print(f"  {n}: {prefilled} / {new} = {ratio:.3f}")
    ratios = [r for _, _, r in turns]
    print(f"prefill ratio: mean {statistics.mean(ratios):.3f}, max {max(ratios):.3f} "
          "(goal <= 1.05)")


if __name__ == "__main__":
    main()
