"""The Custom thinking policy: every knob of `ThinkingPolicy` visible and editable.

The form is built from the dataclass's fields, so a knob added to the policy shows up here without
a UI change (in "Other settings" until it is given a group); labels and tooltips below say what
each one does, and each group opens with one sentence on what it is for. The editor starts from
the preset selected in the window (or the saved Custom policy), and it scrolls inside a dialog
sized to fit the screen. The filler word list is edited as
text, and the tokens it matches in the loaded model's vocabulary are listed (fetched on the model
thread), so the user sees exactly what will be suppressed.

Signals:
    policySaved(object)       the edited ThinkingPolicy (named "Custom")
    matchesRequested(object)  a tuple of words whose vocabulary matches the window should fetch
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.thinking.filler_words import FillerMatch, normalise_words
from app.core.thinking.importance import IMPORTANCE_RULES
from app.core.thinking.policy import MIN_THINKING_KV_CAP, PRESETS, ThinkingPolicy
from app.ui.dialog_geometry import fit_and_centre

CUSTOM = "Custom"
HIDDEN = {"name", "extra"}
LABELS: dict[str, tuple[str, str]] = {
    "suppress_fillers": ("Suppress filler words", "Lower or ban the words below inside thinking"),
    "filler_words": ("Filler words", "One per line; matched as whole words, never inside others"),
    "filler_penalty": (
        "Filler penalty",
        "Off: ban the words outright. On: subtract this from their logits (a soft push)",
    ),
    "budget": ("Thinking budget (tokens)", "Per thinking block. Off: no cap. 0: no thinking"),
    "turn_budget": (
        "Budget for the whole reply",
        "Thinking tokens of all the reply's thinking blocks together. Off: no cap",
    ),
    "budget_message": ("Budget message", "Written before the closing tag when the budget ends"),
    "soft_budget_fraction": (
        "Wrap-up hint at",
        "Share of the budget at which a one-time wrap-up hint is written into the thinking",
    ),
    "soft_hint": ("Wrap-up hint", "The hint written at that point"),
    "loop_breaker": ("Break loops", "Close the thinking when it repeats itself"),
    "loop_ngram": ("Loop: n-gram length", "Tokens in a repeated run"),
    "loop_repeats": ("Loop: repeats", "How often a run must repeat to count as a loop"),
    "loop_message": ("Loop message", "Written before the closing tag when a loop is broken"),
    "early_exit": (
        "Early exit (experimental)",
        "At a reflection word, try an answer; close the thinking if the model is confident. "
        "Off by default: not yet measured on a real reasoning model",
    ),
    "early_exit_threshold": ("Early exit: confidence", "Mean top probability of the trial answer"),
    "early_exit_probe_tokens": ("Early exit: trial tokens", "Tokens decoded per trial answer"),
    "early_exit_min_tokens": ("Early exit: not before", "Thinking tokens before the first trial"),
    "early_exit_interval": ("Early exit: interval", "Thinking tokens between two trials"),
    "thinking_kv_cap": (
        "Thinking KV cap (experimental)",
        "Once the thinking held in the KV cache reaches this many tokens, evict its middle "
        "(its first tokens, a recent window and the marked ones stay). Lowest value: fit the "
        "context. Off: never",
    ),
    "thinking_kv_rule": (
        "Thinking KV: keep",
        "structural: result, equation, code and conclusion lines; entropy: tokens where the "
        "model's uncertainty dropped sharply",
    ),
}
FIT = MIN_THINKING_KV_CAP - 1  # the cap box's lowest value reads "fit the context"


# (title, one-line explanation, field names; "x*" is every field starting with x), in order.
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Budget",
        "How many tokens the model may think before LeanCoder closes its thinking.",
        ("budget", "turn_budget", "budget_message", "soft_budget_fraction", "soft_hint",
         "thinking_kv*", "kv_*"),
    ),
    (
        "Filler words",
        "Words like \u201cwait\u201d and \u201chmm\u201d that start needless second-guessing.",
        ("suppress_fillers", "filler_words", "filler_penalty"),
    ),
    ("Loops", "Stop thinking that repeats itself.", ("loop_*",)),
    (
        "Early exit",
        "Try an answer at a reflection point and stop thinking if the model is already sure.",
        ("early_exit*",),
    ),
)
OTHER_GROUP = ("Other settings", "Knobs without a group yet.")


def _group_of(name: str) -> str:
    for title, _about, members in GROUPS:
        for m in members:
            if name == m or (m.endswith("*") and name.startswith(m[:-1])):
                return title
    return OTHER_GROUP[0]


def _optional(type_text: str) -> bool:
    return "None" in type_text


def _base(type_text: str) -> str:
    return re.sub(r"\s*\|\s*None", "", type_text).strip()


class _Knob:
    """One policy field's widget(s): read and write its value."""

    def __init__(self, field: dataclasses.Field[Any], parent: QWidget) -> None:
        self.name = field.name
        type_text = str(field.type)
        self.optional = _optional(type_text)
        self.kind = _base(type_text)
        self.enabled = QCheckBox(parent) if self.optional else None
        self.widget: QWidget
        if self.kind == "bool":
            self.widget = QCheckBox(parent)
        elif self.kind == "ThinkingKVCap":
            cap = QSpinBox(parent)
            cap.setRange(FIT, 1_000_000)
            cap.setSingleStep(256)
            cap.setSpecialValueText("fit the context")
            self.widget = cap
        elif self.kind == "ImportanceRuleName":
            rules = QComboBox(parent)
            rules.addItems(IMPORTANCE_RULES)
            self.widget = rules
        elif self.kind == "int":
            box = QSpinBox(parent)
            box.setRange(0, 1_000_000)
            self.widget = box
        elif self.kind == "float":
            fbox = QDoubleSpinBox(parent)
            fbox.setRange(0.0, 1000.0)
            fbox.setDecimals(2)
            fbox.setSingleStep(0.05 if "fraction" in self.name else 0.5)
            self.widget = fbox
        elif self.kind.startswith("tuple"):
            text = QPlainTextEdit(parent)
            text.setFixedHeight(110)
            self.widget = text
        else:
            self.widget = QLineEdit(parent)
        if self.enabled is not None:
            self.enabled.toggled.connect(self.widget.setEnabled)

    def row(self) -> QWidget:
        if self.enabled is None:
            return self.widget
        holder = QWidget()
        layout = QHBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.enabled)
        layout.addWidget(self.widget, 1)
        return holder

    def set(self, value: Any) -> None:
        if self.enabled is not None:
            self.enabled.setChecked(value is not None)
            self.widget.setEnabled(value is not None)
            if value is None:
                return
        w = self.widget
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, QSpinBox):
            w.setValue(FIT if value == "fit" else int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif isinstance(w, QPlainTextEdit):
            w.setPlainText("\n".join(value))
        elif isinstance(w, QLineEdit):
            w.setText(str(value))

    def get(self) -> Any:
        if self.enabled is not None and not self.enabled.isChecked():
            return None
        w = self.widget
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentText()
        if isinstance(w, QSpinBox):
            if self.kind == "ThinkingKVCap" and w.value() == FIT:
                return "fit"
            return w.value()
        if isinstance(w, QDoubleSpinBox):
            return w.value()
        if isinstance(w, QPlainTextEdit):
            return normalise_words(re.split(r"[\s,]+", w.toPlainText()))
        assert isinstance(w, QLineEdit)
        return w.text().strip()


class PolicyEditor(QDialog):
    policySaved = Signal(object)
    matchesRequested = Signal(object)

    def __init__(
        self, policy: ThinkingPolicy, parent: QWidget | None = None, selected: str | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Custom thinking policy")
        self.resize(640, 760)
        self.start_from = QComboBox(self)
        self.start_from.addItems([CUSTOM, *PRESETS])
        self.start_from.setToolTip("Fill the form from a preset, then adjust")
        self.knobs: dict[str, _Knob] = {}
        body = QWidget()
        body_layout = QVBoxLayout(body)
        forms: dict[str, QFormLayout] = {}
        self.groups: dict[str, QGroupBox] = {}
        for title, about in [(g[0], g[1]) for g in GROUPS] + [OTHER_GROUP]:
            box = QGroupBox(title, body)
            box_layout = QVBoxLayout(box)
            explanation = QLabel(about, box)
            explanation.setWordWrap(True)
            explanation.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            box_layout.addWidget(explanation)
            forms[title] = QFormLayout()
            box_layout.addLayout(forms[title])
            self.groups[title] = box
        for field in dataclasses.fields(ThinkingPolicy):
            if field.name in HIDDEN:
                continue
            knob = _Knob(field, body)
            label, tip = LABELS.get(field.name, (field.name.replace("_", " ").capitalize(), ""))
            knob.widget.setToolTip(tip)
            forms[_group_of(field.name)].addRow(label + ":", knob.row())
            self.knobs[field.name] = knob
        for title, box in self.groups.items():
            if forms[title].rowCount():
                body_layout.addWidget(box)
            else:
                box.hide()
        self.matches = QLabel("", body)
        self.matches.setWordWrap(True)
        filler_layout = self.groups["Filler words"].layout()
        assert filler_layout is not None
        filler_layout.addWidget(self.matches)
        body_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        start = QFormLayout()
        start.addRow("Start from:", self.start_from)
        layout = QVBoxLayout(self)
        layout.addLayout(start)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        if selected in PRESETS:  # the preset chosen in the window: edit from there
            self.start_from.setCurrentText(selected)
            policy = PRESETS[selected]
        self.load(policy)
        fit_and_centre(self, parent)
        self.start_from.currentTextChanged.connect(self._start_from)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        words = self.knobs["filler_words"].widget
        assert isinstance(words, QPlainTextEdit)
        words.textChanged.connect(self.request_matches)

    def load(self, policy: ThinkingPolicy) -> None:
        for name, knob in self.knobs.items():
            knob.set(getattr(policy, name))

    def _start_from(self, name: str) -> None:
        if name in PRESETS:
            self.load(PRESETS[name])
            self.request_matches()

    def policy(self) -> ThinkingPolicy:
        values = {name: knob.get() for name, knob in self.knobs.items()}
        return dataclasses.replace(ThinkingPolicy(), name=CUSTOM, **values)

    def request_matches(self) -> None:
        self.matchesRequested.emit(self.knobs["filler_words"].get())

    def show_matches(self, matches: Sequence[FillerMatch] | None) -> None:
        """What the word list suppresses in the loaded model (None: no model loaded)."""
        if matches is None:
            self.matches.setText("Load a model to see which of its tokens these words match.")
            return
        sample = ", ".join(repr(m.text) for m in list(matches)[:24])
        more = f" and {len(matches) - 24} more" if len(matches) > 24 else ""
        self.matches.setText(
            f"In this model's vocabulary the words match {len(matches)} tokens: {sample}{more}."
        )

    def save(self) -> None:
        self.policySaved.emit(self.policy())
        self.accept()
