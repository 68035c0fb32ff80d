"""Thinking control as the API asks for it, and the pieces under it that need no model:
the per-turn budget across several thinking blocks (a scripted token stream on the real
controller), the request dialects mapped to policies, stop strings across chunks, and the bounded
buffer that drops a client that stops reading."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.core.llm.engine_types import GenerationEvent, ReplyStats
from app.core.thinking.control import ThinkingController
from app.core.thinking.parser import Channel, ThinkingFormat
from app.core.thinking.policy import AGGRESSIVE, BALANCED, DEFAULT_BUDGET_MESSAGE, ThinkingPolicy
from app.server.errors import ApiError
from app.server.model_service import ReplyBuffer
from app.server.responses import StopMatcher
from app.server.thinking_options import EFFORT_PRESETS, thinking_choice

CLOSE = [900]  # what the scripted encoder returns for any closing text


def think_block(control: ThinkingController, tokens: int) -> tuple[int, str | None]:
    """Open a block and feed it scripted word tokens; (tokens taken, the closing's reason)."""
    control.on_block_open()
    control.in_thinking = True
    for i in range(tokens):
        action = control.step(100 + i, " word", utf8_pending=False)
        if action is not None and action.replace:
            control.in_thinking = False
            return i, action.reason
    control.in_thinking = False  # the model closed the block itself
    return tokens, None


def test_turn_budget_bounds_every_block_of_a_reply_together() -> None:
    encoded: list[str] = []

    def encode(text: str) -> list[int]:
        encoded.append(text)
        return CLOSE

    policy = ThinkingPolicy(name="t", turn_budget=10)
    control = ThinkingController(policy, ThinkingFormat.THINK_TAGS, encode)
    assert think_block(control, 6) == (6, None)  # the model closes its first block at 6
    assert think_block(control, 20) == (4, "turn_budget")  # the second gets the 4 left
    assert DEFAULT_BUDGET_MESSAGE in encoded[-1]
    assert think_block(control, 20) == (0, "turn_budget")  # a third: closed at once, no message
    assert DEFAULT_BUDGET_MESSAGE not in encoded[-1]
    assert control.turn_tokens == 10
    assert control.counters.budget_hits == 2 and control.counters.turn_budget_hits == 2
    # A per-block budget alone re-arms for every block: the reply thinks 3 x 8 tokens.
    per_block = ThinkingController(
        ThinkingPolicy(name="b", budget=8), ThinkingFormat.THINK_TAGS, encode
    )
    taken = [think_block(per_block, 20)[0] for _ in range(3)]
    assert taken == [8, 8, 8] and per_block.turn_tokens == 24
    assert ThinkingPolicy(turn_budget=0).prunes and not ThinkingPolicy().prunes


def test_request_dialects_map_to_policies() -> None:
    assert thinking_choice({}, "Balanced").policy == BALANCED
    low = thinking_choice({"reasoning_effort": "low"}, "Unpruned").policy
    assert (low.budget, low.turn_budget, low.suppress_fillers) == (768, 1024, True)
    assert low.name == "Aggressive (effort low)"
    for effort, (base, block, turn) in EFFORT_PRESETS.items():
        policy = thinking_choice({"reasoning_effort": effort}, "Unpruned").policy
        assert (policy.budget, policy.turn_budget) == (block, turn)
        assert policy.loop_breaker == base.loop_breaker
    # Ollama's `think` and the Responses API's reasoning.effort say the same.
    assert thinking_choice({"think": False}, "Balanced").policy.turn_budget == 0
    assert thinking_choice({"reasoning": {"effort": "medium"}}, "x").policy.turn_budget == 4096
    # llama.cpp's thinking_budget_tokens bounds the whole reply, on top of the base policy.
    budgeted = thinking_choice({"thinking_budget_tokens": 50}, "Aggressive").policy
    assert budgeted.turn_budget == 50 and budgeted.budget == AGGRESSIVE.budget
    # The extension names the policy and wins over the effort; its budgets come last.
    ext = thinking_choice(
        {
            "reasoning_effort": "low",
            "thinking_budget_tokens": 50,
            "leancoder": {"policy": "unpruned", "budget": 30, "turn_budget": 40,
                          "force_thinking": True},
        },
        "Balanced",
    )  # fmt: skip
    assert ext.force_thinking and not ext.policy.suppress_fillers
    assert (ext.policy.budget, ext.policy.turn_budget) == (30, 40)
    bad_bodies: list[dict[str, object]] = [
        {"leancoder": []},
        {"leancoder": {"force_thinking": "yes"}},
        {"thinking_budget_tokens": True},
        {"think": "maybe"},
    ]
    for bad in bad_bodies:
        with pytest.raises(ApiError) as caught:
            thinking_choice(bad, "Balanced")
        assert caught.value.status == 400


def test_stop_strings_are_found_across_chunks() -> None:
    stop = StopMatcher(("END", "\n\n"))
    out = [stop.feed(piece) for piece in ("Hello E", "N", "D! more")]
    assert "".join(out) == "Hello " and stop.stopped
    assert out[0] == "Hello ", "text that may begin a stop string is held back"
    keep = StopMatcher(("END",))
    assert keep.feed("an E") == "an " and keep.finish() == "E"  # a tail that never matched
    assert StopMatcher(()).feed("anything") == "anything"


def test_a_client_that_stops_reading_is_dropped() -> None:
    """The worker never waits for a client: unread text piles up to the bound, then the
    generation is cancelled (and the reader sees the end)."""

    async def scenario() -> tuple[bool, bool, int]:
        cancel = threading.Event()
        buffer = ReplyBuffer(asyncio.get_running_loop(), cancel, limit=100)
        stats = ReplyStats()

        def worker() -> None:  # a generation that runs until its cancel flag is set
            for _ in range(10_000):
                if cancel.is_set():
                    break
                buffer.push(GenerationEvent("text", Channel.ANSWER, "0123456789", stats))
            buffer.end()

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(10)  # nobody reads meanwhile
        batches = []
        while (batch := await buffer.next_batch()) is not None:
            batches.append(batch)
        merged = sum(len(e.text) for b in batches for e in b)
        return cancel.is_set(), buffer.overflowed, merged

    cancelled, overflowed, unread = asyncio.run(scenario())
    assert cancelled and overflowed
    assert unread <= 110, "the buffer held at most its bound plus one piece"
