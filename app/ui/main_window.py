"""The main window: chats on the left, the conversation in the middle, model and speed around it.

It wires widgets to the engine bridge and the chat store; the logic it needs lives in app.core.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.core.llm.engine import ModelInfo
from app.core.session.chat import ChatSession
from app.core.storage.chat_store import ChatStore
from app.core.storage.settings import Settings
from app.core.thinking.policy import ThinkingPolicy
from app.ui.chat_list import ChatListPanel
from app.ui.chat_view import ChatView, warm_up_rendering
from app.ui.code_workflow import CodeWorkflow
from app.ui.dialog_geometry import fit_and_centre
from app.ui.engine_bridge import EngineBridge
from app.ui.error_dialog import app_error_reporter
from app.ui.gguf_files import dropped_gguf
from app.ui.help_menu import HelpMenu
from app.ui.live_reply import LiveReply
from app.ui.menus import WindowShell
from app.ui.meters_panel import add_meters_toolbar
from app.ui.model_loading import ModelLoading
from app.ui.model_menu import ModelMenu
from app.ui.model_picker import ModelPicker
from app.ui.policy_picker import PolicyPicker, fast_kv_action, speculative_action
from app.ui.prompt_edit import PromptEdit
from app.ui.server_switch import ServerSwitch
from app.ui.welcome import WelcomePanel
from app.ui.window_state import WindowState
from app.ui.window_theme import install_look

if TYPE_CHECKING:
    from app.ui.compare_view import CompareWindow

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(
        self,
        store: ChatStore,
        settings: Settings,
        settings_path: Path,
        bridge: EngineBridge | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("LeanCoder")
        self.resize(1100, 760)
        self.store = store
        self.settings = settings
        self.settings_path = settings_path
        self.bridge = bridge or EngineBridge(self)
        self.model_info: ModelInfo | None = None
        self.session = ChatSession(store)  # the conversation shown; the model thread saves it
        self.error_box: QMessageBox | None = None
        self.live = LiveReply(self)  # the chat request on screen
        # For observers (tests, benches): a reply ended or failed, after the window showed it.
        self.replyFinished, self.replyFailed = self.live.replyFinished, self.live.replyFailed
        self.models = ModelLoading(self)  # loading a model, its label and notes
        self._build()
        self._connect()
        self.refresh_chat_list()
        QTimer.singleShot(0, warm_up_rendering)

    # -- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        models_menu = self.menuBar().addMenu("&Models")
        self.model_menu = ModelMenu(self, models_menu, self.settings.n_ctx)
        self.setAcceptDrops(True)  # a .gguf dropped on the window is imported and loaded
        toolbar = QToolBar("Main", self)
        toolbar.setMovable(False)
        self.addToolBar(toolbar)
        self.model_picker = ModelPicker(self.settings.recent_models, self)
        toolbar.addWidget(QLabel(" Model: "))
        toolbar.addWidget(self.model_picker)
        self.policy_picker = PolicyPicker(self.settings, self)
        toolbar.addWidget(QLabel(" Thinking: "))
        toolbar.addWidget(self.policy_picker)
        self.edit_policy_action = QAction("Edit…", self)
        self.edit_policy_action.setToolTip("Every knob of the Custom thinking policy")
        toolbar.addAction(self.edit_policy_action)
        self.fast_kv_action = fast_kv_action(self.settings, self)
        thinking_menu = self.menuBar().addMenu("&Thinking")
        thinking_menu.addAction(self.edit_policy_action)
        thinking_menu.addAction(self.fast_kv_action)
        self.speculative_action = speculative_action(self.settings, self, self.save_settings)
        thinking_menu.addAction(self.speculative_action)
        self.new_chat_action = QAction("New chat", self)
        self.new_chat_action.setShortcut(QKeySequence.StandardKey.New)
        toolbar.addAction(self.new_chat_action)
        self.compare_action = QAction("Compare…", self)
        self.compare_action.setToolTip("Run the prompt pruned and unpruned, side by side")
        toolbar.addAction(self.compare_action)
        self.compare_window: CompareWindow | None = None
        self.code = CodeWorkflow(self)
        toolbar.addSeparator()
        toolbar.addAction(self.code.open_action)
        toolbar.addAction(self.code.edit_action)
        toolbar.addAction(self.code.fix_action)
        self.code.fix.attach(self.bridge, self.code.folder_choice, lambda: self.policy)
        code_menu = self.menuBar().addMenu("&Code")
        for action in self.code.menu_actions():
            code_menu.addAction(action)
        self.help_menu = HelpMenu(self, self.menuBar().addMenu("&Help"))
        self.errors = app_error_reporter()  # unexpected errors: a dialog with the log's path

        self.chats = ChatListPanel(self.store, self)  # search, rename, delete with undo
        self.chat_list = self.chats.list
        self.chat_view = ChatView(self)
        self.prompt = PromptEdit(self)
        self.prompt.setPlaceholderText("Ask about code… (Enter sends, Shift+Enter for a new line)")
        self.prompt.setFixedHeight(100)
        self.send_button = QPushButton("Send", self)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setEnabled(False)
        self.stop_thinking_button = QPushButton("Stop thinking", self)
        self.stop_thinking_button.setToolTip("Close the thinking now and let the model answer")
        self.stop_thinking_button.setEnabled(False)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.stop_thinking_button)
        input_row = QHBoxLayout()
        input_row.addWidget(self.prompt, 1)
        input_row.addLayout(buttons)
        center = QWidget(self)
        center_layout = QVBoxLayout(center)
        center_layout.addWidget(self.chat_view, 1)
        center_layout.addLayout(input_row)
        splitter = QSplitter(self)
        splitter.addWidget(self.chats)
        splitter.addWidget(center)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 880])
        self.setCentralWidget(self.code.centre(splitter))  # or the review page, full width

        status = self.statusBar()
        self.model_label = QLabel("No model loaded", self)
        self.load_progress = QProgressBar(self)
        self.load_progress.setRange(0, 100)
        self.load_progress.setMaximumWidth(160)
        self.load_progress.hide()
        status.addWidget(self.model_label, 1)
        status.addPermanentWidget(self.load_progress)
        self.server_switch = ServerSwitch(self, models_menu)  # the local API over this model
        self.meters = add_meters_toolbar(self)  # thinking, context, memory, speed: always shown
        self.thinking_meter, self.context_meter = self.meters.thinking, self.meters.context
        self.memory_meter, self.speed_meter = self.meters.memory, self.meters.speed
        self.theme = install_look(self)  # View > Theme / Meters, icons
        self.welcome = WelcomePanel(self)  # an empty chat: the model's status, example prompts
        self.shell = WindowShell(self)  # File and Chat menus, every shortcut, the context size
        self.state = WindowState(self)  # geometry, docks, folder: restored by create_main_window
        self.update_controls()

    def _connect(self) -> None:
        self.model_picker.modelChosen.connect(self.load_model)
        self.model_menu.modelChosen.connect(self.load_model)
        self.model_menu.importFailed.connect(lambda m: self.show_error("Cannot import", m))
        self.code.contextBuilt.connect(lambda line: self.statusBar().showMessage(line, 15000))
        self.new_chat_action.triggered.connect(self.new_chat)
        self.compare_action.triggered.connect(self.open_compare)
        self.send_button.clicked.connect(self.send)
        self.prompt.submitted.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        self.stop_thinking_button.clicked.connect(self.bridge.stop_thinking)
        self.policy_picker.policyChanged.connect(self._on_policy_changed)
        self.edit_policy_action.triggered.connect(lambda: self.policy_picker.edit(self.bridge))
        self.fast_kv_action.toggled.connect(self._on_fast_kv_toggled)  # saved with the settings
        self.chats.chatOpened.connect(self._on_chat_clicked)
        self.chats.chatDeleted.connect(lambda c: self.new_chat() if c == self.chat_id else None)
        self.chats.chatRestored.connect(self._on_chat_clicked)
        self.chats.note.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.bridge.jobFailed.connect(self.errors.report)

    # -- state ---------------------------------------------------------------------------------

    @property
    def generating(self) -> bool:
        return self.live.request is not None

    def update_controls(self) -> None:
        busy = self.generating or self.models.loading
        self.send_button.setEnabled(self.model_info is not None and not busy)
        self.stop_button.setEnabled(self.generating)
        self.stop_thinking_button.setEnabled(self.generating and self.live.thinking)
        self.model_picker.setEnabled(not busy)
        if hasattr(self, "shell"):  # the list stays usable: only rewriting history waits
            self.shell.update_actions()
        self.compare_action.setEnabled(self.model_info is not None and not busy)

    def show_error(self, title: str, message: str) -> None:
        """A non-blocking dialog; the app stays usable behind it."""
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_box = box
        self.statusBar().showMessage(message, 10000)

    # -- models --------------------------------------------------------------------------------

    def load_model(self, spec: str) -> None:
        self.models.load(spec)

    @property
    def policy(self) -> ThinkingPolicy:
        return self.policy_picker.policy

    def _on_policy_changed(self, policy: ThinkingPolicy) -> None:
        self.settings.policy = self.policy_picker.currentText()
        self.save_settings()
        self.thinking_meter.set_idle(
            self.model_info.thinking_format if self.model_info else None, self.policy
        )

    def _on_fast_kv_toggled(self, on: bool) -> None:
        self.settings.kv_fast_mode = on
        self.save_settings()
        self.statusBar().showMessage("Takes effect when a model is next loaded.", 5000)

    def save_settings(self) -> None:
        try:
            self.settings.save(self.settings_path)
        except OSError as exc:
            self.statusBar().showMessage(f"Settings not saved: {exc}", 8000)

    # -- chats ---------------------------------------------------------------------------------

    @property
    def chat_id(self) -> int | None:
        return self.session.chat_id

    def refresh_chat_list(self) -> None:
        self.chats.current_id = self.chat_id
        self.chats.refresh()

    def new_chat(self) -> None:
        self.shell.chat_actions.leave_current()  # a streaming reply goes on, saved, unseen
        self.session = ChatSession(self.store)
        self.chat_view.clear()
        self.meters.clear_reply()  # no figure outlives its conversation
        self.chats.select(None)
        self.prompt.setFocus()

    def open_chat(self, chat_id: int) -> None:
        self.shell.chat_actions.leave_current()
        self.session = ChatSession(self.store, chat_id)
        self.chat_view.show_stored(self.store.messages(chat_id))
        self.meters.clear_reply()

    def open_latest_chat(self) -> None:
        """Start where the user left off: the most recently active chat, if any."""
        chats = self.store.list_chats()
        if chats:
            self.open_chat(chats[0].id)
            self.refresh_chat_list()

    def _on_chat_clicked(self, chat_id: int) -> None:
        self.open_chat(chat_id)
        self.chats.select(chat_id)

    # -- replies -------------------------------------------------------------------------------

    def send(self) -> None:
        text = self.prompt.toPlainText().strip()
        if not text or self.generating:
            return
        if self.model_info is None:
            self.statusBar().showMessage("Choose a model first.", 5000)
            return
        self.prompt.clear()
        self.send_text(text)

    def open_compare(self) -> CompareWindow:
        """The side-by-side view, seeded with the prompt being typed (or the last one sent)."""
        from app.ui.compare_view import CompareWindow

        prompt = self.prompt.toPlainText().strip()
        if not prompt:
            users = [t.content for t in self.session.turns if t.role == "user"]
            prompt = users[-1] if users else ""
        if self.compare_window is not None:
            self.compare_window.close()
            self.compare_window.deleteLater()
        self.compare_window = CompareWindow(
            self.bridge, prompt, self.policy.name, self, custom=self.policy_picker.custom
        )
        fit_and_centre(self.compare_window, self)  # inside the screen, centred on the window
        self.compare_window.show()
        return self.compare_window

    def stop(self) -> None:
        self.bridge.stop()

    def send_text(self, text: str) -> None:
        """Send a user message; the session builds the prompt and streams the reply."""
        if not self.generating and self.model_info is not None:
            self.live.send(self.session, text)

    # -- closing -------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_gguf(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_gguf(event.mimeData())
        if path is not None and not self.generating:
            event.acceptProposedAction()
            self.model_menu.import_file(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.state.save_layout()
        if self.compare_window is not None:
            self.compare_window.close()
        self.code.shutdown()
        self.server_switch.shutdown()  # before the model worker it queues on ends
        self.bridge.shutdown()
        super().closeEvent(event)
