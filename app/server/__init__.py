"""The local OpenAI-compatible API: LeanCoder's engine and thinking control served to coding tools.

Continue, Aider, Cline, Zed and OpenCode speak OpenAI's HTTP API; serving the engine that way gives
all of them LeanCoder's thinking pruning, meters and fit. It is Starlette on uvicorn (a well-kept
ASGI stack), and every model call goes through the one serialized model worker
(app.core.llm.worker.SerialWorker): the window passes its own worker and engine, `leancoder serve`
makes its own.

Modules
- config: `ServerConfig` (host, port, API key, allowed hosts and CORS origins, body limit, queue
  size, reasoning field names, default policy) and its security checks; `DEFAULT_PORT`.
- settings: the window's saved server settings (`ServerSettings`, `server.json`, the API key in
  the keyring) and the `ServerConfig` they make.
- errors: `ApiError(status, message, ...)`, rendered as OpenAI's `{"error": {...}}` object.
- chat_request: `parse_chat_request(body) -> ChatRequest` and `parse_completion_request(body)`:
  the validated request (messages, sampling, stop, stream options, thinking control).
- thinking_options: the request's thinking control (reasoning_effort map, budgets, extension).
- model_service: `ModelService(engine, worker)`: the bounded queue in front of the worker, one
  generation per request with its own cancel flag and bounded buffer, and `ServerActivity`.
- responses: chunk, message and usage objects in OpenAI's shapes; stop strings.
- app: `create_app(service, config, hooks)` -> the Starlette app (routes, middleware).
- runner: `ServerThread(app, config)`: uvicorn on its own thread (`start() -> url`, `stop()`),
  for the window, `leancoder serve` and tests.

The seam for tool calls (app/server/tool_calls.py, built on this)
- `app.server.hooks.ChatHooks` has two functions the chat route calls:
  `prepare(request: ChatRequest) -> None` runs after validation and before the request is queued;
  it may rewrite `request.messages` and `request.template_vars` (e.g. `template_vars["tools"]`,
  passed to the model's chat template through `Engine.generate(template_vars=...)`) and reads the
  raw JSON in `request.body` (`tools`, `tool_choice`); it raises ApiError for a bad request.
  `answer_filter(request) -> AnswerFilter` makes a per-request object with
  `feed(text) -> list[delta]` and `finish() -> list[delta]` that sees the answer text (never the
  thinking) as it streams; each delta is an OpenAI delta dict, `{"content": "..."}` or
  `{"tool_calls": [{"index", "id", "type", "function": {"name", "arguments"}}]}`. The route streams
  the deltas as they come, merges them into one message when not streaming, and reports
  finish_reason "tool_calls" when any delta carried tool calls. An ApiError from the filter
  becomes the error response (not streaming) or an SSE `{"error": ...}` event before
  `data: [DONE]` (streaming).
- `app.server.hooks.default_hooks(model_info)` is what `create_app` uses when given no hooks
  (`leancoder serve`, the window); the tool-call module plugs in there. `model_info()` returns
  the loaded model's ModelInfo (or None). Requests' messages keep every field a client sent
  (assistant `tool_calls`, `tool` role messages with `tool_call_id`); only `content` is
  normalised to text.

Load and faults: one generation runs at a time; at most `ServerConfig.queue_limit` (16) wait, then
503 with Retry-After. A client that disconnects sets its request's cancel flag (the engine stops
within one token); a waiting request that disconnects leaves the queue. A slow client never
stalls the model: each request buffers what it has not sent yet up to a bound, and a client that
stops reading past it is dropped (its generation cancelled).

Pacing: a streamed reply's text goes out at most every `ServerConfig.stream_interval_ms` (50 ms,
`--stream-interval`; the first text and the reply's end at once). Each SSE event costs the
server's loop and the client CPU that, on a machine whose cores all decode, comes out of the
model's speed: on 2 cores, 0.89 of the engine's decode rate with an event per token, 0.97 paced
(bench/server_overhead.py). Stop strings are watched on the worker too, so a paced reply still
stops at its stop string (responses.stopping_at).
"""
