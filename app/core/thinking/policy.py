"""Named thinking policies: how hard LeanCoder prunes a reasoning model's thinking.

Every knob is a plain field so the UI can show and edit all of them, and each reply stores the
policy it ran under (`to_dict`). Presets follow design-notes section 3: NoWait's word list, s1-style
budget forcing with Qwen3's own budget message, a one-time wrap-up hint, and a loop breaker.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.thinking.filler_words import DEFAULT_FILLER_WORDS
from app.core.thinking.importance import IMPORTANCE_RULES, ImportanceRuleName

# Qwen3's own wording when its thinking budget runs out.
DEFAULT_BUDGET_MESSAGE = (
    "Considering the limited time by the user, I have to give the solution based on the "
    "thinking directly now."
)
DEFAULT_SOFT_HINT = "I am running out of thinking time, so I should wrap up and answer soon."
DEFAULT_LOOP_MESSAGE = "I am repeating myself, so I will stop thinking and answer now."
ThinkingKVCap = int | Literal["fit"]
MIN_THINKING_KV_CAP = 32  # below this the attention sinks and the recent window leave no middle


def check_thinking_kv_cap(cap: object) -> ThinkingKVCap | None:
    """A thinking KV cap (a token count, "fit" or None) checked; ValueError says why not."""
    if cap is None or cap == "fit":
        return "fit" if cap == "fit" else None
    if isinstance(cap, bool) or not isinstance(cap, int):
        raise ValueError(f'the thinking KV cap is a token count or "fit", not {cap!r}')
    if cap < MIN_THINKING_KV_CAP:
        raise ValueError(
            f"the thinking KV cap must be at least {MIN_THINKING_KV_CAP} tokens, not {cap}"
        )
    return cap


@dataclass(frozen=True, slots=True)
class ThinkingPolicy:
    name: str = "Unpruned"
    suppress_fillers: bool = False
    filler_words: tuple[str, ...] = DEFAULT_FILLER_WORDS
    # None: hard ban (logit -inf). A number: subtract it from the filler tokens' logits.
    filler_penalty: float | None = None
    budget: int | None = None  # thinking tokens per thinking block; 0: no thinking; None: no cap
    # Thinking tokens for the whole reply, all its blocks together (llama.cpp's budget re-arms per
    # block, so a model that reopens its thinking is never bounded); None: no cap.
    turn_budget: int | None = None
    budget_message: str = DEFAULT_BUDGET_MESSAGE
    soft_budget_fraction: float | None = None  # inject `soft_hint` once at this share of budget
    soft_hint: str = DEFAULT_SOFT_HINT
    loop_breaker: bool = False
    loop_ngram: int = 12  # a loop: the same n tokens seen `loop_repeats` times in one block
    loop_repeats: int = 3
    loop_message: str = DEFAULT_LOOP_MESSAGE
    # DEER-style early exit (app/core/thinking/early_exit.py): at a reflection point, probe a trial
    # answer and close the thinking if its mean top-token probability exceeds the threshold. Off in
    # every preset: its savings could not be shown on a real reasoning model here
    # (bench/RESULTS.md).
    early_exit: bool = False
    early_exit_threshold: float = 0.95
    early_exit_probe_tokens: int = 12  # greedy trial-answer tokens per probe
    early_exit_min_tokens: int = 64  # no probe before this many tokens of a thinking block
    early_exit_interval: int = 32  # at least this many thinking tokens between two probes
    # Thinking KV cap (app/core/llm/thinking_kv.py): evict the middle of a long thinking block from
    # the KV cache once it holds this many tokens, or "fit": whatever the context leaves. None: off
    # (opt-in; bench/RESULTS.md, "Thinking KV compaction").
    thinking_kv_cap: ThinkingKVCap | None = None
    # Which tokens the eviction keeps: "entropy" moved the next token least at a cap of half the
    # thinking (bench/thinking_kv.py; at a quarter no rule beat sinks + window alone).
    thinking_kv_rule: ImportanceRuleName = "entropy"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_thinking_kv_cap(self.thinking_kv_cap)
        if self.thinking_kv_rule not in IMPORTANCE_RULES:
            raise ValueError(
                f"unknown importance rule {self.thinking_kv_rule!r}; choose one of "
                + ", ".join(IMPORTANCE_RULES)
            )

    @property
    def prunes(self) -> bool:
        return (
            self.suppress_fillers
            or self.budget is not None
            or self.turn_budget is not None
            or self.loop_breaker
            or self.soft_budget_fraction is not None
            or self.early_exit
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["filler_words"] = list(self.filler_words)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThinkingPolicy:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if "filler_words" in values:
            values["filler_words"] = tuple(values["filler_words"])
        return cls(**values)

    def with_budget(self, budget: int | None) -> ThinkingPolicy:
        name = self.name if self.name == "Custom" else f"{self.name} (budget {budget})"
        return dataclasses.replace(self, budget=budget, name=name)


UNPRUNED = ThinkingPolicy()
BALANCED = ThinkingPolicy(
    name="Balanced",
    suppress_fillers=True,
    filler_penalty=4.0,
    budget=2048,
    soft_budget_fraction=0.8,
    loop_breaker=True,
)
AGGRESSIVE = ThinkingPolicy(
    name="Aggressive",
    suppress_fillers=True,
    filler_penalty=None,
    budget=768,
    soft_budget_fraction=0.7,
    loop_breaker=True,
    loop_repeats=2,
)
PRESETS: dict[str, ThinkingPolicy] = {p.name: p for p in (UNPRUNED, BALANCED, AGGRESSIVE)}


def policy_by_name(name: str) -> ThinkingPolicy:
    """A preset by name, or "Custom": the policy saved from the app's editor (settings file)."""
    for key, policy in PRESETS.items():
        if key.lower() == name.lower():
            return policy
    from app.core.errors import LeanCoderError

    if name.lower() == "custom":
        from app.core.storage.paths import settings_path
        from app.core.storage.settings import Settings

        saved = Settings.load(settings_path()).custom_policy
        if not saved:
            raise LeanCoderError("No Custom policy saved yet: define one in the app (Edit…).")
        try:
            return ThinkingPolicy.from_dict({**saved, "name": "Custom"})
        except (TypeError, ValueError) as exc:
            raise LeanCoderError(f"The saved Custom policy is unreadable: {exc}") from exc
    choices = ", ".join([*PRESETS, "Custom"])
    raise LeanCoderError(f"Unknown thinking policy {name!r}; choose one of {choices}.")
