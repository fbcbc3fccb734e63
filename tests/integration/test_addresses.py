"""Which addresses are accepted, checked once at every edge: sign-ups, CSV imports, SES feedback and the
editor's test email. What is accepted can be mailed; what cannot is a clear 4xx or an invalid row."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from freezegun import freeze_time

from newsdesk import dependencies
from newsdesk.clock import utc_now
from newsdesk.dal.ledger import LedgerShape
from newsdesk.models.subscribers import Subscriber, SubscriberStatus
from tests.integration.conftest import Reply, Stack
from tests.integration.test_uploads import csv_file, latest_upload, upload
from tests.support.events import sample_event, ses_event
from tests.support.mail import outbox

IDN_SIGNED_UP = "  Leser@BÜCHER.de "
IDN_STORED = "leser@xn--bcher-kva.de"


def subscribe(stack: Stack, email: str) -> Reply:
    return stack.call("PublicFunction", sample_event("public-subscribe", body={"email": email}))


def stored_addresses(stack: Stack) -> list[str]:
    return sorted(item["email"]["S"] for item in stack.items("SubscribersTable"))


@pytest.mark.parametrize(
    "email", ["jörg@example.org", "用户@例子.广告", "Jörg <jorg@example.org>", '"a b"@example.org']
)
def test_an_address_that_cannot_be_mailed_is_a_clear_422_and_changes_nothing(stack: Stack, email: str) -> None:
    reply = subscribe(stack, email)

    assert reply.status == 422
    error = reply.json()["error"]
    assert (error["code"], set(error)) == ("validation_error", {"code", "message", "details"})
    assert error["details"][0]["loc"] == ["body", "email"]
    assert stack.items("SubscribersTable") == []
    assert outbox() == []


def test_smtputf8_addresses_are_refused_with_the_reason(stack: Stack) -> None:
    [detail] = subscribe(stack, "jörg@example.org").json()["error"]["details"]

    # The validator's own words, without the "Value error, " pydantic puts before them
    assert detail["msg"].startswith("the part before the @ must be ASCII")
    assert "SMTPUTF8" in detail["msg"]


def test_an_internationalized_domain_is_kept_in_its_ascii_form(stack: Stack) -> None:
    assert subscribe(stack, IDN_SIGNED_UP).status == 202
    assert subscribe(stack, IDN_STORED.upper()).status == 202  # the same address, written the other way

    assert stored_addresses(stack) == [IDN_STORED]
    [mail] = outbox()
    assert mail.to == IDN_STORED
    assert mail.message["To"] == IDN_STORED


def test_an_import_applies_the_same_rules(stack: Stack) -> None:
    data = csv_file([
        ["jörg@example.org", "Jörg", ""],  # row 2: cannot be mailed
        [IDN_SIGNED_UP, "Leser", ""],  # row 3
        ["Ada <ada@example.org>", "", ""],  # row 4: not a bare address
        ["ada@example.org", "", ""],  # row 5
    ])  # fmt: skip

    upload(stack, "subscribers/list.csv", data)

    record = latest_upload(stack)
    assert (record["outcome"], record["imported"], record["invalid"]) == ("imported", 2, 2)
    reasons = {note["row"]: note["reason"] for note in record["invalid_rows"]}
    assert set(reasons) == {2, 4}
    assert reasons[2].startswith("email: the part before the @ must be ASCII")  # no "Value error, "
    assert "SMTPUTF8" in reasons[2]
    assert stored_addresses(stack) == ["ada@example.org", IDN_STORED]
    assert sorted(mail.to for mail in outbox()) == ["ada@example.org", IDN_STORED]


def ses_bounce(address: str) -> dict[str, Any]:
    return ses_event({"eventType": "Bounce", "bounce": {"bounceType": "Permanent",
                                                        "bouncedRecipients": [{"emailAddress": address}]}})  # fmt: skip


@pytest.mark.parametrize("reported", ["LESER@XN--BCHER-KVA.DE", "Leser@Bücher.de"])
def test_ses_feedback_finds_the_address_however_it_is_written(stack: Stack, reported: str) -> None:
    subscribe(stack, IDN_SIGNED_UP)

    stack.invoke("SesEventsFunction", ses_bounce(reported))

    assert dependencies.container().subscriber_repository.get(IDN_STORED).status.value == "bounced"  # type: ignore[union-attr]


def test_ses_feedback_about_an_address_that_could_never_be_stored_changes_nothing(stack: Stack) -> None:
    subscribe(stack, "reader@example.org")

    stack.invoke("SesEventsFunction", ses_bounce("not an address"))

    assert dependencies.container().subscriber_repository.get("reader@example.org").status.value == "pending"  # type: ignore[union-attr]


def test_the_test_email_takes_the_same_addresses(stack: Stack) -> None:
    draft = stack.call("EditorFunction", sample_event("editor-create-article")).json()

    def test_email(to: str) -> Reply:
        event = sample_event("editor-publish-article", path={"article_id": draft["id"]}, body={"to": to})
        event["rawPath"] = f"/admin/articles/{draft['id']}/test-email"
        return stack.call("EditorFunction", event)

    assert test_email("jörg@example.org").status == 422
    assert test_email(IDN_SIGNED_UP).status == 202
    assert [mail.to for mail in outbox()] == [IDN_STORED]


def test_a_redelivered_confirmation_batch_sends_nothing_twice(stack: Stack) -> None:
    upload(stack, "subscribers/list.csv", csv_file([[f"reader{n}@example.org", "", ""] for n in range(3)]))
    assert len(outbox()) == 3
    batch = {
        "kind": "confirm",
        "upload_id": latest_upload(stack)["id"],
        "recipients": [{"email": f"reader{n}@example.org"} for n in range(3)],
    }

    # SQS hands the batch out again, after its visibility timeout (well past the 10-minute resend guard).
    with freeze_time(utc_now() + timedelta(minutes=31)):
        queue = stack.resolver.queue_url("ConfirmationQueue")
        boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(batch))
        stack.drain()

    assert len(outbox()) == 3


def test_a_record_stored_with_a_unicode_domain_before_the_rules_is_erased_by_that_spelling(stack: Stack) -> None:
    # Given a subscriber stored before addresses were normalized (its Unicode domain kept), in a ledger
    legacy = "leser@bücher.de"
    now = utc_now()
    repository = dependencies.container().subscriber_repository
    pending = Subscriber(email=legacy, status=SubscriberStatus.PENDING, created_at=now, updated_at=now)
    assert repository.create_pending(pending)
    assert repository.confirm(pending, now)
    key = dependencies.container().recipient_keys().of(legacy)
    ledger = LedgerShape("article-1", 8)
    assert dependencies.container().ledger_repository.claim(ledger, key, legacy, batch_id="b", attempt=1, now=now)

    # When an editor erases it by that spelling
    reply = stack.call("EditorFunction", sample_event("editor-erase-subscriber", path={"email": "Leser@Bücher.de"}))

    # Then it is erased, its ledger record included
    assert reply.status == 204
    assert repository.get(legacy) is None
    assert not [item for item in stack.items("DeliveriesTable") if "email" in item]
