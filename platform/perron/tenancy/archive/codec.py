"""How a table's rows are written to, and read back from, a commune archive.

Each column gets a *codec* chosen from its SQLAlchemy type: a name written in the file's
header (``uuid``, ``datetime``, ...) and two functions turning the value the database gives
into plain JSON and back, so every value comes back exactly as it left: UUIDs, datetimes
with their time zone, dates, enums, JSON documents, bytes (base64), decimals (as text),
floats (infinities and NaN included).

A table file is one JSON document laid out one row per line, so it can be written and read
in batches without holding the table in memory::

    {"columns":[["tenant_id","uuid"],["id","uuid"],...],"table":"accounts","rows":[
    ["0190...","0190...",...],
    ["0190...","0190...",...]
    ]}

The encoding is deterministic (same rows, same bytes): its SHA-256 tells whether a
commune's data is still what an archive holds.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy.types import TypeDecorator

from perron.i18n import gettext


class ArchiveFormatError(ValueError):
    """A value, line or header of a table file that is not what Perron writes."""


class UnarchivableColumn(TypeError):
    """A column whose type Perron does not know how to archive (a bug to fix, not input)."""


@dataclass(frozen=True, slots=True)
class ColumnCodec:
    name: str
    kind: str
    nullable: bool
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _uuid_out(value: uuid.UUID) -> str:
    return str(value)


def _uuid_in(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError("not text")
    return uuid.UUID(value)


def _datetime_out(value: dt.datetime) -> str:
    return value.isoformat()


def _datetime_in(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("not text")
    return dt.datetime.fromisoformat(value)


def _date_out(value: dt.date) -> str:
    return value.isoformat()


def _date_in(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise ValueError("not text")
    return dt.date.fromisoformat(value)


def _time_out(value: dt.time) -> str:
    return value.isoformat()


def _time_in(value: Any) -> dt.time:
    if not isinstance(value, str):
        raise ValueError("not text")
    return dt.time.fromisoformat(value)


def _interval_out(value: dt.timedelta) -> list[int]:
    return [value.days, value.seconds, value.microseconds]


def _interval_in(value: Any) -> dt.timedelta:
    if not (isinstance(value, list) and len(value) == 3 and all(_is_int(part) for part in value)):
        raise ValueError("not [days, seconds, microseconds]")
    return dt.timedelta(days=value[0], seconds=value[1], microseconds=value[2])


def _bytes_out(value: bytes) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def _bytes_in(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not text")
    return base64.b64decode(value, validate=True)


def _decimal_out(value: decimal.Decimal) -> str:
    return str(value)


def _decimal_in(value: Any) -> decimal.Decimal:
    if not isinstance(value, str):
        raise ValueError("not text")
    try:
        return decimal.Decimal(value)
    except decimal.InvalidOperation:
        raise ValueError("not a decimal number") from None


_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float_out(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


def _float_in(value: Any) -> float:
    if isinstance(value, str) and value in _FLOAT_WORDS:
        return _FLOAT_WORDS[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    return float(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer_in(value: Any) -> int:
    if not _is_int(value):
        raise ValueError("not a whole number")
    return int(value)


def _boolean_in(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not true or false")
    return value


def _string_in(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


def _same(value: Any) -> Any:
    return value


def _enum_codec(enum_class: type[enum.Enum]) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    def out(value: Any) -> Any:
        return value.value if isinstance(value, enum.Enum) else value

    def into(value: Any) -> enum.Enum:
        try:
            return enum_class(value)
        except ValueError:
            raise ValueError(f"not one of {', '.join(str(m.value) for m in enum_class)}") from None

    return out, into


def _kind_of(type_: sa.types.TypeEngine[Any]) -> str:
    """The codec a column type needs (TypeDecorators by what they give Python, not their
    storage: a GUID is stored as 16 bytes on SQLite but is a UUID to the code)."""
    if isinstance(type_, sa.Enum):
        return "enum" if type_.enum_class is not None else "string"
    if isinstance(type_, GUID) or (isinstance(type_, sa.Uuid) and type_.as_uuid):
        return "uuid"
    if isinstance(type_, DateTimeUTC | sa.DateTime):
        return "datetime"
    if isinstance(type_, sa.Interval):
        return "interval"
    if isinstance(type_, sa.Date):
        return "date"
    if isinstance(type_, sa.Time):
        return "time"
    if isinstance(type_, sa.JSON):
        return "json"
    if isinstance(type_, sa.LargeBinary | sa.types._Binary):
        return "bytes"
    if isinstance(type_, sa.Float):
        return "decimal" if type_.asdecimal else "float"
    if isinstance(type_, sa.Numeric):
        return "decimal" if type_.asdecimal else "float"
    if isinstance(type_, sa.Boolean):
        return "boolean"
    if isinstance(type_, sa.Integer):
        return "integer"
    if isinstance(type_, sa.String | sa.Uuid):
        return "string"
    if isinstance(type_, TypeDecorator):
        try:
            python_type = type_.python_type
        except NotImplementedError:
            python_type = None
        by_python = {
            uuid.UUID: "uuid",
            dt.datetime: "datetime",
            dt.date: "date",
            dt.time: "time",
            dt.timedelta: "interval",
            bytes: "bytes",
            decimal.Decimal: "decimal",
            float: "float",
            bool: "boolean",
            int: "integer",
            str: "string",
            dict: "json",
            list: "json",
        }
        if python_type in by_python:
            return by_python[python_type]
    raise UnarchivableColumn(f"type {type_!r}")


_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "uuid": (_uuid_out, _uuid_in),
    "datetime": (_datetime_out, _datetime_in),
    "date": (_date_out, _date_in),
    "time": (_time_out, _time_in),
    "interval": (_interval_out, _interval_in),
    "json": (_same, _same),
    "bytes": (_bytes_out, _bytes_in),
    "decimal": (_decimal_out, _decimal_in),
    "float": (_float_out, _float_in),
    "boolean": (_same, _boolean_in),
    "integer": (_same, _integer_in),
    "string": (_same, _string_in),
}


def codec_for(column: sa.Column[Any]) -> ColumnCodec:
    """The codec of one column; :class:`UnarchivableColumn` names a type Perron cannot write."""
    try:
        kind = _kind_of(column.type)
    except UnarchivableColumn as error:
        raise UnarchivableColumn(
            f"{column.table.name}.{column.name}: Perron cannot archive columns of {error}; "
            "teach perron.tenancy.archive.codec this type"
        ) from None
    if kind == "enum":
        enum_class = column.type.enum_class  # type: ignore[attr-defined]
        encode, decode = _enum_codec(enum_class)
    else:
        encode, decode = _CODECS[kind]
    return ColumnCodec(column.name, kind, bool(column.nullable), encode, decode)


def codecs_for(table: sa.Table) -> list[ColumnCodec]:
    return [codec_for(column) for column in table.columns]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)


class TableWriter:
    """Writes one table file row by row to ``sink`` (any callable taking bytes)."""

    def __init__(self, table: str, codecs: Sequence[ColumnCodec], sink: Callable[[bytes], Any]) -> None:
        self.codecs = list(codecs)
        self.sink = sink
        self.rows = 0
        self._pending: str | None = None
        header = _dumps({"table": table, "columns": [[codec.name, codec.kind] for codec in self.codecs]})
        # The header object is closed by the last line; "rows" is its last key.
        sink((header[:-1] + ',"rows":[\n').encode())

    def write(self, values: Sequence[Any]) -> None:
        line = _dumps(
            [
                None if value is None else codec.encode(value)
                for codec, value in zip(self.codecs, values, strict=True)
            ]
        )
        if self._pending is not None:
            self.sink((self._pending + ",\n").encode())
        self._pending = line
        self.rows += 1

    def close(self) -> None:
        if self._pending is not None:
            self.sink((self._pending + "\n").encode())
            self._pending = None
        self.sink(b"]}\n")


@dataclass(frozen=True)
class TableHeader:
    table: str
    columns: list[tuple[str, str]]


def read_table(
    lines: Iterable[bytes], file: str, codecs: Sequence[ColumnCodec]
) -> tuple[TableHeader, Iterator[list[Any]]]:
    """The header of a table file and an iterator over its decoded rows (each a list in
    column order). Anything that is not what :class:`TableWriter` writes raises
    :class:`ArchiveFormatError` naming the file, line and column."""
    iterator = iter(lines)
    first = next(iterator, b"")
    try:
        raw = first.decode().rstrip("\n")
        if not raw.endswith(',"rows":['):
            raise ValueError
        document = json.loads(raw[: -len(',"rows":[')] + "}")
        header = TableHeader(
            document["table"], [(str(name), str(kind)) for name, kind in document["columns"]]
        )
    except (ValueError, KeyError, TypeError):
        raise ArchiveFormatError(
            gettext("%(file)s: the first line is not the header Perron writes.") % {"file": file}
        ) from None
    return header, _rows(iterator, file, codecs)


def _rows(lines: Iterator[bytes], file: str, codecs: Sequence[ColumnCodec]) -> Iterator[list[Any]]:
    number = 1
    ended = False
    previous_had_comma = True
    for raw_line in lines:
        number += 1
        if ended:
            raise ArchiveFormatError(
                gettext("%(file)s, line %(line)s: text after the end of the table.")
                % {"file": file, "line": number}
            )
        try:
            line = raw_line.decode().rstrip("\n")
        except UnicodeDecodeError:
            raise ArchiveFormatError(
                gettext("%(file)s, line %(line)s: not UTF-8 text.") % {"file": file, "line": number}
            ) from None
        if line == "]}":
            ended = True
            continue
        if not previous_had_comma:
            raise ArchiveFormatError(
                gettext("%(file)s, line %(line)s: a row follows the last row.")
                % {"file": file, "line": number}
            )
        previous_had_comma = line.endswith(",")
        try:
            values = json.loads(line[:-1] if previous_had_comma else line)
        except ValueError:
            raise ArchiveFormatError(
                gettext("%(file)s, line %(line)s: not a JSON row.") % {"file": file, "line": number}
            ) from None
        yield decode_row(values, codecs, file, number)
    if not ended or (previous_had_comma and number > 2):
        raise ArchiveFormatError(gettext("%(file)s: the table does not end properly.") % {"file": file})


def decode_row(values: Any, codecs: Sequence[ColumnCodec], file: str, line: int) -> list[Any]:
    if not isinstance(values, list) or len(values) != len(codecs):
        raise ArchiveFormatError(
            gettext("%(file)s, line %(line)s: a row must hold %(count)s values.")
            % {"file": file, "line": line, "count": len(codecs)}
        )
    decoded: list[Any] = []
    for codec, value in zip(codecs, values, strict=True):
        if value is None:
            if not codec.nullable:
                raise ArchiveFormatError(
                    gettext("%(file)s, line %(line)s, column %(column)s: a value is required.")
                    % {"file": file, "line": line, "column": codec.name}
                )
            decoded.append(None)
            continue
        try:
            decoded.append(codec.decode(value))
        except (ValueError, TypeError) as error:
            raise ArchiveFormatError(
                gettext("%(file)s, line %(line)s, column %(column)s: not a valid %(kind)s (%(reason)s).")
                % {"file": file, "line": line, "column": codec.name, "kind": codec.kind, "reason": error}
            ) from None
    return decoded


class LineSource(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def iter_lines(stream: LineSource, limit: int) -> Iterator[bytes]:
    """The lines of a binary stream, refusing one longer than ``limit`` bytes."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit:
            raise ArchiveFormatError(gettext("A row is longer than %(limit)s bytes.") % {"limit": limit})
        yield line
