"""`leancoder serve`: the loaded model as a local OpenAI-compatible API (app.server).

The model loads as every command loads it (app.cli.options.load_model: the fit plan, the app's
last model), on the serialized worker that then owns it. Safety is checked before the model loads:
a non-loopback address without an API key is refused at once, not after a minute of loading. The
key may come from LEANCODER_API_KEY, so it does not show in the process list.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from app.cli import options as opt

API_KEY_ENV = "LEANCODER_API_KEY"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from app.server.config import DEFAULT_HOST, DEFAULT_PORT, STREAM_INTERVAL_MS

    p = sub.add_parser("serve", help="serve a model as a local OpenAI-compatible API")
    opt.add_model(p)
    opt.add_load_options(p)
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default: {DEFAULT_HOST}, this machine only; "
                   "any other address needs --api-key)")  # fmt: skip
    p.add_argument("--port", type=opt.non_negative_int, default=DEFAULT_PORT,
                   help=f"TCP port (default: {DEFAULT_PORT}; 0: any free port)")  # fmt: skip
    p.add_argument("--api-key", default=None,
                   help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}, else "
                   "none on loopback)")  # fmt: skip
    p.add_argument("--policy", default="Balanced",
                   help=f"thinking policy for requests that name none: {opt.POLICY_NAMES} "
                   "(default: Balanced)")  # fmt: skip
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host header name to accept besides loopback names (repeatable; "
                   "'*': any)")  # fmt: skip
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web origin allowed to call the API from a browser (repeatable; "
                   "default: none)")  # fmt: skip
    p.add_argument("--reasoning-field", default="both",
                   choices=("both", "reasoning_content", "reasoning", "none"),
                   help="where streamed thinking goes: llama.cpp's reasoning_content, "
                   "vLLM/Ollama's reasoning, both (default) or none")  # fmt: skip
    p.add_argument("--stream-interval", type=opt.non_negative_int, default=STREAM_INTERVAL_MS,
                   metavar="MS",
                   help="send a streamed reply's new text at most every MS milliseconds, the "
                   f"first at once (default: {STREAM_INTERVAL_MS}; 0: every token as it comes; "
                   "fewer events leave more CPU to the model)")  # fmt: skip
    p.add_argument("--model-id", default=None,
                   help="the model id clients see (default: the file name)")  # fmt: skip
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.llm.worker import SerialWorker
    from app.core.thinking.policy import policy_by_name
    from app.server.app import create_app
    from app.server.config import ServerConfig, split_list
    from app.server.model_service import ModelService
    from app.server.runner import ServerThread

    config = ServerConfig(
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        allowed_hosts=split_list(args.allowed_host),
        cors_origins=split_list(args.cors_origin),
        reasoning_fields=args.reasoning_field,
        stream_interval_ms=args.stream_interval,
        policy=policy_by_name(args.policy).name,  # an unknown name fails before loading
    )
    config.check()
    from app.core.llm.engine import Engine  # llama.cpp loads only for the commands that run it

    engine = Engine()
    worker = SerialWorker("leancoder-model")
    try:
        info = worker.call(opt.load_model, engine, args, err).result()
        service = ModelService(engine, worker, queue_limit=config.queue_limit,
                               max_pending_chars=config.max_pending_chars,
                               stream_interval_s=config.stream_interval_ms / 1000,
                               model_id=args.model_id)  # fmt: skip
        server = ServerThread(create_app(service, config), config)
        url = server.start()
        guard = "API key required" if config.api_key else "no API key: this machine only"
        out.write(f"Serving {service.model_id} ({info.n_ctx:,} tokens of context, policy "
                  f"{config.policy}) at {url} ({guard}). Ctrl+C stops.\n")  # fmt: skip
        out.flush()
        try:
            server.wait()
        except KeyboardInterrupt:
            err.write("stopping\n")
        server.stop()
        return 0
    finally:
        worker.call(engine.unload).result()
        worker.shutdown(timeout=10)
