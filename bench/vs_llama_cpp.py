"""LeanCoder against llama.cpp's own llama-server: decode and prompt speed on the same model.

The peer is built from the llama.cpp sources vendored in the installed llama-cpp-python version's
sdist (so both run the same llama.cpp), once, cached under the user cache folder
(`<user cache>/leancoder/llama.cpp-VERSION/build/bin`). Building takes about 13 minutes on two
cores; `--jobs` sets the parallel compile jobs.

Then, interleaved in one run (the order rotates every round, so machine noise hits all alike), the
same prompt, sampler, seed and thread count go to:
- llama-server's `/completion` (its own `timings`: prompt and predicted tokens per second),
- LeanCoder's engine, headless (ReplyStats),
- LeanCoder's main window, offscreen, streaming the reply (ReplyStats of the finished reply),
- LeanCoder's API server (`leancoder serve`, its own process like llama-server), its
  `/v1/chat/completions` (the engine's figures, from `usage.leancoder`),
with the KV cache cleared before every run, so every run pays its whole prompt (the API's cache
cannot be cleared from outside: each of its runs starts with a different run number, so only the
template's first tokens are reused, and its rates count the evaluated tokens only). Medians are
reported; the last two lines are the ratios (LeanCoder headless / llama-server).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/vs_llama_cpp.py [--rounds N] [--tokens N]
        [--threads N] [--no-window] [--build-only]
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app.core.llm.engine import Engine, LoadOptions, ReplyStats, SamplingParams
from app.core.llm.threads import choose_threads, detect_cores
from app.core.models.starter import resolve_model

TOOLS = ("llama-bench", "llama-server")
SEED = 1234
SAMPLING = {"temperature": 0.7, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}
N_CTX = 2048
PROMPT_TOKENS = 400  # long enough that prompt tok/s measures prompt processing, not overhead
# A fixed text (the standard library's own source, stable within a Python version) then a request
# for a long reply, so every side decodes the full token count.
PROMPT_BODY = textwrap.dedent.__doc__ or ""


@dataclass(frozen=True)
class Speed:
    prompt_tps: float
    decode_tps: float
    prompt_tokens: int
    decoded: int


# -- building the peer ---------------------------------------------------------------------------


def cache_dir(version: str) -> Path:
    root = Path(platformdirs.user_cache_dir("leancoder", appauthor=False))
    return root / f"llama.cpp-{version}"


def ensure_tools(jobs: int) -> dict[str, Path]:
    """llama-bench and llama-server of the installed llama-cpp-python's llama.cpp; built once."""
    version = importlib.metadata.version("llama-cpp-python")
    cache = cache_dir(version)
    bin_dir = cache / "build" / "bin"
    tools = {name: bin_dir / (name + (".exe" if os.name == "nt" else "")) for name in TOOLS}
    if all(path.is_file() for path in tools.values()):
        return tools
    print(f"building {', '.join(TOOLS)} of llama-cpp-python {version} in {cache} ...", flush=True)
    sdist_dir = cache / "sdist"
    archives = sorted(sdist_dir.glob("*.tar.gz"))
    if not archives:
        _run(
            [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
             f"llama-cpp-python=={version}", "-d", str(sdist_dir)]
        )  # fmt: skip
        archives = sorted(sdist_dir.glob("*.tar.gz"))
    source_root = cache / "source"
    vendor = next(source_root.glob("*/vendor/llama.cpp"), None)
    if vendor is None:
        with tarfile.open(archives[0]) as archive:
            archive.extractall(source_root, filter="data")  # no links or paths out of the folder
        vendor = next(source_root.glob("*/vendor/llama.cpp"))
    build = cache / "build"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(
        ["cmake", "-S", str(vendor), "-B", str(build), *generator, "-DCMAKE_BUILD_TYPE=Release",
         "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"]
    )  # fmt: skip
    nice = ["nice", "-n", "15"] if shutil.which("nice") else []
    _run([*nice, "cmake", "--build", str(build), "--config", "Release", "--target", *TOOLS,
          "-j", str(jobs)])  # fmt: skip
    missing = [str(p) for p in tools.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"the build finished without {', '.join(missing)}")
    return tools


def _run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


# -- llama-server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(name: str, command: list[str], port: int, log: Path,
            env: dict[str, str] | None = None) -> Iterator[str]:
    """Run a server process until its /health answers; yield its base URL; stop it after."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited: see {log}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start in 120 s: see {log}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def llama_server(binary: Path, model: Path, threads: int, log: Path) -> ContextManager[str]:
    port = _free_port()
    command = [
        str(binary), "-m", str(model), "-t", str(threads), "-tb", str(threads), "-c", str(N_CTX),
        "-np", "1", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    return serving("llama-server", command, port, log)


def server_run(url: str, prompt: str, tokens: int) -> Speed:
    body = {"prompt": prompt, "n_predict": tokens, "seed": SEED, "cache_prompt": False, **SAMPLING}
    request = urllib.request.Request(
        url + "/completion", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=300) as answer:
        timings = json.loads(answer.read())["timings"]
    return Speed(
        timings["prompt_per_second"],
        timings["predicted_per_second"],
        timings["prompt_n"],
        timings["predicted_n"],
    )


# -- LeanCoder -----------------------------------------------------------------------------------


def leancoder_server(threads: int, data_dir: str, log: Path) -> ContextManager[str]:
    """`leancoder serve` with the starter on a free loopback port; yields its base URL."""
    port = _free_port()
    command = [str(Path(sys.executable).with_name("leancoder")), "serve", "--model", "starter",
               "--port", str(port), "--ctx", str(N_CTX), "--threads", str(threads)]  # fmt: skip
    env = {**os.environ, "LEANCODER_DATA_DIR": data_dir}
    return serving("leancoder serve", command, port, log, env)


class ApiSide:
    """LeanCoder's own API server; each run's prompt differs in its first words only."""

    def __init__(self, url: str, user_text: str, tokens: int) -> None:
        self.url, self.user_text, self.tokens = url, user_text, tokens
        self.runs = 0

    def run(self) -> Speed:
        self.runs += 1
        body = {
            "model": "starter",
            "messages": [{"role": "user", "content": f"Run {self.runs}. {self.user_text}"}],
            "max_tokens": self.tokens, "seed": SEED, **SAMPLING,
        }  # fmt: skip
        request = urllib.request.Request(
            self.url + "/v1/chat/completions", json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=300) as answer:
            usage = json.loads(answer.read())["usage"]
        figures = usage["leancoder"]
        evaluated = usage["prompt_tokens"] - usage["prompt_tokens_details"]["cached_tokens"]
        return Speed(figures["prompt_tokens_per_s"], figures["decode_tokens_per_s"], evaluated,
                     usage["completion_tokens"])  # fmt: skip


def sampling(tokens: int) -> SamplingParams:
    return SamplingParams(max_tokens=tokens, seed=SEED, **SAMPLING)  # type: ignore[arg-type]


def from_stats(stats: ReplyStats) -> Speed:
    evaluated = stats.prompt_tokens - stats.cached_prompt_tokens
    return Speed(stats.prompt_tokens_per_s, stats.decode_tokens_per_s, evaluated,
                 stats.generated_tokens)  # fmt: skip


def engine_run(engine: Engine, user_text: str, tokens: int) -> Speed:
    engine.reset_cache()
    for event in engine.generate([{"role": "user", "content": user_text}], sampling(tokens)):
        if event.kind == "done":
            return from_stats(event.stats)
    raise RuntimeError("the engine ended without a done event")


class WindowSide:
    """The real main window, offscreen: the prompt typed in, sent, the reply streamed."""

    def __init__(self, threads: int, tokens: int) -> None:
        from PySide6.QtWidgets import QApplication

        from app.ui.application import create_main_window

        self.qapp = QApplication.instance() or QApplication(sys.argv[:1])
        self.window = create_main_window(autoload=False)
        self.window.settings.n_threads = threads
        self.window.settings.n_ctx = N_CTX
        self.window.settings.temperature = SAMPLING["temperature"]
        self.tokens = tokens
        self.finished: list[ReplyStats] = []
        self.window.replyFinished.connect(self.finished.append)
        self.window.show()
        self.window.load_model("starter")
        if not self._spin(lambda: self.window.model_info is not None, 60):
            raise SystemExit("the window could not load the starter model")

    def _spin(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            self.qapp.processEvents()
            time.sleep(0.002)
        return condition()

    def run(self, user_text: str) -> Speed:
        window = self.window
        window.bridge._engine.reset_cache()  # the worker is idle between runs
        window.new_chat()
        window.prompt.setPlainText(user_text)
        before = len(self.finished)
        window.send()
        live = [0]
        take = window.bridge.take_events

        def counted(request: int):  # type: ignore[no-untyped-def]
            events = take(request)
            for _key, event in events:
                if event.stats is not None:  # a session's user/prompt events carry none
                    live[0] = max(live[0], event.stats.generated_tokens)
            return events

        window.bridge.take_events = counted  # type: ignore[method-assign]
        # The window sends no max_tokens: stop it once the token count is reached.
        self._spin(lambda: len(self.finished) > before or live[0] >= self.tokens, 300)
        window.stop()
        self._spin(lambda: len(self.finished) > before and not window.generating, 60)
        window.bridge.take_events = take  # type: ignore[method-assign]
        return from_stats(self.finished[-1])

    def close(self) -> None:
        from PySide6.QtCore import QCoreApplication, QEvent

        self.window.close()
        self.window.store.close()
        self.window.deleteLater()  # on the GUI thread (shiboken 6.11.3 crashes otherwise)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.collect()


# -- the comparison ------------------------------------------------------------------------------


def build_prompt(engine: Engine) -> tuple[str, str]:
    """(the user's text, the full rendered prompt): about PROMPT_TOKENS tokens, same for all."""
    ask = "\n\nExplain this text in detail, then write a long story about a lighthouse keeper."
    body = (PROMPT_BODY * 20)[: PROMPT_TOKENS * 8]
    while body and engine.count_tokens(body + ask) > PROMPT_TOKENS:
        body = body[: int(len(body) * 0.9)]
    user_text = body + ask
    return user_text, engine.render_prompt([{"role": "user", "content": user_text}])


def median(runs: list[Speed], field: str) -> float:
    return float(statistics.median(float(getattr(run, field)) for run in runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=200, help="tokens decoded per run")
    parser.add_argument("--threads", type=int, default=0, help="0: LeanCoder's default")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="build jobs")
    parser.add_argument("--no-window", action="store_true", help="skip the window side")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args(argv)

    tools = ensure_tools(args.jobs)
    if args.build_only:
        print("\n".join(str(p) for p in tools.values()))
        return 0
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    threads = args.threads or choose_threads(detect_cores()).decode
    model = resolve_model("starter")
    engine = Engine()
    engine.load(model, LoadOptions(n_ctx=N_CTX, n_threads=threads))
    user_text, prompt = build_prompt(engine)
    results: dict[str, list[Speed]] = {"llama-server": [], "LeanCoder headless": []}
    with tempfile.TemporaryDirectory(prefix="leancoder-vs-llama-") as scratch:
        os.environ["LEANCODER_DATA_DIR"] = scratch  # the window never touches the user's chats
        window = None if args.no_window else WindowSide(threads, args.tokens)
        if window is not None:
            results["LeanCoder window"] = []
        log = Path(scratch) / "llama-server.log"
        api_log = Path(scratch) / "leancoder-serve.log"
        with (
            llama_server(tools["llama-server"], model, threads, log) as url,
            leancoder_server(threads, scratch, api_log) as api_url,
        ):
            api = ApiSide(api_url, user_text, args.tokens)
            results["LeanCoder API"] = []
            sides: dict[str, Callable[[], Speed]] = {
                "llama-server": lambda: server_run(url, prompt, args.tokens),
                "LeanCoder headless": lambda: engine_run(engine, user_text, args.tokens),
                "LeanCoder API": api.run,
            }
            if window is not None:
                sides["LeanCoder window"] = lambda: window.run(user_text)
            for run in sides.values():  # warm-up: page the weights in, settle allocators
                run()
            names = list(sides)
            for round_index in range(args.rounds):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    results[name].append(sides[name]())
        if window is not None:
            window.close()
    engine.unload()

    prompt_n = results["llama-server"][0].prompt_tokens
    print(f"model: {model.name}  threads: {threads}  rounds: {args.rounds}  "
          f"tokens/run: {args.tokens}  prompt: {prompt_n} tokens")  # fmt: skip
    print(f"{'':22}{'prompt tok/s':>13}{'decode tok/s':>13}{'decoded':>9}")
    for name, runs in results.items():
        print(f"{name:22}{median(runs, 'prompt_tps'):13.1f}{median(runs, 'decode_tps'):13.1f}"
              f"{median(runs, 'decoded'):9.0f}")  # fmt: skip
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs (other processes cost speed)")
    peer, ours = results["llama-server"], results["LeanCoder headless"]
    for kind in ("decode", "prompt"):
        ratio = median(ours, f"{kind}_tps") / median(peer, f"{kind}_tps")
        print(f"{kind} ratio vs llama-server: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
