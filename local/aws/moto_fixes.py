"""Where moto (5.2.5) is looser or slower than AWS, the local stack corrects it; `apply()` does so once.

Measured on `make dev`, publishing one article after another: memory grew with the square of the article
count (775 MB at 20, 6.8 GB at 284) and a cancelled transaction could stop newsletters for good. Causes:

- `transact_write_items` deep-copies every table a transaction touches, once per item, to roll back; a
  rollback swaps the copy in as the live table (a stream reader holding the old one then reads nothing
  new), and a copy taken while another thread writes fails with "dictionary changed size". Here a
  transaction keeps copies of the items it touches only, and a rollback restores those items (and drops the
  stream records the cancelled transaction wrote), in the same live table.
- Every model object moto creates is kept in a class-level list for its dashboard, forever.
- A table's stream keeps every record ever written, and every shard iterator ever handed out. Here what
  every reader of the stream has read is freed.
- moto serves requests on many threads without locks, so two conditional writes can both pass their
  check; DynamoDB makes each write (and each transaction) atomic. Here DynamoDB requests run one at a time.
- moto lacks SQS's StartMessageMoveTask, which the dead-letter redrive uses (local.aws.sqs_move_tasks).
- moto's SES takes an address as verified only if the address or its own domain is (SES: a parent domain
  too), and has no sandbox (local.iam.ses_identities).
- moto's SQS works out, for every message of a queue on every receive and attribute read, whether it is
  visible, through several datetime conversions: minutes of CPU for a queue of a few thousand messages.
  Here it compares against the clock read once (still `time.time`, so tests that freeze time still can).
  Its retention check, made for every message a receive hands out, computes all the queue's attributes
  (counting every message three times) to read one: receiving a queue of n messages cost O(n) per message.
  Here it reads the retention period alone.
- moto's SQS changes a queue's messages without a lock: a receive checks each message's visibility and then
  marks it received, and a delete rebuilds the queue's list from a copy, so two receivers could take one
  message, and a delete beside another delete or a send put back a deleted message or dropped a new one.
  The local stack polls a queue with several threads, as Lambda does: half of a newsletter's SES events
  were handled twice. Here receives and deletes take the queue's own lock (the one its sends take), and a
  receive waits for new messages outside it.
- moto answers every Query by sorting every item of the table (and, for a table's own key, then picking the
  partition out of them): a page of a newsletter's audience cost O(n log n) in the table's size, so the
  fan-out to n readers cost O(n² log n) — at 50,000 subscribers, 93% of a run's time. Here a Query on the
  table's key reads its partition alone, and one on an index filters the table's items unsorted (moto sorts
  what matches itself, so the answers are the same).
- moto's EventBridge builds eight JSONPath parsers (a grammar each) for every event it delivers to a
  target: 12 ms an event, a minute for a newsletter's SES events. The parsed paths are kept.
- moto answers DynamoDB and its streams through its generic shape-driven serializer, which looks up each
  member of each item under several aliases: a third of the time of a GetItem, an UpdateItem or a stream
  read. Their results are already in the wire shape, so here item requests and GetRecords are written as
  JSON directly: the output shape's members only, binary values base64-encoded, timestamps as epoch seconds
  to the millisecond, absent members left out, as the serializer writes them.
- `mock_aws` starts every block with no default boto3 session, so each block's first clients load and parse
  botocore's service models again (0.7 s of JSON for the stack's services, paid by every test). Here every
  botocore session of the process shares one model loader (models are read-only data).

Not a correction but a measurement: DynamoDB serves about 1,000 writes a second per partition key, which moto
never refuses, so every write request is counted by table and partition key (`partition_writes`, shown by
`GET /_local/usage`); tests check a newsletter's writes per key against docs/capacity.md.
"""

from __future__ import annotations

import base64
import calendar
import copy
import functools
import json
import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any

_applied = False
_dynamodb_lock = threading.RLock()
_in_transaction = threading.local()
_stream_reader = threading.local()


class PartitionWrites:
    """The write requests (PutItem, UpdateItem, DeleteItem, each item of a BatchWriteItem, each Put, Update and
    Delete of a TransactWriteItems) the embedded DynamoDB received, by table and partition key value, whether
    their condition held or not (a write refused by its condition costs a write unit on AWS too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, table: str, key: str) -> None:
        with self._lock:
            self._counts[table, key] += 1

    def of(self, table: str) -> dict[str, int]:
        """Writes by partition key value of one table (its physical name)."""
        with self._lock:
            return {key: count for (name, key), count in self._counts.items() if name == table}

    def summary(self, *, reset: bool = False, busiest: int = 5) -> dict[str, Any]:
        """Per table: its writes, how many partition keys took them, and the `busiest` keys with their writes."""
        with self._lock:
            counts, tables = dict(self._counts), sorted({table for table, _ in self._counts})
            if reset:
                self._counts.clear()
        summary: dict[str, Any] = {}
        for table in tables:
            keys = sorted(((key, n) for (name, key), n in counts.items() if name == table), key=lambda kv: -kv[1])
            summary[table] = {"writes": sum(n for _, n in keys), "keys": len(keys), "busiest": keys[:busiest]}
        return summary

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


partition_writes = PartitionWrites()
"""Process-wide, as moto's own tables are."""


def dynamodb_requests_lock() -> threading.RLock:
    """The lock every DynamoDB request to the embedded AWS runs under (see `_serialize_dynamodb`): hold it to
    read or write moto's tables directly, as local.aws.persistence does, and no request sees half of it."""
    return _dynamodb_lock


def apply() -> None:
    """Patch moto in this process (idempotent)."""
    global _applied
    if _applied:
        return
    _applied = True
    from local.aws import sqs_move_tasks
    from local.iam import ses_identities

    sqs_move_tasks.install()
    ses_identities.install()
    _stop_tracking_instances()
    _keep_parsed_json_paths()
    _cheap_sqs_visibility()
    _sqs_queues_change_under_their_lock()
    _queries_read_their_partition()
    _serialize_dynamodb()
    _transactions_restore_items()
    _streams_free_what_was_read()
    _share_service_models()
    _dynamodb_items_as_json()
    _count_partition_writes()


# What DynamoDB and its streams answer with items: the results moto builds are already in the wire shape.
_WRITTEN_AS_JSON = {
    "dynamodb": frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                           "BatchWriteItem", "TransactGetItems", "TransactWriteItems"}),
    "dynamodbstreams": frozenset({"GetRecords"}),
}  # fmt: skip


def _wire(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _wire(member) for key, member in value.items() if member is not None}
    if isinstance(value, list):
        return [_wire(member) for member in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):  # as the serializer writes it (no .timestamp(): a frozen clock's may fail)
        return calendar.timegm(value.timetuple()) + (value.microsecond // 1000) / 1000
    if isinstance(value, float):  # only timestamps and capacity units: DynamoDB numbers are strings
        return int(value * 1000) / 1000  # milliseconds, as the serializer writes timestamps
    return value


def _dynamodb_items_as_json() -> None:
    from moto.core.responses import ActionContext, ActionResult

    serialize = ActionResult.execute_result

    def execute_result(self: ActionResult, context: ActionContext) -> Any:
        if context.operation_model.name not in _WRITTEN_AS_JSON.get(context.service_model.service_name, ()):
            return serialize(self, context)
        members = context.operation_model.output_shape.members  # what moto adds beyond them is not sent
        answer = {key: value for key, value in dict(self.result).items() if key in members}  # type: ignore[call-overload]
        json_version = context.service_model.metadata.get("jsonVersion", "1.0")
        return 200, {"Content-Type": f"application/x-amz-json-{json_version}"}, json.dumps(_wire(answer))

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]


def _share_service_models() -> None:
    import botocore.loaders
    import botocore.session

    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


def _stop_tracking_instances() -> None:
    from moto.core.common_models import BaseModel

    def new(cls: type, *_args: Any, **_kwargs: Any) -> Any:
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign]


def _keep_parsed_json_paths() -> None:
    import jsonpath_ng.ext

    # moto imports `parse` inside the function that uses it, so replacing the module's attribute suffices.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)


def _cheap_sqs_visibility() -> None:
    from moto.sqs.models import Message, Queue, SQSBackend

    def visible(self: Message) -> bool:
        return time.time() * 1000 > self.visible_at

    def delayed(self: Message) -> bool:
        return time.time() * 1000 < self.delayed_until

    def messages(self: Queue) -> list[Message]:
        now = time.time() * 1000
        return [m for m in self._messages if now > m.visible_at and now >= m.delayed_until]

    Message.visible = property(visible)  # type: ignore[assignment,method-assign]
    Message.delayed = property(delayed)  # type: ignore[assignment,method-assign]
    Queue.messages = property(messages)  # type: ignore[assignment,method-assign]

    def retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
        # Set from the queue's attributes, which moto's type hints do not declare.
        retention_seconds = int(getattr(self.get_queue(queue_name), "message_retention_period"))  # noqa: B009
        sent_ms = message.sent_timestamp
        return sent_ms is None or time.time() < retention_seconds + int(sent_ms) / 1000

    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]


def _sqs_queues_change_under_their_lock() -> None:
    from moto.sqs.models import Message, Queue, SQSBackend

    receive, delete = SQSBackend.receive_message, Queue.delete_message

    @functools.wraps(receive)
    def receive_message(
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Message]:
        queue = self.get_queue(queue_name)
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with queue._messages_lock:  # without waiting, moto's receive never waits on this (reentrant) lock
                received = receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - time.monotonic()
            if received or remaining <= 0:
                return received
            queue.wait_for_messages(min(1.0, remaining))  # type: ignore[arg-type]

    @functools.wraps(delete)
    def delete_message(self: Queue, receipt_handle: str) -> None:
        with self._messages_lock:
            delete(self, receipt_handle)

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]


_query_partition = threading.local()
_EVERY_ITEM = object()


def _count_partition_writes() -> None:
    from moto.dynamodb.responses import DynamoHandler

    def written(handler: DynamoHandler, operation: str) -> list[tuple[str, dict[str, Any]]]:
        """(table, key or item) of each item a write request writes."""
        body = handler.body
        if operation in ("put_item", "update_item", "delete_item"):
            return [(str(body.get("TableName", "")), body.get("Item") or body.get("Key") or {})]
        found: list[tuple[str, dict[str, Any]]] = []
        for table, requests in (body.get("RequestItems") or {}).items():
            for request in requests:
                put, delete = request.get("PutRequest") or {}, request.get("DeleteRequest") or {}
                found.append((table, put.get("Item") or delete.get("Key") or {}))
        for entry in body.get("TransactItems") or []:
            for kind, change in entry.items():
                if kind in ("Put", "Update", "Delete"):
                    found.append((str(change.get("TableName", "")), change.get("Item") or change.get("Key") or {}))
        return found

    for operation in ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"):
        original = getattr(DynamoHandler, operation)

        @functools.wraps(original)
        def counted(self: DynamoHandler, _original: Any = original, _operation: str = operation) -> Any:
            tables = self.dynamodb_backend.tables
            for table_name, attributes in written(self, _operation):
                table = tables.get(table_name)
                value = (attributes or {}).get(table.hash_key_attr) if table is not None else None
                if isinstance(value, dict) and len(value) == 1:
                    partition_writes.add(table_name, str(next(iter(value.values()))))
            return _original(self)

        setattr(DynamoHandler, operation, counted)


def _queries_read_their_partition() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Item, Table

    all_items, query = Table.all_items, Table.query

    @functools.wraps(all_items)
    def items(self: Table) -> list[Item]:
        partition = getattr(_query_partition, "key", None)
        if partition is None:
            return all_items(self)
        if partition is _EVERY_ITEM:
            if not self.range_key_attr:
                return list(self.items.values())  # type: ignore[arg-type]
            return [item for stored in self.items.values() for item in stored.values()]
        stored = self.items.get(partition)
        if stored is None:
            return []
        return list(stored.values()) if self.range_key_attr else [stored]  # type: ignore[list-item]

    @functools.wraps(query)
    def query_partition(
        self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any
    ) -> tuple[list[Item], int, dict[str, Any] | None]:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        _query_partition.key = _EVERY_ITEM if index_name or hash_key is None else hash_key
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _query_partition.key = None

    Table.all_items = items  # type: ignore[method-assign]
    Table.query = query_partition  # type: ignore[method-assign]


def _serialize_dynamodb() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action

        @functools.wraps(original)
        def call_action(self: Any, _original: Any = original) -> Any:
            with _dynamodb_lock:
                return _original(self)

        handler.call_action = call_action  # type: ignore[method-assign]


def _transactions_restore_items() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    def table_deepcopy(self: Table, memo: dict[int, Any]) -> Table:
        if getattr(_in_transaction, "active", False):
            return self  # moto's own rollback copy: not needed, the items are restored below
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Table, DynamoType, DynamoType | None, Any]] = []
        streams: dict[int, tuple[Any, int]] = {}
        for entry in transact_items:
            for kind, operation in entry.items():
                table = self.tables.get(operation.get("TableName", ""))
                if table is None:
                    continue
                attributes = operation["Item"] if kind == "Put" else operation.get("Key") or {}
                if table.hash_key_attr not in attributes:
                    continue
                hash_key = DynamoType(attributes[table.hash_key_attr])
                range_key = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr in attributes else None
                saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
                if table.stream_shard is not None:
                    streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
        _in_transaction.active = True
        try:
            original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in reversed(saved):
                _restore(table, hash_key, range_key, item)
            for shard, length in streams.values():
                del shard.items[length:]  # a cancelled transaction writes no stream records
            raise
        finally:
            _in_transaction.active = False

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
        return
    if item is None:
        table.items[hash_key].pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item


def _streams_free_what_was_read() -> None:
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    def get(self: StreamShard, start: int, quantity: int) -> list[dict[str, Any]]:
        index = start - self.starting_sequence_number
        # A stream may have several readers (PublicationsTable's feeds fan-out and the events), each a chain
        # of iterators: what every one of them has moved past is freed. The list keeps its length, so
        # sequence numbers (positions in it) stay as they are.
        positions: dict[str, int] = self.__dict__.setdefault("_reader_positions", {})
        reader = getattr(_stream_reader, "name", None)
        if reader is not None:
            positions[reader] = max(positions.get(reader, 0), index)
        read_by_all = min(positions.values(), default=index)
        freed = getattr(self, "_freed", 0)
        for position in range(freed, min(read_by_all, len(self.items))):
            self.items[position] = None  # type: ignore[call-overload]
        self._freed = max(freed, read_by_all)  # type: ignore[attr-defined]
        return [record.to_json() for record in self.items[index : index + quantity] if record is not None]

    StreamShard.get = get  # type: ignore[method-assign]
    original_get_records = DynamoDBStreamsBackend.get_records

    def get_records(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> dict[str, Any]:
        # The iterator an answer names continues the chain (the reader) of the one it answers.
        readers: dict[str, str] = self.__dict__.setdefault("_iterator_readers", {})
        _stream_reader.name = readers.pop(iterator_arn, iterator_arn)
        try:
            answer = original_get_records(self, iterator_arn, limit)
        finally:
            reader, _stream_reader.name = _stream_reader.name, None
        readers[answer["NextShardIterator"]] = reader
        # An iterator is used once (the answer names the next one); moto would keep every one forever.
        self.shard_iterators.pop(iterator_arn, None)
        return answer

    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]
