"""Errors that carry a message meant for the user.

Every failure a user can cause (a bad file, too little memory, a broken template) is raised as a
`LeanCoderError` whose text says what happened and what to do; the CLI prints it and exits non-zero,
the window shows it in a dialog. Anything else is a bug.
"""


class LeanCoderError(Exception):
    """Base class: `str(error)` is a complete sentence for the user."""


class ModelFileError(LeanCoderError):
    """The model file is missing, unreadable, not GGUF, or truncated."""


class ModelLoadError(LeanCoderError):
    """llama.cpp could not load the model (memory, unsupported architecture, cancelled)."""


class TemplateError(LeanCoderError):
    """The chat template could not be compiled or rendered."""


class GenerationError(LeanCoderError):
    """A generation request could not run (no model, prompt too long for the context)."""
