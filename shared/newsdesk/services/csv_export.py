"""CSV pages for editors' exports: a header row, then one row per record, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence


def csv_page(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_inert(row.get(column)) for column in columns])
    return buffer.getvalue()


def _inert(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula in spreadsheets: keep exported values inert.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
