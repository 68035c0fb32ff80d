"""Markdown rendering for the chat pane."""

from __future__ import annotations

from pygments.styles import get_style_by_name
from pygments.token import Token

from app.ui import theme
from app.ui.markdown_html import markdown_to_html, stable_prefix, user_markdown_to_html


def test_code_fence_is_highlighted() -> None:
    html = markdown_to_html("Here:\n\n```python\ndef square(x):\n    return x * x\n```\n")
    assert "<table" in html and "<pre" in html
    # `def` gets the current theme's pygments keyword colour
    keyword = get_style_by_name(theme.current().pygments_style).styles[Token.Keyword]
    assert keyword and f'<span style="color: {keyword}">def</span>' in html
    assert "square" in html


def test_raw_html_from_the_model_is_escaped() -> None:
    html = markdown_to_html('<img src="http://example.com/x.png"> <script>alert(1)</script>')
    assert "<img" not in html and "<script" not in html
    assert "&lt;script&gt;" in html


def test_unknown_language_still_renders() -> None:
    html = markdown_to_html("```nosuchlang\nsome <code>\n```")
    assert "some &lt;code&gt;" in html


def test_code_blocks_wrap_long_lines() -> None:
    html = markdown_to_html("```\n" + "x = 1; " * 80 + "\n```\n")
    assert "white-space:pre-wrap" in html


def test_typed_message_keeps_line_breaks_fences_and_indentation() -> None:
    html = user_markdown_to_html("first line\nsecond line\n\n```python\nif x:\n    y()\n```")
    assert "first line<br" in html  # a typed line break stays a line break
    assert "<pre" in html and "    " in html  # the fence's indentation is kept
    assert "```" not in html
    assert "&lt;b&gt;" in user_markdown_to_html("<b>not bold</b>")


def test_stable_prefix_is_every_block_but_the_last() -> None:
    text = "# Title\n\nA paragraph\nstill going.\n\n- one\n- two"
    cut = stable_prefix(text)
    assert text[:cut] == "# Title\n\nA paragraph\nstill going.\n\n"
    assert stable_prefix("just one paragraph\nthat grows") == 0
    # An unclosed fence runs to the end: everything after its opening stays open.
    fenced = "Intro.\n\n```python\ndef f():\n\n    return 1\n"
    assert fenced[: stable_prefix(fenced)] == "Intro.\n\n"
    # Once it closes and another block starts, the fence is closed too.
    closed = fenced + "```\n\nAfter."
    assert closed[stable_prefix(closed) :] == "After."
