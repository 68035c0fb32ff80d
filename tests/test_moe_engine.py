"""A real (tiny, random-weight) Mixture-of-Experts GGUF through the engine, with and without the
hybrid plan's expert overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.llm import backend as llama_backend
from app.core.llm.engine import Engine, LoadOptions, SamplingParams, run_to_completion
from tests.tiny_moe import write_tiny_moe


@pytest.fixture(scope="module")
def moe_path(tmp_path_factory: pytest.TempPathFactory, starter_path: Path) -> Path:
    return write_tiny_moe(tmp_path_factory.mktemp("moe") / "tiny-moe.gguf", starter_path)


def _overridden(log: list[str]) -> set[str]:
    return {line.split()[1] for line in log if "buffer type overridden to CPU" in line}


def test_the_tiny_moe_loads_and_generates(moe_path: Path) -> None:
    engine = Engine()
    try:
        info = engine.load(moe_path, LoadOptions(n_ctx=512))
        assert info.architecture == "qwen3moe"
        assert _overridden(llama_backend.recent_log(4000, debug=True)) == set()
        _thinking, _answer, stats = run_to_completion(
            engine, [{"role": "user", "content": "hello"}], SamplingParams(max_tokens=8, seed=3)
        )
        assert stats.generated_tokens == 8
    finally:
        engine.unload()


@pytest.mark.parametrize(("layers_on_cpu", "expected_layers"), [(1, {0}), (-1, {0, 1})])
def test_the_expert_override_plan_is_applied_at_load(
    moe_path: Path, layers_on_cpu: int, expected_layers: set[int]
) -> None:
    engine = Engine()
    try:
        info = engine.load(moe_path, LoadOptions(n_ctx=512, expert_layers_on_cpu=layers_on_cpu))
        overridden = _overridden(llama_backend.recent_log(4000, debug=True))
        expected = {
            f"blk.{layer}.ffn_{kind}_exps.weight"
            for layer in expected_layers
            for kind in ("gate", "up", "down")
        }
        assert overridden == expected
        assert any("host memory" in note for note in info.notes)
        _thinking, _answer, stats = run_to_completion(
            engine, [{"role": "user", "content": "hello"}], SamplingParams(max_tokens=8, seed=3)
        )
        assert stats.generated_tokens == 8
    finally:
        engine.unload()


def test_a_dense_model_ignores_an_expert_plan(starter_path: Path) -> None:
    engine = Engine()
    try:
        info = engine.load(starter_path, LoadOptions(n_ctx=512, expert_layers_on_cpu=-1))
        assert _overridden(llama_backend.recent_log(4000, debug=True)) == set()
        assert not any("host memory" in note for note in info.notes)
    finally:
        engine.unload()


def test_a_hybrid_plan_for_a_small_gpu_reaches_the_engine(moe_path: Path) -> None:
    """A machine whose GPU holds everything but one layer's experts: the plan keeps those experts
    in host memory, and loading with the planned options applies exactly that."""
    from app.core.fit.estimate import GIB, GpuBudget, MachineBudget
    from app.core.session.load_plan import planned_options

    base = LoadOptions(n_ctx=512)
    # The tiny MoE at 512 tokens: 2,627,072 bytes without its experts (attention, norms, output,
    # KV cache, the 2,392,064 bytes of compute buffer host memory holds with flash attention),
    # plus 99,319,808 because a GPU allocates llama.cpp's whole compute reservation, 101,711,872
    # bytes here: logits for a 512-token micro-batch of the 49,152-token vocabulary (49,152 x 512
    # x 4), the f16 mask and four hidden states. Then 786,432 bytes of experts per layer, 2 layers.
    # Past the 1 GiB margin, 102,933,312 bytes hold one layer's experts but not both.
    on_gpu_without_experts = 2_627_072 + 99_319_808
    gpu = GpuBudget("small GPU", 1 * GIB + on_gpu_without_experts + 786_432 + 200_000, 100e9)
    options, plan = planned_options(moe_path, base, MachineBudget(8 * 1024**3, gpus=(gpu,)))
    assert plan.kind == "hybrid" and plan.expert_layers_on_cpu == 1
    assert plan.gpu_bytes == on_gpu_without_experts + 786_432
    assert options.expert_layers_on_cpu == 1 and options.n_gpu_layers == -1
    engine = Engine()
    try:
        engine.load(moe_path, options)
        assert _overridden(llama_backend.recent_log(4000, debug=True)) == {
            f"blk.0.ffn_{kind}_exps.weight" for kind in ("gate", "up", "down")
        }
    finally:
        engine.unload()


def test_a_cpu_only_machine_plans_no_overrides(moe_path: Path) -> None:
    from app.core.fit.estimate import MachineBudget
    from app.core.session.load_plan import planned_options

    options, plan = planned_options(moe_path, LoadOptions(n_ctx=1024), MachineBudget(8 * 1024**3))
    assert plan.kind == "cpu"
    assert options.n_gpu_layers == 0 and options.expert_layers_on_cpu == 0
    assert options.n_ctx == 1024
