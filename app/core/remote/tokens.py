"""Token ids and counts from the remote server's own tokenizer.

`logit_bias` names token ids, and ids differ between tokenizers, so filler ids must come from the
server. A server does not list its vocabulary, so instead of scanning ids the word list is turned
into the spellings a single token can have (leading space or not, lower/Capitalised/UPPER, a
trailing comma or full stop), each is tokenized on the server, and a spelling that comes back as
exactly one token is that token's text. Those texts then go through the very same rules as the
local engine's vocabulary scan (app.core.thinking.filler_words.scan_vocabulary), so " know" never
stands in for "now" here either.

Counts for the folder context and the prompt meter are cached per text: building a context counts
many file snippets, and each uncached count is one request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from app.core.remote.capabilities import ServerCapabilities, tokenize_request
from app.core.remote.endpoint import RemoteProtocolError
from app.core.remote.http import RemoteClient
from app.core.thinking.filler_words import FillerMatch, normalise_words, scan_vocabulary

COUNT_CACHE = 4096
CHARS_PER_TOKEN = 3.5  # a rough figure for English and code, used only without a tokenizer
_SUFFIXES = ("", ",", ".")


class RemoteTokenizer:
    def __init__(self, client: RemoteClient, caps: ServerCapabilities) -> None:
        self._client = client
        self._caps = caps
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._prefix: list[int] | None = None
        self._fillers: dict[tuple[str, ...], list[FillerMatch]] = {}

    @property
    def available(self) -> bool:
        return self._caps.tokenize != "none"

    def tokenize(self, text: str) -> list[int]:
        """The server's ids for `text`, without the BOS some servers add regardless."""
        path, body = tokenize_request(self._caps.tokenize, self._caps.model, text)
        answer = self._client.post_json(path, body)
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise RemoteProtocolError(
                f"The server at {self._client.spec.host} answered a tokenize request without "
                "token ids."
            )
        if self._prefix is None:
            self._prefix = [] if text == "" else self.tokenize("")
        n = len(self._prefix)
        return tokens[n:] if n and tokens[:n] == self._prefix else tokens

    def count(self, text: str) -> int:
        if not self.available:
            return max(1, round(len(text) / CHARS_PER_TOKEN)) if text else 0
        cached = self._counts.get(text)
        if cached is not None:
            self._counts.move_to_end(text)
            return cached
        n = len(self.tokenize(text))
        self._counts[text] = n
        if len(self._counts) > COUNT_CACHE:
            self._counts.popitem(last=False)
        return n

    def filler_matches(self, words: Sequence[str]) -> list[FillerMatch]:
        """The server tokens that spell one of `words` on their own (see module doc)."""
        key = normalise_words(words)
        if not self.available or not key:
            return []
        cached = self._fillers.get(key)
        if cached is not None:
            return cached
        spellings: list[tuple[str, int]] = []
        for word in key:
            for cased in dict.fromkeys((word, word.capitalize(), word.upper())):
                for text in (f" {cased}", cased):
                    for suffix in _SUFFIXES:
                        ids = self.tokenize(text + suffix)
                        if len(ids) == 1:
                            spellings.append((text + suffix, ids[0]))
        found = scan_vocabulary(
            len(spellings), lambda i: spellings[i][0].encode("utf-8"), key
        )
        matches = list(
            {spellings[m.token_id][1]: FillerMatch(spellings[m.token_id][1], m.text, m.word)
             for m in found}.values()
        )  # fmt: skip
        self._fillers[key] = matches
        return matches
