"""The newsroom's people in DynamoDB (docs/data-model.md, "PeopleTable"): one item per person, and one claim
per email address, written in the same transaction, so two people never share an address."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.articles import SlugTaken, author_profile_write
from newsdesk.dal.audit import audit_write
from newsdesk.dal.dynamodb import (
    aws_errors,
    cancellation_reasons,
    error_code,
    from_attributes,
    query_page,
    to_attributes,
)
from newsdesk.errors import Conflict
from newsdesk.models.audit import AuditEntry
from newsdesk.models.authors import AuthorProfile
from newsdesk.models.people import Person

_LIST_KEYS = frozenset({"pk", "entity", "entity_sort"})


class EmailTaken(Conflict):
    code = "email_taken"


def _person_key(person_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"person#{person_id}"}}


def _email_key(email: str) -> dict[str, Any]:
    return {"pk": {"S": f"email#{email}"}}


class PeopleRepository:
    def __init__(self, client: Any, table_name: str, *, audit_table: str = "", articles_table: str = "") -> None:
        """`articles_table` holds author profiles (the public reads them with the articles)."""
        self._client = client
        self._table = table_name
        self._audit_table = audit_table
        self._articles_table = articles_table

    def get(self, person_id: str) -> Person | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_person_key(person_id), ConsistentRead=True)
        item = reply.get("Item")
        return Person.model_validate(from_attributes(item)) if item else None

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[Person], str | None]:
        """Oldest first: one Query of the `by-entity` index reading at most `limit + 1` people."""
        request = {
            "TableName": self._table,
            "IndexName": "by-entity",
            "KeyConditionExpression": "entity = :person",
            "ExpressionAttributeValues": {":person": {"S": "person"}},
        }
        items, next_cursor = query_page(self._client.query, request, limit=limit, cursor=cursor, key_names=_LIST_KEYS,
                                        partition={"entity": {"S": "person"}})  # fmt: skip
        return [Person.model_validate(item) for item in items], next_cursor

    def save(
        self,
        old: Person | None,
        new: Person,
        *,
        audit: AuditEntry | None = None,
        profile: AuthorProfile | None = None,
    ) -> None:
        """Create (`old` None) or change a person in one transaction with the address claims, their author
        `profile` if given, and the audit entry; the change holds only if the person is still as `old` was
        (Conflict otherwise)."""
        item = {
            **new.model_dump(mode="json"),
            "pk": f"person#{new.id}",
            "entity": "person",
            "entity_sort": f"{iso(new.created_at)}#{new.id}",
        }
        put: dict[str, Any] = {"TableName": self._table, "Item": to_attributes(item)}
        if old is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "updated_at = :seen"
            put["ExpressionAttributeValues"] = {":seen": {"S": str(old.model_dump(mode="json")["updated_at"])}}
        writes: list[dict[str, Any]] = [{"Put": put}]
        claims_address = old is None or old.email != new.email
        if claims_address:
            writes.append({"Put": {
                "TableName": self._table,
                "Item": {**_email_key(new.email), "person_id": {"S": new.id}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }})  # fmt: skip
        if old is not None and old.email != new.email:
            writes.append({"Delete": {"TableName": self._table, "Key": _email_key(old.email)}})
        if profile is not None:
            assert self._articles_table, "this repository was built without the articles table"
            writes.append(author_profile_write(self._articles_table, profile))
        if audit is not None:
            assert self._audit_table, "this repository was built without the audit table"
            writes.append(audit_write(self._audit_table, audit))
        try:
            with aws_errors():
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(exc)
            if claims_address and reasons[1:2] == ["ConditionalCheckFailed"]:
                raise EmailTaken(f"another person has the address {new.email}") from exc
            if profile is not None and reasons[len(writes) - 1 - (audit is not None)] == "ConditionalCheckFailed":
                raise SlugTaken(f"another author's page is /authors/{profile.slug}", code="author_slug_taken") from exc
            raise Conflict("the person was changed meanwhile; read them again and retry") from exc
