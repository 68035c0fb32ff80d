"""`leancoder download | import | models | network`: get models onto the disk, find those already
there, and set how LeanCoder gets through firewalls."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from app.cli import options as opt
from app.core.units import human_bytes

EXIT_OK = 0
EXIT_CANCELLED = 130
BAR_WIDTH = 24


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    download = sub.add_parser(
        "download", help="download a GGUF model (catalog entry or OWNER/REPO/FILE.gguf)"
    )
    download.add_argument(
        "spec",
        metavar="ENTRY|OWNER/REPO/FILE.gguf",
        help="a catalog entry (see `leancoder recommend`) or a file on the hub",
    )
    download.add_argument("--dest", help="folder to put it in (default: the Hugging Face cache)")
    download.add_argument("--endpoint", help="hub mirror URL for this download only")
    download.add_argument("--offline", action="store_true", help="no network: use a copy on disk")
    opt.add_json(download, "print the result as JSON")
    download.set_defaults(handler=_download)

    imp = sub.add_parser("import", help="check a local GGUF file and add it to your models")
    imp.add_argument("path", help="the .gguf file (for a split model, its first part)")
    imp.add_argument(
        "--mode",
        choices=("copy", "link", "register"),
        default="copy",
        help="copy into the models folder (default), hard-link it there, or use it in place",
    )
    opt.add_json(imp, "print the imported model as JSON")
    imp.set_defaults(handler=_import)

    models = sub.add_parser("models", help="list GGUF models already on this machine")
    opt.add_json(models, "print the list as JSON")
    models.set_defaults(handler=_models)

    net = sub.add_parser("network", help="show or change hub mirror, proxy, CA, token, offline")
    net.add_argument("--endpoint", help="hub mirror URL ('' for the default hub)")
    net.add_argument("--proxy", help="proxy URL, e.g. http://proxy.corp:3128 ('' for none)")
    net.add_argument(
        "--ca-bundle",
        help="'system' (the OS trust store), a PEM file, or 'default' (Python's bundled CAs)",
    )
    net.add_argument("--token", help="access token for gated repositories ('' to clear)")
    net.add_argument("--offline", choices=("on", "off"), help="offline mode: no network at all")
    net.add_argument("--show", action="store_true", help="print the settings (the default)")
    opt.add_json(net, "print the settings as JSON")
    net.set_defaults(handler=_network)


# -- download --------------------------------------------------------------------------------


def _download(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.models.download import DownloadCancelled, download_model, resolve_download_target
    from app.core.models.network import load_network_settings

    target = resolve_download_target(args.spec)
    network = load_network_settings()
    if args.endpoint is not None:
        network = replace(network, endpoint=args.endpoint)
    if args.offline:
        network = replace(network, offline=True)
    cancel = threading.Event()
    bar = ProgressBar(err, target.display)
    previous = _cancel_on_ctrl_c(cancel)
    try:
        result = download_model(
            target,
            network=network,
            dest_dir=Path(args.dest).expanduser() if args.dest else None,
            progress=bar,
            cancel=cancel,
        )
    except DownloadCancelled as exc:
        bar.finish()
        err.write(f"{exc}\n")
        return EXIT_CANCELLED
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    bar.finish()
    for note in result.notes:  # e.g. the download started over, and why
        err.write(f"note: {note}\n")
    if args.json:
        out.write(json.dumps({
            "path": str(result.path), "size_bytes": result.size_bytes, "sha256": result.sha256,
            "verified_against": result.verified_against, "resumed_from": result.resumed_from,
            "already_present": result.already_present, "architecture": result.architecture,
            "commit": result.commit,
        }) + "\n")  # fmt: skip
        return EXIT_OK
    if result.already_present:
        err.write("already downloaded\n")
    elif result.verified_against:
        resumed = f", resumed at {human_bytes(result.resumed_from)}" if result.resumed_from else ""
        err.write(f"SHA-256 matches the {result.verified_against}'s ({result.sha256}){resumed}\n")
    else:
        err.write("note: the hub gave no SHA-256 for this file; only its size was checked\n")
    out.write(f"{result.path}\n")
    return EXIT_OK


def _cancel_on_ctrl_c(cancel: threading.Event) -> Any:
    """First Ctrl-C: cancel cleanly (the partial file stays for a resume); a second one: stop."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_interrupt(signum: int, frame: object) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    return signal.signal(signal.SIGINT, on_interrupt)


class ProgressBar:
    """A one-line bar redrawn in place on a terminal; a line per 10% otherwise (logs, pipes)."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._label = label
        self._next_step = 0.0
        self._drawn = False
        self._last = ""

    def __call__(self, progress: Any) -> None:
        fraction = progress.fraction
        if progress.phase == "checking":
            line = f"checking the partial download: {human_bytes(progress.done)}"
        else:
            filled = int(BAR_WIDTH * (fraction or 0.0))
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            pct = f"{fraction:6.1%}" if fraction is not None else "   ?  "
            total = human_bytes(progress.total) if progress.total else "?"
            eta = _clock(progress.eta) if progress.eta is not None else "--:--"
            line = (
                f"[{bar}] {pct}  {human_bytes(progress.done)} / {total}  "
                f"{human_bytes(int(progress.speed))}/s  ETA {eta}"
            )
        if self._tty:
            self._stream.write("\r" + line.ljust(len(self._last)))
            self._last = line
            self._drawn = True
        elif progress.phase == "downloading" and (fraction or 0.0) >= self._next_step:
            self._stream.write(line + "\n")
            # every 10%, and the end once
            self._next_step = 1.0 if fraction and 0.9 < fraction < 1.0 else (fraction or 0.0) + 0.1
        self._stream.flush()

    def finish(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._drawn = False


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# -- import and models ------------------------------------------------------------------------


def _import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.models.import_gguf import import_model

    started = time.monotonic()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or done >= total:
            last[0] = now
            err.write(f"copying: {human_bytes(done)} / {human_bytes(total)}\n")

    model = import_model(Path(args.path), args.mode, progress=progress)
    if args.json:
        out.write(json.dumps(model.to_dict()) + "\n")
        return EXIT_OK
    where = "registered in place" if args.mode == "register" else f"in {model.path.parent}"
    err.write(
        f"{model.name or model.path.name}: {model.architecture}, {human_bytes(model.size_bytes)}, "
        f"{where} ({time.monotonic() - started:.1f} s)\n"
    )
    out.write(f"{model.path}\n")
    return EXIT_OK


def _models(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.models.import_gguf import discover_models

    found = discover_models()
    if args.json:
        out.write(json.dumps([m.to_dict() for m in found]) + "\n")
        return EXIT_OK
    if not found:
        err.write("no GGUF models found (Hugging Face cache, LM Studio, LeanCoder's folder)\n")
        return EXIT_OK
    rows = [("source", "architecture", "size", "path")]
    for model in found:
        arch = model.architecture or "unreadable"
        rows.append((model.source, arch, human_bytes(model.size_bytes), str(model.path)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    problems: list[str | None] = [None, *(m.problem for m in found)]
    for row, problem in zip(rows, problems, strict=True):
        out.write("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)))
        out.write(f"  {row[3]}\n")
        if problem:
            # On its own line: the reason is a sentence, and a damaged file's path stays clear.
            label = "unreadable" if row[1] == "unreadable" else "not usable"
            out.write(f"    {label}: {problem}\n")
    unusable = sum(1 for m in found if not m.usable)
    if unusable:
        err.write(f"{unusable} of {len(found)} files cannot be used; the reasons are listed\n")
    return EXIT_OK


# -- network ---------------------------------------------------------------------------------


def _network(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.models.network import (
        SYSTEM_TRUST_STORE,
        load_network_settings,
        network_settings_path,
        save_network_settings,
    )

    settings = load_network_settings()
    changes: dict[str, Any] = {}
    if args.endpoint is not None:
        changes["endpoint"] = args.endpoint
    if args.proxy is not None:
        changes["proxy"] = args.proxy
    if args.ca_bundle is not None:
        value = args.ca_bundle.strip()
        if value not in ("", "default", SYSTEM_TRUST_STORE):
            value = str(Path(value).expanduser().resolve())
        changes["ca_bundle"] = "" if value == "default" else value
    if args.token is not None:
        changes["token"] = args.token
    if args.offline is not None:
        changes["offline"] = args.offline == "on"
    if changes:
        settings = save_network_settings(replace(settings, **changes))
        err.write(f"saved to {network_settings_path()}\n")
    if args.json:
        shown = dict(settings.describe())
        out.write(json.dumps(shown) + "\n")
        return EXIT_OK
    for label, value in settings.describe():
        out.write(f"{label:<13} {value}\n")
    return EXIT_OK
