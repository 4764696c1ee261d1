"""``aiornot scan``'s JSON lines as a spreadsheet: one row per image, Korean beside English, safe to open in Excel.

An officer who scanned a folder of applicants' photos reads the results in a spreadsheet, not in JSON. Each row
keeps what the scan line says a person needs (the verdict and its Korean label, the score, the rule that decided,
the provenance found, the caveats, failed ID checks, or the error) and leaves out what only a program reads (the
experts' raw scores stay, the fusion formula does not). The file is UTF-8 with a BOM, so Excel shows Hangul, and
a cell that would start a formula (``=``, ``+``, ``-``, ``@``) is quoted: a file name is the sender's text.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aiornot.contract.result import VERDICT_TEXTS

#: The spreadsheet's columns, in order.
COLUMNS = ("path", "verdict", "verdict_ko", "score", "pixel_verdict", "rule_ko", "rule", "evidence_ko", "caveats_ko",
           "failed_checks", "face_score", "semantic", "forensic", "format", "width", "height", "model", "error_code", "error")
#: What Excel, LibreOffice and Sheets read as the start of a formula (OWASP's list for CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportError(ValueError):
    """A results file that cannot be turned into a table (missing, empty, not JSON lines)."""


@dataclass
class ExportCounts:
    """What an export wrote, and the lines it could not read (by line number: never dropped in silence)."""

    rows: int = 0
    unreadable: list[int] = field(default_factory=list)


def export_csv(results: Path, sink: TextIO) -> ExportCounts:
    """Write the scan lines of ``results`` as CSV rows (:data:`COLUMNS`) to ``sink``; the caller opens it ``utf-8-sig``."""
    if not results.is_file():
        raise ExportError(f"no results file at {results}; `aiornot scan … -o {results.name}` writes one")
    counts = ExportCounts()
    writer = csv.DictWriter(sink, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for number, record in _records(results, counts):
        writer.writerow({column: _cell(value) for column, value in table_row(record).items()})
        counts.rows += 1
    if not counts.rows:
        raise ExportError(f"{results} holds no scan lines (JSON lines, as `aiornot scan -o` writes)")
    return counts


def _records(results: Path, counts: ExportCounts) -> Iterator[tuple[int, dict[str, Any]]]:
    with results.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                counts.unreadable.append(number)
                continue
            if isinstance(record, dict) and "path" in record:
                yield number, record
            else:
                counts.unreadable.append(number)


def table_row(record: dict[str, Any]) -> dict[str, Any]:
    """One scan line (a ``Result.to_dict()``) as the spreadsheet's row."""
    verdict = record.get("verdict")
    experts = record.get("experts") or {}
    return {
        "path": record.get("path"),
        "verdict": verdict,
        "verdict_ko": VERDICT_TEXTS[verdict].label_ko if verdict in VERDICT_TEXTS else None,
        "score": record.get("score"),
        "pixel_verdict": record.get("pixel_verdict"),
        "rule_ko": record.get("rule_ko"),
        "rule": record.get("rule"),
        "evidence_ko": _joined(s.get("summary_ko") for s in record.get("signals") or [] if s.get("status") in ("found", "invalid")),
        "caveats_ko": _joined(c.get("text_ko") for c in record.get("caveats") or []),
        "failed_checks": _joined(c.get("name") for c in record.get("checks") or [] if c.get("passed") is False),
        "face_score": record.get("face_score"),
        "semantic": experts.get("semantic"),
        "forensic": experts.get("forensic"),
        **{key: record.get(key) for key in ("format", "width", "height", "model", "error_code", "error")},
    }


def _joined(values: Iterable[Any]) -> str | None:
    kept = [str(value) for value in values if value]
    return " / ".join(kept) if kept else None


def _cell(value: Any) -> Any:
    """A value as a spreadsheet may show it: text that would run as a formula is quoted with a leading '."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
