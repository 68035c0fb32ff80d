"""The options several commands share, defined once with their help text, and loading a model
for a command through the same fit plan as the window.

Defaults that depend on the app (the last model, the context) are resolved when a handler runs,
not when the parser is built, so `leancoder --help` reads no settings file.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from app.core.llm.speculative import DEFAULT_SPECULATIVE, SPECULATIVE_MODES
from app.core.models.starter import STARTER_KEY
from app.core.storage.settings import DEFAULT_CONTEXT

if TYPE_CHECKING:
    from app.core.llm.engine import Engine, ModelInfo
    from app.core.remote.engine import RemoteEngine
    from app.core.thinking.policy import ThinkingKVCap, ThinkingPolicy

POLICY_NAMES = "Unpruned, Balanced, Aggressive or Custom (the one saved in the app)"


def non_negative_int(text: str) -> int:
    """argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number, 1 or more."""
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def thread_count(text: str) -> int:
    """argparse type: a whole number of threads, 0 for automatic."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of threads") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 1 or more (0: chosen for this machine)")
    return value


def gpu_layer_count(text: str) -> int:
    """argparse type: layers on the GPU, -1 for all of them."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of layers") from None
    if value < -1:
        raise argparse.ArgumentTypeError("must be 0 or more (-1: all layers)")
    return value


# -- the options ------------------------------------------------------------------------------


MODEL_HELP = (
    f"a GGUF file, '{STARTER_KEY}', or a server: https://host:8000/v1#model-name (API key from "
    "LEANCODER_API_KEY or the keyring) (default: the model last used in the app, else the starter)"
)


def add_model(parser: argparse.ArgumentParser, help: str = MODEL_HELP) -> None:
    """`--model`; a command that loads one resolves None through `load_model`."""
    parser.add_argument("--model", default=None, help=help)


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """`--ctx`, `--gpu-layers`, `--threads`: wishes the fit plan keeps (see `load_model`)."""
    parser.add_argument(
        "--ctx",
        type=non_negative_int,
        default=None,
        help=f"context size in tokens, 0: the model's trained context (default: the app's, "
        f"{DEFAULT_CONTEXT:,}, or less where memory is short)",
    )
    parser.add_argument(
        "--gpu-layers",
        type=gpu_layer_count,
        default=None,
        help="layers on the GPU, -1: all (default: as the fit plan places them)",
    )
    add_threads(parser)


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        help="CPU threads for the model, kept as given (default: the physical cores, prompts on "
        "every logical core, fewer while other programs keep cores busy; at most the logical "
        "cores)",
    )


def add_sampling(
    parser: argparse.ArgumentParser,
    *,
    temperature: float,
    seed: int | None,
    max_tokens: int | None,
) -> None:
    """`--max-tokens`, `--temperature`, `--seed`, each command with its own defaults."""
    parser.add_argument(
        "--max-tokens",
        type=non_negative_int,
        default=max_tokens,
        help="most tokens per reply (default: "
        + (f"{max_tokens:,})" if max_tokens is not None else "until the model stops)"),
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=temperature,
        help=f"sampling temperature, 0: always the likeliest token (default: {temperature})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=seed,
        help="random seed, for a reply that can be repeated (default: "
        + (f"{seed})" if seed is not None else "a new one each run)"),
    )
    parser.add_argument(
        "--speculative",
        choices=SPECULATIVE_MODES,
        default=DEFAULT_SPECULATIVE,
        help="prompt-lookup speculative decoding: the same text (up to llama.cpp's batch "
        "rounding), fewer decode passes where the reply repeats the prompt (edits); auto pauses "
        "it where drafts are rarely accepted "
        f"(default: {DEFAULT_SPECULATIVE})",
    )


def think_kv_cap(text: str) -> ThinkingKVCap:
    """`--think-kv-cap`: a token count (at least the minimum) or "fit"."""
    from app.core.thinking.policy import check_thinking_kv_cap

    value: object = "fit" if text.strip().lower() == "fit" else None
    if value is None:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'expected a token count or "fit", not {text!r}'
            ) from None
    try:
        cap = check_thinking_kv_cap(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    assert cap is not None
    return cap


def thinking_policy(args: argparse.Namespace) -> ThinkingPolicy:
    """The policy `--policy`, `--think-budget` and `--think-kv-cap` ask for."""
    import dataclasses

    from app.core.thinking.policy import policy_by_name

    policy = policy_by_name(args.policy)
    if args.think_budget is not None:
        policy = policy.with_budget(args.think_budget)
    if getattr(args, "think_kv_cap", None) is not None:
        policy = dataclasses.replace(policy, thinking_kv_cap=args.think_kv_cap)
    return policy


def add_thinking(parser: argparse.ArgumentParser, *, policy: bool = True) -> None:
    """`--policy`, `--think-budget`, `--think-kv-cap`, `--force-thinking` (compare and bench
    name policies their own way, so they take `policy=False`)."""
    if policy:
        parser.add_argument(
            "--policy",
            default="Unpruned",
            help=f"thinking policy: {POLICY_NAMES} (default: Unpruned)",
        )
        parser.add_argument(
            "--think-budget",
            type=non_negative_int,
            default=None,
            help="most thinking tokens per thinking block (0: no thinking); overrides the "
            "policy's",
        )
        parser.add_argument(
            "--think-kv-cap",
            type=think_kv_cap,
            default=None,
            metavar="N|fit",
            help="compact the thinking in the KV cache once it holds N tokens (or fit: what the "
            "context leaves), keeping its first tokens, a recent window and the marked ones; "
            "a reply can then think longer than the context (experimental, off by default)",
        )
    parser.add_argument(
        "--force-thinking",
        action="store_true",
        help="open a thinking span for models whose template does not",
    )


def add_template(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--template",
        choices=("model", "default"),
        default="model",
        help="the model's own chat template, or the generic ChatML one (default: model)",
    )


def add_json(parser: argparse.ArgumentParser, what: str = "print one JSON object") -> None:
    parser.add_argument("--json", action="store_true", help=what)


# -- loading ----------------------------------------------------------------------------------


def engine_for(args: argparse.Namespace) -> Engine | RemoteEngine:
    """The engine `--model` asks for: a server's for an http(s) address, else the local one."""
    from app.core.remote.endpoint import looks_remote

    if looks_remote(getattr(args, "model", None)):
        from app.core.remote.engine import RemoteEngine

        return RemoteEngine()
    from app.core.llm.engine import Engine

    return Engine()


def load_model(
    engine: Engine | RemoteEngine,
    args: argparse.Namespace,
    err: TextIO,
    *,
    template: str = "model",
) -> ModelInfo:
    """Load `args.model` (or the app's last model, else the starter) the way the window does:
    through the fit plan, an explicit --ctx or --gpu-layers kept as the user's wish. The plan's
    reason and the load's notes go to `err` as `note:` lines. A RemoteEngine connects to the
    server `--model` names instead (its notes say which thinking controls the server allows)."""
    from app.core.remote.engine import RemoteEngine
    from app.core.session.load_plan import load_planned, resolve_cli_model, wished_options

    if isinstance(engine, RemoteEngine):
        return _connect_remote(engine, args, err, template)

    path, note = resolve_cli_model(getattr(args, "model", None))
    if note:
        err.write(f"note: {note}\n")
    base, keep_gpu_layers = wished_options(
        n_ctx=getattr(args, "ctx", None),
        n_gpu_layers=getattr(args, "gpu_layers", None),
        n_threads=getattr(args, "threads", None),
        template=template,
    )
    info = load_planned(engine, path, base, keep_gpu_layers=keep_gpu_layers)
    asked = getattr(args, "ctx", None)
    if asked and asked > info.n_ctx_train:  # the plan caps a wish at the trained context
        info.notes.append(
            f"Context {asked:,} reduced to the model's trained {info.n_ctx_train:,} tokens."
        )
    print_load_notes(info, err)
    return info


def _connect_remote(
    engine: RemoteEngine, args: argparse.Namespace, err: TextIO, template: str
) -> ModelInfo:
    import dataclasses

    from app.core.remote.config import load_remote_config, remote_options
    from app.core.remote.endpoint import parse_endpoint

    spec = parse_endpoint(args.model)
    options = remote_options(load_remote_config(), spec)
    options = dataclasses.replace(
        options,
        n_ctx=getattr(args, "ctx", None) or options.n_ctx,
        template="default" if template == "default" else options.template,
    )
    info = engine.connect(spec, options)
    print_load_notes(info, err)
    return info


def print_load_notes(info: ModelInfo, err: TextIO) -> None:
    """What the load changed or decided for the user (the plan, a lowered thread count...)."""
    for note in info.notes:
        err.write(f"note: {note}\n")
