"""Rank the catalog for this machine: which model to use, where it runs, and why, in one line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.core.fit.estimate import (
    GIB,
    FitPlan,
    MachineBudget,
    footprint_from_catalog,
)
from app.core.fit.plan import plan_fit
from app.core.models.catalog import CatalogEntry, load_catalog

Badge = Literal["great", "good", "slow", "no"]
USABLE_TOKENS_PER_S = 8.0  # below this, waiting for code feels broken
GREAT_TOKENS_PER_S = 20.0
# Higher-precision quantizations are worth a little: Q8_0 > Q6 > Q5 > Q4 > Q3.
QUANT_BONUS = {"Q8_0": 4, "F16": 4, "Q6_K": 3, "Q5_K_M": 2, "MXFP4": 2, "Q4_K_M": 0, "Q4_1": 0}


@dataclass(frozen=True, slots=True)
class Recommendation:
    entry: CatalogEntry
    plan: FitPlan
    badge: Badge
    reason: str

    def to_dict(self) -> dict[str, Any]:
        p = self.plan
        return {
            "key": self.entry.key,
            "name": self.entry.name,
            "quant": self.entry.quant.quant,
            "repo": self.entry.repo,
            "file": self.entry.filename,
            "size_bytes": self.entry.size_bytes,
            "moe": self.entry.moe,
            "badge": self.badge,
            "plan": p.kind,
            "n_ctx": p.n_ctx,
            "n_gpu_layers": p.n_gpu_layers,
            "expert_layers_on_cpu": p.expert_layers_on_cpu,
            "gpu_bytes": p.gpu_bytes,
            "cpu_bytes": p.cpu_bytes,
            "memory_total_bytes": p.memory.total,
            "tokens_per_s_estimate": round(p.tokens_per_s, 1),
            "reason": self.reason,
            "notes": list(p.notes),
            "verified": self.entry.verified,
        }


def _badge(plan: FitPlan) -> Badge:
    if not plan.fits:
        return "no"
    if plan.tokens_per_s < USABLE_TOKENS_PER_S:
        return "slow"
    return "great" if plan.tokens_per_s >= GREAT_TOKENS_PER_S else "good"


def _score(entry: CatalogEntry, plan: FitPlan) -> tuple[int, float, float]:
    """Usable first, then the better coder; a finer quantization counts only where speed is to
    spare, and among equals the faster plan wins."""
    badge = _badge(plan)
    tier = {"great": 2, "good": 2, "slow": 1, "no": 0}[badge]
    bonus = QUANT_BONUS.get(entry.quant.quant, 0) if badge == "great" else 0
    return tier, entry.coding_rank + bonus, plan.tokens_per_s


def recommend(
    machine: MachineBudget,
    n_ctx: int | None = None,
    catalog: Sequence[CatalogEntry] | None = None,
) -> list[Recommendation]:
    """One line per model (its best quantization for this machine), best first."""
    best: dict[str, tuple[tuple[int, float, float], CatalogEntry, FitPlan]] = {}
    for entry in catalog if catalog is not None else load_catalog():
        if entry.bundled:
            continue  # the starter is always there; it is not a recommendation
        plan = plan_fit(footprint_from_catalog(entry), machine, n_ctx)
        score = _score(entry, plan)
        current = best.get(entry.model_key)
        if current is None or score > current[0]:
            best[entry.model_key] = (score, entry, plan)
    ranked = sorted(best.values(), key=lambda item: item[0], reverse=True)
    results = []
    for position, (_score_value, entry, plan) in enumerate(ranked):
        results.append(Recommendation(entry, plan, _badge(plan), _explain(entry, plan, position)))
    return results


def _explain(entry: CatalogEntry, plan: FitPlan, position: int) -> str:
    size = f"{entry.size_bytes / GIB:.1f} GiB"
    if not plan.fits:
        return plan.reason
    speed = f"about {plan.tokens_per_s:.0f} tokens/s (estimate)"
    lead = "Best coding model that runs well here. " if position == 0 else ""
    if _badge(plan) == "slow":
        lead = "Fits, but slowly. "
    kind = "MoE" if entry.moe else "dense"
    return f"{lead}{entry.quant.quant}, {size} {kind}: {plan.reason} {speed[0].upper()}{speed[1:]}."
