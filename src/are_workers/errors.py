"""The error families every actor uses to tell the ledger what happened.

Why a family: the ledger decides retry or not from the type alone. A ``PermanentError`` is
about the input (a corrupt file, a closed session) and retrying cannot help; its message is
shown to a recruiter, so it is written for people. Everything else is presumed transient.
"""

from __future__ import annotations


class AreWorkersError(Exception):
    """Base of all project errors."""


class ConfigurationError(AreWorkersError):
    """Settings are missing or invalid; the message names the variable to fix."""


class PermanentError(AreWorkersError):
    """Never retried. ``user_message`` is what a recruiter or candidate sees."""

    code = "permanent_error"

    def __init__(self, user_message: str, *, code: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        if code:
            self.code = code


class InvalidInputError(PermanentError):
    """The job's input (file, media, answer) cannot be processed as given."""

    code = "invalid_input"


class NotFoundError(PermanentError):
    """A row the job refers to does not exist (or not in this organization)."""

    code = "not_found"


class ConsentError(PermanentError):
    """Processing is not allowed: consent missing or an Art. 22 objection recorded."""

    code = "no_consent"


class GaveUpError(PermanentError):
    """What ``on_dead`` hooks receive: the job failed too often and will not run again."""

    code = "gave_up"

    def __init__(self, attempts: int, cause: str, *, crashed: bool = False) -> None:
        how = "its worker died" if crashed else f"it failed ({cause})"
        super().__init__(
            f"Processing stopped after {attempts} attempts: {how}. It will not be retried "
            "automatically; an operator can replay the job once the cause is fixed."
        )
        self.attempts = attempts
        self.cause = cause


class TransientError(AreWorkersError):
    """Retry later (with backoff): a dependency is temporarily unavailable."""

    def __init__(self, message: str, *, delay_seconds: float | None = None) -> None:
        super().__init__(message)
        self.delay_seconds = delay_seconds
