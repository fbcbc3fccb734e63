"""Pagination cursors are opaque to clients, and a forged one is the client's error."""

from __future__ import annotations

import base64
import json

import pytest

from newsdesk.dal.dynamodb import decode_cursor, encode_cursor
from newsdesk.errors import InvalidInput

KEYS = frozenset({"pk", "feed", "feed_sort"})


def test_cursor_round_trips() -> None:
    key = {"pk": {"S": "feed#all#1"}, "feed": {"S": "all"}, "feed_sort": {"S": "2026#1"}}
    assert decode_cursor(encode_cursor(key), KEYS) == key


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"pk": "x"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"pk": 1, "feed": "a", "feed_sort": "b"}).encode()).decode(),
        base64.urlsafe_b64encode(b"[" * 1500 + b"]" * 1500).decode(),
        "",
    ],
)
def test_forged_cursor_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(cursor, KEYS)
