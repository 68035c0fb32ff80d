"""Markdown rendering for the chat pane."""

from __future__ import annotations

from app.ui.markdown_html import markdown_to_html, plain_to_html


def test_code_fence_is_highlighted() -> None:
    html = markdown_to_html("Here:\n\n```python\ndef square(x):\n    return x * x\n```\n")
    assert "<table" in html and "<pre" in html
    assert 'style="color: #008000; font-weight: bold"' in html  # pygments' keyword style for def
    assert "square" in html


def test_raw_html_from_the_model_is_escaped() -> None:
    html = markdown_to_html('<img src="http://example.com/x.png"> <script>alert(1)</script>')
    assert "<img" not in html and "<script" not in html
    assert "&lt;script&gt;" in html


def test_unknown_language_still_renders() -> None:
    html = markdown_to_html("```nosuchlang\nsome <code>\n```")
    assert "some &lt;code&gt;" in html


def test_plain_text_keeps_lines_and_escapes() -> None:
    assert plain_to_html("a < b\nnext") == "a &lt; b<br>next"
