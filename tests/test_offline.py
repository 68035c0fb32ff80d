"""The offline guarantee: LeanCoder makes no network connection unless the user starts a download.

- A whole session in the real window (start, load the starter model, chat, open a folder, review
  and apply an edit, compare view) runs with a socket guard that fails the test on any connection
  attempt or name lookup, from any thread.
- A fresh interpreter starts the app's self-test with the guard installed before anything of the
  app is imported (import-time code is covered too).
- `python -m app --self-test` runs in a network namespace with no interfaces (`unshare -n`),
  where any connection would fail at the operating-system level.
- Starting the app does not import the hub client (huggingface_hub): it is imported only inside
  the functions that run a download the user started.
The guard itself is tested first: a guard that blocks nothing would prove nothing.
"""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.core.edits import propose
from app.ui.compare_view import CompareWindow
from app.ui.main_window import MainWindow
from tests.net_guard import NetworkBlockedError, block_network
from tests.ui_support import WindowFactory, load_starter, stored, type_and_send, wait_reply_done

ROOT = Path(__file__).resolve().parents[1]
# The hub client: it reads HF_* settings when imported and carries telemetry helpers, so it is
# imported only inside the functions that run a download the user started.
HUB_CLIENTS = ("huggingface_hub", "hf_xet")
# Not imported by starting the app: the hub client, and network stacks the app has no use for.
# (httpx2 is imported at start by app.core.models.network for its types; importing it opens nothing,
# and the socket guard below proves that no connection is made.)
NOT_AT_START = (*HUB_CLIENTS, "requests", "urllib3", "aiohttp", "PySide6.QtNetwork")
# What `leancoder` imports before the window is up: the CLI, the window, everything they import.
STARTUP_MODULES = (
    "app.cli.main",
    "app.ui.application",
    "app.ui.main_window",
    "app.ui.compare_view",
)

# -- the guard blocks what it should, and only that -------------------------------------------


def _loopback_server() -> tuple[socket.socket, tuple[str, int]]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server, server.getsockname()


def test_guard_blocks_and_records_connections_lookups_and_http() -> None:
    server, address = _loopback_server()
    try:
        with pytest.raises(AssertionError) as failed, block_network() as guard:
            # Even a reachable loopback server: the guard does not care where a connection goes.
            with socket.socket() as sock, pytest.raises(NetworkBlockedError):
                sock.connect(address)
            with pytest.raises(NetworkBlockedError):
                socket.create_connection(address, timeout=1)
            with pytest.raises(NetworkBlockedError):
                socket.getaddrinfo("huggingface.co", 443)
            # A real HTTP client, its error caught the way application code would catch it.
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{address[1]}/", timeout=1)
            # From another thread too (the model worker is one).
            worker = threading.Thread(target=lambda: _try_connect(address), name="worker")
            worker.start()
            worker.join()
            assert len(guard.attempts) == 5
        report = str(failed.value)
        assert "socket.connect(('127.0.0.1'" in report
        assert "socket.getaddrinfo('huggingface.co', 443)" in report
        assert "thread worker" in report
        assert "test_offline.py" in report  # where each attempt came from
        # Unpatched afterwards: the same loopback connection works again.
        with socket.create_connection(address, timeout=5):
            pass
    finally:
        server.close()


def _try_connect(address: tuple[str, int]) -> None:
    with contextlib.suppress(OSError):
        socket.create_connection(address, timeout=1)


def test_guard_allows_local_unix_sockets() -> None:
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no Unix-domain sockets on this system")
    with block_network() as guard:
        left, right = socket.socketpair(socket.AF_UNIX)
        with left, right:
            left.sendall(b"ping")
            assert right.recv(4) == b"ping"
    assert guard.attempts == []


# -- a whole session in the window ------------------------------------------------------------

Step = Callable[[QtBot, MainWindow, Path], None]


def _load_starter_model(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    load_starter(qtbot, window)


def _chat_one_short_reply(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    type_and_send(qtbot, window, "Say hi.")
    wait_reply_done(qtbot, window)
    assert stored(window)[-1].content == window.chat_view.messages[-1].answer != ""


def _compare_two_policies(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    window.prompt.setPlainText("Is 7 a prime number?")
    view = window.open_compare()
    assert isinstance(view, CompareWindow)
    qtbot.waitExposed(view)
    view.policy_b.setCurrentText("Aggressive")
    view.run_button.click()  # the starter has no thinking format: Compare asks first
    assert view.no_thinking_bar.isVisible()
    with qtbot.waitSignal(window.bridge.compareFinished, timeout=120_000):
        view.run_anyway_button.click()
    qtbot.waitUntil(lambda: view.result is not None, timeout=5_000)
    assert view.result is not None and view.result.a.answer and view.result.b.answer
    view.export_to(tmp_path / "comparison.md", "md")
    assert (tmp_path / "comparison.md").read_text(encoding="utf-8").startswith("# LeanCoder")
    view.close()
    window.prompt.clear()


REPLY_WITH_EDIT = (
    "app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n    return b + a\n>>>>>>> REPLACE\n"
)


def _open_a_folder(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.py").write_text("def add(a, b):\n    return a + b\n")
    with qtbot.waitSignal(window.code.panel.scanFinished, timeout=10_000):
        window.code.open_folder(folder)
    window.code.panel.set_selected(["app.py"])
    window.code.edit_action.setChecked(True)
    type_and_send(qtbot, window, "What does app.py do?")  # the folder goes with the request
    wait_reply_done(qtbot, window)


def _review_and_apply_an_edit(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    # As if the model had answered with this edit: the proposal the session would end with.
    window.code.show_proposal(propose(tmp_path / "project", REPLY_WITH_EDIT))
    review = window.code.review
    assert len(review.hunk_views) == 1
    review.accept_all()
    with qtbot.waitSignal(review.applied):
        review.apply()
    assert "return b + a" in (tmp_path / "project" / "app.py").read_text()
    with qtbot.waitSignal(review.undone):
        window.code.undo_action.trigger()


# In the order a user would go.
SESSION_STEPS: list[tuple[str, Step]] = [
    ("load the starter model", _load_starter_model),
    ("chat one short reply", _chat_one_short_reply),
    ("open a folder and ask about it", _open_a_folder),
    ("review, apply and undo an edit", _review_and_apply_an_edit),
    ("compare two thinking policies", _compare_two_policies),
]


@pytest.mark.model
def test_a_whole_session_makes_no_network_connection(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path
) -> None:
    done: list[str] = []
    with block_network() as guard:
        window = make_window(n_ctx=512, load=False)  # start: settings, chat store, the window
        for name, step in SESSION_STEPS:
            step(qtbot, window, tmp_path)
            done.append(name)
        assert guard.attempts == [], f"after: {', '.join(done)}"
    assert done == [name for name, _ in SESSION_STEPS]


# -- a fresh process: import-time code included -----------------------------------------------

_GUARDED_SELF_TEST = """
import sys
sys.path.insert(0, {root!r})
from tests.net_guard import block_network

with block_network():  # before the first import of the app
    from app.cli.main import main

    status = main(["--self-test"])
sys.exit(status)
"""


@pytest.mark.model
def test_the_self_test_in_a_fresh_guarded_process_makes_no_connection(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LEANCODER_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", _GUARDED_SELF_TEST.format(root=str(ROOT))],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "self-test passed" in result.stdout
    assert "network access attempted" not in output


# -- no network interfaces at all -------------------------------------------------------------


def _unshare_network_works() -> str | None:
    """None if `unshare -n` can make a network namespace here, else why not."""
    tool = shutil.which("unshare")
    if tool is None:
        return "unshare is not installed"
    probe = subprocess.run([tool, "-n", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"unshare -n is not permitted here: {probe.stderr.strip()}"
    return None


@pytest.mark.model
def test_the_self_test_passes_with_no_network_interfaces(tmp_path: Path) -> None:
    reason = _unshare_network_works()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LEANCODER_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "app", "--self-test"],
        capture_output=True, text=True, timeout=240, env=env, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("bundled files: ok", "llama.cpp generation: ok", "main window: ok"):
        assert step in result.stdout
    # Proof that the namespace really had no way out: only a loopback device, and it is down.
    links = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", "import socket; print(socket.if_nameindex())"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert links.stdout.strip() == "[(1, 'lo')]"


# -- nothing that talks to the network is imported at start -----------------------------------


def test_starting_the_app_does_not_import_the_hub_client(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        f"for name in {STARTUP_MODULES!r}:\n"
        "    __import__(name)\n"
        "from app.cli.main import build_parser\n"
        "build_parser()  # imports every command module\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LEANCODER_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env,
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert "app.ui.main_window" in loaded  # the probe did import the app
    imported = sorted(
        name
        for name in loaded
        if any(name == client or name.startswith(client + ".") for client in NOT_AT_START)
    )
    assert imported == [], f"starting the app imports: {imported}"


def _top_level_imports(path: Path) -> set[str]:
    """Modules a file imports at module level (not inside functions: those run only on demand)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_hub_client_is_imported_only_inside_functions() -> None:
    """A module that imported huggingface_hub at its top would load it wherever it is used.

    Download code imports it inside the function that downloads, so it loads only when the user
    starts a download (and picks up the mirror and offline settings current at that moment).
    """
    offenders = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for name in _top_level_imports(path):
            if any(name == client or name.startswith(client + ".") for client in HUB_CLIENTS):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
