"""The redrive's SQS requests, checked against botocore's model of the real API (moto 5.2.5 has no
StartMessageMoveTask), and the local emulation of that API that the local stack and the tests run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from local.aws import sqs_move_tasks
from newsdesk.dal.queues import DeadLetterQueue
from newsdesk.services.scheduling import REDRIVE_MESSAGES_PER_SECOND

DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/send-dead-letters"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:send-dead-letters"


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


# ---------------------------------------------------------------------- what AWS receives


def test_a_redrive_asks_sqs_to_move_the_dead_letters_back_to_their_source(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    # Given SQS's answer, and the request botocore's model of StartMessageMoveTask must accept
    stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": "handle"},
        # No DestinationArn: SQS returns each message to the queue it came from.
        {"SourceArn": DLQ_ARN, "MaxNumberOfMessagesPerSecond": REDRIVE_MESSAGES_PER_SECOND},
    )

    started = DeadLetterQueue(client, DLQ_URL).start_redrive(DLQ_ARN, messages_per_second=REDRIVE_MESSAGES_PER_SECOND)

    assert started


@pytest.mark.parametrize("code", ["AWS.SimpleQueueService.UnsupportedOperation", "UnsupportedOperation"])
def test_a_redrive_already_running_is_not_an_error(stubbed: tuple[Any, Stubber], code: str) -> None:
    client, stubber = stubbed
    stubber.add_client_error("start_message_move_task", service_error_code=code, http_status_code=400)

    assert not DeadLetterQueue(client, DLQ_URL).start_redrive(DLQ_ARN, messages_per_second=10)


def test_a_redrive_refused_for_another_reason_fails_loudly(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("start_message_move_task", service_error_code="AccessDenied", http_status_code=403)

    with pytest.raises(ClientError):
        DeadLetterQueue(client, DLQ_URL).start_redrive(DLQ_ARN, messages_per_second=10)


def test_the_dead_letters_are_counted_from_the_queue_attributes(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    attributes = {"QueueArn": DLQ_ARN, "ApproximateNumberOfMessages": "4", "ApproximateNumberOfMessagesNotVisible": "2"}
    stubber.add_response(
        "get_queue_attributes",
        {"Attributes": attributes},
        {
            "QueueUrl": DLQ_URL,
            "AttributeNames": ["QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        },
    )

    letters = DeadLetterQueue(client, DLQ_URL).look()

    assert (letters.queue, letters.arn, letters.waiting) == ("send-dead-letters", DLQ_ARN, 6)


# ---------------------------------------------------------------------- the local emulation


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    sqs_move_tasks.install()
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def queue(sqs: Any, name: str, dead_letters: str | None = None) -> tuple[str, str]:
    attributes = {}
    if dead_letters:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dead_letters, "maxReceiveCount": 3})
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_emulated_move_task_returns_messages_to_their_source_as_new_messages(sqs: Any) -> None:
    dead_url, dead_arn = queue(sqs, "dead")
    live_url, _ = queue(sqs, "live", dead_letters=dead_arn)
    sent = [sqs.send_message(QueueUrl=dead_url, MessageBody=f"letter {n}")["MessageId"] for n in range(12)]

    answer = sqs.start_message_move_task(SourceArn=dead_arn, MaxNumberOfMessagesPerSecond=10)

    moved = []
    while messages := sqs.receive_message(QueueUrl=live_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
        "Messages"
    ):
        moved += messages
    assert answer["TaskHandle"]
    assert sorted(m["Body"] for m in moved) == sorted(f"letter {n}" for n in range(12))
    assert not {m["MessageId"] for m in moved} & set(sent)
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in moved} == {"1"}
    assert "Messages" not in sqs.receive_message(QueueUrl=dead_url)


def test_emulated_move_task_goes_to_a_named_destination(sqs: Any) -> None:
    dead_url, dead_arn = queue(sqs, "dead")
    queue(sqs, "live", dead_letters=dead_arn)
    other_url, other_arn = queue(sqs, "other")
    sqs.send_message(QueueUrl=dead_url, MessageBody="letter")

    sqs.start_message_move_task(SourceArn=dead_arn, DestinationArn=other_arn)

    assert [m["Body"] for m in sqs.receive_message(QueueUrl=other_url)["Messages"]] == ["letter"]


@pytest.mark.parametrize(
    ("source", "rate", "code"),
    [
        ("live", None, "AWS.SimpleQueueService.UnsupportedOperation"),  # no queue's dead-letter queue
        ("missing", None, "ResourceNotFoundException"),
        ("dead", 501, "InvalidParameterValue"),
    ],
)
def test_emulated_move_task_refuses_what_sqs_refuses(sqs: Any, source: str, rate: int | None, code: str) -> None:
    _, dead_arn = queue(sqs, "dead")
    _, live_arn = queue(sqs, "live", dead_letters=dead_arn)
    arns = {"dead": dead_arn, "live": live_arn, "missing": dead_arn + "-missing"}
    request: dict[str, Any] = {"SourceArn": arns[source]}
    if rate is not None:
        request["MaxNumberOfMessagesPerSecond"] = rate

    with pytest.raises(ClientError) as refused:
        sqs.start_message_move_task(**request)

    assert refused.value.response["Error"]["Code"] == code
