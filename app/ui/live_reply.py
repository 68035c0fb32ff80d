"""A chat request on screen: the window's half of ChatSession's event stream.

The session runs on the model worker (EngineBridge.send) and its events arrive here in batches on
the GUI thread: the typed message and an empty reply are shown at once, text streams into the live
message, the meters follow the latest statistics, and the request ends at `failed`, at `done`
(chat), or at the proposal the edit feedback loop ends with. Nothing is saved here: the session
saves the reply itself on its own clock.

Signals:
    replyFinished(object)  a reply ended (ReplyStats), after it was shown
    replyFailed(str)       a reply failed, after the user was told
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app.core.edits.feedback import MAX_RETRIES
from app.core.llm.engine import ReplyStats, SamplingParams
from app.core.llm.speculative import speculative_mode
from app.core.session.chat import ChatSession, SessionEvent
from app.core.session.meters import PromptBreakdown, context_usage
from app.core.thinking.policy import ThinkingPolicy
from app.ui.chat_view import MessageWidget, format_stats
from app.ui.no_edits_notice import NoEditsNotice, folder_file_sizes, retry_message

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class LiveReply(QObject):
    replyFinished = Signal(object)
    replyFailed = Signal(str)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.request: int | None = None
        self.widget: MessageWidget | None = None
        self.thinking = False  # the live reply is inside its thinking now
        self._echoed_user = False  # the typed message is on screen before its "user" event
        self._policy: ThinkingPolicy | None = None
        self._breakdown: PromptBreakdown | None = None
        self._edit_mode = False
        self.detached = False  # the window shows another chat: the reply goes on unseen, saved
        window.bridge.eventsReady.connect(self._on_events)

    def detach(self) -> None:
        """The window is about to show another chat; the session goes on saving this reply."""
        if self.request is not None:
            self.widget, self.detached = None, True

    def send(self, session: ChatSession, text: str) -> None:
        w = self._window
        assert w.model_info is not None
        session.policy, session.model_name = w.policy, w.model_info.name
        session.folder = w.code.folder_choice()
        session.propose_edits = self._edit_mode = w.code.edits_wanted
        self._policy = w.policy
        # Shown at once, not when the model thread gets to it: the session's "user" and
        # "reply_start" events for this turn then find them in place.
        w.chat_view.add_message("user").set_content(text)
        self._echoed_user, self.detached = True, False
        self.widget = w.chat_view.add_message("assistant")
        w.chat_view.begin_live(self.widget)
        sampling = SamplingParams(
            temperature=w.settings.temperature,
            speculative=speculative_mode(w.settings.speculative),
        )
        self.request = w.bridge.send(session, text, sampling)
        w.speed_meter.waiting()
        w.update_controls()

    def _on_events(self, request: int) -> None:
        if self.request is None or request != self.request:
            return  # another view's request (a comparison), or a reply no longer shown
        latest: ReplyStats | None = None
        for _key, event in self._window.bridge.take_events(self.request):
            assert isinstance(event, SessionEvent)
            if event.kind == "text" and self.widget is not None:
                self.widget.append(event.channel.value, event.text)
            else:
                self._on_event(event)
            if event.stats is not None and event.kind != "done":
                latest = event.stats
        if latest is not None and self.widget is not None:
            w = self._window
            self.widget.thinking_tokens = latest.thinking_tokens
            w.speed_meter.update_stats(latest)
            self._show_context(latest)
            if self.thinking or latest.thinking_tokens:
                w.thinking_meter.update_stats(latest, self._policy.budget if self._policy else None)
            w.chat_view.mark_dirty()

    def _on_event(self, event: SessionEvent) -> None:
        w, kind = self._window, event.kind
        if self.detached and kind == "reply_start":
            return  # a turn of the chat no longer shown (an edit retry): saved, not drawn here
        if kind == "user":
            if not self._echoed_user and not self.detached:  # the app's feedback about edits
                w.chat_view.add_message("user").set_content(event.text)
            self._echoed_user = False
            w.refresh_chat_list()  # a first message names a new chat
        elif kind == "context" and event.context is not None:
            w.code.context_built(event.context)
        elif kind == "prompt":
            self._breakdown = event.breakdown
        elif kind == "reply_start" and self.widget is None:
            self.widget = w.chat_view.add_message("assistant")
            w.chat_view.begin_live(self.widget)
        elif kind in ("thinking_open", "thinking_close"):
            self.thinking = kind == "thinking_open"
            w.update_controls()
        elif kind == "done" and event.stats is not None:
            self._end_reply(format_stats(event.stats), event.stats)
            self.replyFinished.emit(event.stats)
        elif kind == "failed":
            self._end_reply(f"failed: {event.text}", None)
            self._finish()
            w.show_error("The reply failed", event.text)
            self.replyFailed.emit(event.text)
        elif kind == "feedback":
            w.statusBar().showMessage(
                f"Some edit blocks did not apply: asking the model again ({event.round} of "
                f"at most {MAX_RETRIES}).", 8000)  # fmt: skip
        elif kind == "proposal" and event.proposal is not None:
            self._finish()
            w.code.show_proposal(event.proposal)
        elif kind == "no_edits":
            self._finish()
            notice = NoEditsNotice()
            notice.retryRequested.connect(self.retry_edits)
            w.chat_view.add_notice(notice)

    def retry_edits(self) -> None:
        """Ask again, restating the edit format (the no-edits notice's button)."""
        w = self._window
        if w.model_info is not None and not w.generating:
            sizes = folder_file_sizes(w.code.folder, w.code.context)
            w.send_text(retry_message(w.model_info.n_params, sizes))

    def _show_context(self, stats: ReplyStats) -> None:
        info = self._window.model_info
        if self._breakdown is not None and info is not None:
            self._window.context_meter.show_usage(
                context_usage(self._breakdown, stats, info.n_ctx)
            )

    def _end_reply(self, footer: str, stats: ReplyStats | None) -> None:
        """One assistant turn ended (the session saved it); in edit mode the request goes on
        until the feedback loop ends with a proposal."""
        w, widget = self._window, self.widget
        if widget is not None:
            if stats is not None:
                widget.thinking_tokens = stats.thinking_tokens
            w.chat_view.end_live()
            widget.set_footer(footer)
        self.widget = None
        self.thinking = False
        if stats is not None:
            w.speed_meter.update_stats(stats)
            self._show_context(stats)
            if not self._edit_mode or stats.finish_reason == "cancelled":
                self._finish()
        w.update_controls()

    def _finish(self) -> None:
        self.request = None
        self._window.update_controls()
