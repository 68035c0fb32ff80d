"""Secrets in the platform's keyring (Keychain, Windows Credential Locker, Secret Service).

Where no keyring backend exists (a bare Linux box, a container) nothing is stored: callers keep
the secret for this run only, or ask again. Plain text on disk is never the fallback, and no log
line carries a secret (only the error's type).
"""

from __future__ import annotations

import contextlib
import logging

log = logging.getLogger(__name__)


def keyring_usable() -> bool:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    chained = getattr(backend, "backends", None)
    if chained is not None:
        return bool(chained)
    return not isinstance(backend, fail.Keyring) and backend.priority > 0


def store_secret(service: str, name: str, secret: str) -> bool:
    """Keep `secret` (forget it when empty); False when no keyring could keep it."""
    import keyring
    from keyring.errors import KeyringError

    if not keyring_usable():
        return False
    try:
        if secret:
            keyring.set_password(service, name, secret)
        else:
            forget_secret(service, name)
    except KeyringError as exc:
        log.warning("the keyring refused a secret for %s: %s", service, type(exc).__name__)
        return False
    return True


def stored_secret(service: str, name: str) -> str | None:
    import keyring
    from keyring.errors import KeyringError

    if not keyring_usable():
        return None
    try:
        return keyring.get_password(service, name)
    except KeyringError as exc:
        log.warning("the keyring could not be read: %s", type(exc).__name__)
        return None


def forget_secret(service: str, name: str) -> None:
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    if not keyring_usable():
        return
    with contextlib.suppress(PasswordDeleteError, KeyringError):
        keyring.delete_password(service, name)
