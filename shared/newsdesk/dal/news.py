"""What a news site reads beside the article feeds (docs/data-model.md, "News entries"): the corrections list,
the sitemap pages, the breaking-news list and the embargo queue.

Each is a partition of ArticlesTable's `by-feed` index, and its entries are derived from the article (as its
feed entries are, `news_entries`), so `ArticleRepository.save` writes them in the article's own transaction
and they can never drift from it. Every read is one Query of one partition, bounded by its page.
"""

from __future__ import annotations

from typing import Any

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import Item, aws_errors, from_attributes, query_page
from newsdesk.models.articles import Article, ArticleSummary
from newsdesk.models.corrections import CorrectionEntry
from newsdesk.models.news import SitemapUrl

CORRECTIONS_FEED = "corrections"
BREAKING_FEED = "breaking"
RELEASE_FEED = "release"
"""Held (embargoed) articles by the time their embargo lifts: read by PublishDue only, never by a public route.
Its entries carry the article's id and nothing public."""
SITEMAP_PAGE_SIZE = 50_000
"""URLs in one sitemap page: the most the sitemaps protocol allows."""
NEWS_SITEMAP_SIZE = 1000
"""Google News sitemaps hold at most 1,000 URLs."""
_COUNTER_KEY = {"pk": {"S": "sitemap#counter"}}
_PAGE_KEYS = frozenset({"pk", "feed", "feed_sort"})
_LIST_FIELDS = tuple(ArticleSummary.model_fields)


def sitemap_feed(page: int) -> str:
    return f"sitemap#{page}"


def news_entries(article: Article) -> dict[str, Item]:
    """The news entries `article` has as it stands, by `pk` (none for an article nobody may read yet, except
    its place in the embargo queue)."""
    if article.held and article.embargo_until is not None:
        pk = f"release#{article.id}"
        return {pk: _entry(pk, RELEASE_FEED, article.embargo_until, article.id, article_id=article.id)}
    if not article.public:
        return {}
    assert article.published_at is not None
    entries: dict[str, Item] = {}
    for number, correction in enumerate(article.corrections, start=1):
        pk = f"correction#{article.id}#{number:02d}"
        entries[pk] = _entry(
            pk,
            CORRECTIONS_FEED,
            correction.published_at,
            f"{article.id}#{number:02d}",
            **correction.model_dump(mode="json"),
            article_id=article.id,
            slug=article.slug,
            title=article.title,
        )
    if article.sitemap_page is not None:
        pk = f"sitemap#{article.id}"
        place = article.model_dump(mode="json", include={"slug", "title", "published_at", "updated_at"})
        entries[pk] = _entry(pk, sitemap_feed(article.sitemap_page), article.updated_at, article.id, **place)
    if article.breaking_until is not None:
        pk = f"breaking#{article.id}"
        # Sorted by expiry: the list reads only what has not expired (`feed_sort > now`), whatever expired before.
        entries[pk] = _entry(pk, BREAKING_FEED, article.breaking_until, article.id,
                             **article.model_dump(mode="json", include=set(_LIST_FIELDS)))  # fmt: skip
    return entries


def _entry(pk: str, feed: str, moment: Any, tie: str, **fields: Any) -> Item:
    return {**fields, "pk": pk, "feed": feed, "feed_sort": f"{iso(moment)}#{tie}"}


class NewsRepository:
    """Reads of the news entries (their writes are the article's: `ArticleRepository.save`)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def corrections(self, *, limit: int, cursor: str | None) -> tuple[list[CorrectionEntry], str | None]:
        """Newest first, a page at a time."""
        items, next_cursor = self._page(CORRECTIONS_FEED, limit=limit, cursor=cursor, newest_first=True)
        return [CorrectionEntry.model_validate(item) for item in items], next_cursor

    def breaking(self, *, now_iso: str, limit: int, cursor: str | None) -> tuple[list[ArticleSummary], str | None]:
        """Articles still breaking at `now_iso`, the latest to expire first; expired entries are never read."""
        items, next_cursor = self._page(
            BREAKING_FEED, limit=limit, cursor=cursor, newest_first=True, after=f"{now_iso}#~"
        )
        return [ArticleSummary.model_validate(item) for item in items], next_cursor

    def due_releases(self, *, now_iso: str, limit: int, cursor: str | None) -> tuple[list[str], str | None]:
        """Ids of held articles whose embargo has lifted by `now_iso`, oldest embargo first."""
        items, next_cursor = self._page(
            RELEASE_FEED, limit=limit, cursor=cursor, newest_first=False, until=f"{now_iso}#~"
        )
        return [str(item["article_id"]) for item in items], next_cursor

    def sitemap_pages(self) -> int:
        """How many sitemap pages have been opened (one GetItem)."""
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_COUNTER_KEY, ConsistentRead=True)
        count = int(from_attributes(reply.get("Item", {})).get("count", 0))
        return (count + SITEMAP_PAGE_SIZE - 1) // SITEMAP_PAGE_SIZE

    def next_sitemap_page(self) -> int:
        """The page (from 1) of the next article published for the first time: one atomic counter, so a page
        never holds more than SITEMAP_PAGE_SIZE articles (a publish that fails leaves a gap, never an excess)."""
        with aws_errors():
            reply = self._client.update_item(
                TableName=self._table,
                Key=_COUNTER_KEY,
                UpdateExpression="ADD #count :one",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        count = int(from_attributes(reply["Attributes"])["count"])
        return (count - 1) // SITEMAP_PAGE_SIZE + 1

    def sitemap_lastmod(self, page: int) -> str | None:
        """When the newest change of an article of the page was made (one item read), None for an empty page."""
        items, _ = self._page(sitemap_feed(page), limit=1, cursor=None, newest_first=True)
        return str(items[0]["updated_at"]) if items else None

    def sitemap(self, page: int) -> list[SitemapUrl]:
        """Every article of one page (at most SITEMAP_PAGE_SIZE), newest change first."""
        return [SitemapUrl.model_validate(item) for item in self._all(sitemap_feed(page), limit=SITEMAP_PAGE_SIZE)]

    def published_since(self, since_iso: str) -> list[ArticleSummary]:
        """Articles first published at or after `since_iso`, newest first, at most NEWS_SITEMAP_SIZE."""
        items = self._all("all", limit=NEWS_SITEMAP_SIZE, after=since_iso)
        return [ArticleSummary.model_validate(item) for item in items]

    def _all(self, feed: str, *, limit: int, after: str | None = None) -> list[Item]:
        """Up to `limit` entries of a partition, newest first, in as many Query pages as DynamoDB's 1 MB takes."""
        found: list[Item] = []
        cursor: str | None = None
        while len(found) < limit:
            page, cursor = self._page(feed, limit=limit - len(found), cursor=cursor, newest_first=True, after=after)
            found += page
            if cursor is None:
                break
        return found

    def _page(
        self,
        feed: str,
        *,
        limit: int,
        cursor: str | None,
        newest_first: bool,
        after: str | None = None,
        until: str | None = None,
    ) -> tuple[list[Item], str | None]:
        condition = "feed = :feed"
        values: dict[str, Any] = {":feed": {"S": feed}}
        if after is not None:
            condition += " AND feed_sort > :after"
            values[":after"] = {"S": after}
        if until is not None:
            condition += " AND feed_sort <= :until"
            values[":until"] = {"S": until}
        request = {
            "TableName": self._table,
            "IndexName": "by-feed",
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        return query_page(self._client.query, request, limit=limit, cursor=cursor, key_names=_PAGE_KEYS,
                          partition={"feed": {"S": feed}}, filters={"feed": feed})  # fmt: skip
