"""detect-secrets' rules, run in-process over one file's text (see app.core.workspace.secrets).

Kept apart so that detect-secrets, and the HTTP client it imports, load only when a file is first
read for the model, never at start.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters import heuristic
from detect_secrets.filters.allowlist import is_line_allowlisted
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.plugins.keyword import DENYLIST, KeywordDetector
from detect_secrets.util.code_snippet import get_code_snippet

from app.core.workspace.scan import WorkspaceError
from app.core.workspace.secrets import LEFT_OUT_PLUGINS, SecretFinding

# detect-secrets 1.5 ships 28 plugins (3 left out here); far fewer means its package was cut down.
MIN_PLUGINS = 15
# Every pattern of the keyword plugin contains one of its keywords: a cheap first look.
_KEYWORDS = re.compile("|".join(DENYLIST), re.IGNORECASE)


@lru_cache(maxsize=1)
def _plugins() -> tuple[BasePlugin, ...]:
    classes: list[type[BasePlugin]] = list(get_mapping_from_secret_type_to_class().values())
    # The keyword rule last: a line it shares with a specific rule is named by that one.
    ordered = sorted(classes, key=lambda cls: cls is KeywordDetector)
    plugins = tuple(cls() for cls in ordered if cls.__name__ not in LEFT_OUT_PLUGINS)
    if len(plugins) < MIN_PLUGINS:
        # detect-secrets finds its plugins by listing its package at run time; an installer that
        # left them out would otherwise send every secret unchecked. Fail closed, loudly.
        raise WorkspaceError(
            f"Only {len(plugins)} of detect-secrets' rules could be loaded, so files cannot be "
            "checked for secrets; nothing was sent. Reinstall LeanCoder."
        )
    return plugins


@lru_cache(maxsize=256)
def _multiline(pattern: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(pattern.pattern, pattern.flags | re.MULTILINE)


def _patterns(plugin: BasePlugin) -> list[re.Pattern[str]] | None:
    """Patterns every finding of the plugin matches, or None when it has no plain list of them."""
    if isinstance(plugin, KeywordDetector):
        return [_KEYWORDS]
    if isinstance(plugin, RegexBasedDetector):
        return list(plugin.denylist)
    return None


def find_secrets(filename: str, text: str) -> list[SecretFinding]:
    """Every line of `text` holding a secret by detect-secrets' rules, in line order.

    `filename` picks the language rules (a `.py` file's assignments differ from YAML's).
    """
    lines = [line.rstrip() for line in text.splitlines()]
    joined = "\n".join(lines)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    found: dict[int, str] = {}
    for plugin in _plugins():
        patterns = _patterns(plugin)
        if patterns is None:
            candidates: Iterable[int] = range(len(lines))
        else:
            candidates = _hit_lines(patterns, joined, starts)
        for index in candidates:
            if index + 1 in found:
                continue
            kind = _confirm(plugin, filename, lines, index)
            if kind is not None:
                found[index + 1] = kind
    return [SecretFinding(line, kind) for line, kind in sorted(found.items())]


def _hit_lines(patterns: list[re.Pattern[str]], joined: str, starts: list[int]) -> list[int]:
    """Indexes of the lines some pattern matches in the joined text (and lines a match spans)."""
    hits: set[int] = set()
    for pattern in patterns:
        for match in _multiline(pattern).finditer(joined):
            first = bisect.bisect_right(starts, match.start()) - 1
            last = bisect.bisect_right(starts, max(match.start(), match.end() - 1)) - 1
            hits.update(range(first, last + 1))
    return sorted(hits)


def _confirm(plugin: BasePlugin, filename: str, lines: list[str], index: int) -> str | None:
    """The secret's kind when the plugin finds one on this line that the filters keep."""
    line = lines[index]
    context = get_code_snippet(lines, index + 1)
    if is_line_allowlisted(filename, line, context) or heuristic.is_indirect_reference(line):
        return None
    found: Any = plugin.analyze_line(filename=filename, line=line, line_number=index + 1)
    for secret in found:
        value = secret.secret_value or ""
        if not _filtered_out(value, line, plugin):
            return str(plugin.secret_type)
    return None


def _filtered_out(secret: str, line: str, plugin: BasePlugin) -> bool:
    """detect-secrets' default heuristic filters for one secret value."""
    return (
        heuristic.is_sequential_string(secret)
        or heuristic.is_potential_uuid(secret)
        or heuristic.is_likely_id_string(secret, line, plugin)
        or heuristic.is_templated_secret(secret)
        or heuristic.is_prefixed_with_dollar_sign(secret)
        or heuristic.is_not_alphanumeric_string(secret)
    )
