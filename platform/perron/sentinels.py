"""Marks an argument the caller left out, where ``None`` is a meaningful value of its own
(``intercommunale=None`` means "no intercommunale", not "keep the current one")."""

from enum import Enum


class NotGiven(Enum):
    TOKEN = "not given"  # noqa: S105 - a marker, not a password


NOT_GIVEN = NotGiven.TOKEN
