"""The newsroom's people and their tokens (admins), and who the caller is (everyone with a token)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from newsdesk.api.access import current_actor, requires
from newsdesk.api.resolver import AUTH_ERRORS, EditorRouter, documented
from newsdesk.dependencies import people_service
from newsdesk.models.authors import Author, AuthorProfileRequest
from newsdesk.models.people import (
    Actor,
    CreatePersonRequest,
    CreateTokenRequest,
    Me,
    Person,
    PersonPage,
    Role,
    UpdatePersonRequest,
)
from newsdesk.models.tokens import IssuedToken, Token, TokenPage
from newsdesk.services.people import PeopleService

router = EditorRouter()

People = Annotated[PeopleService, Depends(people_service)]
Caller = Annotated[Actor, Depends(current_actor)]
Cursor = Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")]
TAGS = ["People"]


@router.get(
    "/me",
    summary="Who this token belongs to, and its role",
    tags=TAGS,
    responses=documented(200, "The caller.", *AUTH_ERRORS, 503),
)
@requires(Role.CONTRIBUTOR)
def whoami(people: People, actor: Caller) -> Me:
    person = people.get(actor.person_id) if actor.person_id else None
    return Me(actor=actor.id, role=actor.role, person=person)


@router.post(
    "/people",
    summary="Add a person to the newsroom, with a role",
    tags=TAGS,
    responses=documented(201, "The person.", *AUTH_ERRORS, 400, 409, 415, 503, headers=("Location",)),
)
@requires(Role.ADMIN)
def create_person(request: Annotated[CreatePersonRequest, Body()], people: People, actor: Caller) -> Response[Person]:
    person = people.create(request, actor=actor)
    headers = {"Location": f"/admin/people/{person.id}"}
    return Response(201, content_types.APPLICATION_JSON, person, headers=headers)


@router.get(
    "/people",
    summary="List the newsroom's people, oldest first",
    tags=TAGS,
    responses=documented(200, "One page of people.", *AUTH_ERRORS, 503),
)
@requires(Role.ADMIN)
def list_people(people: People, limit: Annotated[int, Query(ge=1, le=100)] = 50, cursor: Cursor = None) -> PersonPage:
    items, next_cursor = people.page(limit=limit, cursor=cursor)
    return PersonPage(items=items, next_cursor=next_cursor)


@router.get(
    "/people/<person_id>",
    summary="Read one person",
    tags=TAGS,
    responses=documented(200, "The person.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.ADMIN)
def get_person(person_id: str, people: People) -> Person:
    return people.get(person_id)


@router.patch(
    "/people/<person_id>",
    summary="Change a person's name, address or role, or disable them (their tokens stop working at once)",
    tags=TAGS,
    responses=documented(200, "The person.", *AUTH_ERRORS, 400, 404, 409, 415, 503),
)
@requires(Role.ADMIN)
def update_person(
    person_id: str, request: Annotated[UpdatePersonRequest, Body()], people: People, actor: Caller
) -> Person:
    return people.update(person_id, request, actor=actor)


@router.post(
    "/people/<person_id>/tokens",
    summary="Give a person a token (the secret is in this answer only)",
    tags=TAGS,
    responses=documented(201, "The token, with its secret.", *AUTH_ERRORS, 400, 404, 409, 415, 503),
)
@requires(Role.ADMIN)
def create_token(
    person_id: str, request: Annotated[CreateTokenRequest, Body()], people: People, actor: Caller
) -> Response[IssuedToken]:
    issued = people.issue_token(person_id, request, actor=actor)
    return Response(201, content_types.APPLICATION_JSON, issued, headers={"Cache-Control": "no-store"})


@router.get(
    "/people/<person_id>/tokens",
    summary="A person's tokens (ids and names, never the secrets)",
    tags=TAGS,
    responses=documented(200, "One page of tokens.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.ADMIN)
def list_tokens(
    person_id: str, people: People, limit: Annotated[int, Query(ge=1, le=100)] = 50, cursor: Cursor = None
) -> TokenPage:
    items, next_cursor = people.tokens(person_id, limit=limit, cursor=cursor)
    return TokenPage(items=items, next_cursor=next_cursor)


@router.delete(
    "/people/<person_id>/tokens/<token_id>",
    summary="Revoke one of a person's tokens (it stops working at once)",
    tags=TAGS,
    responses=documented(200, "The revoked token.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.ADMIN)
def revoke_token(person_id: str, token_id: str, people: People, actor: Caller) -> Token:
    return people.revoke_token(person_id, token_id, actor=actor)


@router.put(
    "/people/<person_id>/author",
    summary="Set a person's author profile: slug (chosen once), name, bio, image, links (themselves, or an admin)",
    tags=TAGS,
    responses=documented(200, "The profile, as `GET /authors/{slug}` shows it.", *AUTH_ERRORS, 400, 404, 409, 415, 503),
)
@requires(Role.CONTRIBUTOR)
def set_author_profile(
    person_id: str, request: Annotated[AuthorProfileRequest, Body()], people: People, actor: Caller
) -> Author:
    return people.set_author_profile(person_id, request, actor=actor)
