"""Partial batch responses: what SQS and the DynamoDB streams are told to deliver again."""

from __future__ import annotations

import io
import json

import pytest

from newsdesk.batches import BatchFailedError, Record, process_batch, sequence_number


def sqs(*bodies: str) -> list[Record]:
    return [{"messageId": f"m-{n}", "body": body} for n, body in enumerate(bodies)]


class Refusing:
    """A record handler that fails on one body and remembers the others."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.handled: list[str] = []

    def __call__(self, record: Record) -> None:
        if record["body"] == self.word:
            raise ValueError(f"cannot handle {record['body']} for reader@example.org")
        self.handled.append(record["body"])


def test_a_failed_record_is_reported_and_the_others_are_still_handled(logs: io.StringIO) -> None:
    handle = Refusing("bad")

    answer = process_batch(sqs("one", "bad", "three"), handle)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert handle.handled == ["one", "three"]
    logged = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [(line["level"], line["item"]) for line in logged] == [("ERROR", "m-1")]
    assert "cannot handle bad" in logged[0]["exception"]
    assert "reader@example.org" not in json.dumps(logged)  # the logs' address scrubbing holds here too


def test_a_batch_without_failures_reports_none() -> None:
    assert process_batch(sqs("one", "two"), Refusing("bad")) == {"batchItemFailures": []}
    assert process_batch([], Refusing("bad")) == {"batchItemFailures": []}


def test_when_every_record_fails_the_invocation_fails() -> None:
    """Lambda then counts an error and the event source delivers the whole batch again."""
    with pytest.raises(BatchFailedError, match="all 2 records"):
        process_batch(sqs("bad", "bad"), Refusing("bad"))


def test_a_stream_record_is_reported_by_its_sequence_number() -> None:
    records = [
        {"dynamodb": {"SequenceNumber": "100"}, "body": "one"},
        {"dynamodb": {"SequenceNumber": "101"}, "body": "bad"},
    ]

    answer = process_batch(records, Refusing("bad"), item_id=sequence_number)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "101"}]}
