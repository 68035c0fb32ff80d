"""The side-by-side compare view in a real window with the real model (thinking forced open)."""

from __future__ import annotations

import json
from pathlib import Path

from pytestqt.qtbot import QtBot

from app.ui import theme
from app.ui.compare_view import CompareWindow
from tests.ui_support import WindowFactory, type_and_send, wait_reply_done


def test_compare_fills_both_columns_table_and_exports(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path
) -> None:
    window = make_window(n_ctx=1024)
    window.prompt.setPlainText("Is 17 a prime number?")
    view = window.open_compare()
    assert isinstance(view, CompareWindow)
    qtbot.waitExposed(view)
    assert view.prompt.text() == "Is 17 a prime number?"
    view.policy_b.setCurrentText("Aggressive")
    assert not view.export_md.isEnabled()
    # The starter has no thinking format: Run warns first and offers Force thinking.
    assert window.model_info is not None and window.model_info.thinking_format.value == "none"
    view.run_button.click()
    assert not view.running and view.no_thinking_bar.isVisible()
    assert "no thinking format" in view.no_thinking_label.text()
    # Two full replies on the starter: minutes when the machine is shared.
    with qtbot.waitSignal(window.bridge.compareFinished, timeout=300_000):
        view.force_and_run_button.click()
        assert view.force_thinking.isChecked()
        assert view.running and view.stop_button.isEnabled()
        assert not view.no_thinking_bar.isVisible()
    qtbot.waitUntil(lambda: view.result is not None, timeout=5_000)

    a, b = view.panes["a"].message, view.panes["b"].message
    assert view.panes["a"].title.text() == "A: Unpruned"
    assert view.panes["b"].title.text() == "B: Aggressive"
    assert a.thinking.strip() and b.thinking.strip()  # both columns filled, thinking included
    assert "tok/s" in a.footer.text() and "tok/s" in b.footer.text()
    assert view.result is not None
    assert a.answer == view.result.a.answer and b.thinking == view.result.b.thinking
    measures = [view.table.item(r, 0).text() for r in range(view.table.rowCount())]
    assert measures[:3] == ["thinking tokens", "answer tokens", "total tokens"]
    assert view.table.item(0, 1).text() == str(view.result.a.stats.thinking_tokens)
    assert view.table.item(0, 2).text() == str(view.result.b.stats.thinking_tokens)
    assert view.diff.toPlainText()
    assert view.export_md.isEnabled() and view.export_json.isEnabled()
    # Each side says what it saved (or spent) against the other.
    assert view.panes["a"].saved.text().startswith("A ") and " than Aggressive" in (
        view.panes["a"].saved.text()
    )
    assert " tokens" in view.panes["b"].saved.text() and " s " in view.panes["b"].saved.text()
    # The columns share the window: no footer or line makes one wider than its half.
    view.resize(1000, 700)
    qtbot.waitUntil(lambda: view.width() == 1000, timeout=2_000)
    pane_a, pane_b = view.panes["a"], view.panes["b"]
    assert pane_a.width() + pane_b.width() <= view.width()
    assert a.footer.wordWrap() and a.width() <= pane_a.width()
    # The measures table fills its width: no empty strip right of the last column.
    table = view.table
    used = sum(table.columnWidth(c) for c in range(table.columnCount()))
    assert used >= table.viewport().width() - 2, (used, table.viewport().width())

    view.export_to(tmp_path / "c.md", "md")
    view.export_to(tmp_path / "c.json", "json")
    report = (tmp_path / "c.md").read_text()
    assert report.startswith("# LeanCoder comparison")
    assert f"- Model: {window.model_info.name}" in report and "- Quantization: " in report
    assert "- Seed: 1234" in report and "- Policy B: Aggressive (" in report
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["b"]["policy"]["name"] == "Aggressive"
    assert data["model"] == window.model_info.name

    # The chat keeps working after a comparison on the same model worker.
    view.close()
    window.prompt.clear()
    type_and_send(qtbot, window, "Say hi.")
    wait_reply_done(qtbot, window)
    assert window.chat_view.messages[-1].answer


def test_a_theme_switch_redraws_both_replies_in_the_new_colours(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(load=False)
    view = window.open_compare()
    for pane in view.panes.values():
        pane.message.set_content("Here:\n\n```python\ndef f(x):\n    return x\n```\n")
    light = view.panes["a"].message.body.toHtml()
    try:
        window.theme.set_choice("dark")
        for pane in view.panes.values():
            dark = pane.message.body.toHtml()
            assert dark != light and "def" in pane.message.body.toPlainText()
            assert theme.DARK.code_background in dark
    finally:
        window.theme.set_choice("light")
    assert view.panes["b"].message.body.toHtml() == light
