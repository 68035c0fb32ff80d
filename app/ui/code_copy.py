"""The Copy link on every code block in the chat: rendered HTML cannot hold a button, so each
block carries an anchor (`leancoder-copy:<key>`) and a click on it puts that block's code on the
clipboard, exactly as the model wrote it (not the highlighted text, not the wrapped lines).

The code behind each key is kept here, bounded (MAX_KEPT_CHARS, oldest first out): a chat that
is opened again renders, and so registers, its blocks anew. Keys are content hashes, so the same
block shown twice costs one entry.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication

SCHEME = "leancoder-copy"
MAX_KEPT_CHARS = 8_000_000
_kept: OrderedDict[str, str] = OrderedDict()
_kept_chars = [0]


def copy_link(code: str) -> str:
    """An HTML anchor that copies `code` when clicked."""
    key = hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    if key in _kept:
        _kept.move_to_end(key)
    else:
        _kept[key] = code
        _kept_chars[0] += len(code)
        while _kept_chars[0] > MAX_KEPT_CHARS and len(_kept) > 1:
            _old, dropped = _kept.popitem(last=False)
            _kept_chars[0] -= len(dropped)
    return f'<a href="{SCHEME}:{key}" title="Copy this code">Copy</a>'


def copy_clicked(url: QUrl) -> bool:
    """Handle a click on a Copy link (True: it was one, whether or not its code is still kept)."""
    if url.scheme() != SCHEME:
        return False
    code = _kept.get(url.path())
    clipboard = QGuiApplication.clipboard()
    if code is not None and clipboard is not None:
        clipboard.setText(code)
    return True
