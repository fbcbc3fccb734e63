"""The audit trail: who did what, when, to which article, person, token, subscriber or webhook.

Entries are written once and never changed. They name people by id and subscribers by their recipient key
(a keyed hash of the address), never by an address.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from newsdesk.models.base import Model
from newsdesk.models.people import Role


class AuditTarget(StrEnum):
    ARTICLE = "article"
    PERSON = "person"
    TOKEN = "token"  # noqa: S105 - a kind of record, not a secret
    SUBSCRIBER = "subscriber"
    WEBHOOK = "webhook"


AuditDetail = str | int | bool | None


class AuditEntry(Model):
    id: str
    at: datetime
    actor: str = Field(description="The person's id; `token:<id>` for a token made before people; `system:<job>`.")
    role: Role = Field(description="The role the actor acted in.")
    action: str = Field(description="What happened, such as `article.published` or `token.revoked`.")
    target: AuditTarget
    target_id: str = Field(description="The article's, person's, token's or webhook's id; a subscriber's key.")
    details: dict[str, AuditDetail] = Field(
        default_factory=dict, description="Such as the article's status before and after, or a review's comment."
    )


class AuditPage(Model):
    items: list[AuditEntry]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for older entries.")
