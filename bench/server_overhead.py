"""What the local API costs over the engine itself (issue #13), all ratios from one run.

`leancoder serve` runs as users run it, its own process; the official `openai` client streams
from it. The engine side is the same model loaded here, with the same threads, context, prompt
and greedy sampling, so both sides generate the same tokens. Runs are interleaved (API, engine,
engine, API, ...) so machine noise hits both alike.

- decode tok/s through the API (client-side: tokens after the first over the time from the
  first streamed token to the last) over the engine's own decode rate measured the same way:
  goal >= 0.95;
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


def run_api(client: openai.OpenAI, n_tokens: int) -> Run:
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
    tokens = int(usage.completion_tokens)
    engine_ttft = float(usage.model_extra["leancoder"]["time_to_first_token_s"])
    return Run(first - start, _decode_rate(tokens, first, last), tokens, engine_ttft)


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


def start_server(threads: int, data_dir: str) -> tuple[subprocess.Popen[str], str]:
    command = [str(Path(sys.executable).with_name("leancoder")), "serve", "--model", "starter",
               "--port", "0", "--ctx", str(CTX), "--threads", str(threads)]  # fmt: skip
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
    args = parser.parse_args()
    engine = Engine()
    engine.load(resolve_model("starter"), LoadOptions(n_ctx=CTX, n_threads=args.threads))
    with tempfile.TemporaryDirectory(prefix="leancoder-bench-") as data_dir:
        process, url = start_server(args.threads, data_dir)
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)
        try:
            run_api(client, 8), run_engine(engine, 8)  # warm both
            print(f"serving at {url}; warmed", flush=True)
            api: list[Run] = []
            direct: list[Run] = []
            raw: list[Run] = []
            for i in range(args.rounds):
                order = (0, 1) if i % 2 == 0 else (1, 0)
                for side in order:
                    if side == 0:
                        api.append(run_api(client, args.tokens))
                    else:
                        direct.append(run_engine(engine, args.tokens))
                raw.append(run_raw(url, args.tokens))
                print(f"round {i + 1}: API {api[-1]}, engine {direct[-1]}, raw {raw[-1]}",
                      flush=True)  # fmt: skip
            turns = conversation(client)
        finally:
            client.close()
            process.terminate()
            process.wait(30)
    engine.unload()

    api_tps = statistics.median(r.decode_tps for r in api)
    engine_tps = statistics.median(r.decode_tps for r in direct)
    added_ms = statistics.median((r.ttft_s - r.engine_ttft_s) * 1000 for r in raw)
    added_sdk_ms = statistics.median((r.ttft_s - r.engine_ttft_s) * 1000 for r in api)
    print(f"threads {args.threads}, {args.tokens} tokens, {args.rounds} rounds (medians)")
    print(f"tokens per reply: API {[r.tokens for r in api]}, engine {[r.tokens for r in direct]}")
    print(f"decode tok/s: API {api_tps:.1f}, engine {engine_tps:.1f}, "
          f"ratio {api_tps / engine_tps:.3f} (goal >= 0.95)")  # fmt: skip
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
