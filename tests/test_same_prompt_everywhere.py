"""The window and the CLI send byte-identical prompts for the same chat, folder and selection.

Both go through ChatSession; a spy on `Engine.generate` (it records, then runs the real thing)
renders what each front end sent with the loaded model's own template.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.cli.main import main
from app.core.llm.chat_template import Message
from app.core.llm.engine import Engine, GenerationEvent
from tests.ui_support import WindowFactory, type_and_send, wait_reply_done

QUESTION = "What does app.py do?"


@pytest.fixture
def sent_prompts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    prompts: list[str] = []
    real = Engine.generate

    def spy(self: Engine, messages: Sequence[Message], *args: Any, **kwargs: Any
            ) -> Iterator[GenerationEvent]:  # fmt: skip
        prompts.append(self.render_prompt(messages))
        return real(self, messages, *args, **kwargs)

    monkeypatch.setattr(Engine, "generate", spy)
    return prompts


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "lib").mkdir(parents=True)
    (folder / "app.py").write_text("from lib.util import add\n\nprint(add(2, 3))\n")
    (folder / "lib" / "util.py").write_text("def add(a, b):\n    return a + b\n")
    (folder / "README.md").write_text("# Demo\n")
    return folder


@pytest.mark.model
def test_window_and_cli_send_the_same_prompt(
    qtbot: QtBot, make_window: WindowFactory, project: Path, sent_prompts: list[str]
) -> None:
    code = main(
        ["ask", "--model", "starter", "--ctx", "1024", "--folder", str(project),
         "--select", "app.py", "--max-tokens", "1", "--temperature", "0", "--json", QUESTION]
    )  # fmt: skip
    assert code == 0
    assert len(sent_prompts) == 1

    window = make_window(n_ctx=1024)
    assert window.model_info is not None and window.model_info.n_ctx == 1024
    with qtbot.waitSignal(window.code.panel.scanFinished, timeout=10_000):
        window.code.open_folder(project)
    window.code.panel.set_selected(["app.py"])
    type_and_send(qtbot, window, QUESTION)
    wait_reply_done(qtbot, window)
    assert len(sent_prompts) == 2

    cli_prompt, window_prompt = sent_prompts
    assert "print(add(2, 3))" in cli_prompt and "lib/util.py" in cli_prompt
    assert cli_prompt.encode() == window_prompt.encode()


@pytest.mark.model
def test_edit_mode_sends_the_same_prompt_from_cli_and_window(
    qtbot: QtBot, make_window: WindowFactory, project: Path, sent_prompts: list[str]
) -> None:
    instruction = "Rename add to plus"
    code = main(
        ["edit", "--model", "starter", "--ctx", "1024", "--folder", str(project),
         "--select", "lib/util.py", "--max-tokens", "1", "--json", instruction],
    )  # fmt: skip
    assert code in (0, 1)  # one token is no edit: the point here is the prompt
    cli_first = sent_prompts[0]

    window = make_window(n_ctx=1024)
    with qtbot.waitSignal(window.code.panel.scanFinished, timeout=10_000):
        window.code.open_folder(project)
    window.code.panel.set_selected(["lib/util.py"])
    window.code.edit_action.setChecked(True)
    window.settings.temperature = 0.0
    type_and_send(qtbot, window, instruction)
    qtbot.waitUntil(lambda: len(sent_prompts) > 1 or not window.generating, timeout=60_000)
    window.stop()
    wait_reply_done(qtbot, window)
    assert "SEARCH" in cli_first or "whole" in cli_first.lower()  # the edit rules are there
    assert sent_prompts[1].encode() == cli_first.encode()
