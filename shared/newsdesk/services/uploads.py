"""Publishing by upload: Markdown files under `articles/` become articles, CSV files under `subscribers/`
are imported; every upload gets a record editors can list.

An article file goes through `ArticleService` (create, update, publish, schedule) exactly as the API's
requests do: the same validation, rendering, slugs, and the one publish path, so an article is announced
once however often its file is uploaded again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from newsdesk.clock import utc_now
from newsdesk.dal.uploads import Source, SourceClaim, UploadObjects, UploadRepository, sequencer_key
from newsdesk.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RetryLater,
    UploadRejected,
    validation_message,
)
from newsdesk.models.articles import Article, ArticleStatus, CreateArticleRequest, UpdateArticleRequest
from newsdesk.models.people import SYSTEM_UPLOAD
from newsdesk.models.types import MAX_BODY_BYTES
from newsdesk.models.uploads import (
    ArticleFile,
    ConfirmationBatch,
    ImportChunk,
    ObjectUpload,
    Upload,
    UploadKind,
    UploadOutcome,
)
from newsdesk.observability import logger
from newsdesk.services.articles import ArticleService, new_article_id
from newsdesk.services.imports import FIRST_DATA_ROW, SubscriberImporter
from newsdesk.slugs import normalize_tag

ARTICLES_PREFIX = "articles/"
SUBSCRIBERS_PREFIX = "subscribers/"
CONFIRMED_SUBSCRIBERS_PREFIX = "subscribers/confirmed/"
MAX_FRONT_MATTER_BYTES = 8 * 1024
MAX_ARTICLE_FILE_BYTES = MAX_BODY_BYTES + MAX_FRONT_MATTER_BYTES
"""The API's body limit, plus room for the front matter (the body itself is then held to the API's limit)."""
APPLY_ATTEMPTS = 3
"""Tries at applying an article file while editors change the same article over the API."""


def upload_kind(key: str) -> UploadKind | None:
    """What a key holds, by the bucket layout; None for anything else (such as `media/`)."""
    if key.startswith(ARTICLES_PREFIX) and key.endswith(".md"):
        return UploadKind.ARTICLE
    if key.startswith(SUBSCRIBERS_PREFIX) and key.endswith(".csv"):
        return UploadKind.SUBSCRIBERS
    return None


def upload_id(key: str, sequencer: str) -> str:
    """Named by the object version's event, so every delivery of the same event names the same record."""
    return hashlib.sha256(f"{key}\n{sequencer}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ArticleUpload:
    """An article file, read and validated."""

    front: ArticleFile
    request: CreateArticleRequest


def _validation_reason(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = validation_message(item)
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def read_article_file(data: bytes, *, default_author: str) -> ArticleUpload:
    """UTF-8 Markdown with YAML front matter, checked by the API's own request model."""
    # Imported here: every function imports this module (through newsdesk.dependencies), only uploads read YAML.
    import frontmatter
    import yaml

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadRejected(f"the file is not UTF-8 text (byte {exc.start} is not valid UTF-8)") from exc
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise UploadRejected(f"the front matter is not valid YAML: {detail}") from exc
    try:
        front = ArticleFile.model_validate(post.metadata)
        request = CreateArticleRequest(
            title=front.title,
            body=post.content,
            author=front.author or default_author,
            summary=front.summary,
            tags=front.tags,
            slug=front.slug,
        )
    except ValidationError as exc:
        raise UploadRejected(_validation_reason(exc)) from exc
    return ArticleUpload(front=front, request=request)


def _normalized_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(normalize_tag(tag) for tag in tags))


def _changes(current: Article, upload: ArticleUpload) -> UpdateArticleRequest:
    """Only the fields the file changes, so an unchanged file changes nothing (not even the version).
    A file without a slug keeps the article's slug: its address stays put when the title changes."""
    request = upload.request
    fields: dict[str, object] = {}
    for name in ("title", "body", "author"):
        if getattr(request, name) != getattr(current, name):
            fields[name] = getattr(request, name)
    if request.summary is not None and (not current.custom_summary or request.summary != current.summary):
        fields["summary"] = request.summary
    elif request.summary is None and current.custom_summary:
        fields["summary"] = None  # back to a summary derived from the body
    normalized = _normalized_tags(request.tags)
    if normalized != current.tags or "" in normalized:
        fields["tags"] = request.tags  # the service normalizes them (and refuses a tag without letters)
    if request.slug and request.slug != current.slug:
        fields["slug"] = request.slug
    return UpdateArticleRequest.model_validate(fields)


class UploadService:
    def __init__(
        self,
        *,
        uploads: UploadRepository,
        objects: UploadObjects,
        articles: ArticleService,
        importer: SubscriberImporter,
        default_author: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._uploads = uploads
        self._objects = objects
        self._articles = articles
        self._importer = importer
        self._default_author = default_author
        self._clock = clock

    # ------------------------------------------------------------------ S3 events
    def receive(self, upload: ObjectUpload, *, seconds_left: Callable[[], float]) -> Upload | None:
        """Apply one object version. A duplicate event, or an older version arriving after a newer one,
        changes nothing and returns None; a file that cannot be used is recorded as rejected."""
        kind = upload_kind(upload.key)
        sequencer = sequencer_key(upload.sequencer)
        if kind is None or sequencer is None:
            logger.warning("upload ignored", extra={"key": upload.key, "sequencer": upload.sequencer})
            return None
        record_id = upload_id(upload.key, sequencer)
        now = self._clock()
        claim, source = self._uploads.claim(
            upload.key,
            sequencer,
            now=now,
            # The claim lapses when this invocation ends, however it ends.
            lease_until=now + timedelta(seconds=max(1.0, seconds_left())),
            article_id=new_article_id() if kind is UploadKind.ARTICLE else None,
        )
        if claim is SourceClaim.STALE:
            logger.info("upload already applied, or superseded by a newer one", extra={"key": upload.key})
            return None
        if claim is SourceClaim.BUSY:
            raise RetryLater(f"another upload of {upload.key!r} is being applied")
        assert source is not None
        try:
            if kind is UploadKind.ARTICLE:
                record, imported = self._apply_article(upload, source, record_id, now), False
            else:
                record = self._import_subscribers(upload, record_id, now, seconds_left)
                imported = record.outcome is not UploadOutcome.REJECTED
            # An import saved its record as it went (its continuation may be saving it right now).
            completed = self._uploads.complete(upload.key, sequencer, record, write_record=not imported)
        except BaseException:
            # Lambda retries the event: let the retry claim the key at once rather than when the lease ends.
            self._uploads.release(upload.key, sequencer)
            raise
        if not completed:
            raise RetryLater(f"the claim on {upload.key!r} lapsed before the upload was recorded")
        logger.info("upload applied", extra={"key": upload.key, "outcome": record.outcome, "reason": record.reason})
        return record

    def _record(self, upload: ObjectUpload, record_id: str, kind: UploadKind, now: datetime) -> Upload:
        return Upload(
            id=record_id,
            key=upload.key,
            kind=kind,
            outcome=UploadOutcome.REJECTED,
            version_id=upload.version_id,
            etag=upload.etag or None,
            received_at=now,
            updated_at=now,
        )

    # ------------------------------------------------------------------ articles
    def _apply_article(self, upload: ObjectUpload, source: Source, record_id: str, now: datetime) -> Upload:
        """Every article file ends in a recorded outcome: applied, or rejected with the reason."""
        record = self._record(upload, record_id, UploadKind.ARTICLE, now)
        assert source.article_id is not None
        current = self._find(source.article_id)
        try:
            file = self._read_article(upload)
            for _ in range(APPLY_ATTEMPTS):
                try:
                    outcome, article = self._publish_file(file, current, source.article_id)
                except (PreconditionFailed, NotFound):
                    # An editor changed or deleted the article while this file was applied: read it again.
                    current = self._find(source.article_id)
                    continue
                return record.model_copy(update={"outcome": outcome, "article_id": article.id, "slug": article.slug})
            raise UploadRejected("the article kept changing while this file was applied; upload it again")
        except UploadRejected as exc:
            kept = {"article_id": current.id, "slug": current.slug} if current else {}
            return record.model_copy(update={"reason": exc.reason, **kept})

    def _find(self, article_id: str) -> Article | None:
        try:
            return self._articles.get(article_id)
        except NotFound:
            return None  # never created, or deleted by an editor: the next upload creates it again

    def _read_article(self, upload: ObjectUpload) -> ArticleUpload:
        too_large = f"the file is larger than {MAX_ARTICLE_FILE_BYTES} bytes"
        if upload.size is not None and upload.size > MAX_ARTICLE_FILE_BYTES:
            raise UploadRejected(too_large)
        stored = self._objects.open(upload.bucket, upload.key, version_id=upload.version_id, etag=upload.etag)
        if stored is None:
            raise UploadRejected("the file was deleted or replaced before it could be read")
        with closing(stored.body):
            if stored.size > MAX_ARTICLE_FILE_BYTES:
                raise UploadRejected(too_large)
            data = stored.body.read(MAX_ARTICLE_FILE_BYTES + 1)
        if len(data) > MAX_ARTICLE_FILE_BYTES:
            raise UploadRejected(too_large)
        return read_article_file(data, default_author=self._default_author)

    def _publish_file(
        self, upload: ArticleUpload, current: Article | None, article_id: str
    ) -> tuple[UploadOutcome, Article]:
        """Bring the article to what the file says; every check that can refuse the file runs before the
        first write, so a refused file leaves no partial article behind."""
        wanted = upload.front.wanted_status
        publish_at = upload.front.publish_at
        if publish_at is not None and publish_at <= self._clock():
            raise UploadRejected(f"publish_at {publish_at.isoformat()} is in the past")
        if wanted is ArticleStatus.SCHEDULED and current and current.status is ArticleStatus.PUBLISHED:
            raise UploadRejected("the article is already published, so it cannot be scheduled")
        try:
            if current is None:
                # A deleted article's file makes it again under the key's id; if it was announced before,
                # publishing it again sends no second newsletter (ArticleService.publish).
                article = self._articles.create(upload.request, article_id=article_id, actor=SYSTEM_UPLOAD)
                outcome = UploadOutcome.CREATED
            else:
                changes = _changes(current, upload)
                article = self._articles.update(current.id, changes, if_match=current.version, actor=SYSTEM_UPLOAD)
                outcome = UploadOutcome.UPDATED
            if wanted is ArticleStatus.PUBLISHED and article.status is not ArticleStatus.PUBLISHED:
                published = self._articles.publish(article.id, if_match=article.version, actor=SYSTEM_UPLOAD)
                return UploadOutcome.PUBLISHED, published
            if wanted is ArticleStatus.SCHEDULED:
                assert publish_at is not None
                scheduled = self._articles.schedule(
                    article.id, publish_at, if_match=article.version, actor=SYSTEM_UPLOAD
                )
                return UploadOutcome.SCHEDULED, scheduled
            if wanted is ArticleStatus.DRAFT and article.status is ArticleStatus.PUBLISHED:
                unpublished = self._articles.unpublish(article.id, if_match=article.version, actor=SYSTEM_UPLOAD)
                return UploadOutcome.UNPUBLISHED, unpublished
            if wanted is ArticleStatus.DRAFT and article.status is ArticleStatus.SCHEDULED:
                article = self._articles.unschedule(article.id, if_match=article.version, actor=SYSTEM_UPLOAD)
        except (InvalidInput, Conflict, PayloadTooLarge) as exc:
            # What the API answers with a 4xx is the file's fault here (a taken slug, an empty tag, ...).
            raise UploadRejected(exc.message) from exc
        return outcome, article

    # ------------------------------------------------------------------ subscribers
    def _import_subscribers(
        self, upload: ObjectUpload, record_id: str, now: datetime, seconds_left: Callable[[], float]
    ) -> Upload:
        """Check the file, then import its first chunk in this invocation (the rest follows from the
        queue). A retried event finds the record an earlier attempt saved and carries on from its row."""
        record = self._uploads.get(record_id)
        if record is None:
            record = self._record(upload, record_id, UploadKind.SUBSCRIBERS, now).model_copy(
                update={"confirmed": upload.key.startswith(CONFIRMED_SUBSCRIBERS_PREFIX)}
            )
            try:
                rows = self._importer.check(upload)
            except UploadRejected as exc:
                return record.model_copy(update={"reason": exc.reason})
            record = record.model_copy(
                update={
                    "outcome": UploadOutcome.IMPORTING,
                    "rows": rows,
                    "next_row": FIRST_DATA_ROW,
                    "imported": 0,
                    "skipped": 0,
                    "invalid": 0,
                    "invalid_rows": [],
                    "skipped_rows": [],
                }
            )
            self._uploads.create(record)
        if record.next_row is not None:
            chunk = ImportChunk(
                upload_id=record.id,
                bucket=upload.bucket,
                key=upload.key,
                version_id=upload.version_id,
                etag=upload.etag,
                start_row=record.next_row,
            )
            self._importer.run_chunk(chunk, seconds_left=seconds_left)
        return self._uploads.get(record_id) or record

    # ------------------------------------------------------------------ the import queue
    def run_task(self, task: ImportChunk | ConfirmationBatch, *, seconds_left: Callable[[], float]) -> None:
        if isinstance(task, ImportChunk):
            self._importer.run_chunk(task, seconds_left=seconds_left)
        else:
            self._importer.send_confirmations(task, seconds_left=seconds_left)

    # ------------------------------------------------------------------ editors
    def page(self, *, limit: int, cursor: str | None) -> tuple[list[Upload], str | None]:
        return self._uploads.page(limit=limit, cursor=cursor)
