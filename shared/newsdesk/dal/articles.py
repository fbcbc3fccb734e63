"""Articles in DynamoDB. Item kinds and keys are described in docs/data-model.md."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import (
    Filters,
    Item,
    aws_errors,
    cancellation_reasons,
    error_code,
    from_attributes,
    query_page,
    to_attributes,
)
from newsdesk.errors import Conflict, PreconditionFailed
from newsdesk.models.articles import Article, ArticleStatus, ArticleSummary, PublicArticle
from newsdesk.models.authors import Author, AuthorProfile
from newsdesk.slugs import make_slug

if TYPE_CHECKING:
    from newsdesk.dal.news import NewsRepository
    from newsdesk.models.audit import AuditEntry
    from newsdesk.models.revisions import Revision

FEED_ALL = "all"
_LIST_FIELDS = tuple(ArticleSummary.model_fields)
_PUBLIC_FIELDS = tuple(PublicArticle.model_fields)
_PARTITION_KEY = {"by-feed": "feed", "by-status": "status", "by-entity": "entity", "by-owner": "owner"}
_FEED_PAGE_KEYS = frozenset({"pk", "feed", "feed_sort"})


class SlugTaken(Conflict):
    code = "slug_taken"


class VersionConflict(PreconditionFailed):
    """The article changed (or vanished) since the caller read it."""


class AlreadyAnnounced(PreconditionFailed):
    """The article's id has a newsletter already (its publication record exists): nothing was written.
    `kinds` names the records that exist: `announce` (the newsletter), `alert` (the breaking-news alert)."""

    def __init__(self, message: str, *, kinds: frozenset[str] = frozenset({"announce"})) -> None:
        super().__init__(message)
        self.kinds = kinds


def tag_feed(tag: str) -> str:
    return f"tag#{tag}"


def author_feed(author: str) -> str:
    return f"author#{make_slug(author)}"


def tag_author_feed(tag: str, author: str) -> str:
    """The articles of one author under one tag: its own feed, so that the combination is one Query that
    reads a page, never a filter over the tag's whole feed. Tags and author slugs hold no `#`."""
    return f"tag-author#{tag}#{make_slug(author)}"


def _article_key(article_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"article#{article_id}"}}


def _slug_key(slug: str) -> dict[str, Any]:
    return {"pk": {"S": f"slug#{slug}"}}


def _author_keys(article: Article) -> list[str]:
    """Each author's part of the feed keys: the profile's slug, or (a byline without a profile, such as every
    article's from before profiles) the slug of the name, as `?author=` makes it from a name or a slug."""
    return list(dict.fromkeys(byline.slug or make_slug(byline.name) for byline in article.authors))


def _feeds(article: Article) -> list[str]:
    authors = _author_keys(article)
    return [
        FEED_ALL,
        *(f"author#{author}" for author in authors),
        *(tag_feed(tag) for tag in article.tags),
        *(f"tag-author#{tag}#{author}" for tag in article.tags for author in authors),
    ]


def _author_key(slug: str) -> dict[str, Any]:
    return {"pk": {"S": f"author#{slug}"}}


def author_profile_write(table: str, profile: AuthorProfile) -> dict[str, Any]:
    """A person's author profile as an item of their transaction: it claims the slug, which no other person's
    profile may hold (SlugTaken when the transaction fails on it)."""
    item = {**profile.model_dump(mode="json"), "pk": f"author#{profile.slug}", "entity": "author",
            "entity_sort": profile.slug}  # fmt: skip
    return {"Put": {
        "TableName": table,
        "Item": to_attributes(item),
        "ConditionExpression": "attribute_not_exists(pk) OR person_id = :person",
        "ExpressionAttributeValues": {":person": {"S": profile.person_id}},
    }}  # fmt: skip


class ArticleRepository:
    """Every article write is one transaction over the article, its slug claim and its feed entries, so a
    reader never sees half an edit and the public copies can never drift from the article."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        publications_table: str = "",
        audit_table: str = "",
        revisions_table: str = "",
        revisions_kept: int = 20,
    ) -> None:
        """`publications_table` receives the newsletter's record when a save announces an article,
        `audit_table` the audit entry of a save that has one, and `revisions_table` the revision of a save
        that makes one (the newest `revisions_kept` of each article are kept). The command-line tool, which
        only restores feed entries, needs none of them."""
        self._client = client
        self._table = table_name
        self._publications_table = publications_table
        self._audit_table = audit_table
        self._revisions_table = revisions_table
        self._revisions_kept = revisions_kept

    @cached_property
    def news(self) -> NewsRepository:
        """The news entries' reads (their writes are this repository's `save`)."""
        from newsdesk.dal.news import NewsRepository

        return NewsRepository(self._client, self._table)

    # ------------------------------------------------------------------ reads
    def get(self, article_id: str) -> Article | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_article_key(article_id), ConsistentRead=True)
        item = reply.get("Item")
        return Article.model_validate(from_attributes(item)) if item else None

    def get_public(self, slug: str) -> PublicArticle | None:
        """One GetItem: the slug claim of a published article carries the public copy."""
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_slug_key(slug))
        item = from_attributes(reply.get("Item", {}))
        if not item.get("published"):
            return None
        return PublicArticle.model_validate(item)

    def get_public_many(self, slugs: Sequence[str]) -> dict[str, PublicArticle]:
        """Published articles by slug, in one BatchGetItem (at most 100 slugs); unpublished ones are absent."""
        if not slugs:
            return {}
        keys: list[dict[str, Any]] = [_slug_key(slug) for slug in dict.fromkeys(slugs)]
        found: dict[str, PublicArticle] = {}
        while keys:
            with aws_errors():
                reply = self._client.batch_get_item(RequestItems={self._table: {"Keys": keys}})
            for attributes in reply.get("Responses", {}).get(self._table, []):
                item = from_attributes(attributes)
                if item.get("published"):
                    article = PublicArticle.model_validate(item)
                    found[article.slug] = article
            # DynamoDB may leave keys unprocessed when throttled or past 16 MB: ask again for those only.
            keys = reply.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return found

    def author(self, slug: str) -> AuthorProfile | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_author_key(slug))
        item = reply.get("Item")
        return AuthorProfile.model_validate(from_attributes(item)) if item else None

    def authors(self, slugs: Sequence[str]) -> dict[str, AuthorProfile]:
        """Author profiles by slug, in one BatchGetItem (an article has at most a few); unknown ones are absent."""
        keys: list[dict[str, Any]] = [_author_key(slug) for slug in dict.fromkeys(slugs)]
        found: dict[str, AuthorProfile] = {}
        while keys:
            with aws_errors():
                reply = self._client.batch_get_item(RequestItems={self._table: {"Keys": keys}})
            for attributes in reply.get("Responses", {}).get(self._table, []):
                profile = AuthorProfile.model_validate(from_attributes(attributes))
                found[profile.slug] = profile
            keys = reply.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return found

    def author_page(self, *, limit: int, cursor: str | None) -> tuple[list[Author], str | None]:
        """Authors by slug: one Query of `by-entity` reading at most `limit + 1` profiles."""
        items, next_cursor = self._query_page(
            index="by-entity",
            condition="entity = :v",
            values={":v": {"S": "author"}},
            key_names=frozenset({"pk", "entity", "entity_sort"}),
            limit=limit,
            cursor=cursor,
            newest_first=False,
        )
        return [Author.model_validate(item) for item in items], next_cursor

    def slug_owner(self, slug: str) -> str | None:
        with aws_errors():
            reply = self._client.get_item(
                TableName=self._table, Key=_slug_key(slug), ConsistentRead=True, ProjectionExpression="article_id"
            )
        return from_attributes(reply.get("Item", {})).get("article_id")

    def list_public(
        self, *, tag: str | None, author: str | None, limit: int, cursor: str | None
    ) -> tuple[list[ArticleSummary], str | None]:
        """Newest first: one Query of one feed, reading at most limit + 1 items whatever the filters."""
        if tag and author:
            feed = tag_author_feed(tag, author)
        else:
            feed = tag_feed(tag) if tag else author_feed(author) if author else FEED_ALL
        items, next_cursor = self._query_page(
            index="by-feed",
            condition="feed = :feed",
            values={":feed": {"S": feed}},
            key_names=_FEED_PAGE_KEYS,
            limit=limit,
            cursor=cursor,
            newest_first=True,
            filters={"feed": feed},
        )
        return [ArticleSummary.model_validate(item) for item in items], next_cursor

    def list_admin(
        self, *, status: ArticleStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Article], str | None]:
        if status is None:
            index, condition, values = "by-entity", "entity = :v", {":v": {"S": "article"}}
            key_names = frozenset({"pk", "entity", "entity_sort"})
        else:
            index, condition, values = "by-status", "#status = :v", {":v": {"S": status.value}}
            key_names = frozenset({"pk", "status", "status_sort"})
        items, next_cursor = self._query_page(
            index=index,
            condition=condition,
            values=values,
            names={"#status": "status"} if status else None,
            key_names=key_names,
            limit=limit,
            cursor=cursor,
            # Scheduled articles come soonest first; everything else newest first.
            newest_first=status is not ArticleStatus.SCHEDULED,
            filters={"status": status.value if status else None},
        )
        return [Article.model_validate(item) for item in items], next_cursor

    def list_owned(
        self, owner: str, *, status: ArticleStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Article], str | None]:
        """One author's articles, newest first: one Query of `by-owner` reading at most `limit + 1` items (with
        a status, the ones of other statuses among them are left out: a page may be short)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-owner",
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": owner}},
            "ScanIndexForward": False,
        }
        if status is not None:
            request["FilterExpression"] = "#status = :status"
            request["ExpressionAttributeNames"]["#status"] = "status"
            request["ExpressionAttributeValues"][":status"] = {"S": status.value}
        items, next_cursor = query_page(
            self._client.query,
            request,
            limit=limit,
            cursor=cursor,
            key_names=frozenset({"pk", "owner", "owner_sort"}),
            partition={"owner": {"S": owner}},
            filters={"status": status.value if status else None},
        )
        return [Article.model_validate(item) for item in items], next_cursor

    def published_between(self, start_iso: str, end_iso: str, *, limit: int) -> list[ArticleSummary]:
        """Articles first published in [start, end), newest first (a digest's contents)."""
        items, _ = self._query_page(
            index="by-feed",
            condition="feed = :feed AND feed_sort BETWEEN :start AND :end",
            values={":feed": {"S": FEED_ALL}, ":start": {"S": start_iso}, ":end": {"S": end_iso}},
            key_names=_FEED_PAGE_KEYS,
            limit=limit,
            cursor=None,
            newest_first=True,
        )
        return [ArticleSummary.model_validate(item) for item in items]

    def due_scheduled(self, *, now_iso: str, limit: int, cursor: str | None = None) -> tuple[list[Article], str | None]:
        """Scheduled articles whose time has come, oldest first, a page at a time; reads only due items."""
        items, next_cursor = self._query_page(
            index="by-status",
            condition="#status = :s AND status_sort <= :now",
            values={":s": {"S": ArticleStatus.SCHEDULED.value}, ":now": {"S": f"{now_iso}#~"}},
            names={"#status": "status"},
            key_names=frozenset({"pk", "status", "status_sort"}),
            limit=limit,
            cursor=cursor,
            newest_first=False,
        )
        return [Article.model_validate(item) for item in items], next_cursor

    def _query_page(
        self,
        *,
        index: str,
        condition: str,
        values: dict[str, Any],
        key_names: frozenset[str],
        limit: int,
        cursor: str | None,
        newest_first: bool,
        names: dict[str, str] | None = None,
        filters: Filters | None = None,
    ) -> tuple[list[Item], str | None]:
        """One page of an index, with no filter and no second read: a page costs the same whatever the table
        holds. The key condition's first value is the index's partition; a cursor from another partition
        (another tag's list, say) is refused."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        partition = {_PARTITION_KEY[index]: next(iter(values.values()))}
        return query_page(self._client.query, request, limit=limit, cursor=cursor, key_names=key_names,
                          partition=partition, filters=filters)  # fmt: skip

    # ------------------------------------------------------------------ writes
    def save(
        self,
        old: Article | None,
        new: Article | None,
        *,
        announce: bool = False,
        alert: bool = False,
        audit: AuditEntry | None = None,
        revision: Revision | None = None,
    ) -> None:
        """Move an article from `old` to `new` (None: absent) in one transaction.

        The article write is conditional on `old.version`, a new slug on nobody holding it. With `announce`,
        the newsletter's publication record (its outbox entry) joins the same transaction, on condition that
        the id was never announced before (AlreadyAnnounced otherwise); with `alert`, the breaking-news
        alert's record, on the same condition. `audit`, the change's entry in the audit trail, and
        `revision`, the content a save wrote, are written in the same transaction too (with the deletion of
        the revision that falls out of the kept ones).
        """
        assert old or new
        writes: list[dict[str, Any]] = []
        kinds: list[str] = []

        def add(kind: str, write: dict[str, Any]) -> None:
            kinds.append(kind)
            writes.append(write)

        if new is None:
            assert old is not None
            add("article", self._delete_article(old))
        else:
            add("article", self._put_article(new, old))

        old_slug = old.slug if old else None
        new_slug = new.slug if new else None
        if new is not None and new_slug != old_slug:
            add("slug", {"Put": {
                "TableName": self._table,
                "Item": self._slug_item(new),
                "ConditionExpression": "attribute_not_exists(pk)",
            }})  # fmt: skip
        elif new is not None and _public_copy(new) != (_public_copy(old) if old else None):
            add("slug-update", {"Put": {"TableName": self._table, "Item": self._slug_item(new)}})
        if old is not None and old_slug != new_slug:
            add("slug-release", {"Delete": {"TableName": self._table, "Key": _slug_key(old.slug)}})

        old_entries = self._feed_entries(old)
        new_entries = self._feed_entries(new)
        for pk, entry in new_entries.items():
            if old_entries.get(pk) != entry:
                add("feed", {"Put": {"TableName": self._table, "Item": to_attributes(entry)}})
        for pk in old_entries.keys() - new_entries.keys():
            add("feed", {"Delete": {"TableName": self._table, "Key": {"pk": {"S": pk}}}})

        if announce or alert:
            # Only a publish or an alert writes an outbox entry: reads and other edits of an article need not
            # load the delivery records (and their models) on a cold start.
            from newsdesk.dal.publications import breaking_write, publication_write
        if announce:
            assert new is not None
            assert self._publications_table, "this repository was built without the publications table"
            add("announce", publication_write(self._publications_table, new))
        if audit is not None:
            from newsdesk.dal.audit import audit_write

            assert self._audit_table, "this repository was built without the audit table"
            add("audit", audit_write(self._audit_table, audit))
        if revision is not None:
            from newsdesk.dal.revisions import revision_writes

            assert self._revisions_table, "this repository was built without the revisions table"
            for write in revision_writes(self._revisions_table, revision, kept=self._revisions_kept):
                add("revision", write)
        if alert:
            assert new is not None
            assert self._publications_table, "this repository was built without the publications table"
            add("alert", breaking_write(self._publications_table, new))

        try:
            with aws_errors():
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(exc)
            failed = {kinds[i] for i, code in enumerate(reasons) if code not in ("None", "")}
            if "slug" in failed:
                raise SlugTaken(f"the slug {new_slug!r} belongs to another article") from exc
            if failed and failed <= {"announce", "alert"}:
                raise AlreadyAnnounced("this article's id was announced before", kinds=frozenset(failed)) from exc
            raise VersionConflict(
                "the article was changed by someone else; read it again and retry",
                details={"reasons": sorted(set(reasons) - {"None"})},
            ) from exc

    def restore_feed_entries(self, article: Article) -> bool:
        """Write every feed entry `article` should have (again), in one transaction that holds only while the
        article is still at `article.version`. False when it changed meanwhile: read it again and retry."""
        entries = self._feed_entries(article)
        if not entries:
            return True
        check = {"ConditionCheck": {
            "TableName": self._table,
            "Key": _article_key(article.id),
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": {":v": {"N": str(article.version)}},
        }}  # fmt: skip
        puts = [{"Put": {"TableName": self._table, "Item": to_attributes(entry)}} for entry in entries.values()]
        try:
            with aws_errors():
                self._client.transact_write_items(TransactItems=[check, *puts])
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            return False
        return True

    def stored_items(self, article: Article) -> list[dict[str, Any]]:
        """Every item `save(None, article)` writes, in DynamoDB's attribute format (for bulk loading)."""
        writes = [self._put_article(article, None)["Put"]["Item"], self._slug_item(article)]
        return writes + [to_attributes(entry) for entry in self._feed_entries(article).values()]

    def _put_article(self, new: Article, old: Article | None) -> dict[str, Any]:
        item = new.model_dump(mode="json", exclude_none=True)
        status_moment = {
            ArticleStatus.SCHEDULED: new.publish_at or new.updated_at,
            ArticleStatus.PUBLISHED: new.published_at or new.updated_at,
        }.get(new.status, new.updated_at)
        item.update(
            pk=f"article#{new.id}",
            entity="article",
            entity_sort=f"{iso(new.created_at)}#{new.id}",
            status_sort=f"{iso(status_moment)}#{new.id}",
        )
        if new.created_by:
            item.update(owner=new.created_by, owner_sort=item["entity_sort"])
        put: dict[str, Any] = {"TableName": self._table, "Item": to_attributes(item)}
        if old is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(old.version)}}
        return {"Put": put}

    def _delete_article(self, old: Article) -> dict[str, Any]:
        return {"Delete": {
            "TableName": self._table,
            "Key": _article_key(old.id),
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": {":v": {"N": str(old.version)}},
        }}  # fmt: skip

    def _slug_item(self, article: Article) -> dict[str, Any]:
        item: dict[str, Any] = {"pk": f"slug#{article.slug}", "article_id": article.id, "published": False}
        public = _public_copy(article)
        if public is not None:
            item.update(public, published=True)
        return to_attributes(item)

    def _feed_entries(self, article: Article | None) -> dict[str, Item]:
        """The article's entries in the `by-feed` index: its public lists, and its news entries (dal.news)."""
        if article is None:
            return {}
        # The news entries' records (and the sitemap's and corrections' models) load with the first write:
        # a function that only reads articles, as the mailer does, never needs them.
        from newsdesk.dal.news import news_entries

        news = news_entries(article)
        if not article.public:
            return news
        assert article.published_at is not None
        summary = article.model_dump(mode="json", include=set(_LIST_FIELDS))
        sort = f"{iso(article.published_at)}#{article.id}"
        return {
            f"feed#{feed}#{article.id}": {
                **summary,
                "pk": f"feed#{feed}#{article.id}",
                "feed": feed,
                "feed_sort": sort,
            }
            for feed in _feeds(article)
        } | news


def _public_copy(article: Article | None) -> dict[str, Any] | None:
    if article is None or not article.public:
        return None
    return article.model_dump(mode="json", include=set(_PUBLIC_FIELDS))
