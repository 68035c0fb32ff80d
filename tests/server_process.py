"""A real HTTP server as a subprocess for the tests (LeanCoder's `serve`, llama.cpp's
llama-server): started on a free loopback port, ready once its `/health` answers 200, killed at
the end."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence

import httpx2
import pytest


@contextlib.contextmanager
def healthy_server(
    command: Sequence[str],
    port: int,
    name: str,
    start_timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` (listening on `port`) until the block ends; the test fails with `name` in the
    message when it exits or is not healthy within `start_timeout_s`."""
    process = subprocess.Popen(
        list(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + start_timeout_s
        with httpx2.Client() as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{name} did not start")
                time.sleep(0.3)
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)
