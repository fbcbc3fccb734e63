"""Housekeeping hands dead letters back to their queues with SQS's move task, and stops redriving a
queue whose letters fail again every time (a poison message), rather than cycling them forever.

moto 5.2.5 has no StartMessageMoveTask: the stack here runs local/aws/sqs_move_tasks.py's emulation of it
(tests/unit/test_sqs_move_tasks.py checks the request against botocore's model of the real API).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from newsdesk.services.scheduling import MAX_REDRIVE_ROUNDS
from tests.integration.conftest import Stack
from tests.integration.test_newsletter import add_subscribers, newsletters
from tests.integration.test_schedules import publish_now, run_job

POISON = '{"not": "a batch"}'
DEAD_LETTERS = {"SendQueue": "SendDeadLetterQueue", "FanoutQueue": "FanoutDeadLetterQueue"}


def bodies(queue_url: str) -> list[str]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [message["Body"] for message in messages.get("Messages", [])]


def fail_again(stack: Stack, body: str, queue: str = "SendQueue") -> None:
    """What a mailer (or fan-out) failing on `body` every time would do: SQS moves it to the dead-letter queue
    again."""
    sqs = boto3.client("sqs")
    live, dead = stack.resolver.queue_url(queue), stack.resolver.queue_url(DEAD_LETTERS[queue])
    for message in sqs.receive_message(QueueUrl=live, MaxNumberOfMessages=10).get("Messages", []):
        if message["Body"] == body:
            sqs.send_message(QueueUrl=dead, MessageBody=body)
        sqs.delete_message(QueueUrl=live, ReceiptHandle=message["ReceiptHandle"])


def housekeeping(stack: Stack) -> dict[str, Any]:
    return dict(run_job(stack, "housekeeping"))


def test_dead_letters_go_back_to_their_queue_and_are_delivered(stack: Stack) -> None:
    readers = add_subscribers(3)
    publish_now(stack, "Redriven")
    stack.drain(skip=("MailerFunction",))
    sqs = boto3.client("sqs")
    live, dead = stack.resolver.queue_url("SendQueue"), stack.resolver.queue_url("SendDeadLetterQueue")
    batches = sqs.receive_message(QueueUrl=live, MaxNumberOfMessages=10)["Messages"]
    for message in batches:  # every batch failed ten times
        sqs.send_message(QueueUrl=dead, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=live, ReceiptHandle=message["ReceiptHandle"])

    report = housekeeping(stack)
    stack.drain()

    assert (report["redriven"], report["held"]) == (len(batches), 0)
    assert bodies(dead) == []
    assert len(newsletters("Redriven")) == len(readers)


@pytest.mark.parametrize("queue", sorted(DEAD_LETTERS))
def test_a_letter_that_keeps_failing_is_held_after_three_rounds(stack: Stack, queue: str) -> None:
    dead = stack.resolver.queue_url(DEAD_LETTERS[queue])
    boto3.client("sqs").send_message(QueueUrl=dead, MessageBody=POISON)

    reports = []
    for _ in range(MAX_REDRIVE_ROUNDS + 2):
        reports.append(housekeeping(stack))
        fail_again(stack, POISON, queue)

    assert [report["redriven"] for report in reports] == [1] * MAX_REDRIVE_ROUNDS + [0, 0]
    assert [report["held"] for report in reports] == [0] * MAX_REDRIVE_ROUNDS + [1, 1]
    assert bodies(dead) == [POISON]  # kept for an operator, not lost


def test_a_queue_found_empty_gets_its_rounds_back(stack: Stack) -> None:
    sqs = boto3.client("sqs")
    dead = stack.resolver.queue_url("SendDeadLetterQueue")
    sqs.send_message(QueueUrl=dead, MessageBody=POISON)
    for _ in range(MAX_REDRIVE_ROUNDS + 1):
        housekeeping(stack)
        fail_again(stack, POISON)
    for message in sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10)["Messages"]:
        sqs.delete_message(QueueUrl=dead, ReceiptHandle=message["ReceiptHandle"])  # an operator dealt with it

    quiet = housekeeping(stack)
    sqs.send_message(QueueUrl=dead, MessageBody='{"another": "failure"}')
    later = housekeeping(stack)

    assert (quiet["redriven"], quiet["held"]) == (0, 0)
    assert (later["redriven"], later["held"]) == (1, 0)
