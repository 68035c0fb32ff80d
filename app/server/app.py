"""The Starlette app: OpenAI's routes over the model service, behind the server's guard.

Middleware is plain ASGI (Starlette's BaseHTTPMiddleware would buffer streams and hide client
disconnects). The guard checks, in order: the Host header (DNS rebinding), the API key on /v1
(constant-time), then routes read the body under its size limit and refuse anything but JSON (a
web page's simple cross-origin POST cannot send application/json without a CORS preflight, and
there is no CORS unless origins are allowed). Prompts and replies reach the log only through
`logs.content` (off unless the user turned content logging on).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.storage import logs
from app.server.chat_request import parse_chat_request, parse_completion_request
from app.server.config import ServerConfig
from app.server.errors import ApiError
from app.server.hooks import ChatHooks, default_hooks
from app.server.model_service import ModelService, Ticket
from app.server.reply import ChatReply, CompletionReply, Reply
from app.server.responses import stopping_at

log = logging.getLogger(__name__)


class Guard:
    """Host header and API key checks before anything else runs."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config
        self._key = config.api_key.encode() if config.api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        error = None
        if not self.config.host_allowed(headers.get("host")):
            error = ApiError(400, "This server answers only to its own address (the Host header "
                             "names another).", code="invalid_host")  # fmt: skip
        elif self._key and scope["path"].startswith("/v1") and scope["method"] != "OPTIONS":
            given = headers.get("authorization", "")
            token = given[7:].strip() if given[:7].lower() == "bearer " else ""
            if not hmac.compare_digest(token.encode(), self._key):
                error = ApiError(
                    401,
                    "Incorrect or missing API key: send it as 'Authorization: Bearer KEY'.",
                    code="invalid_api_key",
                )
        if error is not None:
            await error.response()(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(
    service: ModelService, config: ServerConfig, hooks: ChatHooks | None = None
) -> Starlette:
    hooks = hooks or default_hooks(lambda: service.engine.info)

    async def health(_request: Request) -> Response:
        state = service.activity.snapshot()
        return JSONResponse({
            "status": "ok" if service.engine.loaded else "no_model",
            "model": service.model_id,
            "busy": state.busy,
            "waiting": state.waiting,
            "served": state.served,
        })  # fmt: skip

    async def models(_request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [_model_object(service)]})

    async def model(request: Request) -> Response:
        if request.path_params["model_id"] != service.model_id:
            raise ApiError(404, f"No model {request.path_params['model_id']!r}; this server "
                           f"serves {service.model_id!r}.", code="model_not_found")  # fmt: skip
        return JSONResponse(_model_object(service))

    async def chat(request: Request) -> Response:
        req = parse_chat_request(await _read_json(request, config), config.policy)
        hooks.prepare(req)
        c = req.common
        log.info("chat request (%d messages): %s", len(req.messages),
                 logs.messages_content(req.messages))  # fmt: skip

        def generation(engine: Any, cancel: Any) -> Any:
            return engine.generate(
                req.messages, c.sampling, cancel, policy=c.thinking.policy,
                force_thinking=c.thinking.force_thinking, template_vars=req.template_vars,
            )  # fmt: skip

        reply = ChatReply(req, hooks.answer_filter(req), config.reasoning_fields, service.model_id)
        return await _respond(request, service, generation, reply, c.stream)

    async def completions(request: Request) -> Response:
        req = parse_completion_request(await _read_json(request, config), config.policy)
        c = req.common
        log.info("completion request: %s", logs.content(req.prompt))

        def generation(engine: Any, cancel: Any) -> Any:
            return engine.generate(
                [], c.sampling, cancel, policy=c.thinking.policy,
                force_thinking=c.thinking.force_thinking, prompt=req.prompt,
            )  # fmt: skip

        reply = CompletionReply(req, config.reasoning_fields, service.model_id)
        return await _respond(request, service, generation, reply, c.stream)

    middleware = [Middleware(Guard, config=config)]
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/v1/models/{model_id:path}", model),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
        ],
        middleware=middleware,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )


async def _respond(
    request: Request, service: ModelService, generation: Any, reply: Reply, stream: bool
) -> Response:
    generation = stopping_at(generation, reply.common.stop)
    ticket = service.start(generation, request.headers.get("user-agent", "")[:200])
    watcher = asyncio.create_task(_watch_disconnect(request, service, ticket))
    try:
        first = await ticket.buffer.next_batch()
        if ticket.buffer.error is not None and first is None:
            raise reply.error_for(ticket.buffer.error)
    except BaseException:
        watcher.cancel()
        service.cancel(ticket)
        raise
    if not stream:
        try:
            return JSONResponse(await reply.whole(ticket, first))
        finally:
            watcher.cancel()
            service.cancel(ticket)  # nothing left to stop when the reply ended
    body = reply.sse(ticket, first, watcher, service)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _watch_disconnect(request: Request, service: ModelService, ticket: Ticket) -> None:
    """Cancel the request's generation when its client goes away (the body is read by now)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            log.info("client disconnected: its generation is cancelled")
            service.cancel(ticket)
            return


async def _read_json(request: Request, config: ServerConfig) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, "Send the request as JSON (Content-Type: application/json).")
    limit = config.max_body_bytes
    too_large = ApiError(413, f"The request is larger than this server's limit of "
                         f"{limit:,} bytes.", code="request_too_large")  # fmt: skip
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise ApiError(400, "The request body is not valid JSON.") from None


def _model_object(service: ModelService) -> dict[str, Any]:
    info = service.engine.info
    n_ctx = info.n_ctx if info else 0
    return {
        "id": service.model_id,
        "object": "model",
        "created": 0,
        "owned_by": "leancoder",
        # The names tools read the context from: vLLM max_model_len, LM Studio/OpenRouter
        # context_length, llama-server meta.n_ctx_train.
        "context_length": n_ctx,
        "max_model_len": n_ctx,
        "meta": {"n_ctx": n_ctx, "n_ctx_train": info.n_ctx_train if info else 0},
        # Zed and Continue read tool support from the model list: only templates that read
        # `tools` can take them (ChatTemplate.supports_tools).
        "capabilities": {"tools": bool(info and info.supports_tools)},
        "leancoder": {
            "thinking_format": info.thinking_format.value if info else "none",
            "n_ctx": n_ctx,
            "n_ctx_train": info.n_ctx_train if info else 0,
            "architecture": info.architecture if info else "",
            "n_params": info.n_params if info else 0,
            "template": info.template_name if info else "",
        },
    }


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "No such endpoint.", 405: "This endpoint does not take that method."}
    message = messages.get(exc.status_code, str(exc.detail))
    return ApiError(exc.status_code, message).response()


async def _server_error(_request: Request, exc: Exception) -> Response:
    log.error("the API server failed", exc_info=(type(exc), exc, exc.__traceback__))
    message = f"The server failed: {type(exc).__name__}. See LeanCoder's log."
    return ApiError(500, message).response()
