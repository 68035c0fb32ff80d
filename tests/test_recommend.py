"""Recommendations for real and described machines, and the `recommend`/`fit` commands."""

from __future__ import annotations

import io
import json
from pathlib import Path

from app.cli.main import _run_reporting_errors, build_parser
from app.core.fit.estimate import GIB, GpuBudget, MachineBudget
from app.core.fit.recommend import recommend
from app.core.machine.budget import machine_budget
from app.core.machine.hardware import detect_hardware
from app.core.machine.info import CpuInfo, GpuInfo, HardwareInfo


def test_a_gaming_pc_gets_the_30b_coder_in_a_hybrid_plan() -> None:
    pc = MachineBudget(
        ram_bytes=32 * GIB,
        cpu_bandwidth=60e9,
        gpus=(GpuBudget("RTX 4060", 8 * GIB, 272e9),),
        bandwidth_measured=True,
        cpu_cores=8,
    )
    ranked = recommend(pc)
    best = ranked[0]
    assert best.entry.model_key == "qwen3-coder-30b-a3b"
    assert best.plan.kind == "hybrid" and best.plan.expert_layers_on_cpu > 0
    assert best.badge in ("great", "good")
    assert best.reason.startswith("Best coding model")
    assert "Hybrid" in best.reason and "tokens/s (estimate)" in best.reason


def test_a_small_laptop_gets_a_small_model_and_the_big_ones_do_not_fit() -> None:
    laptop = MachineBudget(ram_bytes=6 * GIB, cpu_bandwidth=30e9, cpu_cores=4)
    ranked = recommend(laptop)
    assert ranked[0].plan.fits and ranked[0].entry.size_bytes < 4 * GIB
    no_fit = {r.entry.model_key for r in ranked if r.badge == "no"}
    assert {"qwen3-coder-30b-a3b", "qwen3-30b-a3b", "gpt-oss-20b"} <= no_fit
    fits = [r.plan.fits for r in ranked]
    assert fits == sorted(fits, reverse=True)  # every model that fits comes first
    assert all("Does not fit" in r.reason for r in ranked if r.badge == "no")


def test_one_line_per_model_and_the_starter_is_not_recommended() -> None:
    ranked = recommend(MachineBudget(ram_bytes=64 * GIB))
    keys = [r.entry.model_key for r in ranked]
    assert len(keys) == len(set(keys)) >= 8 + 3
    assert "smollm2-135m" not in keys


def test_this_machine_budget_comes_from_the_hardware_probe() -> None:
    hw = detect_hardware()
    budget = machine_budget(hw)
    assert budget.ram_bytes == hw.ram_available_bytes
    assert budget.cpu_cores == hw.cpu.physical_cores
    # Whatever this machine has: one budget per GPU llama.cpp can offload to, none for the rest.
    assert [g.name for g in budget.gpus] == [g.name for g in hw.offload_gpus]


def test_only_gpus_llama_cpp_can_use_get_a_budget() -> None:
    cpu = CpuInfo("x86-64", physical_cores=6, logical_cores=12, features=("AVX2",))
    cuda = GpuInfo(0, "RTX 4060", "CUDA", 8 * GIB, 7 * GIB, "ggml")
    unknown_free = GpuInfo(1, "Arc A380", "Vulkan", 6 * GIB, None, "ggml")
    vendor_only = GpuInfo(2, "Radeon RX 7600", "ROCm", 8 * GIB, 8 * GIB, "rocm-smi")
    hw = HardwareInfo(
        ram_total_bytes=32 * GIB,
        ram_available_bytes=20 * GIB,
        cpu=cpu,
        gpus=(cuda, unknown_free, vendor_only),
        disk_path="/models",
        disk_free_bytes=None,
    )
    budget = machine_budget(hw)
    assert budget.gpus == (
        GpuBudget("RTX 4060", 7 * GIB, 400e9),  # free memory, CUDA's default bandwidth
        GpuBudget("Arc A380", 6 * GIB, 250e9),  # free unknown: the total
    )
    assert budget.ram_bytes == 20 * GIB and budget.cpu_cores == 6
    assert budget.cpu_bandwidth == 20e9 and not budget.bandwidth_measured  # the default


def test_recommend_cli_json_lists_plans() -> None:
    out = io.StringIO()
    args = build_parser().parse_args(["recommend", "--json", "--no-bandwidth", "--ctx", "8192"])
    assert _run_reporting_errors(args.handler, args, out, io.StringIO()) == 0
    rows = json.loads(out.getvalue())
    assert rows and {"key", "plan", "n_ctx", "tokens_per_s_estimate", "reason"} <= set(rows[0])
    assert all(r["n_ctx"] <= 8192 for r in rows)


def test_fit_cli_for_a_gguf_file(starter_path: Path) -> None:
    out = io.StringIO()
    args = build_parser().parse_args(["fit", str(starter_path), "--ctx", "2048", "--json"])
    assert _run_reporting_errors(args.handler, args, out, io.StringIO()) == 0
    data = json.loads(out.getvalue())
    assert data["plan"] == "cpu" and data["n_ctx"] == 2048 and not data["moe"]
    assert data["total_bytes"] == sum(
        data[k] for k in ("weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes")
    )


def test_fit_cli_for_an_unknown_entry_is_a_clear_error() -> None:
    err = io.StringIO()
    args = build_parser().parse_args(["fit", "no-such-model"])
    assert _run_reporting_errors(args.handler, args, io.StringIO(), err) == 2
    assert "No catalog entry 'no-such-model'" in err.getvalue()
