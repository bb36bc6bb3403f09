"""How Salesforce field values look on the wire, as SQLite expressions.

Query pages are the sandbox's hot path (tens of thousands of records a
second), so records are rendered to JSON and CSV by SQLite itself: one SQL
statement per page, no Python work per field. Storage keeps datetimes as
``2024-05-01T12:00:00.000Z`` and booleans as 0/1 (see schema.py); REST JSON
shows datetimes as ``2024-05-01T12:00:00.000+0000`` and booleans as
true/false; Bulk API CSV shows datetimes with a ``Z``, booleans as
``true``/``false`` and nulls as empty fields.
"""

from __future__ import annotations

from collections.abc import Sequence

from clghub.sandbox.schema import SfField

__all__ = [
    "CSV_DELIMITERS",
    "LINE_ENDINGS",
    "MAX_PAIRS",
    "csv_header",
    "csv_line_sql",
    "json_object_sql",
    "json_value_sql",
    "record_json_sql",
    "sql_text",
]

CSV_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "SEMICOLON": ";",
    "PIPE": "|",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


def sql_text(value: str) -> str:
    """A SQL string literal (for text the sandbox itself chose, such as keys)."""
    return "'" + value.replace("'", "''") + "'"


def _column(field: SfField, table: str) -> str:
    return f'{table}."{field.name}"' if table else f'"{field.name}"'


MAX_PAIRS = 60
"""Key/value pairs per json_object() call: SQLite takes at most 127 arguments."""


def json_object_sql(pairs: Sequence[tuple[str, str]]) -> str:
    """An expression giving a JSON object of (key, SQL value expression) pairs, in order.

    json_object() builds the text in C, about twice as fast as concatenating
    it in SQL; wider objects are joined from several calls.
    """
    chunks = [pairs[i : i + MAX_PAIRS] for i in range(0, len(pairs), MAX_PAIRS)] or [[]]
    calls = [
        "json_object(" + ", ".join(f"{sql_text(key)}, {value}" for key, value in chunk) + ")"
        for chunk in chunks
    ]
    if len(calls) == 1:
        return calls[0]
    # {"a":1} + {"b":2} -> {"a":1,"b":2}: drop the inner braces and join.
    inner = [f"substr({call}, 2, length({call}) - 2)" for call in calls]
    return "'{' || " + " || ',' || ".join(inner) + " || '}'"


def json_value_sql(field: SfField, table: str = "") -> str:
    """An expression giving the field's value for json_object() (NULL when unset)."""
    column = _column(field, table)
    if field.type == "boolean":
        # json('true') keeps its JSON subtype through CASE: twice as fast as json(CASE ...).
        return (
            f"CASE WHEN {column} THEN json('true') WHEN {column} IS NULL THEN NULL "
            "ELSE json('false') END"
        )
    if field.type == "datetime":
        return f"substr({column}, 1, 23) || '+0000'"
    return column


def record_json_sql(sobject: str, fields: Sequence[SfField], version: str, table: str = "") -> str:
    """An expression giving one record's REST JSON: attributes first, then fields in order."""
    id_column = f'{table}."Id"' if table else '"Id"'
    url_prefix = sql_text(f"/services/data/{version}/sobjects/{sobject}/")
    attributes = f"json_object('type', {sql_text(sobject)}, 'url', {url_prefix} || {id_column})"
    pairs = [("attributes", attributes), *((f.name, json_value_sql(f, table)) for f in fields)]
    return json_object_sql(pairs)


def _csv_value_sql(field: SfField, table: str) -> str:
    column = _column(field, table)
    if field.type == "boolean":
        return f"""(CASE WHEN {column} IS NULL THEN '' WHEN {column} THEN '"true"' ELSE '"false"' END)"""
    return f"""coalesce('"' || replace(CAST({column} AS TEXT), '"', '""') || '"', '')"""


def csv_line_sql(fields: Sequence[SfField], delimiter: str, table: str = "") -> str:
    """An expression giving one record as a CSV line (no line ending).

    Every value is quoted, as Salesforce's Bulk API writes it, which keeps
    delimiters, quotes and line breaks inside values intact (RFC 4180).
    """
    separator = " || " + sql_text(delimiter) + " || "
    return separator.join(_csv_value_sql(field, table) for field in fields) or "''"


def csv_header(fields: Sequence[SfField], delimiter: str) -> str:
    return delimiter.join('"' + field.name + '"' for field in fields)
