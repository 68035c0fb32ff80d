"""LeanCoder's engine against raw llama-cpp-python on the same model, prompt and sampling.

Both sides use the same loaded `Llama`, the same seed and sampler settings, so they sample the same
tokens; the KV cache is cleared before every run so each pays the full prompt. Runs are interleaved
(raw, engine, engine, raw, ...) so machine noise hits both alike. Prints the decode tokens/s ratio
(engine / raw; goal >= 0.97) and the time-to-first-token ratio (engine / raw; lower is better).

    .venv/bin/python bench/engine_overhead.py [--model PATH|starter] [--tokens N] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

from app.core.llm.engine import Engine, LoadOptions, SamplingParams
from app.core.models.starter import resolve_model

PROMPT = "Write a detailed, long story about a lighthouse keeper who learns to program."
SEED = 1234
TEMPERATURE = 0.7


@dataclass
class Run:
    ttft_s: float
    decode_tps: float
    tokens: int
    text: str


def run_raw(engine: Engine, n_tokens: int) -> Run:
    llm = engine.backend.llama  # the very same Llama the engine drives
    prompt = engine.render_prompt([{"role": "user", "content": PROMPT}])
    llm.reset()
    start = time.perf_counter()
    first = last = 0.0
    pieces: list[str] = []
    count = 0
    for chunk in llm.create_completion(
        prompt,
        max_tokens=n_tokens,
        temperature=TEMPERATURE,
        top_p=0.95,
        top_k=40,
        min_p=0.05,
        repeat_penalty=1.0,
        seed=SEED,
        stream=True,
    ):
        now = time.perf_counter()
        choice = chunk["choices"][0]  # type: ignore[index]
        pieces.append(choice["text"])
        if choice["finish_reason"] is not None:
            break  # the closing chunk carries no new token
        first = first or now
        last = now
        count += 1
    return Run(first - start, (count - 1) / (last - first), count, "".join(pieces))


def run_engine(engine: Engine, n_tokens: int) -> Run:
    engine.backend.forget_tokens()
    sampling = SamplingParams(
        temperature=TEMPERATURE, top_p=0.95, top_k=40, min_p=0.05, max_tokens=n_tokens, seed=SEED
    )
    start = time.perf_counter()
    first = last = 0.0
    pieces: list[str] = []
    tokens = 0
    for event in engine.generate([{"role": "user", "content": PROMPT}], sampling):
        now = time.perf_counter()
        if event.kind == "done":
            tokens = event.stats.generated_tokens
            break
        first = first or now
        last = now
        pieces.append(event.text)
    return Run(first - start, (tokens - 1) / (last - first), tokens, "".join(pieces))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="starter")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    engine = Engine()
    engine.load(resolve_model(args.model), LoadOptions(n_ctx=2048))
    run_raw(engine, 16)  # warm-up: page in the weights, settle the allocator
    run_engine(engine, 16)
    raw: list[Run] = []
    ours: list[Run] = []
    for i in range(args.rounds):
        order = (run_raw, run_engine) if i % 2 == 0 else (run_engine, run_raw)
        for fn in order:
            (raw if fn is run_raw else ours).append(fn(engine, args.tokens))
    engine.unload()

    same = all(r.text == o.text for r, o in zip(raw, ours, strict=True))
    raw_tps = statistics.median(r.decode_tps for r in raw)
    our_tps = statistics.median(r.decode_tps for r in ours)
    raw_ttft = statistics.median(r.ttft_s for r in raw)
    our_ttft = statistics.median(r.ttft_s for r in ours)
    print(
        f"model: {args.model}  tokens/run: raw {raw[0].tokens}, engine {ours[0].tokens}  "
        f"rounds: {args.rounds}  identical text: {same}"
    )
    print(f"{'':22}{'raw llama-cpp':>14}{'LeanCoder':>12}{'ratio':>8}")
    print(
        f"{'decode tokens/s':22}{raw_tps:14.1f}{our_tps:12.1f}{our_tps / raw_tps:8.3f}"
        f"   (goal >= 0.97)"
    )
    print(
        f"{'time to first token ms':22}{raw_ttft * 1000:14.1f}{our_ttft * 1000:12.1f}"
        f"{our_ttft / raw_ttft:8.3f}   (lower is better)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
