"""Errors a person can act on. Each says what is wrong in plain words; the CLI prints it
and the web answers it with a 4xx status."""

from __future__ import annotations


class PerronError(Exception):
    status_code = 400
    temporary = False
    """A service Perron depends on failed (not the input): a job raising it is retried rather
    than sent to the dead letters."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(PerronError):
    """Input that cannot be accepted; ``field`` names where the problem is."""

    status_code = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class NotFound(PerronError):
    status_code = 404


class Conflict(PerronError):
    """The input is well formed but collides with what exists (a taken slug or domain);
    ``field``, when given, names the form field it concerns."""

    status_code = 409

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
