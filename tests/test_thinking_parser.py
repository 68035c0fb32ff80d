"""Tests for the streaming thinking/answer splitter.

The core property: however the stream is cut into pieces, the parser produces the same
transcript (text per channel, in order, plus the open/close events) and never emits a marker.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pytest

from app.core.thinking.parser import (
    Channel,
    ParseEvent,
    ThinkingFormat,
    ThinkingParser,
    detect_format,
    prompt_opens_thinking,
)

T = Channel.THINKING
A = Channel.ANSWER
OPEN = ("open", T, "")
CLOSE = ("close", T, "")

Step = tuple[str, Channel, str]

HARMONY_TOKENS = (
    "<|channel|>",
    "<|message|>",
    "<|start|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|constrain|>",
)


@dataclass(frozen=True)
class Sample:
    """A full model output and what the parser must make of it."""

    name: str
    fmt: ThinkingFormat
    text: str
    expected: tuple[Step, ...]
    start_in_thinking: bool = False
    forbidden: tuple[str, ...] = ()  # substrings that must never appear in emitted text

    @property
    def thinking(self) -> str:
        return "".join(t for k, c, t in self.expected if k == "text" and c is T)

    @property
    def answer(self) -> str:
        return "".join(t for k, c, t in self.expected if k == "text" and c is A)


def t(text: str) -> Step:
    return ("text", T, text)


def a(text: str) -> Step:
    return ("text", A, text)


def run(
    fmt: ThinkingFormat, pieces: Iterable[str], start_in_thinking: bool = False
) -> list[ParseEvent]:
    parser = ThinkingParser(fmt, start_in_thinking=start_in_thinking)
    events: list[ParseEvent] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.flush())
    return events


def transcript(events: Sequence[ParseEvent]) -> list[Step]:
    """Events with adjacent text of one channel merged, so piece boundaries do not show."""
    out: list[Step] = []
    for ev in events:
        if ev.kind == "text":
            assert ev.text, "text events are never empty"
            if out and out[-1][0] == "text" and out[-1][1] is ev.channel:
                out[-1] = ("text", ev.channel, out[-1][2] + ev.text)
                continue
        else:
            assert ev.channel is T
            assert ev.text == ""
        out.append((ev.kind, ev.channel, ev.text))
    return out


def check(sample: Sample, pieces: Sequence[str]) -> None:
    assert "".join(pieces) == sample.text
    events = run(sample.fmt, pieces, sample.start_in_thinking)
    got = transcript(events)
    assert got == list(sample.expected), f"pieces={pieces!r}"
    for ev in events:
        for bad in sample.forbidden:
            assert bad not in ev.text, f"{bad!r} leaked in {ev!r} for pieces={pieces!r}"


HARMONY_FORBIDDEN = (*HARMONY_TOKENS, "<|", "|>", "analysis", "assistant", "commentary")

SAMPLES: tuple[Sample, ...] = (
    # --- <think> tags -------------------------------------------------------------------------
    Sample(
        "think-basic",
        ThinkingFormat.THINK_TAGS,
        "<think>\nThe user greets me. I should greet back.\n</think>\n\nHello! How can I help?",
        (OPEN, t("The user greets me. I should greet back."), CLOSE, a("Hello! How can I help?")),
        forbidden=("<think>", "</think>"),
    ),
    Sample(
        "think-code",
        ThinkingFormat.THINK_TAGS,
        "<think>Compare a<b and b>c; maybe <thin is a typo.</think>"
        "Use `if a < b:` and <b>bold</b> or x<<2.",
        (
            OPEN,
            t("Compare a<b and b>c; maybe <thin is a typo."),
            CLOSE,
            a("Use `if a < b:` and <b>bold</b> or x<<2."),
        ),
        forbidden=("<think>", "</think>"),
    ),
    Sample(
        "think-keeps-inner-whitespace",
        ThinkingFormat.THINK_TAGS,
        "<think>\n\nline one\n\n  line two \t\n</think>\n\n\n  Answer:\n\n- item\n",
        (OPEN, t("line one\n\n  line two"), CLOSE, a("Answer:\n\n- item\n")),
        forbidden=("<think>", "</think>"),
    ),
    Sample(
        "think-empty-qwen3-no-think",
        ThinkingFormat.THINK_TAGS,
        "<think>\n\n</think>\n\nThe capital of France is Paris.",
        (OPEN, CLOSE, a("The capital of France is Paris.")),
    ),
    Sample(
        "think-none-emitted",
        ThinkingFormat.THINK_TAGS,
        "Just an answer with <b>bold</b> and a < sign.",
        (a("Just an answer with <b>bold</b> and a < sign."),),
    ),
    Sample(
        "think-rearm",
        ThinkingFormat.THINK_TAGS,
        "<think>plan A</think>\nPart one.\n<think>\nplan B\n</think>\nPart two.",
        (OPEN, t("plan A"), CLOSE, a("Part one.\n"), OPEN, t("plan B"), CLOSE, a("Part two.")),
        forbidden=("<think>", "</think>"),
    ),
    Sample(
        "think-redundant-markers-dropped",
        ThinkingFormat.THINK_TAGS,
        "</think>Hi <think>x<think>y</think>z</think>!",
        (a("Hi "), OPEN, t("xy"), CLOSE, a("z!")),
        forbidden=("<think>", "</think>"),
    ),
    Sample(
        "think-unclosed-flushes-trailing-whitespace",
        ThinkingFormat.THINK_TAGS,
        "<think>still thinking \n",
        (OPEN, t("still thinking \n")),
    ),
    Sample(
        "think-start-in-thinking",
        ThinkingFormat.THINK_TAGS,
        "\nOkay, the user wants a haiku.\n</think>\n\n"
        "Autumn moonlight—\na worm digs silently\ninto the chestnut.",
        (
            OPEN,
            t("Okay, the user wants a haiku."),
            CLOSE,
            a("Autumn moonlight—\na worm digs silently\ninto the chestnut."),
        ),
        start_in_thinking=True,
        forbidden=("<think>", "</think>"),
    ),
    Sample(
        "think-start-in-thinking-model-repeats-open",
        ThinkingFormat.THINK_TAGS,
        "<think>\nHmm.</think>Ok",
        (OPEN, t("Hmm."), CLOSE, a("Ok")),
        start_in_thinking=True,
    ),
    Sample(
        "think-trailing-lt-flushed",
        ThinkingFormat.THINK_TAGS,
        "<think>a</think>b <",
        (OPEN, t("a"), CLOSE, a("b <")),
    ),
    Sample(
        "think-trailing-marker-prefix-flushed-in-thinking",
        ThinkingFormat.THINK_TAGS,
        "<think>a </thi",
        (OPEN, t("a </thi")),
    ),
    # --- [THINK] brackets ---------------------------------------------------------------------
    Sample(
        "bracket-basic",
        ThinkingFormat.BRACKET,
        "[THINK]Okay, 17 * 3 = 51.\n[/THINK]\n\nThe result is **51**.",
        (OPEN, t("Okay, 17 * 3 = 51."), CLOSE, a("The result is **51**.")),
        forbidden=("[THINK]", "[/THINK]"),
    ),
    Sample(
        "bracket-lookalikes",
        ThinkingFormat.BRACKET,
        "[THINK]See [1] and [THIN] and [/THINKING? no.[/THINK]Use `arr[i]` and [link](x) [",
        (
            OPEN,
            t("See [1] and [THIN] and [/THINKING? no."),
            CLOSE,
            a("Use `arr[i]` and [link](x) ["),
        ),
        forbidden=("[THINK]", "[/THINK]"),
    ),
    Sample(
        "bracket-rearm",
        ThinkingFormat.BRACKET,
        "[THINK] first [/THINK] A [THINK]\tsecond\n[/THINK]\nB",
        (OPEN, t("first"), CLOSE, a("A "), OPEN, t("second"), CLOSE, a("B")),
        forbidden=("[THINK]", "[/THINK]"),
    ),
    Sample(
        "bracket-no-thinking",
        ThinkingFormat.BRACKET,
        "Plain [answer] with <think>tags</think> left alone.",
        (a("Plain [answer] with <think>tags</think> left alone."),),
    ),
    # --- gpt-oss harmony ----------------------------------------------------------------------
    Sample(
        "harmony-basic",
        ThinkingFormat.GPT_OSS,
        "<|channel|>analysis<|message|>User asks 2+2. Simple arithmetic.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>",
        (OPEN, t("User asks 2+2. Simple arithmetic."), CLOSE, a("2 + 2 = 4.")),
        forbidden=HARMONY_FORBIDDEN,
    ),
    Sample(
        "harmony-tool-call",
        ThinkingFormat.GPT_OSS,
        "<|channel|>analysis<|message|>Need the weather; call the tool.\n<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
        '<|message|>{"city": "Paris"}<|call|>',
        (OPEN, t("Need the weather; call the tool."), CLOSE, a('{"city": "Paris"}')),
        forbidden=(*HARMONY_FORBIDDEN, "functions", "json"),
    ),
    Sample(
        "harmony-two-analysis-messages",
        ThinkingFormat.GPT_OSS,
        "<|channel|>analysis<|message|>First thought.<|end|>"
        "<|start|>assistant<|channel|>analysis<|message|>Second thought.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Done.<|return|>",
        (OPEN, t("First thought."), CLOSE, OPEN, t("Second thought."), CLOSE, a("Done.")),
        forbidden=HARMONY_FORBIDDEN,
    ),
    Sample(
        "harmony-final-only",
        ThinkingFormat.GPT_OSS,
        "<|channel|>final<|message|>Hi there, a<b and <|x|> stays.<|end|>",
        (a("Hi there, a<b and <|x|> stays."),),
    ),
    Sample(
        "harmony-no-header",
        ThinkingFormat.GPT_OSS,
        "Plain answer <",
        (a("Plain answer <"),),
    ),
    Sample(
        "harmony-start-in-thinking",
        ThinkingFormat.GPT_OSS,
        "  The user wants X. \n<|end|><|start|>assistant<|channel|>final<|message|>\n\nX.",
        (OPEN, t("The user wants X."), CLOSE, a("X.")),
        start_in_thinking=True,
        forbidden=HARMONY_FORBIDDEN,
    ),
    Sample(
        "harmony-final-without-end",
        ThinkingFormat.GPT_OSS,
        "<|channel|>analysis<|message|>think <|channel|>final<|message|>say",
        (OPEN, t("think"), CLOSE, a("say")),
        forbidden=HARMONY_FORBIDDEN,
    ),
    # --- no format ----------------------------------------------------------------------------
    Sample(
        "none-passes-markers",
        ThinkingFormat.NONE,
        "<think>\nnot special\n</think>\n\n[THINK]x[/THINK]<|channel|>analysis<|message|>",
        (a("<think>\nnot special\n</think>\n\n[THINK]x[/THINK]<|channel|>analysis<|message|>"),),
    ),
    Sample(
        "none-ignores-start-in-thinking",
        ThinkingFormat.NONE,
        "  hello </think>",
        (a("  hello </think>"),),
        start_in_thinking=True,
    ),
)

# One short sample per format gets the (quadratic) three-piece treatment.
SHORT_SAMPLES = (
    Sample(
        "think-short",
        ThinkingFormat.THINK_TAGS,
        "<think>\nab \n</think>\n\nc<d",
        (OPEN, t("ab"), CLOSE, a("c<d")),
    ),
    Sample(
        "think-short-rearm-start",
        ThinkingFormat.THINK_TAGS,
        "x </think> y<think>z</think>",
        (OPEN, t("x"), CLOSE, a("y"), OPEN, t("z"), CLOSE),
        start_in_thinking=True,
    ),
    Sample(
        "bracket-short",
        ThinkingFormat.BRACKET,
        "[THINK] a[b [/THINK]\n[c]",
        (OPEN, t("a[b"), CLOSE, a("[c]")),
    ),
    Sample(
        "harmony-short",
        ThinkingFormat.GPT_OSS,
        "<|channel|>analysis<|message|>hm <|end|><|start|>assistant<|channel|>final<|message|>ok",
        (OPEN, t("hm"), CLOSE, a("ok")),
        forbidden=HARMONY_FORBIDDEN,
    ),
    Sample(
        "none-short",
        ThinkingFormat.NONE,
        "<think> x </think>",
        (a("<think> x </think>"),),
    ),
)

ALL_SAMPLES = SAMPLES + SHORT_SAMPLES


def ids(samples: Iterable[Sample]) -> list[str]:
    return [s.name for s in samples]


# --- the split-invariance property ---------------------------------------------------------------


@pytest.mark.parametrize("sample", ALL_SAMPLES, ids=ids(ALL_SAMPLES))
def test_one_char_at_a_time(sample: Sample) -> None:
    check(sample, list(sample.text))


@pytest.mark.parametrize("sample", ALL_SAMPLES, ids=ids(ALL_SAMPLES))
def test_two_pieces_at_every_index(sample: Sample) -> None:
    """Also the whole text in one piece: at i = 0 and i = len(text) one of the pieces is empty."""
    text = sample.text
    for i in range(len(text) + 1):
        check(sample, [text[:i], text[i:]])


@pytest.mark.parametrize("sample", SHORT_SAMPLES, ids=ids(SHORT_SAMPLES))
def test_three_pieces_at_every_pair_of_indices(sample: Sample) -> None:
    text = sample.text
    for i, j in itertools.combinations_with_replacement(range(len(text) + 1), 2):
        check(sample, [text[:i], text[i:j], text[j:]])


@pytest.mark.parametrize("sample", ALL_SAMPLES, ids=ids(ALL_SAMPLES))
def test_random_token_sized_pieces(sample: Sample) -> None:
    rng = random.Random(sample.name)
    text = sample.text
    for _ in range(50):
        pieces: list[str] = []
        pos = 0
        while pos < len(text):
            step = rng.randint(0, 6)  # 0 makes empty pieces, which must be harmless
            pieces.append(text[pos : pos + step])
            pos += step
        check(sample, pieces)


@pytest.mark.parametrize("sample", ALL_SAMPLES, ids=ids(ALL_SAMPLES))
def test_channel_texts(sample: Sample) -> None:
    events = run(sample.fmt, list(sample.text), sample.start_in_thinking)
    thinking = "".join(e.text for e in events if e.kind == "text" and e.channel is T)
    answer = "".join(e.text for e in events if e.kind == "text" and e.channel is A)
    assert (thinking, answer) == (sample.thinking, sample.answer)


# Fragments that make up adversarial streams: markers, their prefixes, whitespace and text.
FUZZ_FRAGMENTS = {
    ThinkingFormat.THINK_TAGS: ("<think>", "</think>", "<thin", "</", "<", ">", "k", "\n", " "),
    ThinkingFormat.BRACKET: ("[THINK]", "[/THINK]", "[TH", "[/", "[", "]", "K", "\n", " "),
    ThinkingFormat.GPT_OSS: (
        *HARMONY_TOKENS,
        "analysis",
        "final",
        "commentary",
        "assistant",
        "<|",
        "|>",
        "<",
        "x",
        "\n",
        " ",
    ),
    ThinkingFormat.NONE: ("<think>", "</think>", "<", "x", "\n", " "),
}


@pytest.mark.parametrize("fmt", list(ThinkingFormat), ids=[f.value for f in ThinkingFormat])
@pytest.mark.parametrize("start_in_thinking", [False, True])
def test_random_streams_are_split_invariant(fmt: ThinkingFormat, start_in_thinking: bool) -> None:
    """Whatever the stream, how it is cut must not change the result."""
    rng = random.Random(f"{fmt.value}-{start_in_thinking}")
    fragments = FUZZ_FRAGMENTS[fmt]
    for _ in range(150):
        text = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 14)))
        whole = transcript(run(fmt, [text], start_in_thinking))
        assert transcript(run(fmt, list(text), start_in_thinking)) == whole, repr(text)
        i = rng.randint(0, len(text))
        j = rng.randint(i, len(text))
        assert transcript(run(fmt, [text[:i], text[i:j], text[j:]], start_in_thinking)) == whole
        # Events always alternate open/close, starting with open.
        kinds = [k for k, _, _ in whole if k != "text"]
        assert kinds == ["open", "close"] * (len(kinds) // 2) + ["open"] * (len(kinds) % 2)
        if fmt is ThinkingFormat.NONE:
            assert whole == ([a(text)] if text else [])


# --- latency: nothing is held back without reason -------------------------------------------------


def test_plain_text_is_emitted_in_the_same_feed() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS)
    assert p.feed("Hello world") == [ParseEvent("text", A, "Hello world")]
    assert p.feed("<think>") == [ParseEvent("open", T)]
    assert p.feed("I think") == [ParseEvent("text", T, "I think")]
    assert p.feed(" a lot") == [ParseEvent("text", T, " a lot")]


def test_only_a_possible_marker_prefix_is_held_back() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS)
    assert p.feed("a <b") == [ParseEvent("text", A, "a <b")]  # "<b" cannot become a marker
    assert p.feed("c <thi") == [ParseEvent("text", A, "c ")]
    assert p.feed("s") == [ParseEvent("text", A, "<this")]
    assert p.feed("<") == []
    assert p.flush() == [ParseEvent("text", A, "<")]


def test_marker_split_across_pieces_switches_channel() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS)
    assert p.feed("<th") == []
    assert p.feed("ink>\nStep") == [ParseEvent("open", T), ParseEvent("text", T, "Step")]
    assert p.in_thinking
    assert p.feed(" 1.</") == [ParseEvent("text", T, " 1.")]
    assert p.feed("think") == []
    assert p.feed(">") == [ParseEvent("close", T)]
    assert p.channel is A
    assert not p.in_thinking


def test_thinking_trailing_whitespace_waits_for_next_piece() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS)
    assert p.feed("<think>x \n") == [ParseEvent("open", T), ParseEvent("text", T, "x")]
    assert p.feed("\n") == []
    assert p.feed(" y") == [ParseEvent("text", T, " \n\n y")]
    assert p.feed("\n") == []
    assert p.feed("</think>") == [ParseEvent("close", T)]
    assert p.feed("\n") == []
    assert p.feed("\n") == []
    assert p.feed("Answer ") == [ParseEvent("text", A, "Answer ")]  # answers are not held
    assert p.flush() == []


def test_answer_text_and_events_are_merged_per_feed() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS)
    assert p.feed("a<b>c</b>d") == [ParseEvent("text", A, "a<b>c</b>d")]


def test_bracket_latency() -> None:
    p = ThinkingParser(ThinkingFormat.BRACKET)
    assert p.feed("[THINK]") == [ParseEvent("open", T)]
    assert p.feed("x[/TH") == [ParseEvent("text", T, "x")]
    assert p.feed("INK]y") == [ParseEvent("close", T), ParseEvent("text", A, "y")]


def test_harmony_header_is_never_emitted_even_when_unfinished() -> None:
    p = ThinkingParser(ThinkingFormat.GPT_OSS)
    assert p.feed("<|channel|>analy") == []
    assert p.feed("sis<|mess") == []
    assert p.feed("age|>Thinking") == [ParseEvent("open", T), ParseEvent("text", T, "Thinking")]
    assert p.feed("<|end|><|start|>assis") == [ParseEvent("close", T)]
    assert p.feed("tant<|channel|>fin") == []
    assert p.flush() == []  # an unfinished header is control text, not answer text


# --- start_in_thinking, re-arm, counters ----------------------------------------------------------


def test_start_in_thinking_open_event_comes_first() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS, start_in_thinking=True)
    assert p.in_thinking
    assert p.thinking_blocks == 1
    assert p.feed("") == [ParseEvent("open", T)]
    assert p.feed("\n") == []
    assert p.feed("Okay") == [ParseEvent("text", T, "Okay")]


def test_start_in_thinking_open_event_from_flush() -> None:
    p = ThinkingParser(ThinkingFormat.BRACKET, start_in_thinking=True)
    assert p.flush() == [ParseEvent("open", T)]
    assert p.flush() == []


def test_start_in_thinking_from_rendered_qwen3_prompt() -> None:
    prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n"
    fmt = ThinkingFormat.THINK_TAGS
    assert prompt_opens_thinking(prompt, fmt)
    events = run(fmt, ["Greeting", ".\n", "</think>", "\n\n", "Hello!"], True)
    assert transcript(events) == [OPEN, t("Greeting."), CLOSE, a("Hello!")]


def test_rearm_counts_blocks() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS)
    assert p.thinking_blocks == 0
    p.feed("<think>a</think>b")
    assert p.thinking_blocks == 1
    p.feed("<think>")
    assert p.thinking_blocks == 2
    assert p.in_thinking
    p.feed("<think>")  # redundant: not a new block
    assert p.thinking_blocks == 2
    p.feed("c</think></think>")
    assert p.thinking_blocks == 2
    assert not p.in_thinking


def test_start_in_thinking_counts_as_a_block() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS, start_in_thinking=True)
    p.feed("a</think>b<think>c</think>d")
    assert p.thinking_blocks == 2


def test_harmony_counts_analysis_messages() -> None:
    sample = next(s for s in SAMPLES if s.name == "harmony-two-analysis-messages")
    p = ThinkingParser(sample.fmt)
    p.feed(sample.text)
    assert p.thinking_blocks == 2
    assert p.channel is A


def test_harmony_channel_follows_headers() -> None:
    p = ThinkingParser(ThinkingFormat.GPT_OSS)
    assert p.channel is A  # default before any header
    p.feed("<|channel|>analysis<|message|>x")
    assert p.channel is T
    p.feed("<|end|>")
    assert p.channel is A
    p.feed("<|start|>assistant<|channel|>commentary<|message|>y")
    assert p.channel is A
    p.feed("<|call|><|start|>assistant<|channel|>analysis<|message|>z")
    assert p.channel is T
    p.feed("<|return|>")
    assert p.channel is A
    assert p.thinking_blocks == 2


# --- end_marker -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        (ThinkingFormat.THINK_TAGS, "</think>"),
        (ThinkingFormat.BRACKET, "[/THINK]"),
        (ThinkingFormat.GPT_OSS, "<|end|><|start|>assistant<|channel|>final<|message|>"),
        (ThinkingFormat.NONE, ""),
    ],
)
def test_end_marker_text(fmt: ThinkingFormat, marker: str) -> None:
    assert ThinkingParser(fmt).end_marker == marker


@pytest.mark.parametrize(
    "fmt", [ThinkingFormat.THINK_TAGS, ThinkingFormat.BRACKET, ThinkingFormat.GPT_OSS]
)
def test_end_marker_closes_thinking_when_fed(fmt: ThinkingFormat) -> None:
    p = ThinkingParser(fmt, start_in_thinking=True)
    events = p.feed("long musing\n") + p.feed(p.end_marker + "\n\n") + p.feed("Final.")
    events += p.flush()
    assert transcript(events) == [OPEN, t("long musing"), CLOSE, a("Final.")]
    assert p.channel is A


# --- marker look-alikes ---------------------------------------------------------------------------


def test_longer_tag_names_are_text_not_markers() -> None:
    """Only the exact marker text is a marker: "<thinking>" and "</thinking>" are plain text."""
    sample = Sample(
        "thinking-tags",
        ThinkingFormat.THINK_TAGS,
        "<think>Use <thinking> or </thinking>?</think>Write </thinking>.",
        (OPEN, t("Use <thinking> or </thinking>?"), CLOSE, a("Write </thinking>.")),
    )
    check(sample, [sample.text])
    check(sample, list(sample.text))


def test_longer_tag_name_is_held_only_until_it_cannot_be_a_marker() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS)
    assert p.feed("x</think") == [ParseEvent("text", A, "x")]
    assert p.feed("i") == [ParseEvent("text", A, "</thinki")]
    assert p.feed("ng>") == [ParseEvent("text", A, "ng>")]


def test_marker_acts_without_waiting_for_the_next_character() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS)
    assert p.feed("<think>") == [ParseEvent("open", T)]
    assert p.feed("a</think>") == [ParseEvent("text", T, "a"), ParseEvent("close", T)]


def test_unfinished_marker_lookalikes_are_text() -> None:
    events = run(ThinkingFormat.THINK_TAGS, list("<thin> <thinK> </ <think"))
    assert transcript(events) == [a("<thin> <thinK> </ <think")]


def test_lt_at_end_of_stream_is_flushed() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS)
    assert p.feed("x <") == [ParseEvent("text", A, "x ")]
    assert p.flush() == [ParseEvent("text", A, "<")]


def test_held_back_text_in_thinking_is_flushed_with_its_whitespace() -> None:
    p = ThinkingParser(ThinkingFormat.THINK_TAGS, start_in_thinking=True)
    assert p.feed("x \n</th") == [ParseEvent("open", T), ParseEvent("text", T, "x")]
    assert p.flush() == [ParseEvent("text", T, " \n</th")]
    assert p.in_thinking  # the stream ended; no close is invented


def test_none_format_is_pass_through() -> None:
    p = ThinkingParser(ThinkingFormat.NONE)
    assert p.feed("<think>") == [ParseEvent("text", A, "<think>")]
    assert p.feed("\n") == [ParseEvent("text", A, "\n")]
    assert p.feed("") == []
    assert p.flush() == []
    assert p.thinking_blocks == 0
    assert not p.in_thinking


def test_format_may_be_given_as_its_value() -> None:
    p = ThinkingParser(ThinkingFormat("bracket"))
    assert transcript(p.feed("[THINK]x[/THINK]y")) == [OPEN, t("x"), CLOSE, a("y")]


def test_events_are_immutable_values() -> None:
    ev = ParseEvent("text", A, "x")
    assert ev == ParseEvent("text", Channel("answer"), "x")
    with pytest.raises(AttributeError):
        ev.text = "y"  # type: ignore[misc]


# --- detect_format --------------------------------------------------------------------------------

QWEN3_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}"
    "{%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)

GPT_OSS_TEMPLATE = (
    "{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message.role == 'assistant' and 'thinking' in message -%}"
    "{{- '<|start|>assistant<|channel|>analysis<|message|>' + message.thinking + '<|end|>' }}"
    "{%- endif -%}"
    "{{- '<|start|>assistant<|channel|>final<|message|>' + message.content + '<|end|>' }}"
    "{%- endfor -%}"
)

MAGISTRAL_TEMPLATE = (
    "{%- if message['role'] == 'system' -%}[SYSTEM_PROMPT]{{ message['content'] }}"
    "[/SYSTEM_PROMPT]{%- elif message['role'] == 'assistant' -%}"
    "{%- if message.thinking -%}[THINK]{{ message.thinking }}[/THINK]{%- endif -%}"
    "{{ message['content'] }}</s>{%- endif -%}"
)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.mark.parametrize(
    ("template", "tokens", "expected"),
    [
        (QWEN3_TEMPLATE, (), ThinkingFormat.THINK_TAGS),
        (GPT_OSS_TEMPLATE, (), ThinkingFormat.GPT_OSS),
        (MAGISTRAL_TEMPLATE, (), ThinkingFormat.BRACKET),
        (CHATML_TEMPLATE, (), ThinkingFormat.NONE),
        (None, (), ThinkingFormat.NONE),
        ("", (), ThinkingFormat.NONE),
        (CHATML_TEMPLATE, ["<|im_start|>", "<think>", "</think>"], ThinkingFormat.THINK_TAGS),
        (None, ["[INST]", "[THINK]", "[/THINK]"], ThinkingFormat.BRACKET),
        (None, ["<|start|>", "<|channel|>", "<|message|>"], ThinkingFormat.GPT_OSS),
        (None, iter(["<|end|>", "<|channel|>"]), ThinkingFormat.GPT_OSS),
        # gpt-oss wins over a stray "<think>" elsewhere; brackets win over tags likewise.
        (GPT_OSS_TEMPLATE + "<think>", (), ThinkingFormat.GPT_OSS),
        ("[THINK] <think>", (), ThinkingFormat.BRACKET),
        (CHATML_TEMPLATE, ["<|im_start|>", "<|im_end|>"], ThinkingFormat.NONE),
    ],
)
def test_detect_format(
    template: str | None, tokens: Iterable[str], expected: ThinkingFormat
) -> None:
    assert detect_format(template, tokens) is expected


def test_detect_format_default_tokens() -> None:
    assert detect_format(QWEN3_TEMPLATE) is ThinkingFormat.THINK_TAGS


# --- prompt_opens_thinking ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "fmt", "expected"),
    [
        ("<|im_start|>assistant\n<think>\n", ThinkingFormat.THINK_TAGS, True),
        ("<|im_start|>assistant\n<think>", ThinkingFormat.THINK_TAGS, True),
        ("<｜Assistant｜><think>\n\n", ThinkingFormat.THINK_TAGS, True),
        # Qwen3 with enable_thinking=false renders an empty, closed block.
        ("<|im_start|>assistant\n<think>\n\n</think>\n\n", ThinkingFormat.THINK_TAGS, False),
        ("<|im_start|>assistant\n", ThinkingFormat.THINK_TAGS, False),
        ("<|im_start|>assistant\n<think>\n", ThinkingFormat.NONE, False),
        ("<|im_start|>assistant\n<think>\n", ThinkingFormat.BRACKET, False),
        ("[INST]Hi[/INST][THINK]", ThinkingFormat.BRACKET, True),
        ("[INST]Hi[/INST][THINK]\n", ThinkingFormat.BRACKET, True),
        ("[INST]Hi[/INST][THINK]x[/THINK]", ThinkingFormat.BRACKET, False),
        ("<|start|>assistant<|channel|>analysis<|message|>", ThinkingFormat.GPT_OSS, True),
        ("<|start|>assistant", ThinkingFormat.GPT_OSS, False),
        ("<|start|>assistant<|channel|>final<|message|>", ThinkingFormat.GPT_OSS, False),
        ("", ThinkingFormat.THINK_TAGS, False),
    ],
)
def test_prompt_opens_thinking(prompt: str, fmt: ThinkingFormat, expected: bool) -> None:
    assert prompt_opens_thinking(prompt, fmt) is expected
