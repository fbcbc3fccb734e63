"""The topic catalog in DynamoDB: one partition holding every topic, a counter that caps how many, and a marker
per deleted topic whose readers are still being removed (a topic cannot be created again until they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import aws_errors, cancellation_reasons, error_code, from_attributes, to_attributes
from newsdesk.models.topics import MAX_TOPICS, Topic

_CATALOG = "topic"
_COUNTER = {"pk": {"S": "count"}, "sk": {"S": "topics"}}
_DELETING = "deleting"


class TopicExists(Exception):
    """A topic with that slug exists already."""


class TooManyTopics(Exception):
    """The catalog holds MAX_TOPICS topics already."""


class TopicBeingDeleted(Exception):
    """A topic of that slug was deleted and its readers are still being removed."""


def _key(slug: str) -> dict[str, Any]:
    return {"pk": {"S": _CATALOG}, "sk": {"S": slug}}


def _marker(slug: str) -> dict[str, Any]:
    return {"pk": {"S": _DELETING}, "sk": {"S": slug}}


def _topic(item: dict[str, Any]) -> Topic:
    plain = from_attributes(item)
    return Topic.model_validate({**plain, "slug": plain["sk"]})


class TopicRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def all(self) -> list[Topic]:
        """Every topic, by slug: one query of at most MAX_TOPICS items, however the table is used."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :catalog",
            "ExpressionAttributeValues": {":catalog": {"S": _CATALOG}},
            "Limit": MAX_TOPICS,
        }
        with aws_errors():
            reply = self._client.query(**request)
        return [_topic(item) for item in reply.get("Items", [])]

    def get(self, slug: str) -> Topic | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(slug), ConsistentRead=True)
        return _topic(reply["Item"]) if "Item" in reply else None

    def create(self, topic: Topic) -> None:
        """Add a topic and count it, together; TopicExists or TooManyTopics when it cannot be added."""
        item = {"pk": _CATALOG, "sk": topic.slug, **topic.model_dump(mode="json", exclude={"slug"}, exclude_none=True)}
        item.update(created_at=iso(topic.created_at), updated_at=iso(topic.updated_at))
        writes = [
            {"Put": {"TableName": self._table, "Item": to_attributes(item),
                     "ConditionExpression": "attribute_not_exists(sk)"}},
            {"Update": {"TableName": self._table, "Key": _COUNTER,
                        "UpdateExpression": "ADD topics :one",
                        "ConditionExpression": "attribute_not_exists(topics) OR topics < :max",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": str(MAX_TOPICS)}}}},
            {"ConditionCheck": {"TableName": self._table, "Key": _marker(topic.slug),
                                "ConditionExpression": "attribute_not_exists(sk)"}},
        ]  # fmt: skip
        try:
            with aws_errors():
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(exc)
            if reasons[:1] == ["ConditionalCheckFailed"]:
                raise TopicExists(topic.slug) from exc
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                raise TooManyTopics(topic.slug) from exc
            if reasons[2:3] == ["ConditionalCheckFailed"]:
                raise TopicBeingDeleted(topic.slug) from exc
            raise

    def update(self, slug: str, *, name: str | None, description: str | None, clear_description: bool,
               now: datetime) -> Topic | None:  # fmt: skip
        """Change a topic's name or description; None if there is no such topic."""
        sets, values = ["updated_at = :now"], {":now": {"S": iso(now)}}
        removes = []
        if name is not None:
            sets.append("#name = :name")
            values[":name"] = {"S": name}
        if description is not None:
            sets.append("description = :description")
            values[":description"] = {"S": description}
        elif clear_description:
            removes.append("description")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(slug),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(sk)",
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if name is not None:
            request["ExpressionAttributeNames"] = {"#name": "name"}
        try:
            with aws_errors():
                reply = self._client.update_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return _topic(reply["Attributes"])

    def delete(self, slug: str, now: datetime) -> bool:
        """Remove a topic and uncount it, and mark its readers as still to be removed, together; False if
        there was no such topic."""
        writes = [
            {"Delete": {"TableName": self._table, "Key": _key(slug), "ConditionExpression": "attribute_exists(sk)"}},
            {"Update": {"TableName": self._table, "Key": _COUNTER, "UpdateExpression": "ADD topics :minus",
                        "ExpressionAttributeValues": {":minus": {"N": "-1"}}}},
            {"Put": {"TableName": self._table, "Item": {**_marker(slug), "deleted_at": {"S": iso(now)}}}},
        ]  # fmt: skip
        try:
            with aws_errors():
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException" and cancellation_reasons(exc)[:1] == [
                "ConditionalCheckFailed"
            ]:
                return False
            raise
        return True

    def being_deleted(self, slug: str) -> bool:
        """Whether a deleted topic of this slug still has readers to remove."""
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_marker(slug), ConsistentRead=True)
        return "Item" in reply

    def deleted(self, slug: str) -> None:
        """The deleted topic's readers are all removed: the slug may be used again."""
        with aws_errors():
            self._client.delete_item(TableName=self._table, Key=_marker(slug))
