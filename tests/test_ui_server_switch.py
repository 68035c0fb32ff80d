"""The window's Local server switch (issue #13): the window's loaded starter model served to the
official `openai` client through the window's own model worker, a window chat and an API request
taking turns with the indicator saying which waits, and the switch turning the server off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from pytestqt.qtbot import QtBot

from app.server.config import ServerConfig
from app.ui.main_window import MainWindow
from tests.ui_support import WindowFactory, type_and_send, wait_reply_done

CLIENT = "test-coding-tool/1.0"
TIMEOUT_MS = 120_000


@dataclass
class ApiCall:
    """One streamed chat completion on a thread of the test (the GUI thread must keep running)."""

    url: str
    max_tokens: int = 48
    first_chunk: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    finish: str = ""
    ended_at: float = 0.0
    error: BaseException | None = None

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        client = openai.OpenAI(base_url=self.url, api_key="unused", max_retries=0, timeout=120,
                               default_headers={"User-Agent": CLIENT})  # fmt: skip
        try:
            stream = client.chat.completions.create(
                model="any", messages=[{"role": "user", "content": "Write a haiku about code."}],
                stream=True, max_tokens=self.max_tokens, temperature=0, seed=1,
            )  # fmt: skip
            for chunk in stream:
                self.first_chunk.set()
                for choice in chunk.choices:
                    self.text += choice.delta.content or ""
                    self.finish = choice.finish_reason or self.finish
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.first_chunk.set()
            client.close()


class HeldReply:
    """Holds the engine's next reply after its first event until the test releases it.

    The reply is the real model's; only its pace is the test's. Without the hold, whether an API
    request reaches the queue before the window's reply ends depended on how long the sampled
    story ran (it once ended first under a loaded CI machine).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, window: MainWindow) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        engine = window.bridge.engine
        original = engine.generate

        def generate(*args: Any, **kwargs: Any) -> Iterator[Any]:
            monkeypatch.undo()  # only this reply is held; the API's runs as it is
            for index, event in enumerate(original(*args, **kwargs)):
                yield event
                if index == 0:
                    self.started.set()
                    self.release.wait(TIMEOUT_MS / 1000)

        monkeypatch.setattr(engine, "generate", generate)


def _serve(qtbot: QtBot, window: MainWindow) -> str:
    switch = window.server_switch
    switch.config = ServerConfig(port=0)  # any free port
    with qtbot.waitSignal(switch.started, timeout=30_000):
        switch.action.trigger()
    assert switch.action.isChecked() and switch.serving
    qtbot.waitUntil(lambda: switch.url in switch.indicator.text(), timeout=5_000)
    return switch.url


def test_the_window_serves_its_loaded_model_and_takes_turns_with_the_api(
    qtbot: QtBot, make_window: WindowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window()
    switch = window.server_switch
    url = _serve(qtbot, window)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert switch.indicator.isVisible()
    assert "0 requests served" in switch.indicator.text()

    # The official client against the window's model: the model list and a streamed reply.
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
    (model,) = client.models.list().data
    assert window.model_info is not None and model.id == window.model_info.path.stem
    client.close()

    # An API request first: the window's chat waits behind it, and the indicator says so.
    held = HeldReply(monkeypatch, window)
    api = ApiCall(url, max_tokens=96)
    thread = api.start()
    assert held.started.wait(TIMEOUT_MS / 1000)
    type_and_send(qtbot, window, "Say hello.")
    try:
        qtbot.waitUntil(lambda: f"your chat waits for {CLIENT}" in switch.indicator.text(),
                        timeout=TIMEOUT_MS)  # fmt: skip
    finally:
        held.release.set()
    thread.join(TIMEOUT_MS / 1000)
    assert api.error is None and api.text and api.finish in ("stop", "length")
    wait_reply_done(qtbot, window, TIMEOUT_MS)
    qtbot.waitUntil(lambda: "1 request served" in switch.indicator.text(), timeout=5_000)
    assert "your chat waits" not in switch.indicator.text()

    # The reverse: the window's chat first, an API request waits behind it.
    held = HeldReply(monkeypatch, window)
    type_and_send(qtbot, window, "Write a long story about a robot.")
    qtbot.waitUntil(held.started.is_set, timeout=TIMEOUT_MS)
    api = ApiCall(url)
    thread = api.start()
    try:
        qtbot.waitUntil(lambda: "1 API request waits for your chat" in switch.indicator.text(),
                        timeout=TIMEOUT_MS)  # fmt: skip
        assert api.ended_at == 0.0 and not api.first_chunk.is_set()  # it waits; it has not run
    finally:
        held.release.set()
    window.stop()  # the story could fill the context; the queued request goes on once it ends
    wait_reply_done(qtbot, window, TIMEOUT_MS)
    window_done = time.monotonic()
    thread.join(TIMEOUT_MS / 1000)
    assert api.error is None and api.text
    assert api.ended_at >= window_done  # it ran after the window's reply, not beside it
    qtbot.waitUntil(lambda: "2 requests served" in switch.indicator.text(), timeout=5_000)

    # Off: the indicator goes and the port closes.
    with qtbot.waitSignal(switch.stopped, timeout=30_000):
        switch.action.trigger()
    assert not switch.serving and not switch.action.isChecked()
    assert not switch.indicator.isVisible()
    closed = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=10)
    with pytest.raises(openai.APIConnectionError):
        closed.models.list()
    closed.close()


def test_the_switch_needs_a_loaded_model(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window(load=False)
    switch = window.server_switch
    switch.action.trigger()
    assert not switch.action.isChecked() and not switch.serving
    assert "Load a model first" in window.statusBar().currentMessage()


def test_a_port_in_use_is_a_clear_message(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window()
    url = _serve(qtbot, window)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    other = make_window(load=False)
    load_into = other.server_switch
    load_into.config = ServerConfig(port=port)
    other.model_info = window.model_info  # the check before starting; the bind is what fails
    with qtbot.waitSignal(load_into.stopped, timeout=30_000) as stopped:
        load_into.action.trigger()
    assert "could not listen" in stopped.args[0] and str(port) in stopped.args[0]
    assert not load_into.action.isChecked()
