"""Turn a fit plan into the engine's load options: the hybrid plan is applied, not just shown.

The window (`EngineBridge.load(plan=True)`) and every CLI command that loads a model go through
`planned_options`, so both fit a model to the machine the same way; the CLI calls `load_planned`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from app.core.fit.estimate import FitPlan, MachineBudget, footprint_from_header
from app.core.fit.plan import plan_fit
from app.core.gguf.header import read_header
from app.core.llm.engine import LoadOptions
from app.core.machine.budget import current_machine
from app.core.models.starter import STARTER_KEY, resolve_model
from app.core.storage import paths
from app.core.storage.settings import DEFAULT_CONTEXT, Settings

if TYPE_CHECKING:
    from app.core.llm.engine import CancelToken, Engine, ModelInfo

log = logging.getLogger(__name__)


def planned_options(
    path: Path,
    base: LoadOptions,
    machine: MachineBudget | None = None,
    *,
    keep_gpu_layers: bool = False,
) -> tuple[LoadOptions, FitPlan]:
    """`base` with the context, GPU layers and expert placement the plan picks for this file.

    `base.n_ctx` is a wish: the plan takes it, or the largest halving of it that fits (0: the
    model's trained context). `keep_gpu_layers`: the user chose `base.n_gpu_layers` (and its
    expert placement), so the plan only sizes the context. A plan that does not fit keeps `base`
    as it is: the engine's own memory guard then gives the user the precise reason, and a user
    who knows better is not second-guessed twice.
    """
    footprint = footprint_from_header(read_header(path))
    wanted = base.n_ctx or footprint.context_length
    plan = plan_fit(footprint, machine or current_machine(), n_ctx=wanted)
    if not plan.fits:
        return base, plan
    if keep_gpu_layers:
        return dataclasses.replace(base, n_ctx=plan.n_ctx), plan
    options = dataclasses.replace(
        base,
        n_ctx=plan.n_ctx,
        n_gpu_layers=plan.n_gpu_layers,
        expert_layers_on_cpu=plan.expert_layers_on_cpu,
    )
    return options, plan


def load_planned(
    engine: Engine,
    path: Path,
    base: LoadOptions,
    *,
    keep_gpu_layers: bool = False,
    machine: MachineBudget | None = None,
    progress: Callable[[float], None] | None = None,
    cancel: CancelToken | None = None,
) -> ModelInfo:
    """Plan, then load; the plan's reason (and a kept GPU-layer wish) join the load's notes."""
    options, plan = planned_options(path, base, machine, keep_gpu_layers=keep_gpu_layers)
    info = engine.load(path, options, progress=progress, cancel=cancel)
    info.notes.append(plan.reason)
    wanted = min(base.n_ctx or info.n_ctx_train, info.n_ctx_train)
    if plan.fits and options.n_ctx < wanted:  # the plan's own note; its speed notes don't apply
        info.notes.append(f"Context reduced from {wanted:,} to {options.n_ctx:,} tokens to fit.")
    if keep_gpu_layers and plan.fits and options.n_gpu_layers != plan.n_gpu_layers:
        info.notes.append(
            f"{_layers(options.n_gpu_layers)} on the GPU as asked "
            f"(the plan would put {_layers(plan.n_gpu_layers)} there)."
        )
    return info


def _layers(count: int) -> str:
    return "all layers" if count < 0 else f"{count} layer{'s' if count != 1 else ''}"


def wished_options(
    *,
    n_ctx: int | None,
    n_gpu_layers: int | None,
    n_threads: int | None,
    template: str = "model",
) -> tuple[LoadOptions, bool]:
    """A front end's options as wishes for the plan: no context given means the app's; GPU
    layers given means kept (the second value)."""
    chosen: Literal["model", "default"] = "default" if template == "default" else "model"
    options = LoadOptions(
        n_ctx=app_context() if n_ctx is None else n_ctx,
        n_gpu_layers=n_gpu_layers if n_gpu_layers is not None else 0,
        n_threads=n_threads or None,
        template=chosen,
    )
    return options, n_gpu_layers is not None


def _settings() -> Settings:
    try:
        return Settings.load(paths.settings_path())
    except OSError as exc:  # an unreadable data folder: the defaults, and the command goes on
        log.warning("settings unreadable (%s); using defaults", exc)
        return Settings()


def app_context() -> int:
    """The context the window asks for (its setting, else DEFAULT_CONTEXT): `recommend`, `fit`
    and the CLI's loads assume the same, so they agree with the window on memory and speed."""
    n_ctx = _settings().n_ctx
    return n_ctx if n_ctx > 0 else DEFAULT_CONTEXT


def usable_last_model(settings: Settings) -> str | None:
    """The model last used in the app ("starter" or a path), while it still exists."""
    last = settings.last_model
    if last and (last == STARTER_KEY or Path(last).expanduser().is_file()):
        return last
    return None


def resolve_cli_model(spec: str | None) -> tuple[Path, str | None]:
    """`--model` as given; without one, the model last used in the app while it still exists,
    else the starter. The second value says which was taken, for a `note:` line."""
    if spec is not None:
        return resolve_model(spec), None
    settings = _settings()
    last = usable_last_model(settings)
    if last and last != STARTER_KEY:
        path = Path(last).expanduser()
        return path, f"no --model: using the model last used in the app, {path.name}"
    starter = resolve_model(STARTER_KEY)
    if settings.last_model and settings.last_model != STARTER_KEY:
        return starter, (
            f"no --model: the app's last model {settings.last_model} is gone; using the starter"
        )
    return starter, "no --model: using the starter model"
