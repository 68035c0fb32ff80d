"""A model's name as a person reads it: catalog name and quantization, not a file's metadata.

Why: GGUF's general.name is whatever the converter wrote (the starter's says "Smollm2 135M 8k
Lc100K Mix1 Ep2", a training-run tag), and file stems repeat the quantization in varying case.
The catalog knows the real name of every file it lists, the starter has its own, and for any other
file general.name is kept (bounded, printable: GGUFHeader.name) with the quantization read from
general.file_type, or from the file name when the header has none.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.core.models.catalog import load_catalog
from app.core.models.starter import starter_model_path

STARTER_NAME = "SmolLM2 135M Instruct (starter)"
MAX_NAME = 60
# llama.cpp's llama_ftype values (general.file_type) for the quantizations people meet.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
}  # fmt: skip
_QUANT_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|[BF]F?16|F32|TQ\d_\d)(?![A-Za-z0-9])", re.IGNORECASE
)


def quantization(file_name: str, file_type: int | None) -> str | None:
    """The quantization label (Q4_K_M, F16...): the header's file type, else the file's name."""
    if file_type is not None and file_type in FILE_TYPES:
        return FILE_TYPES[file_type]
    match = _QUANT_IN_NAME.search(file_name)
    return match.group(1).upper() if match else None


def readable_model_name(path: Path, general_name: str, file_type: int | None = None) -> str:
    """The name the window shows for the model file at `path`."""
    quant = quantization(path.name, file_type)
    starter = starter_model_path()
    if starter is not None and path.name == starter.name:
        return f"{STARTER_NAME} · {quant}" if quant else STARTER_NAME
    for entry in load_catalog():
        if entry.filename == path.name:
            return f"{entry.name} · {entry.quant.quant}"
    name = general_name.strip() or path.stem
    if len(name) > MAX_NAME:
        name = name[: MAX_NAME - 1] + "…"
    if quant and quant.lower() not in name.lower():
        return f"{name} · {quant}"
    return name
