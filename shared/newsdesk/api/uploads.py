"""Editor route listing what became of the files uploaded to the UploadsBucket."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Query

from newsdesk.api.access import requires
from newsdesk.api.resolver import EditorRouter, documented
from newsdesk.dependencies import upload_service
from newsdesk.models.people import Role
from newsdesk.models.uploads import UploadPage
from newsdesk.services.uploads import UploadService

router = EditorRouter()

Uploads = Annotated[UploadService, Depends(upload_service)]


@router.get(
    "/uploads",
    summary="List uploaded files and what became of them, newest first",
    tags=["Uploads"],
    responses=documented(200, "One page of uploads.", 401, 403, 503),
)
@requires(Role.EDITOR)
def list_uploads(
    uploads: Uploads,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> UploadPage:
    items, next_cursor = uploads.page(limit=limit, cursor=cursor)
    return UploadPage(items=items, next_cursor=next_cursor)
