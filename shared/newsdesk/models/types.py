"""Reusable field types for requests and responses."""

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

MAX_BODY_BYTES = 64 * 1024
"""Largest Markdown body accepted (UTF-8 bytes); keeps every stored item far below DynamoDB's 400 KB."""

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


def _single_line(value: str) -> str:
    # Titles and names end up in email headers and feeds: no control characters, ever.
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must be a single line without control characters")
    return value


def _body_size(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_BODY_BYTES:
        raise ValueError(f"must be at most {MAX_BODY_BYTES} bytes of UTF-8")
    return value


Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_single_line)
]
AuthorName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_single_line)
]
Summary = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(_single_line)]
MarkdownBody = Annotated[str, StringConstraints(min_length=1), AfterValidator(_body_size)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=SLUG_PATTERN)]
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), AfterValidator(_single_line)
]
Tags = Annotated[list[Tag], Field(max_length=10)]
ArticleId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
