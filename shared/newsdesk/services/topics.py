"""Topics: editors keep the catalog; readers follow topics; an article belongs to the topics among its tags."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from newsdesk.clock import utc_now
from newsdesk.dal.topics import TooManyTopics, TopicBeingDeleted, TopicExists, TopicRepository
from newsdesk.errors import Conflict, InvalidInput, NotFound
from newsdesk.models.topics import MAX_TOPICS, CreateTopicRequest, Topic, UpdateTopicRequest
from newsdesk.observability import logger


class UnknownTopics(InvalidInput):
    code = "unknown_topics"

    def __init__(self, unknown: list[str]) -> None:
        super().__init__(f"no such topic: {', '.join(unknown)} (GET /topics lists them)",
                         details=[{"loc": ["body", "topics"], "unknown": unknown}])  # fmt: skip
        self.unknown = unknown


class TopicService:
    def __init__(self, repository: TopicRepository, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repository
        self._clock = clock

    def all(self) -> list[Topic]:
        return self._repo.all()

    def slugs(self) -> set[str]:
        return {topic.slug for topic in self._repo.all()}

    def create(self, request: CreateTopicRequest) -> Topic:
        now = self._clock()
        topic = Topic(slug=request.slug, name=request.name, description=request.description, created_at=now,
                      updated_at=now)  # fmt: skip
        try:
            self._repo.create(topic)
        except TopicExists:
            raise Conflict(f"there is a topic {request.slug!r} already", code="topic_exists") from None
        except TooManyTopics:
            raise Conflict(f"a publication has at most {MAX_TOPICS} topics", code="too_many_topics") from None
        except TopicBeingDeleted:
            raise Conflict(
                f"the topic {request.slug!r} was deleted and its readers are still being removed; try again in a "
                "minute",
                code="topic_being_deleted",
            ) from None
        logger.info("topic created", extra={"topic": topic.slug})
        return topic

    def update(self, slug: str, request: UpdateTopicRequest) -> Topic:
        changes = request.model_fields_set
        updated = self._repo.update(
            slug,
            name=request.name,
            description=request.description,
            clear_description="description" in changes and request.description is None,
            now=self._clock(),
        )
        if updated is None:
            raise NotFound(f"no topic {slug!r}")
        return updated

    def delete(self, slug: str) -> None:
        """Remove a topic from the catalog: nobody is mailed for it any more. Its readers are removed from it
        next (services.erasure.TopicCleanup); until then the slug cannot be used again."""
        if not self._repo.delete(slug, self._clock()):
            raise NotFound(f"no topic {slug!r}")
        logger.info("topic deleted", extra={"topic": slug})

    def being_deleted(self, slug: str) -> bool:
        return self._repo.being_deleted(slug)

    def deleted(self, slug: str) -> None:
        self._repo.deleted(slug)

    def known(self, slugs: Iterable[str]) -> list[str]:
        """`slugs` without repeats, in order, if every one is a topic; InvalidInput naming the others if not."""
        wanted = list(dict.fromkeys(slugs))
        existing = self.slugs() if wanted else set()
        unknown = [slug for slug in wanted if slug not in existing]
        if unknown:
            raise UnknownTopics(unknown)
        return wanted
