"""The local stack's log reads as one line per record in a terminal, with no raw metric blobs."""

from __future__ import annotations

import json
import logging

import pytest

from local.lambda_runtime.logs import compact_logs, readable

RECORD = {
    "level": "WARNING",
    "location": "create:83",
    "message": "article created",
    "timestamp": "2026-11-30 07:04:04,493+0000",
    "service": "newsdesk",
    "cold_start": True,
    "function_name": "newsdesk-local-EditorFunction",
    "function_memory_size": 512,
    "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:newsdesk-local-EditorFunction",
    "function_request_id": "45aa82c7",
    "correlation_id": "nX7wY94Qem05YA==",
    "article_id": "93a91665591f57fe",
    "title": "Budget passes",
}
METRICS = {
    "_aws": {
        "Timestamp": 1796022244514,
        "CloudWatchMetrics": [
            {"Namespace": "Newsdesk", "Dimensions": [["service"]], "Metrics": [{"Name": "Sent", "Unit": "Count"}]}
        ],
    },
    "service": "newsdesk",
    "Sent": [1.0, 1.0],
}


def test_a_record_becomes_one_compact_line_with_its_own_keys() -> None:
    level, text = readable(json.dumps(RECORD))

    assert level == logging.WARNING
    assert text == 'article created correlation_id=nX7wY94Qem05YA== article_id=93a91665591f57fe title="Budget passes"'


def test_a_metric_blob_is_a_short_debug_line_and_other_output_is_kept() -> None:
    assert readable(json.dumps(METRICS)) == (logging.DEBUG, "metrics Sent=2")
    assert readable("Traceback (most recent call last):") == (logging.INFO, "Traceback (most recent call last):")
    level, text = readable(json.dumps({**RECORD, "level": "ERROR", "exception": "Traceback...\nKeyError: 'x'"}))
    assert level == logging.ERROR
    assert text.endswith("\nTraceback...\nKeyError: 'x'")


@pytest.mark.parametrize(("chosen", "compact"), [("compact", True), ("json", False)])
def test_the_format_can_be_chosen(monkeypatch: pytest.MonkeyPatch, chosen: str, compact: bool) -> None:
    monkeypatch.setenv("NEWSDESK_LOG_FORMAT", chosen)
    assert compact_logs() is compact
