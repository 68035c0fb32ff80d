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


def binary_bytes(n: int) -> str:
    """Memory and file sizes: binary units, one decimal when it says something (1 KiB = 1024
    bytes): "512 bytes", "300 KiB", "1.5 MiB", "23.1 GiB"."""
    if n < 1024:
        return f"{n:,} byte" + ("" if n == 1 else "s")
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:,.1f}".removesuffix(".0") + f" {unit}"


def short_bytes(n: int) -> str:
    """`binary_bytes` with at most three digits, for tight captions: "92 MiB", "21.9 GiB",
    "1.5 MiB", "512 bytes"."""
    text = binary_bytes(n)
    number, _, unit = text.partition(" ")
    if "." in number and len(number.replace(",", "").replace(".", "")) > 3:
        return f"{round(float(number.replace(',', ''))):,} {unit}"
    return text
