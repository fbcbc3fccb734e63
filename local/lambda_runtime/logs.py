"""The local stack's log: what a function prints, shown so a person can read it in a terminal.

A function writes what it would write to CloudWatch: Powertools' JSON records, one a line, and metrics as
CloudWatch embedded-metric-format blobs. In a terminal a record becomes one compact line (its message and
its own keys, without the fields every record repeats) and a metric blob a short `metrics` line at debug
level; when the output is not a terminal (a file, a pipe, CI) every line stays the JSON it was, for tools.
`NEWSDESK_LOG_FORMAT=compact|json` chooses explicitly.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

# Keys every Powertools record carries: the logger's name (the function) and the time are already in the
# line's prefix, the rest is the same on every line of a function.
_BOILERPLATE = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
        "exception",
        "exception_name",
        "stack_trace",
    }
)
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
_LEVELS["CRITICAL"] = logging.CRITICAL


def compact_logs() -> bool:
    chosen = os.environ.get("NEWSDESK_LOG_FORMAT", "").lower()
    if chosen in ("compact", "json"):
        return chosen == "compact"
    return sys.stderr.isatty()


def readable(line: str) -> tuple[int, str]:
    """A function's output line as (level, text) for the terminal."""
    try:
        record = json.loads(line)
    except ValueError:
        return logging.INFO, line  # a print or a traceback: shown as it is
    if not isinstance(record, dict):
        return logging.INFO, line
    if "_aws" in record:
        return logging.DEBUG, _metrics(record)
    level = _LEVELS.get(str(record.get("level", "INFO")).upper(), logging.INFO)
    extra = " ".join(f"{key}={_value(value)}" for key, value in record.items() if key not in _BOILERPLATE)
    text = " ".join(part for part in (str(record.get("message", "")), extra) if part)
    if record.get("exception"):
        text += "\n" + str(record["exception"])
    return level, text


def _metrics(blob: dict[str, Any]) -> str:
    names = [
        metric["Name"]
        for directive in blob["_aws"].get("CloudWatchMetrics", [])
        for metric in directive.get("Metrics", [])
        if isinstance(metric, dict) and "Name" in metric
    ]
    values = []
    for name in names:
        value = blob.get(name)
        total = sum(value) if isinstance(value, list) else value
        values.append(f"{name}={total:g}" if isinstance(total, int | float) else f"{name}={total}")
    return "metrics " + " ".join(values)


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return json.dumps(text) if not text or any(c.isspace() for c in text) else text
