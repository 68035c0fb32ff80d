"""LeanCoder: private, local AI coding on llama.cpp."""

__version__ = "0.1.0"
