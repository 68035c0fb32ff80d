"""Errors of the edit pipeline; each message is one sentence the user (or the model) can act on."""

from __future__ import annotations

from app.core.errors import LeanCoderError


class EditError(LeanCoderError):
    """An edit could not be proposed, applied or undone."""


class UnsafePathError(EditError):
    """A path leaves the folder, is absolute, names .git/ internals or is not a regular file."""


class UnreadableFileError(EditError):
    """A file is binary, too large, or in an encoding LeanCoder does not edit."""


class ConflictError(EditError):
    """Files changed on disk since the proposal (or since the apply, for undo)."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


class ConfirmationRequiredError(EditError):
    """An accepted change removes more than half of a file and was not confirmed."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


class NothingToUndoError(EditError):
    """No applied change set is recorded for the folder."""


class ReadOnlyFileError(EditError):
    """Accepted changes would overwrite or delete files without write permission (not confirmed)."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files
