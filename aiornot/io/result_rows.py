"""A :class:`~aiornot.contract.result.Result` as a flat Arrow row, and back: the one row codec.

The Ray jobs (:mod:`aiornot.apps.batch`) and the score Parquet files (:mod:`aiornot.io.stream`) both write
results as rows of :func:`row_schema`; :func:`row_to_record` turns a row back into the dict a local
``aiornot scan`` line holds, so an image's line is the same whichever engine scored it.
"""

from __future__ import annotations

import json
import os
import typing
from typing import TYPE_CHECKING, Any

from aiornot.contract.result import Result, without_none

if TYPE_CHECKING:
    import pyarrow as pa


def _row_fields() -> list[tuple[str, str]]:
    """(name, kind) for each Result field carried in a row; kind is ``str``, ``float``, ``int``, ``json`` or ``path``.

    Derived from :class:`aiornot.contract.result.Result`, so a field added there travels without a change
    here. Arrow needs one fixed type per column: lists, dicts and records travel as JSON text.
    """
    fields = []
    for name, info in Result.model_fields.items():
        if info.exclude:  # the heatmap: an array, never part of a scan line
            continue
        # The path travels as bytes: a file name that is not UTF-8 cannot be an Arrow string.
        fields.append((name, "path" if name == "path" else _column_kind(without_none(info.annotation))))
    return fields


def _column_kind(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "str"  # a verdict name
    return {str: "str", float: "float", int: "int"}.get(annotation, "json")


ROW_FIELDS = _row_fields()


def row_schema() -> "pa.Schema":
    """The Arrow schema of a scored row: one fixed type per column, whatever the batch holds."""
    import pyarrow as pa

    types = {"str": pa.string(), "float": pa.float64(), "int": pa.int64(), "json": pa.string(), "path": pa.binary()}
    return pa.schema([(name, types[kind]) for name, kind in ROW_FIELDS])


def result_to_row(result: Result) -> dict[str, Any]:
    """A Result as a flat row (lists and dicts as JSON text)."""
    row, record = {}, result.to_dict(include_empty=True)
    for name, kind in ROW_FIELDS:
        value = record[name]
        if kind == "path" and value is not None:
            value = os.fsencode(value)
        elif kind == "str" and isinstance(value, str):
            # A message quoting a non-UTF-8 name: Arrow strings must be valid UTF-8; keep the bytes visible as \\x escapes.
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        row[name] = json.dumps(value, ensure_ascii=False) if kind == "json" and value is not None else value
    return row


def row_to_record(row: dict[str, Any]) -> dict[str, Any]:
    """Undo :func:`result_to_row`: the same dict, in the same key order, as ``Result.to_dict()``."""
    record = {}
    for name, kind in ROW_FIELDS:
        value = row.get(name)
        if kind == "json" and value is not None:
            value = json.loads(value)
        elif kind == "path" and value is not None:
            value = os.fsdecode(value)  # the name's bytes back as the str the local engine writes
        if value not in (None, [], {}):  # the same rule as Result.to_dict: empty fields are left out
            record[name] = value
    return record
