"""The window's side of secrets: redacted files show in the Skipped tab, and its context menu
lets the user send a file as it is. A real panel offscreen over a real folder."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.core.workspace.context import WorkspaceContext, build_context
from app.ui.workspace_panel import WorkspacePanel
from tests.test_secrets import AWS_ID, OPENAI, _folder


def _opened(qtbot: QtBot, folder: Path) -> WorkspacePanel:
    panel = WorkspacePanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.scanFinished, timeout=20_000):
        assert panel.open_folder(folder)
    return panel


def _row(panel: WorkspacePanel, path: str) -> int:
    return next(i for i, e in enumerate(panel.skipped()) if e.path == path)


def _context(panel: WorkspacePanel) -> WorkspaceContext:
    """What a chat session builds from the panel's folder choice, shown back in the panel."""
    choice = panel.folder_choice()
    assert choice is not None
    context = build_context(
        choice.root, choice.files, choice.selected, 100_000, allow_secrets=choice.allow_secrets
    )
    panel.show_redactions(context)
    return context


def test_redacted_file_is_listed_and_can_be_allowed(qtbot: QtBot, tmp_path: Path) -> None:
    panel = _opened(qtbot, _folder(tmp_path))
    panel.set_selected(["settings.py"])
    context = _context(panel)
    assert context is not None and AWS_ID not in context.text
    entry = panel.skipped()[_row(panel, "settings.py")]
    assert entry.secret and entry.reason.startswith("secrets redacted: lines 4-6, 10, 13")
    assert panel.tabs.tabText(1) == f"Skipped ({len(panel.skipped())})"
    menu = panel.skipped_menu(_row(panel, "settings.py"))
    assert menu is not None
    [action] = menu.actions()
    assert action.text() == "Send this file as it is (allow its secrets)"
    action.trigger()
    assert panel.allowed_secrets() == ["settings.py"]
    assert "settings.py" not in [e.path for e in panel.skipped()]
    context = _context(panel)
    assert context is not None and AWS_ID in context.text and context.redacted == []


def test_a_file_skipped_by_name_can_be_allowed_into_the_tree(
    qtbot: QtBot, tmp_path: Path
) -> None:
    panel = _opened(qtbot, _folder(tmp_path))
    assert ".env" not in panel.files()
    menu = panel.skipped_menu(_row(panel, ".env"))
    assert menu is not None
    menu.actions()[0].trigger()
    assert ".env" in panel.files() and ".env" in panel.selected_files()
    context = _context(panel)
    assert context is not None and OPENAI in context.text
    # Not a secret entry (a folder, a binary): no menu at all.
    assert all(
        panel.skipped_menu(i) is None for i, e in enumerate(panel.skipped()) if not e.secret
    )
