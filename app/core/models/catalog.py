"""The catalog of models LeanCoder can recommend: Mixture-of-Experts GGUFs plus a few small dense
reasoners for weak machines. Data lives in `resources/catalog.json`; this module validates it once
and gives typed entries.

Facts that could not be checked from the build machine are marked `verified: false`; downloads check
size and SHA-256 against the hub's own metadata regardless (see `app.core.models.download`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import LeanCoderError
from app.core.storage.paths import resources_dir


class CatalogError(LeanCoderError):
    """The catalog file is broken, or a requested entry does not exist."""


@dataclass(frozen=True, slots=True)
class ArchParams:
    """What memory and speed depend on, in llama.cpp's terms (GGUF `<arch>.*` keys)."""

    architecture: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    key_length: int
    value_length: int
    n_vocab: int
    context_length: int
    n_expert: int = 0
    n_expert_used: int = 0
    expert_ff: int = 0  # feed-forward width of one expert
    n_dense_layers: int = 0  # leading layers with a dense FFN instead of experts
    sliding_window: int = 0  # tokens an SWA layer keeps (0: no sliding-window layers)
    sliding_window_every: int = 0  # every Nth layer is full attention, the others SWA

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 1

    @property
    def expert_params(self) -> int:
        """Routed-expert parameters (up, gate and down for every expert of every MoE layer)."""
        moe_layers = self.n_layer - self.n_dense_layers
        return moe_layers * self.n_expert * 3 * self.n_embd * self.expert_ff


@dataclass(frozen=True, slots=True)
class QuantFile:
    quant: str
    repo: str
    filename: str
    size_bytes: int
    sha256: str | None


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One model in one quantization: key `<model>` for its first quant, else `<model>:<q>`."""

    key: str
    model_key: str
    name: str
    license: str
    moe: bool
    params_total: float
    params_active: float
    thinking: str  # none | think_tags | gpt_oss
    coding_rank: int
    summary: str
    arch: ArchParams
    quant: QuantFile
    sampling: dict[str, float]
    verified: bool
    bundled: bool = False

    @property
    def repo(self) -> str:
        return self.quant.repo

    @property
    def filename(self) -> str:
        return self.quant.filename

    @property
    def size_bytes(self) -> int:
        return self.quant.size_bytes

    @property
    def sha256(self) -> str | None:
        return self.quant.sha256

    @property
    def expert_fraction(self) -> float:
        """Share of the weights that are routed experts (by parameter count)."""
        if not self.arch.is_moe or self.params_total <= 0:
            return 0.0
        return min(0.99, self.arch.expert_params / self.params_total)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.quant.quant})"


def catalog_path() -> Path:
    return resources_dir() / "catalog.json"


@functools.cache
def load_catalog(path: Path | None = None) -> tuple[CatalogEntry, ...]:
    """Every model in every quantization, in catalog order."""
    source = path or catalog_path()
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
        return tuple(entry for model in raw["models"] for entry in _entries(model))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"The model catalog {source} is unreadable: {exc}") from exc


def _entries(model: dict[str, Any]) -> list[CatalogEntry]:
    arch = ArchParams(**model["arch"])
    entries = []
    for index, q in enumerate(model["quants"]):
        quant = QuantFile(
            quant=q["quant"],
            repo=q["repo"],
            filename=q["filename"],
            size_bytes=int(q["size_bytes"]),
            sha256=q.get("sha256"),
        )
        key = model["key"] if index == 0 else f"{model['key']}:{quant.quant.lower()}"
        entries.append(
            CatalogEntry(
                key=key,
                model_key=model["key"],
                name=model["name"],
                license=model["license"],
                moe=bool(model["moe"]),
                params_total=float(model["params_total"]),
                params_active=float(model["params_active"]),
                thinking=model["thinking"],
                coding_rank=int(model["coding_rank"]),
                summary=model["summary"],
                arch=arch,
                quant=quant,
                sampling={k: float(v) for k, v in model["sampling"].items()},
                verified=bool(model["verified"]),
                bundled=bool(model.get("bundled", False)),
            )
        )
    return entries


def find_entry(key: str) -> CatalogEntry:
    """An entry by key (`qwen3-30b-a3b`, `qwen3-30b-a3b:q8_0`), case-insensitive."""
    wanted = key.strip().lower()
    for entry in load_catalog():
        if entry.key.lower() == wanted:
            return entry
    known = ", ".join(sorted({e.model_key for e in load_catalog()}))
    raise CatalogError(f"No catalog entry '{key}'. Known models: {known}.")
