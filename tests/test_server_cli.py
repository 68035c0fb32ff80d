"""`leancoder serve` as a real subprocess: it refuses an unsafe address before loading anything,
and serves the starter to the `openai` client until Ctrl+C (SIGINT) stops it cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import openai
import pytest

from app.server.config import DEFAULT_PORT


def _refused_serve(*args: str) -> subprocess.CompletedProcess[str]:
    """`leancoder serve ARGS` expected to refuse before it loads anything."""
    return subprocess.run(
        [sys.executable, "-m", "app", "serve", *args, "--model", "starter"],
        capture_output=True, text=True, timeout=120, env=_env_without_key(),
    )  # fmt: skip


def test_serve_refuses_a_public_address_without_a_key() -> None:
    started = time.monotonic()
    done = _refused_serve("--host", "0.0.0.0")
    assert done.returncode == 2
    assert "give an API key (--api-key)" in done.stderr
    assert time.monotonic() - started < 60  # refused before the model would load
    assert DEFAULT_PORT not in (1234, 11434, 1337, 4891, 8080, 8000)


def test_serve_refuses_a_stream_interval_past_a_second() -> None:
    done = _refused_serve("--stream-interval", "5000")
    assert done.returncode == 2
    assert "stream interval must be 0 to 1,000 ms" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.model
def test_serve_answers_the_openai_client_and_stops_on_ctrl_c() -> None:
    key = "cli-test-key-123"
    with subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--model", "starter", "--port", "0",
         "--ctx", "512", "--api-key", key, "--model-id", "starter-test"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env_without_key(),
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()  # printed once listening
            match = re.search(r"at (http://127\.0\.0\.1:\d+/v1) \(API key required\)", line)
            assert match, line + proc.stderr.read()
            client = openai.OpenAI(
                base_url=match.group(1), api_key=key, max_retries=0, timeout=120
            )
            assert [m.id for m in client.models.list().data] == ["starter-test"]
            reply = client.chat.completions.create(
                model="starter-test", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
            )
            assert reply.usage is not None and reply.usage.completion_tokens == 3
            client.close()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()


def _env_without_key() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "LEANCODER_API_KEY"}
