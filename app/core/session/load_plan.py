"""Turn a fit plan into the engine's load options: the hybrid plan is applied, not just shown."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.core.fit.estimate import FitPlan, MachineBudget, footprint_from_header
from app.core.fit.plan import plan_fit
from app.core.gguf.header import read_header
from app.core.llm.engine import LoadOptions
from app.core.machine.budget import current_machine


def planned_options(
    path: Path, base: LoadOptions, machine: MachineBudget | None = None
) -> tuple[LoadOptions, FitPlan]:
    """`base` with the context, GPU layers and expert placement the plan picks for this file.

    A plan that does not fit keeps `base` as it is: the engine's own memory guard then gives the
    user the precise reason, and a user who knows better is not second-guessed twice.
    """
    footprint = footprint_from_header(read_header(path))
    plan = plan_fit(footprint, machine or current_machine(), n_ctx=base.n_ctx or None)
    if not plan.fits:
        return base, plan
    options = dataclasses.replace(
        base,
        n_ctx=plan.n_ctx,
        n_gpu_layers=plan.n_gpu_layers,
        expert_layers_on_cpu=plan.expert_layers_on_cpu,
    )
    return options, plan
