"""A real third-party coding tool against `leancoder serve` (issue #13): Aider.

Aider (`aider-chat` from PyPI, pinned in the Makefile) lives in its own virtual environment,
build/aider-venv, because its pinned dependencies (litellm, openai, ...) would clash with
LeanCoder's; the test runs `make aider-venv` when it is missing, so CI installs it the same way.
`leancoder serve` runs as the user runs it, a separate process with the starter model. Aider runs
non-interactively with one message in a temporary git repository and must complete its request
cycle against the server, whatever the 135M model answers.

No network besides the server: Aider is told not to check for updates or send analytics, its
model metadata (the context length, which Aider otherwise fetches from GitHub) comes from the
server's own /v1/models, and every HTTP(S) proxy variable points at a loopback listener that
records what tried to leave; the test asserts nothing did.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

REPO = Path(__file__).resolve().parent.parent
AIDER_VENV = REPO / "build" / "aider-venv"
AIDER = AIDER_VENV / "bin" / "aider"
INSTALL_TIMEOUT_S = 1500  # aider-chat and its ~100 dependencies, from PyPI
SERVER_START_S = 180
MAX_REPLY_TOKENS = 96
AIDER_RUN_S = 600  # a loaded 2-core CI machine prefilling Aider's ~700-token prompt

pytestmark = [pytest.mark.aider, pytest.mark.model, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def aider() -> Path:
    """Aider's executable, installed by `make aider-venv` if it is not there yet."""
    if not (AIDER_VENV / ".installed-stamp").exists():
        done = subprocess.run(
            ["make", "aider-venv"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"`make aider-venv` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    assert AIDER.exists()
    return AIDER


class OutboundRecorder:
    """A loopback listener given to Aider as its HTTP and HTTPS proxy: every connection it gets
    is a request that tried to leave the machine; the first bytes say where to."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.attempts: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(200).decode("latin-1").splitlines()
                except OSError:
                    first = []
                self.attempts.append(first[0] if first else "(nothing sent)")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()


@pytest.fixture
def leancoder_serve(tmp_path: Path) -> Iterator[str]:
    """`leancoder serve --model starter --port 0` as a process; yields its /v1 URL."""
    command = [str(Path(sys.executable).with_name("leancoder")), "serve", "--model", "starter",
               "--port", "0", "--ctx", "4096"]  # fmt: skip
    env = {**os.environ, "LEANCODER_DATA_DIR": str(tmp_path / "leancoder-data")}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=SERVER_START_S)
            except queue.Empty:
                pytest.fail(f"leancoder serve did not start: {''.join(seen)}")
            seen.append(line)
            if line.startswith("Serving "):
                url = line.split(" at ", 1)[1].split()[0]
                break
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        stdout.close()


def _git_repo(path: Path) -> Path:
    path.mkdir()
    (path / "calc.py").write_text("def double(x):\n    return 2 * x\n")
    for args in (["init", "-q"], ["add", "calc.py"], ["commit", "-q", "-m", "start"]):
        subprocess.run(
            ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
            cwd=path, check=True, capture_output=True,
        )  # fmt: skip
    return path


def test_aider_completes_a_request_cycle_against_leancoder_serve(
    aider: Path, leancoder_serve: str, tmp_path: Path
) -> None:
    url = leancoder_serve
    model = httpx2.get(f"{url}/models", timeout=30).json()["data"][0]
    model_name = f"openai/{model['id']}"
    # What Aider needs to know about a local model, so it neither fetches nor guesses it.
    metadata = tmp_path / "model-metadata.json"
    metadata.write_text(json.dumps({model_name: {
        "max_input_tokens": model["context_length"],
        "max_tokens": model["context_length"],
        "max_output_tokens": 1024,
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        "litellm_provider": "openai",
        "mode": "chat",
    }}))  # fmt: skip
    # Aider sends no max_tokens of its own; a tiny model could ramble to the end of the context.
    settings = tmp_path / "model-settings.yml"
    settings.write_text(
        f"- name: {model_name}\n  edit_format: whole\n  extra_params:\n"
        f"    max_tokens: {MAX_REPLY_TOKENS}\n"
    )
    repo = _git_repo(tmp_path / "project")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = test\n\temail = test@example.com\n")
    outbound = OutboundRecorder()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # Aider's caches and settings, not the user's
        "AIDER_ANALYTICS": "false",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm's bundled model list, not GitHub's
        "HTTP_PROXY": outbound.url,
        "HTTPS_PROXY": outbound.url,
        "http_proxy": outbound.url,
        "https_proxy": outbound.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    message = "Add a function add(a, b) that returns a + b to calc.py."
    try:
        run = subprocess.run(
            [str(aider), "--message", message, "calc.py", "--yes-always", "--no-auto-commits",
             "--no-show-model-warnings", "--model", model_name, "--openai-api-base", url,
             "--openai-api-key", "x", "--model-metadata-file", str(metadata),
             "--model-settings-file", str(settings),
             "--no-check-update", "--analytics-disable", "--no-show-release-notes",
             "--no-gitignore", "--no-pretty", "--no-fancy-input", "--map-tokens", "0"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=AIDER_RUN_S, check=False,
        )  # fmt: skip
    finally:
        outbound.close()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert f"Model: {model_name}" in output
    # Aider prints its token counts after a reply that ended by itself, and its token-limit
    # notice after one the server cut at max_tokens (finish_reason "length"): either way the
    # request went to the server and its whole streamed reply came back.
    completed = ("Tokens: " in output and " sent, " in output) or (
        "has hit a token limit" in output and "Output tokens: ~" in output
    )
    assert completed, output
    assert "litellm.APIError" not in output and "Traceback" not in output, output
    health = httpx2.get(url.removesuffix("/v1") + "/health", timeout=30).json()
    assert health["served"] >= 1 and not health["busy"]
    history = (repo / ".aider.chat.history.md").read_text()
    assert message in history
    assert outbound.attempts == []
    log = subprocess.run(["git", "log", "--oneline"], cwd=repo, capture_output=True, text=True)
    assert len(log.stdout.splitlines()) == 1  # --no-auto-commits held
