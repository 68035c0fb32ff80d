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


def _binary_scaled(n: int) -> tuple[float, str]:
    """`n` bytes (n >= 1024) as a value below 1024 and its binary unit."""
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return value, unit


def binary_bytes(n: int) -> str:
    """Memory and file sizes: binary units, one decimal when it says something (1 KiB = 1024
    bytes): "512 bytes", "300 KiB", "1.5 MiB", "23.1 GiB"."""
    if n < 1024:
        return f"{n:,} byte" + ("" if n == 1 else "s")
    value, unit = _binary_scaled(n)
    return f"{value:,.1f}".removesuffix(".0") + f" {unit}"


def short_bytes(n: int) -> str:
    """`binary_bytes` with at most three digits, for tight captions: "296 MiB", "92.1 MiB",
    "21.9 GiB", "1.5 MiB", "512 bytes"."""
    if n < 1024:
        return binary_bytes(n)
    value, unit = _binary_scaled(n)
    if round(value, 1) >= 100:  # three digits before the point: the decimal would be a fourth
        return f"{round(value):,} {unit}"
    return f"{value:,.1f}".removesuffix(".0") + f" {unit}"
