"""SES's answers read as AWS means them, through the whole stack: an answer that may follow an accepted
email (a 5xx, a read timeout) is settled by SES's Send event or the reconciliation window, never by sending
again at once; a throttle is retried; a refusal of the whole account pauses the delivery, visibly and
without spinning, until SES sends again."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from freezegun import freeze_time

from newsdesk import dependencies
from newsdesk.services.delivery import ACCOUNT_REFUSED_METRIC
from tests.integration.conftest import RECONCILIATION_WINDOW_SECONDS, Stack
from tests.integration.test_ledger import delivery
from tests.integration.test_metrics_flushed import published_metrics
from tests.integration.test_newsletter import (
    ARTICLE,
    add_subscribers,
    editor,
    newsletters,
    progress,
    publish_new_article,
)
from tests.support import times
from tests.support.chaos import Fault, ScriptedSes, ses_error
from tests.support.events import sample_event

WINDOW = timedelta(seconds=RECONCILIATION_WINDOW_SECONDS + 5)
ENDPOINT = "https://email.us-east-1.amazonaws.com"
UNVERIFIED = "Email address is not verified. The following identities failed the check in region US-EAST-1: "


def received() -> list[str]:
    return sorted(mail.message["To"].addresses[0].addr_spec for mail in newsletters(ARTICLE["title"]))


def scripted(script: dict[str, list[Any]] | None = None) -> ScriptedSes:
    ses = ScriptedSes(boto3.client("sesv2"), script)
    dependencies.reset().ses = ses
    return ses


def dead_letters(stack: Stack) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.resolver.queue_url("SendDeadLetterQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


# ---------------------------------------------------------------------------------------------- uncertain

UNCERTAIN = {
    "500 after SES accepted": Fault(ses_error("InternalFailure", 500, "Internal failure"), after_accepting=True),
    "503 after SES accepted": Fault(ses_error("ServiceUnavailable", 503, "Service unavailable"), after_accepting=True),
    "read timeout after SES accepted": Fault(ReadTimeoutError(endpoint_url=ENDPOINT), after_accepting=True),
    "500 before SES accepted": Fault(ses_error("InternalFailure", 500, "Internal failure")),
}


@pytest.mark.parametrize("answer", UNCERTAIN.values(), ids=UNCERTAIN.keys())
def test_an_answer_that_may_follow_an_accepted_email_is_settled_by_ses_not_by_sending_again(
    stack: Stack, answer: Fault
) -> None:
    readers = add_subscribers(3)
    ses = scripted({readers[0]: [answer]})
    with freeze_time(times.now(), tick=True) as clock:
        article = publish_new_article(stack)
        stack.drain(wait_for_delayed=False)
        right_after = sum(ses.calls.values())
        times.move_on(clock, WINDOW)  # no Send event by now: that attempt never reached SES, and it is sent again
        stack.drain(wait_for_delayed=False)
        report = delivery(stack, f"article-{article['id']}")

    assert right_after == 3  # not sent again at once
    assert received() == sorted(readers)  # one email each, whether or not SES had accepted the first attempt
    assert set(ses.accepted.values()) == {1}
    assert ses.attempts[readers[0]] == ([1] if answer.after_accepting else [1, 2])
    assert (report["state"], report["counts"]["delivered"], report["late_send_events"]) == ("done", 3, 0)


def test_the_ses_client_itself_never_sends_again_after_a_5xx(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # The product's own SES client (botocore, its retry configuration) against a local SES that accepts
    # each email and then answers 500: botocore's standard retries would send each one again.
    from moto.sesv2.responses import SESV2Response

    accepting = SESV2Response.send_email
    requests: list[str] = []

    def accepts_then_fails(self: SESV2Response) -> Any:
        requests.append(accepting(self))
        return json.dumps({"message": "Internal failure"}), {"status": 500, "x-amzn-ErrorType": "InternalFailure"}

    monkeypatch.setattr(SESV2Response, "send_email", accepts_then_fails)
    readers = add_subscribers(2)
    with freeze_time(times.now(), tick=True) as clock:
        article = publish_new_article(stack)
        stack.drain(wait_for_delayed=False)
        times.move_on(clock, WINDOW)
        stack.drain(wait_for_delayed=False)
        report = delivery(stack, f"article-{article['id']}")

    assert len(requests) == 2  # one request per email: neither botocore nor the mailer sent one again
    assert received() == sorted(readers)  # the Send events settled them
    assert (report["state"], report["counts"]["delivered"], report["late_send_events"]) == ("done", 2, 0)


# ---------------------------------------------------------------------------------------------- throttled

THROTTLES = {
    "TooManyRequestsException 429": ses_error("TooManyRequestsException", 429, "Maximum sending rate exceeded."),
    "LimitExceededException": ses_error("LimitExceededException", 400, "Maximum sending rate exceeded."),
    "Throttling": ses_error("Throttling", 400, "Maximum sending rate exceeded."),
    "any code with a 429": ses_error("SlowDown", 429, "Rate exceeded"),
}


@pytest.mark.parametrize("throttle", THROTTLES.values(), ids=THROTTLES.keys())
def test_a_throttled_email_is_retried_at_once_and_sent_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, throttle: Exception
) -> None:
    from newsdesk.services import delivery as mailer

    monkeypatch.setattr(mailer, "backoff_delay", lambda attempt: 0.001)  # the waits are not the point
    readers = add_subscribers(2)
    ses = scripted({readers[0]: [Fault(throttle)] * 3})

    article = publish_new_article(stack)
    stack.drain(wait_for_delayed=False)

    assert ses.calls[readers[0]] == 4  # three refusals, then sent, within the same pass
    assert ses.attempts[readers[0]] == [1, 1, 1, 1]  # a refused request is no attempt
    assert received() == sorted(readers)
    report = delivery(stack, f"article-{article['id']}")
    assert (report["state"], report["counts"]["delivered"]) == ("done", 2)


# ------------------------------------------------------------------------------------------ account-level

# Each with the readers of two batches (150) or of one (3, to keep the suite short).
ACCOUNT_REFUSALS = {
    "sending paused": (ses_error("SendingPausedException", 400, "Sending paused for this account."), 150),
    "no permission": (ses_error("AccessDeniedException", 403, "User is not authorized to perform ses:SendEmail"), 3),
    "sender not verified": (ses_error("MessageRejected", 400, UNVERIFIED + "newsroom@newsdesk.localhost"), 3),
    "configuration set missing": (ses_error("NotFoundException", 404, "Configuration set does not exist."), 3),
}


@pytest.mark.parametrize(("refusal", "count"), ACCOUNT_REFUSALS.values(), ids=ACCOUNT_REFUSALS.keys())
def test_a_refusal_of_the_whole_account_pauses_the_delivery_visibly_until_ses_sends_again(
    stack: Stack, logs: io.StringIO, capsys: pytest.CaptureFixture[str], refusal: Exception, count: int
) -> None:
    readers = add_subscribers(count)
    ses = scripted()
    ses.everyone = refusal
    start = times.now()
    capsys.readouterr()
    with freeze_time(start, tick=True) as clock:
        article = publish_new_article(stack)
        stack.drain(wait_for_delayed=False)
        delivery_id = f"article-{article['id']}"
        paused, of_article = delivery(stack, delivery_id), progress(stack, article["id"])
        first = sum(ses.calls.values())
        times.move_on(clock, timedelta(seconds=30))
        stack.drain(wait_for_delayed=False)
        within_the_minute = sum(ses.calls.values())
        for _ in range(5):  # five minutes of an account SES still refuses
            times.move_on(clock, timedelta(seconds=31))
            stack.drain(wait_for_delayed=False)
        minutes_later = sum(ses.calls.values())
        ses.everyone = None  # the account is put right
        for _ in range(3):
            times.move_on(clock, timedelta(seconds=61))
            stack.drain(wait_for_delayed=False)
        done = delivery(stack, delivery_id)

    assert paused["state"] == "sending"
    assert datetime.fromisoformat(paused["paused_until"]) >= start + timedelta(seconds=60)
    assert str(refusal.response["Error"]["Code"]) in paused["paused_reason"]  # type: ignore[attr-defined]
    assert paused["paused_reason"].startswith("SES refuses to send for this account")
    assert "newsroom@newsdesk.localhost" not in paused["paused_reason"]  # SES's texts are scrubbed of addresses
    assert (of_article["paused_until"], of_article["paused_reason"]) == (
        paused["paused_until"],
        paused["paused_reason"],
    )
    assert (paused["counts"]["queued"], paused["counts"]["pending"]) == (count, 0)  # the refused claims given back
    # No spin: one call per batch, then none until the pause is over, then at most one per batch a minute.
    assert first <= 2
    assert within_the_minute == first
    assert minutes_later - within_the_minute <= 2 * 3
    refusals = [json.loads(line) for line in logs.getvalue().splitlines() if '"ERROR"' in line]
    assert len(refusals) == minutes_later  # logged once for each batch SES refused, at ERROR
    assert {entry["message"] for entry in refusals} == {"SES refuses to send for this account: delivery paused"}
    assert ACCOUNT_REFUSED_METRIC in published_metrics(capsys.readouterr().out)
    # Once SES sends again, it resumes by itself: everyone once, nothing left over, nothing in a dead-letter queue.
    assert received() == sorted(readers)
    assert set(ses.accepted.values()) == {1}
    assert (done["state"], done["counts"]["delivered"], done["paused_until"], done["paused_reason"]) == (
        "done", count, None, None)  # fmt: skip
    assert dead_letters(stack) == 0


def test_an_editors_test_email_says_that_ses_refuses_the_account(stack: Stack) -> None:
    ses = scripted()
    ses.everyone = ses_error("SendingPausedException", 400, "Sending paused for this account.")
    draft = editor(stack, "editor-create-article", body=ARTICLE).json()
    event = sample_event("editor-publish-article", path={"article_id": draft["id"]}, body={"to": "editor@example.org"})
    event["rawPath"] = f"/admin/articles/{draft['id']}/test-email"

    reply = stack.call("EditorFunction", event)

    assert reply.status == 503
    error = reply.json()["error"]
    assert error["code"] == "service_busy"
    assert error["message"] == (
        "SES refuses to send for this account (SendingPausedException: Sending paused for this account.)"
    )
