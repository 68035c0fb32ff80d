"""User settings in a small JSON file, written atomically (a crash never leaves half a file)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.core.storage.json_file import read_json_object, typed_values, write_json

log = logging.getLogger(__name__)
MAX_RECENT = 8
# The context the window asks for, and what `recommend`, `fit` and the CLI assume: room for a
# few files of code plus the conversation (the fit plan halves it where memory is short).
DEFAULT_CONTEXT = 16384
# The window's default before it had a context control: a file holding it never chose it.
OLD_DEFAULT_CONTEXT = 4096


@dataclass(slots=True)
class Settings:
    last_model: str | None = None  # a path, or "starter"
    recent_models: list[str] = field(default_factory=list)
    n_ctx: int = DEFAULT_CONTEXT
    n_ctx_chosen: bool = False  # set by the window's context control: kept as the user's choice
    n_gpu_layers: int = 0
    temperature: float = 0.7
    policy: str = "Balanced"  # a thinking-policy preset name, or "Custom"
    custom_policy: dict[str, Any] = field(default_factory=dict)  # ThinkingPolicy.to_dict()
    # Experimental: cut spent thinking out of the KV cache in place instead of re-prefilling
    # what followed it (approximate; see app.core.llm.kv_shift). Passed as LoadOptions.cache_mode.
    kv_fast_mode: bool = False
    # Prompt-lookup speculative decoding: "auto", "on" or "off" (app.core.llm.speculative's
    # DEFAULT_SPECULATIVE, which this layer cannot import); the window's switch sets auto or off.
    speculative: str = "off"
    # CPU threads for the model; 0: chosen for this machine (app.core.llm.threads).
    n_threads: int = 0
    # Prompts, replies and file contents go into the log only when on (app.core.storage.logs).
    log_content: bool = False
    # The window as it was closed: Qt's saveGeometry/saveState, base64 (empty: Qt's defaults).
    window_geometry: str = ""
    window_state: str = ""
    # The code folder open at close, its ticked files (relative paths) and Propose edits.
    code_folder: str | None = None
    ticked_files: list[str] = field(default_factory=list)
    propose_edits: bool = False
    # The last "Measure memory speed" result, so plans use it after a restart; None: not measured.
    memory_bandwidth_bytes_per_s: float | None = None
    # The window's colours: "system" follows the desktop's light/dark scheme (app.ui.theme).
    theme: str = "system"

    def remember_model(self, spec: str) -> None:
        self.last_model = spec
        if spec != "starter":
            self.recent_models = [spec, *(m for m in self.recent_models if m != spec)][:MAX_RECENT]

    @classmethod
    def load(cls, path: Path) -> Settings:
        settings = cls(**typed_values(read_json_object(path, "settings"), _EXPECTED))
        if settings.n_ctx == OLD_DEFAULT_CONTEXT and not settings.n_ctx_chosen:
            settings.n_ctx = DEFAULT_CONTEXT  # the old default, not a choice: the new default
        settings.ticked_files = [f for f in settings.ticked_files if isinstance(f, str)]
        settings.recent_models = [m for m in settings.recent_models if isinstance(m, str)]
        return settings

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))


# A hand-edited or older file may hold anything; only values of the right type are taken.
_EXPECTED: dict[str, type | tuple[type, ...]] = {
    "last_model": (str, type(None)),
    "recent_models": list,
    "n_ctx": int,
    "n_gpu_layers": int,
    "n_threads": int,
    "temperature": (int, float),
    "policy": str,
    "custom_policy": dict,
    "kv_fast_mode": bool,
    "speculative": str,
    "log_content": bool,
    "n_ctx_chosen": bool,
    "window_geometry": str,
    "window_state": str,
    "code_folder": (str, type(None)),
    "ticked_files": list,
    "propose_edits": bool,
    "memory_bandwidth_bytes_per_s": (int, float, type(None)),
    "theme": str,
}
