"""The welcome state: what an empty chat shows instead of a blank pane.

It says what LeanCoder is for, whether a model is ready (or loading, or missing, with the way to
get one), and offers example prompts that fill the message box with one click (they do not send:
the user sees, edits and sends). It sits at the top of the chat's own scroll area and hides itself
as soon as the chat has a message, by watching the chat's container for added and removed
message widgets; so neither the chat view nor the window needs to tell it anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QSizePolicy, QVBoxLayout

from app.core.models.display_name import readable_model_name

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

EXAMPLE_PROMPTS = (
    "Write a Python function that merges two sorted lists, with tests.",
    "Explain what this regular expression matches: ^(\\d{3})-(\\d{4})$",
    "Why would a recursive function raise RecursionError, and how do I fix it?",
    "Review this code for bugs: paste it below this line.",
)


class WelcomePanel(QFrame):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window.chat_view.widget())
        self._window = window
        self.setObjectName("welcome")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.title = QLabel("Private coding help, on this machine", self)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.about = QLabel(
            "Ask about code, or open a folder (Code > Open folder) and let the model propose "
            "edits you review hunk by hunk. Nothing leaves your computer.",
            self,
        )
        self.about.setWordWrap(True)
        self.model_status = QLabel("", self)
        self.model_status.setWordWrap(True)
        self.choose_model = QPushButton("Choose a model…", self)
        self.choose_model.clicked.connect(window.model_menu.open_wizard)
        self.examples_title = QLabel("Try one of these:", self)
        self.examples_title.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 24, 24, 12)
        layout.setSpacing(8)
        for widget in (self.title, self.about, self.model_status):
            layout.addWidget(widget)
        layout.addWidget(self.choose_model, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addSpacing(8)
        layout.addWidget(self.examples_title)
        self.example_buttons: list[QPushButton] = []
        for prompt in EXAMPLE_PROMPTS:
            button = QPushButton(prompt, self)
            button.setFlat(True)
            button.setStyleSheet("text-align: left; padding: 4px 8px;")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setToolTip("Put this in the message box (Enter sends it)")
            button.clicked.connect(lambda _=False, p=prompt: self.use_example(p))
            layout.addWidget(button)
            self.example_buttons.append(button)
        # A child timer, not QTimer.singleShot: it dies with the panel, so a message widget
        # deleted while the window closes never calls into a deleted panel.
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.setInterval(0)
        self._later.timeout.connect(self.sync)
        container = window.chat_view.widget()
        assert container is not None
        box = container.layout()
        assert isinstance(box, QVBoxLayout)
        box.insertWidget(0, self)
        container.installEventFilter(self)
        bridge = window.bridge
        bridge.modelLoaded.connect(self.sync)
        bridge.loadFailed.connect(self.sync)
        bridge.loadProgress.connect(self.sync)
        self.sync()

    def use_example(self, prompt: str) -> None:
        self._window.prompt.setPlainText(prompt)
        self._window.prompt.setFocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.ChildAdded, QEvent.Type.ChildRemoved):
            self._later.start()  # after the chat view has updated its list
        return False

    def sync(self, *_args: object) -> None:
        w = self._window
        self.setVisible(not w.chat_view.messages)
        info, loading = w.model_info, w.models.loading_spec
        if loading is not None:
            self.model_status.setText("Loading the model… you can type meanwhile.")
        elif info is not None:
            name = readable_model_name(info.path, info.name)
            self.model_status.setText(f"Ready: {name}, with a {info.n_ctx:,}-token context.")
        else:
            self.model_status.setText(
                "No model loaded yet: choose one that fits this machine, or import a GGUF file."
            )
        self.choose_model.setVisible(info is None and loading is None)

