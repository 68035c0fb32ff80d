"""Measure what loading a model really costs, to check the fit estimate against.

Runs in a fresh child process so nothing else in this process (another model, caches) blurs the
figure: resident memory before the load, then after loading and decoding a prompt that fills the
context (the worst case a long conversation reaches: attention then spans every cell) plus a few
tokens.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import LeanCoderError

HEADROOM_TOKENS = 48  # template tokens and the few decoded ones


@dataclass(frozen=True, slots=True)
class MeasuredLoad:
    rss_before: int
    rss_after: int
    kv_buffer_bytes: int
    compute_buffer_bytes: int

    @property
    def increase(self) -> int:
        return self.rss_after - self.rss_before


def measure_load(path: Path, n_ctx: int, timeout_s: float = 300.0) -> MeasuredLoad:
    cmd = [sys.executable, "-m", "app.core.evals.fit_measure", str(path), str(n_ctx)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise LeanCoderError(f"Measuring {path.name} failed: {done.stderr.strip()[-300:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return MeasuredLoad(**data)


def _child(path: str, n_ctx: int) -> None:
    import re

    import psutil

    from app.core.llm import backend as llama_backend
    from app.core.llm.engine import Engine, LoadOptions, SamplingParams, run_to_completion

    process = psutil.Process()
    before = process.memory_info().rss
    engine = Engine()
    engine.load(path, LoadOptions(n_ctx=n_ctx))
    logged = {"kv": 0, "compute": 0}
    for line in llama_backend.recent_log(400):
        found = re.search(r"CPU (KV|compute) buffer size =\s*([\d.]+) MiB", line)
        if found:
            logged[found.group(1).lower()] = int(float(found.group(2)) * 1024**2)
    words = n_ctx - HEADROOM_TOKENS
    prompt = " ".join(["word"] * words)
    while engine.count_tokens(prompt) > words and words > 16:
        words -= 16
        prompt = " ".join(["word"] * words)
    run_to_completion(
        engine, [{"role": "user", "content": prompt}], SamplingParams(max_tokens=4, seed=1)
    )
    after = process.memory_info().rss
    result = {
        "rss_before": before,
        "rss_after": after,
        "kv_buffer_bytes": logged["kv"],
        "compute_buffer_bytes": logged["compute"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
