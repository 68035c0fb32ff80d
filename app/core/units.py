"""Sizes as people read them."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """Download sizes as the hub shows them: decimal units (1 GB = 10^9 bytes)."""
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"
