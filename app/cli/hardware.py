"""`leancoder hardware [--json] [--bandwidth]`: what LeanCoder sees of this machine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from app.cli import options as opt


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "hardware", help="show RAM, CPU, GPUs (as llama.cpp sees them) and free disk"
    )
    opt.add_json(p)
    p.add_argument(
        "--bandwidth", action="store_true", help="also estimate memory bandwidth (about 0.5 s)"
    )
    p.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="where models are stored, for the free-disk figure (default: the Hugging Face cache)",
    )
    p.add_argument(
        "--timeout", type=float, default=3.0, help="seconds each vendor tool may take (default 3)"
    )
    p.set_defaults(handler=_hardware)


def _hardware(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.machine.hardware import detect_hardware
    from app.core.machine.info import summary_rows

    info = detect_hardware(
        args.models_dir, timeout_s=max(args.timeout, 0.1), measure_bandwidth=args.bandwidth
    )
    if args.json:
        out.write(json.dumps(info.to_dict(), ensure_ascii=False) + "\n")
        return 0
    rows = summary_rows(info)
    width = max(len(label) for label, _ in rows)
    for label, text in rows:
        out.write(f"{label.ljust(width)}  {text}\n")
    for note in info.notes:
        err.write(f"note: {note}\n")
    return 0
