"""DynamoDB plumbing shared by the repositories: the client, (de)serialisation and error mapping."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from newsdesk.errors import InvalidInput, ServiceBusy

Item = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)


def dynamodb_client() -> Any:
    """A new client; it honours AWS_ENDPOINT_URL, which is how the local stack is reached (the container
    keeps one per process)."""
    return boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def from_attributes(attributes: Mapping[str, Any]) -> Item:
    return {key: _plain(_deserializer.deserialize(value)) for key, value in attributes.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def cancellation_reasons(exc: ClientError) -> list[str]:
    """The per-item codes of a cancelled transaction ("None" for items that were fine)."""
    return [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn throttling into ServiceBusy (a 503 the client may retry); other ClientErrors are faults."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in RETRYABLE_CODES:
            raise ServiceBusy("the database is busy, please retry shortly") from exc
        raise


def write_if(call: Callable[..., Any], **request: Any) -> bool:
    """Make a conditional write; False (not an error) when its condition does not hold."""
    try:
        with aws_errors():
            call(**request)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


Filters = Mapping[str, str | None]
"""The filters of a list (query parameters that choose which items it holds). A cursor carries their
fingerprint, so it is only good for the list with the same filters."""

_FILTERS_FIELD = "~filters"  # not an attribute name a table of ours uses
_PARTITION_FIELD = "~partition"  # the same: which partition of a list read across several a cursor is in


def _fingerprint(filters: Filters | None) -> str | None:
    chosen = {name: value for name, value in (filters or {}).items() if value is not None}
    if not chosen:
        return None
    return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]


def encode_cursor(key: Mapping[str, Any], *, filters: Filters | None = None, partition: int | None = None) -> str:
    """An opaque cursor for the page after `key`, bound to the list's `filters` (and, for a list read across
    several partitions, naming the `partition` it is in)."""
    value: dict[str, Any] = from_attributes(key)
    fingerprint = _fingerprint(filters)
    if fingerprint:
        value[_FILTERS_FIELD] = fingerprint
    if partition is not None:
        value[_PARTITION_FIELD] = partition
    raw = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid_cursor() -> InvalidInput:
    return InvalidInput("cursor is not valid", code="invalid_cursor")


def _opened(cursor: str, filters: Filters | None) -> dict[str, Any]:
    """A cursor's content, once it is known to be ours and issued for a list with these `filters`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError) as exc:
        # RecursionError: a forged cursor of nested arrays (1,500 fit in the 2,048 characters allowed).
        raise _invalid_cursor() from exc
    if not isinstance(value, dict):
        raise _invalid_cursor()
    if value.pop(_FILTERS_FIELD, None) != _fingerprint(filters):
        raise InvalidInput(
            "the cursor belongs to this list with other filters: repeat the filters it came with,"
            " or leave the cursor out to start from the first page",
            code="invalid_cursor",
            details=[{"loc": ["query", "cursor"]}],
        )
    return value


def _key_of(value: Mapping[str, Any], expected_keys: frozenset[str]) -> dict[str, Any]:
    if set(value) != expected_keys or not all(isinstance(v, str) and 0 < len(v) <= 1024 for v in value.values()):
        raise _invalid_cursor()
    return to_attributes(value)


def decode_cursor(cursor: str, expected_keys: frozenset[str], *, filters: Filters | None = None) -> dict[str, Any]:
    """Decode a cursor we issued for a list with these `filters`; anything else is the client's error (422),
    never a database fault and never a silent restart from the first page."""
    return _key_of(_opened(cursor, filters), expected_keys)


def _partition_cursor(
    cursor: str, key_names: frozenset[str], partitions: Sequence[Mapping[str, Any]], filters: Filters | None
) -> tuple[int, dict[str, Any] | None]:
    """Where a cursor of a list read across `partitions` resumes: the partition's index, and the key to start
    after (None: from the partition's first item). Its keys must lie in that partition."""
    value = _opened(cursor, filters)
    index = value.pop(_PARTITION_FIELD, None)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(partitions):
        raise _invalid_cursor()
    partition = partitions[index]
    start = _key_of(value, frozenset(partition) if set(value) == set(partition) else key_names)
    if any(start.get(name) != key for name, key in partition.items()):
        raise _invalid_cursor()
    return index, (None if set(value) == set(partition) else start)


def query_page(
    call: Callable[..., Any],
    request: Mapping[str, Any],
    *,
    limit: int,
    cursor: str | None,
    key_names: frozenset[str],
    partition: Mapping[str, Any] | None = None,
    filters: Filters | None = None,
    partitions: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[list[Item], str | None]:
    """One page of a Query (or Scan) `call`: a single request reading at most `limit + 1` items — the extra
    item tells whether another page exists, so no cursor is handed out for an empty last page. DynamoDB
    stops at 1 MB (or, with a FilterExpression, after the items it examined): a shorter page then still
    says where to go on.

    The cursor holds the last item's `key_names` (table and index keys), bound to the list's `filters`; a
    start key outside `partition` (the key condition's values, e.g. another delivery's) is refused as the
    client's mistake rather than handed to DynamoDB.

    A list spread over several `partitions` (each the key condition's values, which the request names
    `:<attribute>`) is read as their concatenation, in order: one Query per partition the page reaches,
    each asked for what is left of the page's `limit + 1` items, so a page still examines at most
    `limit + 1` items, and takes at most one Query per partition. Its cursor also names the partition.
    """
    if partitions is not None and len(partitions) != 1:
        return _query_partitions(call, request, limit=limit, cursor=cursor, key_names=key_names,
                                 partitions=partitions, filters=filters)  # fmt: skip
    if partitions is not None:
        partition = partitions[0]
        request = _in_partition(request, partition)
    request = {**request, "Limit": limit + 1}
    if cursor:
        start = decode_cursor(cursor, key_names, filters=filters)
        if any(start.get(name) != value for name, value in (partition or {}).items()):
            raise _invalid_cursor()
        request["ExclusiveStartKey"] = start
    with aws_errors():
        reply = call(**request)
    items: list[dict[str, Any]] = reply.get("Items", [])
    if len(items) > limit:
        last = items[limit - 1]
        return [from_attributes(i) for i in items[:limit]], encode_cursor(
            {name: last[name] for name in key_names}, filters=filters
        )
    stopped_at = reply.get("LastEvaluatedKey")
    return [from_attributes(i) for i in items], encode_cursor(stopped_at, filters=filters) if stopped_at else None


def _in_partition(request: Mapping[str, Any], partition: Mapping[str, Any]) -> dict[str, Any]:
    values = {**request.get("ExpressionAttributeValues", {}), **{f":{name}": key for name, key in partition.items()}}
    return {**request, "ExpressionAttributeValues": values}


def _query_partitions(
    call: Callable[..., Any],
    request: Mapping[str, Any],
    *,
    limit: int,
    cursor: str | None,
    key_names: frozenset[str],
    partitions: Sequence[Mapping[str, Any]],
    filters: Filters | None,
) -> tuple[list[Item], str | None]:
    index, start = _partition_cursor(cursor, key_names, partitions, filters) if cursor else (0, None)
    found: list[tuple[int, dict[str, Any]]] = []  # (partition, item)
    budget = limit + 1
    while True:
        own = {**_in_partition(request, partitions[index]), "Limit": budget}
        if start is not None:
            own["ExclusiveStartKey"] = start
        with aws_errors():
            reply = call(**own)
        items = reply.get("Items", [])
        found += [(index, item) for item in items]
        budget -= int(reply.get("ScannedCount", len(items)))
        stopped_at = reply.get("LastEvaluatedKey")
        if len(found) > limit:
            page = [from_attributes(item) for _, item in found[:limit]]
            (last_partition, last), (next_partition, _) = found[limit - 1], found[limit]
            if next_partition != last_partition:  # the page ends with its partition: the next starts the other
                return page, encode_cursor(partitions[next_partition], filters=filters, partition=next_partition)
            return page, encode_cursor({name: last[name] for name in key_names}, filters=filters, partition=index)
        page = [from_attributes(item) for _, item in found]
        if stopped_at:  # the examined items' budget, or 1 MB, ran out inside this partition
            return page, encode_cursor(stopped_at, filters=filters, partition=index)
        index, start = index + 1, None
        if index == len(partitions):
            return page, None
        if budget <= 0:
            return page, encode_cursor(partitions[index], filters=filters, partition=index)
