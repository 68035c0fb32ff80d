"""The thinking-policy picker: the presets plus Custom, which the policy editor defines.

Signals:
    policyChanged(object)  the ThinkingPolicy now chosen (a preset, or the saved Custom one)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QWidget

from app.core.llm.speculative import speculative_mode
from app.core.storage.settings import Settings
from app.core.thinking.policy import BALANCED, PRESETS, ThinkingPolicy
from app.ui.engine_bridge import EngineBridge
from app.ui.policy_editor import CUSTOM, PolicyEditor


class PolicyPicker(QComboBox):
    policyChanged = Signal(object)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.editor: PolicyEditor | None = None
        self.addItems([*PRESETS, CUSTOM])
        self.setToolTip("How LeanCoder prunes a reasoning model's thinking (Custom: Edit…)")
        if settings.policy in PRESETS or settings.policy == CUSTOM:
            self.setCurrentText(settings.policy)
        self.currentTextChanged.connect(lambda _name: self.policyChanged.emit(self.policy))

    @property
    def custom(self) -> ThinkingPolicy:
        """The saved Custom policy (Balanced's knobs until the user saves one)."""
        saved = BALANCED  # until one is saved, or if a hand-edited file holds bad values
        if self.settings.custom_policy:
            with contextlib.suppress(TypeError, ValueError):
                saved = ThinkingPolicy.from_dict(self.settings.custom_policy)
        return dataclasses.replace(saved, name=CUSTOM)

    @property
    def policy(self) -> ThinkingPolicy:
        name = self.currentText()
        return self.custom if name == CUSTOM else PRESETS.get(name, PRESETS["Unpruned"])

    def edit(self, bridge: EngineBridge) -> PolicyEditor:
        """Open the editor from the selected preset (or the saved Custom policy); saving selects
        Custom."""
        editor = PolicyEditor(self.custom, self.window(), selected=self.currentText())
        editor.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        editor.matchesRequested.connect(bridge.filler_matches)
        bridge.fillerMatches.connect(editor.show_matches)
        editor.policySaved.connect(self._save)
        editor.destroyed.connect(self._forget_editor)
        self.editor = editor
        editor.open()
        editor.request_matches()
        return editor

    def _forget_editor(self) -> None:
        self.editor = None

    def _save(self, policy: ThinkingPolicy) -> None:
        self.settings.custom_policy = policy.to_dict()
        if self.currentText() == CUSTOM:
            self.policyChanged.emit(self.policy)
        else:
            self.setCurrentText(CUSTOM)


def fast_kv_action(settings: Settings, parent: QWidget) -> QAction:
    """The opt-in switch for cutting spent thinking out of the KV cache (engine cache_mode)."""
    action = QAction("Fast removal of spent thinking (experimental)", parent)
    action.setCheckable(True)
    action.setChecked(settings.kv_fast_mode)
    action.setToolTip(
        "Cut a finished thinking block out of the KV cache instead of re-reading what followed it;"
        " approximate (see bench/RESULTS.md). Applies from the next model load."
    )
    return action


def speculative_action(settings: Settings, parent: QWidget, save: Callable[[], None]) -> QAction:
    """The switch for prompt-lookup speculative decoding (SamplingParams.speculative): on means
    "auto", which pauses itself where drafts are rarely accepted. Takes effect with the next
    reply; `save` writes the settings."""
    action = QAction("Speculative decoding (prompt lookup)", parent)
    action.setCheckable(True)
    action.setChecked(speculative_mode(settings.speculative) != "off")
    action.setToolTip(
        "Guess the next tokens from the prompt and the reply so far and check them in one batch:"
        " the same text, faster where the reply repeats code (edits)."
    )

    def toggled(on: bool) -> None:
        settings.speculative = "auto" if on else "off"
        save()

    action.toggled.connect(toggled)
    return action
