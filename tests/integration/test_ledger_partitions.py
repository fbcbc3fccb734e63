"""A delivery's ledger is spread over partitions, so its writes stay within what DynamoDB serves a partition key
at any send rate (docs/capacity.md); every read of it stays bounded and paged across them, and a ledger of
one partition, as deliveries started before had, is still read and settled."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest

from local.aws import moto_fixes
from newsdesk import dependencies
from newsdesk.dal.ledger import WRITES_PER_RECIPIENT, LedgerShape, shards_for
from newsdesk.dal.publications import ledger_shape
from tests.integration.conftest import Stack
from tests.integration.test_ledger import admin, delivery, recipients
from tests.integration.test_newsletter import add_subscribers, publish_new_article
from tests.support.events import ses_event

# CI-sized: enough recipients that every partition takes dozens of them.
NEWSLETTER = 1000
SLACK = 0.5
"""How far above its share of a newsletter's writes one ledger partition may go: the recipient keys spread
over partitions like a hash, unevenly at this size (at a million, within a few percent)."""


def shape_of(delivery_id: str) -> LedgerShape:
    return ledger_shape(delivery_id, dependencies.container().publication_repository.publication(delivery_id))


def fixed_identifiers_key(stack: Stack) -> None:
    """A known secret, so that the recipient keys, and how they fall into partitions, are the same every run."""
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.resolver.get_att("SigningSecret", "Arn"), SecretString="ledger-partitions-test-secret-0001"
    )
    dependencies.reset()


def test_a_newsletters_writes_spread_over_its_ledger_partitions_each_within_its_share(stack: Stack) -> None:
    # Given a thousand readers and the stack's send rate (5,000 a second)
    fixed_identifiers_key(stack)
    readers = add_subscribers(NEWSLETTER)
    moto_fixes.partition_writes.reset()

    # When a newsletter goes to them
    article = publish_new_article(stack)
    stack.drain()

    # Then its ledger has the partitions the send rate needs, every recipient in the one its key names
    delivery_id = f"article-{article['id']}"
    assert delivery(stack, delivery_id)["counts"]["delivered"] == NEWSLETTER
    shape = shape_of(delivery_id)
    assert shape.shards == shards_for(5000) == 32
    keys = dependencies.container().recipient_keys()
    share = Counter(shape.partition(keys.of(reader)) for reader in readers)
    # And each partition took exactly the claim, the Send and the Delivery of each of its recipients: no key of
    # the ledger above its share of the newsletter's writes (all of them went to one key before)
    written = moto_fixes.partition_writes.of(stack.table("DeliveriesTable"))
    assert written == {partition: WRITES_PER_RECIPIENT * count for partition, count in share.items()}
    fair = WRITES_PER_RECIPIENT * NEWSLETTER / shape.shards
    assert max(written.values()) <= fair * (1 + SLACK), sorted(written.values())
    # And the delivery's own key (its publication record, batches and counts) takes a few writes per batch of
    # 100 (a lease and its end, the tally's sums), not one per recipient
    publications = moto_fixes.partition_writes.of(stack.table("PublicationsTable"))
    assert publications == {delivery_id: publications[delivery_id]}
    assert publications[delivery_id] <= NEWSLETTER / 10, publications


def pages(stack: Stack, delivery_id: str, **query: str) -> list[list[dict[str, Any]]]:
    """Every page of a delivery's recipients list, following the cursor."""
    found: list[list[dict[str, Any]]] = []
    cursor = None
    while len(found) < 200:
        reply = admin(stack, "editor-delivery-recipients", path={"delivery_id": delivery_id},
                      query={**query, **({"cursor": cursor} if cursor else {})})  # fmt: skip
        assert reply.status == 200, reply.body
        found.append(reply.json()["items"])
        cursor = reply.json()["next_cursor"]
        if not cursor:
            return found
    raise AssertionError("the cursor never ended")


def test_the_recipients_list_pages_across_the_partitions_each_recipient_once(stack: Stack) -> None:
    # Given a newsletter to 40 readers, its ledger in 32 partitions
    readers = add_subscribers(40)
    article = publish_new_article(stack)
    stack.drain()
    delivery_id = f"article-{article['id']}"

    # When an editor reads its recipients three at a time, with and without a state
    listed = pages(stack, delivery_id, limit="3")
    delivered = pages(stack, delivery_id, limit="3", state="delivered")
    bounced = pages(stack, delivery_id, limit="3", state="bounced")

    # Then every reader is listed once, in full pages, and no page after the last
    emails = [entry["email"] for page in listed for entry in page]
    assert sorted(emails) == sorted(readers)
    assert [len(page) for page in listed] == [3] * 13 + [1]
    # And with a state, only records in it are listed, and a page examines at most `limit` (+ 1) records over
    # however many partitions: the 40 records nobody bounced take at least 40 / 4 (empty) pages
    assert sorted(entry["email"] for page in delivered for entry in page) == sorted(readers)
    assert all(page == [] for page in bounced)
    assert len(bounced) >= 40 / 4


def test_a_cursor_is_only_good_for_its_own_delivery_and_partitions(stack: Stack) -> None:
    from newsdesk.dal.dynamodb import encode_cursor

    # Given two newsletters to the same readers
    add_subscribers(12)
    first, second = publish_new_article(stack), publish_new_article(stack, title="Second story")
    stack.drain()
    ids = [f"article-{article['id']}" for article in (first, second)]

    def page(delivery_id: str, cursor: str, limit: str = "2") -> Any:
        return admin(stack, "editor-delivery-recipients", path={"delivery_id": delivery_id},
                     query={"limit": limit, "cursor": cursor})  # fmt: skip

    # One inside a partition, and one at the start of the next (a partition read to its end with a page)
    inside = admin(stack, "editor-delivery-recipients", path={"delivery_id": ids[0]}, query={"limit": "1"})
    partition_ends = [shape_of(ids[0]).partitions()[3], shape_of(ids[0]).partitions()[4]]
    at_start = encode_cursor({"pk": {"S": partition_ends[1]}}, partition=4)
    forged = [
        encode_cursor({"pk": {"S": partition_ends[0]}}, partition=4),  # the key of another partition than it names
        encode_cursor({"pk": {"S": f"{ids[0]}#40"}}, partition=40),  # a partition the ledger does not have
        encode_cursor({"pk": {"S": partition_ends[1]}, "sk": {"S": "to#x"}}),  # no partition named
    ]

    # Then each answers on its own delivery, and is refused (422) by the other and when forged
    assert page(ids[0], inside.json()["next_cursor"]).status == 200
    assert page(ids[0], at_start).status == 200
    for cursor in (inside.json()["next_cursor"], at_start):
        refused = page(ids[1], cursor)
        assert (refused.status, refused.json()["error"]["code"]) == (422, "invalid_cursor")
    for cursor in forged:
        refused = page(ids[0], cursor)
        assert (refused.status, refused.json()["error"]["code"]) == (422, "invalid_cursor")


def test_a_delivery_started_before_ledgers_were_sharded_is_finished_in_its_one_partition(stack: Stack) -> None:
    from datetime import UTC, datetime

    from newsdesk.dal.subscribers import shard_of
    from newsdesk.models.delivery import BatchRecipient
    from newsdesk.services.delivery import batch_id
    from newsdesk.services.ses_event import TAG_ATTEMPT, TAG_DELIVERY, TAG_RECIPIENT
    from tests.integration.test_newsletter import ARTICLE, newsletters

    # Given a newsletter the previous version started (its topics and fan-out fixed, no ledger partitions),
    # one of its readers already claimed and sent by that version in the delivery's one partition
    readers = add_subscribers(5)
    article = publish_new_article(stack)
    delivery_id = f"article-{article['id']}"
    boto3.client("dynamodb").update_item(
        TableName=stack.table("PublicationsTable"),
        Key={"pk": {"S": delivery_id}, "sk": {"S": "#publication"}},
        UpdateExpression="SET topics = :none, shards_expected = :shards",
        ExpressionAttributeValues={":none": {"L": []}, ":shards": {"N": "8"}},
    )
    old = LedgerShape(delivery_id)
    key = dependencies.container().recipient_keys().of(readers[0])
    shard = shard_of(readers[0])
    its_batch = batch_id(
        shard, [BatchRecipient(email=reader) for reader in sorted(readers) if shard_of(reader) == shard]
    )
    assert dependencies.container().ledger_repository.claim(
        old, key, readers[0], batch_id=its_batch, attempt=1, now=datetime.now(UTC)
    )
    # and SES's events of that email (which carry no partitions tag)
    for kind in ("Send", "Delivery"):
        event = {"eventType": kind, kind.lower(): {}, "mail": {"messageId": "sent-before", "tags": {
            TAG_DELIVERY: [delivery_id], TAG_RECIPIENT: [key], TAG_ATTEMPT: ["1"]}}}  # fmt: skip
        stack.invoke("SesEventsFunction", ses_event(event))

    # When this version goes on with it
    stack.drain()

    # Then the others get one email each, the claimed reader none again, all in the delivery's one partition
    received = sorted(mail.message["To"].addresses[0].addr_spec for mail in newsletters(ARTICLE["title"]))
    assert received == sorted(readers[1:])
    assert shape_of(delivery_id) == old
    assert {item["pk"]["S"] for item in stack.items("DeliveriesTable")} == {delivery_id}
    # And it is listed, counted and finished as every delivery is
    assert {email: entry["state"] for email, entry in recipients(stack, delivery_id).items()} == dict.fromkeys(
        readers, "delivered"
    )
    report = delivery(stack, delivery_id)
    assert (report["state"], report["counts"]["delivered"], report["total"]) == ("done", 5, 5)


def test_a_batch_of_opens_and_clicks_adds_to_a_delivery_in_one_write_per_counter(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.test_ledger import engagement_event, ses_time
    from tests.support.times import now

    # Given a delivered newsletter, and engagement counted
    add_subscribers(1)
    article = publish_new_article(stack)
    stack.drain()
    monkeypatch.setenv("TRACK_ENGAGEMENT", "true")
    dependencies.reset()
    delivery_id = f"article-{article['id']}"
    later = ses_time(now() + timedelta(minutes=5))
    person = {"ipAddress": "198.51.100.7", "userAgent": "Mozilla/5.0 (Macintosh)", "timestamp": later}
    opens = [engagement_event(delivery_id, f"k{n}", "Open", **person) for n in range(40)]
    machines = [engagement_event(delivery_id, f"m{n}", "Open", **{**person, "ipAddress": "17.58.1.2"})
                for n in range(20)]  # fmt: skip
    clicks = [engagement_event(delivery_id, f"c{n}", "Click", link=f"https://example.org/{n % 2}", **person)
              for n in range(30)]  # fmt: skip
    batch = {"Records": [ses_event(event)["Records"][0] | {"messageId": f"sqs-{n}"}
                         for n, event in enumerate(opens + machines + clicks)]}  # fmt: skip
    moto_fixes.partition_writes.reset()

    # When SES's events of many emails come in one batch
    stack.invoke("SesEventsFunction", batch)

    # Then the delivery's counts have them all, added with one write per counter (not one per event): the
    # markers that count each event once are keys of their own
    engagement = delivery(stack, delivery_id)["engagement"]
    assert engagement == {"unique_opens": 40, "machine_opens": 20, "scanner_clicks": 0,
                          "clicks": {"https://example.org/0": 15, "https://example.org/1": 15}}  # fmt: skip
    written = moto_fixes.partition_writes.of(stack.table("PublicationsTable"))
    assert written.pop(delivery_id) == 3  # the opens' sums and one per link
    assert sorted(written.values()) == [1] * 90
