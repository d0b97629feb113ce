"""Every kind of value comes back from a table file exactly as it left, and anything Perron
did not write is refused naming the file, line and column."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB

from perron.i18n import using_language
from perron.tenancy.archive.codec import (
    ArchiveFormatError,
    TableWriter,
    UnarchivableColumn,
    codecs_for,
    iter_lines,
    read_table,
)


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


metadata = sa.MetaData()
everything = sa.Table(
    "everything",
    metadata,
    sa.Column("id", GUID, primary_key=True),
    sa.Column("native_uuid", sa.Uuid),
    sa.Column("at", DateTimeUTC(timezone=True)),
    sa.Column("naive", sa.DateTime),
    sa.Column("day", sa.Date),
    sa.Column("hour", sa.Time),
    sa.Column("span", sa.Interval),
    sa.Column("colour", sa.Enum(Colour, native_enum=False)),
    sa.Column("label", sa.Enum("a", "b", name="plain")),
    sa.Column("document", JsonB),
    sa.Column("raw", sa.LargeBinary),
    sa.Column("amount", sa.Numeric(12, 4)),
    sa.Column("ratio", sa.Float),
    sa.Column("count", sa.BigInteger),
    sa.Column("flag", sa.Boolean),
    sa.Column("text", sa.Text),
)

ROW: list[Any] = [
    uuid.UUID("0190a000-0000-7000-8000-000000000001"),
    uuid.uuid4(),
    dt.datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.datetime(2026, 1, 1, 12, 0),  # noqa: DTZ001 - a column without time zone keeps none
    dt.date(2026, 2, 28),
    dt.time(23, 59, 1, 5),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    Colour.GREEN,
    "b",
    {"fr": "Été", "list": [1, 2.5, None, True], "nested": {"z": 1, "a": "\u2028"}},
    bytes(range(256)),
    decimal.Decimal("-12345678.0001"),
    0.1 + 0.2,
    2**62,
    False,
    "line one\nline two \u00a0«»",
]


def encode(rows: list[list[Any]]) -> bytes:
    chunks: list[bytes] = []
    writer = TableWriter("everything", codecs_for(everything), chunks.append)
    for row in rows:
        writer.write(row)
    writer.close()
    return b"".join(chunks)


def decode(data: bytes) -> list[list[Any]]:
    import io

    header, rows = read_table(
        iter_lines(io.BytesIO(data), 1 << 20), "tables/everything.json", codecs_for(everything)
    )
    assert header.table == "everything"
    return list(rows)


def test_every_kind_of_value_round_trips_exactly() -> None:
    kinds = [codec.kind for codec in codecs_for(everything)]
    assert kinds == [
        "uuid", "uuid", "datetime", "datetime", "date", "time", "interval", "enum", "string", "json",
        "bytes", "decimal", "float", "integer", "boolean", "string",
    ]  # fmt: skip
    nulls = [ROW[0]] + [None] * (len(ROW) - 1)
    data = encode([ROW, nulls])
    back = decode(data)
    assert back == [ROW, nulls]
    assert back[0][2].utcoffset() == dt.timedelta(hours=2) and back[0][3].tzinfo is None
    assert back[0][7] is Colour.GREEN and isinstance(back[0][11], decimal.Decimal)
    assert encode(back) == data, "the encoding is deterministic"


def test_special_floats_and_an_empty_table() -> None:
    row = list(ROW)
    for value in (math.inf, -math.inf):
        row[12] = value
        assert decode(encode([row]))[0][12] == value
    row[12] = math.nan
    assert math.isnan(decode(encode([row]))[0][12])
    assert decode(encode([])) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the first line is not the header Perron writes"),
        (b'{"columns":[],"table":"everything","rows":[\n', "does not end properly"),
        (None, "line 2, column at: not a valid datetime"),
        (None, "line 2, column flag: not a valid boolean"),
        (None, "line 2: a row must hold 16 values"),
        (None, "line 3: a row follows the last row"),
        (None, "line 2, column id: a value is required"),
    ],
)
def test_what_perron_did_not_write_is_refused(data: bytes | None, message: str) -> None:
    good = encode([ROW]).decode().split("\n")
    if data is None:
        lines = list(good)
        if "datetime" in message:
            lines[1] = lines[1].replace(ROW[2].isoformat(), "yesterday")
        elif "boolean" in message:
            lines[1] = lines[1].replace(",false,", ',"no",')
        elif "16 values" in message:
            lines[1] = "[1,2]"
        elif "follows" in message:
            lines.insert(2, lines[1])
        else:
            lines[1] = lines[1].replace(f'"{ROW[0]}"', "null", 1)
        data = "\n".join(lines).encode()
    with using_language("en"), pytest.raises(ArchiveFormatError, match=message):
        decode(data)


def test_a_type_perron_cannot_archive_is_named() -> None:
    class Opaque(sa.types.UserDefinedType[Any]):
        cache_ok = True

        def get_col_spec(self, **kw: Any) -> str:
            return "OPAQUE"

    table = sa.Table("odd", sa.MetaData(), sa.Column("thing", Opaque()))
    with pytest.raises(UnarchivableColumn, match=r"odd\.thing: Perron cannot archive columns of type"):
        codecs_for(table)
