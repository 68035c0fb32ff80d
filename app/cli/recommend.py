"""`leancoder recommend` (which catalog model suits this machine) and `leancoder fit MODEL` (where
one GGUF file or catalog entry would live, and how much memory it takes)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from app.cli import options as opt
from app.core.storage.settings import DEFAULT_CONTEXT

if TYPE_CHECKING:
    from app.core.fit.estimate import MachineBudget

BADGES = {"great": "runs great", "good": "runs well", "slow": "slow", "no": "does not fit"}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rec = sub.add_parser("recommend", help="rank the catalog's models for this machine")
    add_wanted_context(rec)
    opt.add_json(rec, "print a JSON list")
    rec.add_argument(
        "--no-bandwidth",
        action="store_true",
        help="skip the half-second memory-speed measurement (speeds then assume 20 GB/s)",
    )
    rec.set_defaults(handler=_recommend)

    fit = sub.add_parser("fit", help="memory and placement plan for a GGUF file or catalog entry")
    fit.add_argument("model", help="a GGUF file, or a catalog key such as qwen3-30b-a3b:q8_0")
    add_wanted_context(fit)
    opt.add_json(fit)
    fit.set_defaults(handler=_fit)


def add_wanted_context(parser: argparse.ArgumentParser) -> None:
    # The same wish a load makes (app.core.session.load_plan.app_context), so the figures shown
    # here are the ones the window and `ask` get.
    parser.add_argument(
        "--ctx",
        type=opt.positive_int,
        default=None,
        help=f"wanted context in tokens (default: the app's, {DEFAULT_CONTEXT:,})",
    )


def _wanted_context(args: argparse.Namespace) -> int | None:
    from app.core.session.load_plan import app_context

    return app_context() if args.ctx is None else int(args.ctx)


def _machine(measure: bool) -> MachineBudget:
    from app.core.machine.budget import machine_budget
    from app.core.machine.hardware import detect_hardware

    return machine_budget(detect_hardware(measure_bandwidth=measure))


def _recommend(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.fit.estimate import GIB
    from app.core.fit.recommend import recommend

    machine = _machine(not args.no_bandwidth)
    ranked = recommend(machine, n_ctx=_wanted_context(args))
    if args.json:
        out.write(json.dumps([r.to_dict() for r in ranked], indent=2) + "\n")
        return 0
    gpus = ", ".join(f"{g.name} {g.bytes_free / GIB:.1f} GiB free" for g in machine.gpus)
    out.write(
        f"This machine: {machine.ram_bytes / GIB:.1f} GiB RAM available"
        f"{'; ' + gpus if gpus else '; no GPU llama.cpp can use'}.\n\n"
    )
    for position, r in enumerate(ranked, 1):
        out.write(f"{position:>2}. {r.entry.label} [{r.entry.key}] - {BADGES[r.badge]}\n")
        out.write(f"    {r.reason}\n")
        for note in r.plan.notes:
            out.write(f"    note: {note}\n")
    unverified = sum(1 for r in ranked if not r.entry.verified)
    if unverified:
        err.write(
            f"note: {unverified} entries carry sizes from model cards not checked here; a "
            "download checks size and SHA-256 against the hub.\n"
        )
    return 0


def _fit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.fit.estimate import GIB, footprint_from_catalog, footprint_from_header
    from app.core.fit.plan import plan_fit
    from app.core.gguf.header import read_header
    from app.core.models.catalog import find_entry
    from app.core.models.starter import STARTER_KEY, resolve_model

    path = Path(args.model).expanduser()
    if args.model == STARTER_KEY:
        path = resolve_model(STARTER_KEY)
    if path.suffix.lower() == ".gguf" or path.exists():
        fp = footprint_from_header(read_header(path))
    else:
        fp = footprint_from_catalog(find_entry(args.model))
    plan = plan_fit(fp, _machine(False), n_ctx=_wanted_context(args))
    m = plan.memory
    data = {
        "model": fp.name,
        "architecture": fp.architecture,
        "moe": fp.is_moe,
        "plan": plan.kind,
        "n_ctx": plan.n_ctx,
        "n_gpu_layers": plan.n_gpu_layers,
        "expert_layers_on_cpu": plan.expert_layers_on_cpu,
        "weights_bytes": m.weights,
        "expert_bytes": m.expert_weights,
        "kv_cache_bytes": m.kv_cache,
        "compute_bytes": m.compute,
        "overhead_bytes": m.overhead,
        "total_bytes": m.total,
        "gpu_bytes": plan.gpu_bytes,
        "cpu_bytes": plan.cpu_bytes,
        "tokens_per_s_estimate": round(plan.tokens_per_s, 1),
        "reason": plan.reason,
        "notes": list(plan.notes),
    }
    if args.json:
        out.write(json.dumps(data, indent=2) + "\n")
        return 0 if plan.fits else 1
    out.write(f"{fp.name} ({fp.architecture}{', MoE' if fp.is_moe else ''})\n")
    for label, value in (
        ("weights", m.weights),
        ("  of which experts", m.expert_weights),
        (f"KV cache ({plan.n_ctx:,} tokens)", m.kv_cache),
        ("compute buffers", m.compute),
        ("runtime", m.overhead),
        ("total", m.total),
    ):
        out.write(f"  {label:<28}{value / GIB:8.2f} GiB\n")
    out.write(f"{plan.reason}\n")
    if plan.fits:
        out.write(
            f"About {plan.tokens_per_s:.0f} tokens/s "
            "(an estimate from memory bandwidth and CPU cores).\n"
        )
    for note in plan.notes:
        err.write(f"note: {note}\n")
    return 0 if plan.fits else 1
