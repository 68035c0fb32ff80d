"""LeanCoder's Qt layer: windows, widgets, and adapters from core callbacks to signals."""
