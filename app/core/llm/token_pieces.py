"""Token ids to bytes, memoized: the vocabulary never changes while a model is loaded, and this is
on the per-token path. Used through `app.core.llm.backend.LlamaBackend.pieces`."""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp


class TokenPieces:
    """Memoized token -> bytes (special tokens rendered, so thinking markers are visible)."""

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self._cache: dict[int, bytes] = {}
        self._buffer = ctypes.create_string_buffer(256)

    def __call__(self, token: int) -> bytes:
        piece = self._cache.get(token)
        if piece is None:
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buffer, 256, 0, True)
            if n < 0:  # piece longer than the buffer: ask again with the size it needs
                big = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, big, -n, 0, True)
                piece = big.raw[:n]
            else:
                piece = self._buffer.raw[:n]
            self._cache[token] = piece
        return piece
