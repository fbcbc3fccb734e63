"""Topic routes: the public list a sign-up form offers, and the editor's catalog."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body

from newsdesk.api.access import requires
from newsdesk.api.resolver import AUTH_ERRORS, EditorRouter, documented
from newsdesk.dependencies import topic_cleanup, topic_service
from newsdesk.models.people import Role
from newsdesk.models.topics import (
    CreateTopicRequest,
    PublicTopic,
    PublicTopicList,
    Topic,
    TopicList,
    UpdateTopicRequest,
)
from newsdesk.services.erasure import TopicCleanup
from newsdesk.services.topics import TopicService

router = Router()
admin_router = EditorRouter()

Topics = Annotated[TopicService, Depends(topic_service)]


@router.get(
    "/topics",
    summary="The topics readers may follow (for a sign-up form's choices)",
    tags=["Subscribers"],
    responses=documented(200, "Every topic, by slug.", 503),
)
def list_public_topics(topics: Topics) -> Response[PublicTopicList]:
    listed = PublicTopicList(items=[PublicTopic.model_validate(topic.model_dump()) for topic in topics.all()])
    return Response(200, content_types.APPLICATION_JSON, listed, headers={"Cache-Control": "public, max-age=60"})


@admin_router.post(
    "/topics",
    summary="Add a topic (articles tagged with its slug belong to it)",
    tags=["Topics"],
    responses=documented(201, "The topic.", *AUTH_ERRORS, 400, 409, 415, 503),
)
@requires(Role.EDITOR)
def create_topic(request: Annotated[CreateTopicRequest, Body()], topics: Topics) -> Response[Topic]:
    topic = topics.create(request)
    return Response(201, content_types.APPLICATION_JSON, topic, headers={"Location": f"/admin/topics/{topic.slug}"})


@admin_router.get(
    "/topics",
    summary="Every topic",
    tags=["Topics"],
    responses=documented(200, "Every topic, by slug.", *AUTH_ERRORS, 503),
)
@requires(Role.EDITOR)
def list_topics(topics: Topics) -> TopicList:
    return TopicList(items=topics.all())


@admin_router.patch(
    "/topics/<slug>",
    summary="Rename a topic or change its description (its slug stays)",
    tags=["Topics"],
    responses=documented(200, "The topic.", *AUTH_ERRORS, 400, 404, 415, 503),
)
@requires(Role.EDITOR)
def update_topic(slug: str, request: Annotated[UpdateTopicRequest, Body()], topics: Topics) -> Topic:
    return topics.update(slug, request)


@admin_router.delete(
    "/topics/<slug>",
    summary="Delete a topic: nobody is mailed for it any more, and it leaves every reader's topics",
    tags=["Topics"],
    responses=documented(204, "Deleted.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.EDITOR)
def delete_topic(slug: str, cleanup: Annotated[TopicCleanup, Depends(topic_cleanup)]) -> Response[None]:
    cleanup.delete(slug)
    return Response(204)
