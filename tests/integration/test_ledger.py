"""The delivery ledger: every recipient of every delivery ends in one final, explained state, settled by
SES's own events, and an editor can read and export it."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from freezegun import freeze_time

from newsdesk import dependencies
from newsdesk.dal.email import SesSender
from newsdesk.dal.ledger import LedgerShape, record_key
from newsdesk.dal.publications import ledger_shape
from newsdesk.services.delivery import (
    TAG_ATTEMPT,
    TAG_DELIVERY,
    TAG_LEDGER_SHARDS,
    TAG_RECIPIENT,
    UNCONFIRMED_METRIC,
)
from tests.integration.conftest import RECONCILIATION_WINDOW_SECONDS, Reply, Stack
from tests.integration.test_newsletter import ARTICLE, add_subscribers, newsletters, publish_new_article
from tests.support import times
from tests.support.chaos import KILL, ScriptedSes, run_chaos
from tests.support.events import sample_event, ses_event

SIMULATOR = "simulator.amazonses.com"
NOW = times.now()


def admin(
    stack: Stack, sample: str, *, path: dict[str, str] | None = None, query: dict[str, str] | None = None
) -> Reply:
    return stack.call("EditorFunction", sample_event(sample, path=path, query=query or {}))


def delivery(stack: Stack, delivery_id: str) -> dict[str, Any]:
    reply = admin(stack, "editor-get-delivery", path={"delivery_id": delivery_id})
    assert reply.status == 200, reply.body
    return dict(reply.json())


def recipients(stack: Stack, delivery_id: str, **query: str) -> dict[str | None, dict[str, Any]]:
    """Every ledger entry of a delivery, by address, following the cursor."""
    found: dict[str | None, dict[str, Any]] = {}
    cursor = None
    while True:
        page = admin(stack, "editor-delivery-recipients", path={"delivery_id": delivery_id},
                     query={**query, **({"cursor": cursor} if cursor else {})})  # fmt: skip
        assert page.status == 200, page.body
        found |= {entry["email"]: entry for entry in page.json()["items"]}
        cursor = page.json()["next_cursor"]
        if not cursor:
            return found


def ledger_of(delivery_id: str) -> tuple[LedgerShape, dict[str, list[str]]]:
    """Where a delivery's ledger is, and the message tag naming its partitions that its emails carry."""
    shape = ledger_shape(delivery_id, dependencies.container().publication_repository.publication(delivery_id))
    assert shape.shards is not None
    return shape, {TAG_LEDGER_SHARDS: [str(shape.shards)]}


def test_ses_events_settle_each_recipient_and_the_counts_add_up(stack: Stack) -> None:
    readers = add_subscribers(5)
    _confirm([f"{kind}@{SIMULATOR}" for kind in ("success", "bounce", "complaint")])

    article = publish_new_article(stack)
    stack.drain()

    report = delivery(stack, f"article-{article['id']}")
    ledger = recipients(stack, report["id"])
    assert ledger[f"success@{SIMULATOR}"]["state"] == "delivered"
    assert ledger[f"bounce@{SIMULATOR}"]["state"] == "bounced"
    assert ledger[f"bounce@{SIMULATOR}"]["detail"] == "permanent bounce (General, 5.1.1)"
    assert ledger[f"complaint@{SIMULATOR}"]["state"] == "complained"
    assert all(ledger[reader]["state"] == "delivered" for reader in readers)
    assert all(entry["message_id"] for entry in ledger.values())
    counts = report["counts"]
    assert report["state"] == "done"
    assert (counts["delivered"], counts["bounced"], counts["complained"], counts["pending"]) == (
        len(ledger) - 2,
        1,
        1,
        0,
    )
    assert sum(counts.values()) == report["total"] == len(ledger)
    # The bounce and the complaint suppressed their subscribers for good.
    repository = dependencies.container().subscriber_repository
    assert repository.get(f"bounce@{SIMULATOR}").status.value == "bounced"  # type: ignore[union-attr]
    assert repository.get(f"complaint@{SIMULATOR}").status.value == "complained"  # type: ignore[union-attr]


def _confirm(addresses: list[str]) -> None:
    from newsdesk.clock import utc_now
    from newsdesk.models.subscribers import Frequency, Subscriber, SubscriberStatus

    repository = dependencies.container().subscriber_repository
    now = utc_now()
    for address in addresses:
        pending = Subscriber(
            email=address, frequency=Frequency.INSTANT, status=SubscriberStatus.PENDING, created_at=now, updated_at=now
        )
        assert repository.create_pending(pending)
        assert repository.confirm(pending, now)


def test_the_ledger_pages_by_state_and_exports_as_csv(stack: Stack) -> None:
    add_subscribers(3)
    _confirm([f"bounce@{SIMULATOR}"])
    article = publish_new_article(stack)
    stack.drain()
    delivery_id = f"article-{article['id']}"

    bounced = recipients(stack, delivery_id, state="bounced")
    export = admin(stack, "editor-export-delivery-recipients", path={"delivery_id": delivery_id})
    listed = admin(stack, "editor-list-deliveries").json()

    assert list(bounced) == [f"bounce@{SIMULATOR}"]
    assert export.status == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.body)))
    assert sorted(row["email"] for row in rows) == sorted([*(f"reader{n}@example.org" for n in range(3)),
                                                           f"bounce@{SIMULATOR}"])  # fmt: skip
    assert {row["state"] for row in rows} == {"delivered", "bounced"}
    assert [item["id"] for item in listed["items"]] == [delivery_id]
    assert listed["items"][0]["counts"]["bounced"] == 1

    # A cursor of the delivered list is only good with state=delivered: without it, a 422 and not a silent restart
    first = admin(stack, "editor-delivery-recipients", path={"delivery_id": delivery_id},
                  query={"state": "delivered", "limit": "1"}).json()  # fmt: skip
    reused = admin(stack, "editor-delivery-recipients", path={"delivery_id": delivery_id},
                   query={"cursor": first["next_cursor"]})  # fmt: skip
    assert (reused.status, reused.json()["error"]["code"]) == (422, "invalid_cursor")


@pytest.mark.parametrize(
    ("sample", "path", "query"),
    [
        ("editor-get-delivery", {"delivery_id": "article-ffffffffffffffff"}, {}),
        ("editor-get-delivery", {"delivery_id": "../../etc"}, {}),
        ("editor-delivery-recipients", {"delivery_id": "article-ffffffffffffffff"}, {}),
    ],
)
def test_unknown_deliveries_are_404(stack: Stack, sample: str, path: dict[str, str], query: dict[str, str]) -> None:
    reply = admin(stack, sample, path=path, query=query)

    assert reply.status == 404
    assert reply.json()["error"]["code"] == "not_found"


def test_a_recipient_whose_attempts_are_killed_before_ses_gets_one_email_or_ends_failed_after_max_attempts(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    lucky, unlucky, *others = add_subscribers(4)
    attempts = int(stack.resolver.ref("MaxSendAttempts"))
    # The mailer dies between its claim and the SES call: all but the last attempt for one reader, every
    # attempt for another.
    ses = ScriptedSes(boto3.client("sesv2"), {lucky: [KILL] * (attempts - 1), unlucky: [KILL] * attempts})
    dependencies.reset().ses = ses
    capsys.readouterr()
    with freeze_time(times.now(), tick=True) as clock:
        article = publish_new_article(stack)
        stack.drain(wait_for_delayed=False)
        delivery_id = f"article-{article['id']}"
        waiting = delivery(stack, delivery_id)
        for _ in range(attempts):  # each window passes without a Send event: the next attempt goes
            times.move_on(clock, timedelta(seconds=RECONCILIATION_WINDOW_SECONDS + 5))
            stack.drain(wait_for_delayed=False)
        done = delivery(stack, delivery_id)

    assert attempts == 5  # the template's default
    assert (waiting["state"], waiting["counts"]["pending"]) == ("sending", 2)  # no Send event: not known sent
    assert ses.attempts[lucky] == list(range(1, attempts + 1))  # each attempt tagged with its number
    assert ses.attempts[unlucky] == list(range(1, attempts + 1))  # and no more than MaxSendAttempts
    received = [mail.message["To"].addresses[0].addr_spec for mail in newsletters(ARTICLE["title"])]
    assert sorted(received) == sorted([lucky, *others])  # the lucky one once, from the last attempt
    assert (done["state"], done["counts"]["delivered"], done["failed"], done["late_send_events"]) == ("done", 3, 1, 0)
    failed = recipients(stack, delivery_id)[unlucky]
    assert (failed["state"], failed["detail"]) == ("failed", "SES never confirmed sending it, after 5 attempts")
    assert unconfirmed_metrics(stack, capsys.readouterr().out) == [1.0]  # counted once, where its alarm looks
    assert set(ses.accepted) == set(received)
    assert set(ses.accepted.values()) == {1}


def unconfirmed_metrics(stack: Stack, output: str) -> list[float]:
    """The values of the SendsUnconfirmed metric the functions published (EMF), checked to be the metric
    the template's alarm watches: same namespace, name and dimensions."""
    (alarm,) = [
        stack.resolver.resolve(resource.properties)
        for resource in stack.template.of_type("AWS::CloudWatch::Alarm")
        if resource.properties.get("MetricName") == UNCONFIRMED_METRIC
    ]
    watched = {dimension["Name"]: dimension["Value"] for dimension in alarm["Dimensions"]}
    values: list[float] = []
    for line in output.splitlines():
        try:
            document: Any = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or UNCONFIRMED_METRIC not in document:
            continue
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == alarm["Namespace"]
        assert {name: document[name] for group in directive["Dimensions"] for name in group} == watched
        values += document[UNCONFIRMED_METRIC] if isinstance(document[UNCONFIRMED_METRIC], list) else [
            document[UNCONFIRMED_METRIC]]  # fmt: skip
    return values


def test_a_mailer_that_dies_after_ses_accepted_sends_nothing_twice(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers = add_subscribers(3)
    real_send = SesSender.send
    died: list[str] = []

    def dies_after_ses_accepted(self: SesSender, **request: Any) -> str:
        message_id = real_send(self, **request)
        if request["recipient"] == readers[0] and not died:
            died.append(message_id)
            raise ConnectionAbortedError("the mailer's process was killed before it could go on")
        return message_id

    monkeypatch.setattr(SesSender, "send", dies_after_ses_accepted)
    with freeze_time(NOW, tick=True) as clock:
        article = publish_new_article(stack)
        stack.drain(wait_for_delayed=False)
        clock.tick(timedelta(seconds=RECONCILIATION_WINDOW_SECONDS + 5))
        stack.drain()

    received = sorted(mail.message["To"].addresses[0].addr_spec for mail in newsletters(ARTICLE["title"]))
    assert received == sorted(readers)
    report = delivery(stack, f"article-{article['id']}")
    assert (report["state"], report["counts"]["delivered"]) == ("done", 3)
    assert recipients(stack, report["id"])[readers[0]]["message_id"] == died[0]


def test_a_send_event_later_than_the_window_is_counted_as_a_possible_duplicate(stack: Stack) -> None:
    (reader,) = add_subscribers(1)
    article = publish_new_article(stack)
    stack.drain()
    delivery_id = f"article-{article['id']}"
    key = dependencies.container().recipient_keys().of(reader)
    ledger, shards_tag = ledger_of(delivery_id)
    # The record as a second attempt left it, and then the first attempt's Send event, long after.
    boto3.client("dynamodb").update_item(
        TableName=stack.table("DeliveriesTable"),
        Key=record_key(ledger, key),
        UpdateExpression="SET attempt = :two",
        ExpressionAttributeValues={":two": {"N": "2"}},
    )
    late = {"eventType": "Send", "send": {}, "mail": {"messageId": "late-one", "tags": {
        TAG_DELIVERY: [delivery_id], TAG_RECIPIENT: [key], TAG_ATTEMPT: ["1"], **shards_tag}}}  # fmt: skip
    envelope = {"source": "aws.ses", "detail-type": "Email Sent", "detail": late}
    boto3.client("sqs").send_message(
        QueueUrl=stack.resolver.queue_url("SesEventsQueue"), MessageBody=json.dumps(envelope)
    )
    boto3.client("sqs").send_message(
        QueueUrl=stack.resolver.queue_url("SesEventsQueue"), MessageBody=json.dumps(envelope)
    )

    stack.drain()

    report = delivery(stack, delivery_id)
    assert report["late_send_events"] == 1  # counted once, though the event came twice
    assert report["counts"]["delivered"] == 1


def test_a_late_send_event_settles_a_record_still_waiting_for_a_later_attempt(stack: Stack) -> None:
    (reader,) = add_subscribers(1)
    article = publish_new_article(stack)
    stack.drain()
    delivery_id = f"article-{article['id']}"
    key = dependencies.container().recipient_keys().of(reader)
    ledger, shards_tag = ledger_of(delivery_id)
    # The record as a second attempt left it when its mailer was killed before SES: pending, attempt 2.
    boto3.client("dynamodb").update_item(
        TableName=stack.table("DeliveriesTable"),
        Key=record_key(ledger, key),
        UpdateExpression="SET attempt = :two, #state = :pending, pending_since = :now",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":two": {"N": "2"}, ":pending": {"S": "pending"},
                                   ":now": {"S": datetime.now(UTC).isoformat()}},
    )  # fmt: skip
    late = {"eventType": "Send", "send": {}, "mail": {"messageId": "late-one", "tags": {
        TAG_DELIVERY: [delivery_id], TAG_RECIPIENT: [key], TAG_ATTEMPT: ["1"], **shards_tag}}}  # fmt: skip

    stack.invoke("SesEventsFunction", ses_event(late))
    stack.drain()

    entry = recipients(stack, delivery_id)[reader]
    assert (entry["state"], entry["message_id"]) == ("sent", "late-one")  # the first email reached SES: not sent again
    assert delivery(stack, delivery_id)["late_send_events"] == 1


class DailyQuota:
    """SES with a daily quota of `limit` emails, counted over the frozen clock's last 24 hours."""

    def __init__(self, real: Any, limit: int) -> None:
        self._real = real
        self._limit = limit
        self.sent_at: list[datetime] = []

    def send_email(self, **request: Any) -> Any:
        now = datetime.now(UTC)
        if sum(1 for moment in self.sent_at if moment > now - timedelta(hours=24)) >= self._limit:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Daily message quota exceeded."}},
                              "SendEmail")  # fmt: skip
        self.sent_at.append(now)
        return self._real.send_email(**request)


def test_a_spent_daily_quota_pauses_the_delivery_until_it_frees(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    readers = add_subscribers(150)  # a batch of 100 stopped by the quota, and a whole batch waiting
    quota = DailyQuota(boto3.client("sesv2"), limit=90)
    dependencies.reset().ses = quota
    with freeze_time(NOW, tick=True) as clock:
        article = publish_new_article(stack)
        stack.drain(wait_for_delayed=False)
        paused = delivery(stack, f"article-{article['id']}")
        for _ in range(60):  # half-hours, until the quota has freed and the batches have come back
            clock.tick(timedelta(minutes=30))
            stack.drain(wait_for_delayed=False)
            if delivery(stack, f"article-{article['id']}")["state"] == "done":
                break

    assert paused["state"] == "sending"
    assert paused["paused_until"] is not None
    assert paused["counts"]["delivered"] == 90
    assert paused["counts"]["queued"] == 60  # nothing lost: waiting, not failed
    received = [mail.message["To"].addresses[0].addr_spec for mail in newsletters(ARTICLE["title"])]
    assert sorted(received) == sorted(readers)  # nothing repeated
    done = delivery(stack, f"article-{article['id']}")
    assert (done["state"], done["counts"]["delivered"], done["paused_until"]) == ("done", 150, None)


def test_erasing_a_subscriber_removes_their_address_from_every_ledger(stack: Stack) -> None:
    readers = add_subscribers(2)
    first = publish_new_article(stack)
    second = publish_new_article(stack, title="Second story")
    stack.drain()

    reply = stack.call("EditorFunction", sample_event("editor-erase-subscriber", path={"email": readers[0]}))

    assert reply.status == 204
    for article in (first, second):
        ledger = recipients(stack, f"article-{article['id']}")
        assert set(ledger) == {readers[1], None}  # the erased person's record stays, without the address
        assert ledger[None]["state"] == "delivered"
    assert not any(readers[0] in json.dumps(item) for item in stack.items("DeliveriesTable"))


# ---------------------------------------------------------------------------------------------- chaos

# CI-sized (the whole suite must fit CI's budget); `python -m bench.chaos` runs the same scenario at 50,000.
CHAOS_LIST = 1200


def test_chaos_every_subscriber_gets_exactly_one_email_and_the_ledger_matches_ses(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers = add_subscribers(CHAOS_LIST)

    outcome = run_chaos(stack, monkeypatch)

    ses = outcome.ses
    chaos = (ses.throttled > CHAOS_LIST // 8, ses.quota_refusals > 0, ses.killed_before >= 3, ses.killed_after >= 3)
    assert chaos == (True, True, True, True), vars(ses)
    assert set(ses.accepted) == set(readers)
    assert set(ses.accepted.values()) == {1}  # exactly one email accepted by SES for every subscriber
    assert outcome.states == {"delivered": CHAOS_LIST}  # every ledger record in a final state
    assert outcome.report["total"] == CHAOS_LIST
    assert outcome.report["sent"] == sum(ses.accepted.values())  # the report's totals are SES's own
    assert outcome.report["counts"]["delivered"] == sum(ses.accepted.values())
    assert outcome.report["late_send_events"] == 0
    assert outcome.dead_letters == 0


# ----------------------------------------------------------------------------------------- engagement


def test_without_track_engagement_ses_is_asked_for_no_opens_or_clicks(stack: Stack) -> None:
    from local.template.sam import expand

    expanded = expand(stack.template, {"SenderAddress": "news@example.org"})
    (destination,) = [
        body["Properties"]["EventDestination"]
        for body in expanded["Resources"].values()
        if body["Type"] == "AWS::SES::ConfigurationSetEventDestination"
    ]
    without, with_tracking = (
        destination["MatchingEventTypes"]["Fn::If"][2],
        destination["MatchingEventTypes"]["Fn::If"][1],
    )
    add_subscribers(1)
    publish_new_article(stack, body="Read [the report](https://example.org/report).")
    stack.drain()

    assert destination["MatchingEventTypes"]["Fn::If"][0] == "TrackEngagementOn"
    assert not {"open", "click"} & set(without)
    assert {"open", "click"} <= set(with_tracking)
    [mail] = newsletters(ARTICLE["title"])
    assert "<img" not in mail.html  # no pixel of ours; SES adds its own only when asked
    assert 'href="https://example.org/report"' in mail.html  # links as written


def ses_time(moment: datetime) -> str:
    """A time as SES writes it in its events: `2026-11-30T09:00:02.000Z`."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.000Z"


def engagement_event(delivery_id: str, key: str, kind: str, **details: Any) -> dict[str, Any]:
    mail = {"messageId": f"message-{key}", "timestamp": ses_time(NOW),
            "tags": {TAG_DELIVERY: [delivery_id], TAG_RECIPIENT: [key], TAG_ATTEMPT: ["1"]}}  # fmt: skip
    return {"eventType": kind, "mail": mail, kind.lower(): details}


def test_opens_and_clicks_are_counted_as_aggregates_with_machines_apart(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers = add_subscribers(3)
    article = publish_new_article(stack)
    stack.drain()
    monkeypatch.setenv("TRACK_ENGAGEMENT", "true")
    dependencies.reset()
    delivery_id = f"article-{article['id']}"
    keys = [dependencies.container().recipient_keys().of(reader) for reader in readers]
    person = {"ipAddress": "198.51.100.7", "userAgent": "Mozilla/5.0 (Macintosh)"}
    later = ses_time(NOW + timedelta(minutes=5))
    events = [
        engagement_event(delivery_id, keys[0], "Open", timestamp=later, **person),
        engagement_event(delivery_id, keys[0], "Open", timestamp=later, **person),  # the same reader again
        engagement_event(delivery_id, keys[1], "Open", timestamp=later, ipAddress="17.58.1.2", userAgent="Mozilla/5.0"),
        engagement_event(delivery_id, keys[0], "Click", link="https://example.org/a", timestamp=later, **person),
        engagement_event(delivery_id, keys[2], "Click", link="https://example.org/a", timestamp=later, **person),
        engagement_event(delivery_id, keys[2], "Click", link="https://example.org/a",
                         timestamp=ses_time(NOW + timedelta(seconds=2)), **person),  # seconds after sending: a scanner
    ]  # fmt: skip
    for event in events:
        stack.invoke("SesEventsFunction", ses_event(event))
    stack.invoke("SesEventsFunction", ses_event(events[3]))  # a redelivered click counts once

    engagement = delivery(stack, delivery_id)["engagement"]

    assert engagement == {
        "unique_opens": 1, "machine_opens": 1, "clicks": {"https://example.org/a": 2}, "scanner_clicks": 1,
    }  # fmt: skip
    kept = json.dumps(stack.items("PublicationsTable"))
    assert not any(reader in kept or key in kept for reader, key in zip(readers, keys, strict=True))  # never per person
