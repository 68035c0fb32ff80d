"""Incremental rendering of a streaming reply: closed Markdown blocks are rendered once.

The text is scripted Markdown streamed a few characters at a time into a real MessageWidget (the
chat pane's message) offscreen, as the live reply does; the result must read the same as a full
render of the whole text, and no update may re-render more than the block being written.
"""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.ui.chat_view import MessageWidget
from app.ui.markdown_html import markdown_to_html

SCRIPTED_REPLY = "".join(
    f"## Step {n}\n\nThis step explains part {n} of the change in a few sentences, "
    f"with `inline code` and a [link](https://example.com/{n}).\n\n"
    f"```python\ndef step_{n}(value):\n    if value > {n}:\n        return value * {n}\n"
    f"    return value\n```\n\n- first point of {n}\n- second point of {n}\n\n"
    for n in range(1, 13)
)


def _normalised(text: str) -> list[str]:
    """Lines without trailing spaces or blank lines: block spacing may differ, text may not."""
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def test_streamed_reply_reads_like_a_full_render_and_renders_only_the_open_block(
    qtbot: QtBot,
) -> None:
    widget = MessageWidget("assistant")
    qtbot.addWidget(widget)
    widget.resize(700, 400)
    widget.live = True
    largest_render = 0
    for start in range(0, len(SCRIPTED_REPLY), 9):
        widget.append("answer", SCRIPTED_REPLY[start : start + 9])
        widget.refresh()
        largest_render = max(largest_render, widget.answer_stream.rendered_chars)
    widget.live = False
    widget.refresh()

    full = MessageWidget("assistant")
    qtbot.addWidget(full)
    full.body.setHtml(markdown_to_html(SCRIPTED_REPLY))
    assert _normalised(widget.body.toPlainText()) == _normalised(full.body.toPlainText())
    # The longest block (a heading, paragraph, code block or list) is under 200 characters; the
    # whole reply is over 3,000. Re-rendering the whole answer would show here.
    assert len(SCRIPTED_REPLY) > 3_000
    assert largest_render < 400
    assert "    if value > 12:" in widget.body.toPlainText()  # code keeps its indentation
    assert widget.body.toHtml().count("font-weight:700") >= 12  # highlighted (def, headings)


def test_replacing_the_text_renders_it_afresh(qtbot: QtBot) -> None:
    widget = MessageWidget("assistant")
    qtbot.addWidget(widget)
    widget.set_content("First answer.\n\nWith two paragraphs.")
    widget.set_content("Another answer entirely.")
    assert widget.body.toPlainText().strip() == "Another answer entirely."


def test_user_message_keeps_indentation_and_fences(qtbot: QtBot) -> None:
    widget = MessageWidget("user")
    qtbot.addWidget(widget)
    widget.set_content("Why does this fail?\nIt says:\n\n```python\nfor i in x:\n    print(i)\n```")
    text = widget.body.toPlainText()
    assert "Why does this fail?\nIt says:" in text  # the typed line break is kept
    assert "    print(i)" in text  # the code's indentation is kept
    assert "```" not in text
    assert "color:#" in widget.body.toHtml()  # highlighted


def test_thinking_keeps_its_whitespace_as_it_streams(qtbot: QtBot) -> None:
    widget = MessageWidget("assistant")
    qtbot.addWidget(widget)
    widget.live = True
    widget.thinking_section.toggle.setChecked(True)
    widget.show()
    qtbot.waitExposed(widget)
    for part in ("Plan:\n", "  1. read   the file\n", "\tthen  *edit* it"):
        widget.append("thinking", part)
        widget.thinking_tokens += 5
        widget.refresh()
    assert widget.thinking_section.body.toPlainText() == (
        "Plan:\n  1. read   the file\n\tthen  *edit* it"
    )
