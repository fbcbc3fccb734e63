"""The delivery ledger's chaos scenario: SES throttling, a daily quota, mailers killed at random points and
SQS redeliveries, on a frozen clock — run by tests/integration/test_ledger.py (CI-sized) and by
bench/chaos.py (50,000 subscribers). Afterwards SES's own record is the truth the ledger must match.

ScriptedSes is the same fault injection one answer at a time: a mailer killed before given attempts, or
SES's error answers (before or after accepting the email), for tests of exactly what each one does.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from freezegun import freeze_time

from newsdesk import dependencies
from newsdesk.dal.ledger import delivery_of
from newsdesk.services import delivery
from tests.integration.conftest import Stack
from tests.support import times
from tests.support.events import sample_event

START = times.now()
ARTICLE = {"title": "Storm warning", "author": "Ada", "body": "The harbour closes at **noon**."}


class Killed(Exception):
    """The mailer's process dies here: nothing after this point of the invocation happens."""


class ChaosSes:
    """SES on a very bad day, and the record of truth: it throttles 20% of calls, has a daily quota of 60% of
    the list (over the frozen clock's last 24 hours), and the mailer calling it is killed now and then
    (0.7% of calls each) before the call (after the claim) or after SES accepted the email. `accepted` is
    SES's own count."""

    def __init__(self, real: Any, *, quota: int, seed: int = 13) -> None:
        self._real = real
        self._quota = quota
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.accepted: Counter[str] = Counter()
        self.sent_at: list[datetime] = []
        self.throttled = self.quota_refusals = self.killed_before = self.killed_after = 0

    def send_email(self, **request: Any) -> Any:
        (recipient,) = request["Destination"]["ToAddresses"]
        with self._lock:
            roll = self._random.random()
            now = datetime.now(UTC)
            if roll < 0.20:
                self.throttled += 1
                raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, "SendEmail")
            while self.sent_at and self.sent_at[0] <= now - timedelta(hours=24):
                self.sent_at.pop(0)
            if len(self.sent_at) >= self._quota:
                self.quota_refusals += 1
                quota = {"Code": "ThrottlingException", "Message": "Daily message quota exceeded."}
                raise ClientError({"Error": quota}, "SendEmail")
            if roll < 0.207:
                self.killed_before += 1
                raise Killed("between the claim and the SES call")
            self.sent_at.append(now)
        answer = self._real.send_email(**request)
        with self._lock:
            self.accepted[recipient] += 1
            if roll < 0.214:
                self.killed_after += 1
                raise Killed("after SES accepted the email")
        return answer


KILL = "kill"
"""In a ScriptedSes script: the mailer's process dies between its claim and the SES call."""


def ses_error(code: str, status: int, message: str = "") -> ClientError:
    """An error answer of SES v2 as botocore raises it."""
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail"
    )


@dataclass(frozen=True)
class Fault:
    """In a ScriptedSes script: `error` is raised, before SES sees the request or, `after_accepting`, once SES
    has accepted the email (the answer lost or broken on its way back)."""

    error: Exception
    after_accepting: bool = False


class ScriptedSes:
    """SES answering each recipient's calls as its script says, in order (KILL or a Fault; once the script
    is used up, SES accepts), and every call as `everyone` says while that is set (an account-level refusal).
    `calls` counts the calls per recipient, `attempts` lists the attempt tag of each, `accepted` counts the
    emails SES took: SES's own record."""

    def __init__(self, real: Any, script: dict[str, list[str | Fault]] | None = None) -> None:
        self._real = real
        self._lock = threading.Lock()
        self.script = {recipient: list(answers) for recipient, answers in (script or {}).items()}
        self.everyone: Exception | None = None
        self.calls: Counter[str] = Counter()
        self.attempts: defaultdict[str, list[int]] = defaultdict(list)
        self.accepted: Counter[str] = Counter()

    def send_email(self, **request: Any) -> Any:
        (recipient,) = request["Destination"]["ToAddresses"]
        tags = {tag["Name"]: tag["Value"] for tag in request.get("EmailTags") or []}
        with self._lock:
            self.calls[recipient] += 1
            if delivery.TAG_ATTEMPT in tags:
                self.attempts[recipient].append(int(tags[delivery.TAG_ATTEMPT]))
            if self.everyone is not None:
                raise self.everyone
            answers = self.script.get(recipient)
            answer = answers.pop(0) if answers else None
        if answer == KILL:
            raise Killed("between the claim and the SES call")
        if isinstance(answer, Fault) and not answer.after_accepting:
            raise answer.error
        reply = self._real.send_email(**request)
        with self._lock:
            self.accepted[recipient] += 1
        if isinstance(answer, Fault):
            raise answer.error
        return reply


@dataclass
class ChaosOutcome:
    ses: ChaosSes
    report: dict[str, Any]
    states: dict[str, int]
    dead_letters: int
    rounds: int
    seconds: float


def _progress(stack: Stack, delivery_id: str) -> dict[str, Any]:
    reply = stack.call("EditorFunction", sample_event("editor-get-delivery", path={"delivery_id": delivery_id}))
    assert reply.status == 200, reply.body
    return dict(reply.json())


def run_chaos(stack: Stack, monkeypatch: pytest.MonkeyPatch, *, max_rounds: int = 20) -> ChaosOutcome:
    """Publish one article to every confirmed subscriber of `stack` through chaos, until it is done."""
    count = dependencies.container().subscription_service.stats().confirmed
    ses = ChaosSes(boto3.client("sesv2"), quota=count * 6 // 10)
    monkeypatch.setattr(delivery, "backoff_delay", lambda attempt: 0.001)  # the waits are not the point
    dependencies.reset().ses = ses
    article = stack.call("EditorFunction", sample_event("editor-create-article", body=ARTICLE)).json()
    delivery_id = f"article-{article['id']}"
    started = time.perf_counter()
    with freeze_time(START, tick=True) as clock:
        # Two editors press "publish" at the same moment.
        publish = sample_event("editor-publish-article", path={"article_id": article["id"]})
        with ThreadPoolExecutor(2) as pool:
            assert set(pool.map(lambda _: stack.invoke("EditorFunction", publish)["statusCode"], range(2))) == {200}
        stack.drain(skip=("MailerFunction",), timeout=3600)
        # SQS delivers one batch twice.
        sqs = boto3.client("sqs")
        queue = stack.resolver.queue_url("SendQueue")
        [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"]
        sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        rounds = 0
        while _progress(stack, delivery_id)["state"] != "done":
            rounds += 1
            assert rounds <= max_rounds, _progress(stack, delivery_id)
            stack.drain(wait_for_delayed=False, timeout=7200)
            # Three hours on: pending sends are decided, a paused delivery resumes once the quota frees.
            clock.tick(timedelta(hours=3))
        report = _progress(stack, delivery_id)
    states = Counter(item["state"]["S"] for item in stack.items("DeliveriesTable")
                     if delivery_of(item["pk"]["S"]) == delivery_id)  # fmt: skip
    dead = sqs.get_queue_attributes(
        QueueUrl=stack.resolver.queue_url("SendDeadLetterQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    return ChaosOutcome(ses, report, dict(states), int(dead), rounds, time.perf_counter() - started)
