"""Publication records: the outbox that newsletter delivery hangs off.

The record is written in the same transaction as the first publish of an article, and only then
(`attribute_not_exists`), so an article is announced at most once and never lost: the table's stream
hands the record to delivery even if the publishing process dies right after the write.
"""

from __future__ import annotations

from typing import Any

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import to_attributes
from newsdesk.models.articles import Article

PUBLICATION_SK = "#publication"


def publication_key(article_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"article#{article_id}"}, "sk": {"S": PUBLICATION_SK}}


def publication_write(table_name: str, article: Article) -> dict[str, Any]:
    """The transaction item that records the first publish of `article`."""
    assert article.published_at is not None
    item = {
        "pk": f"article#{article.id}",
        "sk": PUBLICATION_SK,
        "article_id": article.id,
        "published_at": iso(article.published_at),
        "state": "pending",
    }
    return {
        "Put": {
            "TableName": table_name,
            "Item": to_attributes(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
