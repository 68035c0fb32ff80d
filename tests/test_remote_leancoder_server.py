"""The remote engine against LeanCoder's own API server (`leancoder serve`, a real subprocess on
loopback, the starter model, an API key): it is found as "leancoder" from its model list, and the
thinking policy travels in the `leancoder` request extension, so the server's own decode loop
enforces it and reports its counters, which become the reply's statistics."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.llm.engine_types import SamplingParams
from app.core.remote.endpoint import RemoteAuthError, parse_endpoint
from app.core.remote.engine import RemoteEngine, RemoteOptions
from app.core.thinking.policy import AGGRESSIVE
from tests.remote_fault_server import unused_port
from tests.server_process import healthy_server

pytestmark = pytest.mark.model
KEY = "serve-key-5678"
QUESTION = [{"role": "user", "content": "Explain why the sky is blue."}]


@pytest.fixture(scope="module")
def server_url(starter_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = unused_port()
    home = tmp_path_factory.mktemp("serve-data")
    command = [sys.executable, "-m", "app", "serve", "--model", "starter", "--port", str(port),
               "--ctx", "2048", "--api-key", KEY, "--model-id", "starter-remote"]  # fmt: skip
    env = {**os.environ, "LEANCODER_DATA_DIR": str(home)}
    with healthy_server(command, port, "leancoder serve", 180, env):
        yield f"http://127.0.0.1:{port}/v1#starter-remote"


def test_leancoder_server_runs_the_policy_itself(server_url: str, data_dir: Path) -> None:
    engine = RemoteEngine()
    try:
        info = engine.connect(parse_endpoint(server_url), RemoteOptions(api_key=KEY))
        assert engine.caps is not None and engine.caps.kind == "leancoder"
        assert info.n_ctx == 2048  # from its model list
        assert any("run by the LeanCoder server itself" in n for n in info.notes)
        policy = AGGRESSIVE.with_budget(12)
        sampling = SamplingParams(temperature=0.7, seed=3, max_tokens=120)
        events = list(engine.generate(QUESTION, sampling, policy=policy, force_thinking=True))
        stats = events[-1].stats
        assert stats.budget_hits >= 1 and stats.requests == 1  # no cancel-and-continue needed
        assert stats.thinking_tokens > 0 and stats.prompt_tokens > 0
        assert any(e.kind == "thinking_open" for e in events)
    finally:
        engine.unload()
    with pytest.raises(RemoteAuthError):
        RemoteEngine().connect(parse_endpoint(server_url), RemoteOptions(api_key="wrong"))
