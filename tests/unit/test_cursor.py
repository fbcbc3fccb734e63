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


def test_a_cursor_is_only_good_for_the_filters_it_was_issued_with() -> None:
    key = {"pk": {"S": "d1"}, "feed": {"S": "all"}, "feed_sort": {"S": "2026#1"}}
    cursor = encode_cursor(key, filters={"state": "failed"})

    assert decode_cursor(cursor, KEYS, filters={"state": "failed"}) == key
    for other in ({"state": "sent"}, {"state": None}, None):
        with pytest.raises(InvalidInput) as refused:
            decode_cursor(cursor, KEYS, filters=other)
        assert refused.value.code == "invalid_cursor"
    # and an unfiltered cursor is refused by a filtered list; None filters are no filters
    with pytest.raises(InvalidInput):
        decode_cursor(encode_cursor(key), KEYS, filters={"state": "failed"})
    assert decode_cursor(encode_cursor(key, filters={"state": None}), KEYS) == key
