"""HTML forms generated from a module's typed settings schema.

Each field of the pydantic model becomes one form field: text (a textarea past 200
characters), number, checkbox, e-mail, a choice list for enums and literals, and one text
box per commune language for a text per language (``dict[str, str]``). What comes back from
the browser is converted and validated by the schema itself, so the form can never store
what the schema would refuse.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from annotated_types import MaxLen
from pydantic import BaseModel, ValidationError

from perron.errors import Invalid
from perron.i18n import gettext


@dataclass
class FormField:
    name: str
    label: str
    kind: str
    """text, textarea, number, decimal, checkbox, email, select, translated"""
    value: Any
    help: str = ""
    required: bool = False
    locked: bool = False
    choices: Sequence[tuple[str, str]] = ()
    languages: Sequence[str] = ()
    max_length: int | None = None
    error: str = ""
    own: bool = False
    """Whether the commune set this value itself (otherwise it is inherited)."""
    extra: dict[str, Any] = field(default_factory=dict)


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _kind(annotation: Any, max_length: int | None) -> tuple[str, Sequence[tuple[str, str]]]:
    if annotation is bool:
        return "checkbox", ()
    if annotation is int:
        return "number", ()
    if annotation is float:
        return "decimal", ()
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "select", [(str(member.value), str(member.value)) for member in annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return "select", [(str(value), str(value)) for value in typing.get_args(annotation)]
    if typing.get_origin(annotation) is dict:
        return "translated", ()
    if getattr(annotation, "__name__", "") == "EmailStr" or "EmailStr" in repr(annotation):
        return "email", ()
    return ("textarea" if max_length and max_length > 200 else "text"), ()


def build_form(
    schema: type[BaseModel],
    values: Any,
    *,
    own: Mapping[str, Any] = {},
    locked: frozenset[str] = frozenset(),
    languages: Sequence[str] = ("fr",),
    errors: Mapping[str, str] = {},
    submitted: Mapping[str, Any] | None = None,
) -> list[FormField]:
    fields: list[FormField] = []
    for name, info in schema.model_fields.items():
        annotation, optional = _strip_optional(info.annotation)
        max_length = next((m.max_length for m in info.metadata if isinstance(m, MaxLen)), None)
        kind, choices = _kind(annotation, max_length)
        current = (
            submitted[name] if submitted is not None and name in submitted else getattr(values, name, None)
        )
        if isinstance(current, enum.Enum):
            current = current.value
        fields.append(
            FormField(
                name=name,
                label=gettext(info.title) if info.title else name.replace("_", " ").capitalize(),
                kind=kind,
                value=current,
                help=gettext(info.description) if info.description else "",
                required=not optional and kind not in ("checkbox", "translated"),
                locked=name in locked,
                choices=choices,
                languages=languages,
                max_length=max_length,
                error=errors.get(name, ""),
                own=name in own,
            )
        )
    return fields


def parse_form(schema: type[BaseModel], form: Mapping[str, Any], *, locked: frozenset[str]) -> dict[str, Any]:
    """The values a submitted settings form asks to store (only the commune's own layer).

    An empty optional field means "inherit"; locked fields are ignored. Raises
    :class:`~perron.errors.Invalid` naming the first field the schema refuses.
    """
    values: dict[str, Any] = {}
    for name, info in schema.model_fields.items():
        if name in locked:
            continue
        annotation, _optional = _strip_optional(info.annotation)
        kind, _ = _kind(annotation, None)
        if kind == "checkbox":
            values[name] = form.get(name) in ("on", "true", "1", "yes")
            continue
        if kind == "translated":
            texts = {
                key.split(".", 1)[1]: str(raw).strip()
                for key, raw in form.items()
                if key.startswith(f"{name}.") and str(raw).strip()
            }
            if texts:
                values[name] = texts
            continue
        raw = form.get(name)
        text = str(raw).strip() if raw is not None else ""
        if text == "":
            continue  # inherit the intercommunale's or the platform's value
        values[name] = text
    try:
        validated = schema.model_validate({**schema().model_dump(), **values})
    except ValidationError as error:
        first = error.errors()[0]
        field_name = str(first["loc"][0]) if first["loc"] else "settings"
        raise Invalid(field_name, first["msg"]) from None
    dumped = validated.model_dump(mode="json")
    return {name: dumped[name] for name in values}
