"""Request validation: what an editor sending bad input is told."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from newsdesk.api.etags import parse_if_match
from newsdesk.models.articles import CreateArticleRequest, UpdateArticleRequest
from newsdesk.models.types import MAX_BODY_BYTES

VALID = {"title": "A title", "body": "Some *text*", "author": "Ada"}


def test_valid_request_is_accepted_and_trimmed() -> None:
    request = CreateArticleRequest.model_validate({**VALID, "title": "  A title  "})
    assert request.title == "A title"
    assert request.tags == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": "x" * 201}, "title"),
        ({"title": "two\r\nlines"}, "title"),
        ({"title": ""}, "title"),
        ({"body": "é" * (MAX_BODY_BYTES // 2 + 1)}, "body"),
        ({"slug": "Not A Slug"}, "slug"),
        ({"tags": ["t"] * 11}, "tags"),
        ({"author": 42}, "author"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_fields_are_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        CreateArticleRequest.model_validate({**VALID, **change})
    assert field in {str(loc) for e in error.value.errors() for loc in e["loc"]}


def test_update_refuses_null_for_required_fields_but_not_summary() -> None:
    with pytest.raises(ValidationError, match="title"):
        UpdateArticleRequest.model_validate({"title": None})
    assert UpdateArticleRequest.model_validate({"summary": None}).model_fields_set == {"summary"}


@pytest.mark.parametrize(
    ("header", "version"),
    [(None, None), ("*", None), ('"3"', 3), ('W/"3"', 3), ("3", 3), ('"abc"', -1), ("9" * 20, -1)],
)
def test_if_match_names_a_version(header: str | None, version: int | None) -> None:
    assert parse_if_match(header) == version
