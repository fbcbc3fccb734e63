"""Publishing by S3 upload and subscriber import, through the bucket, queue and functions of template.yaml.

Objects are put into the bucket created from the template; moto's S3 notifications reach the runner's
internal queue and `stack.drain()` delivers them, as S3 would. Events that S3 would only send in an
unusual order (twice, or an older version last) are built with the runner's event builder.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from freezegun import freeze_time

from local.lambda_runtime.events import s3_event, s3_event_record
from newsdesk import dependencies
from newsdesk.clock import utc_now
from newsdesk.dal.subscribers import audience
from newsdesk.dal.uploads import UploadRepository
from newsdesk.models.subscribers import Frequency, Subscriber, SubscriberStatus
from newsdesk.services import imports
from tests.integration.conftest import Reply, Stack
from tests.support import times
from tests.support.events import sample_event
from tests.support.mail import Mail, mail_to, outbox

NEXT_YEAR = times.now() + timedelta(days=365)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "council-approves-budget.md"
EXAMPLE_SLUG = "council-approves-2027-budget"


def article_file(title: str, body: str = "Some **news**.", **front: Any) -> bytes:
    lines = [f"title: {json.dumps(title)}", *(f"{key}: {json.dumps(value)}" for key, value in front.items())]
    return ("---\n" + "\n".join(lines) + "\n---\n" + body + "\n").encode()


def bucket(stack: Stack) -> str:
    return str(stack.resolver.ref("UploadsBucket"))


def put(stack: Stack, key: str, data: bytes) -> dict[str, Any]:
    answer: dict[str, Any] = boto3.client("s3").put_object(Bucket=bucket(stack), Key=key, Body=data)
    return answer


def upload(stack: Stack, key: str, data: bytes) -> None:
    """What `aws s3 cp` does, and what follows it: the notification, the function, its queue."""
    put(stack, key, data)
    stack.drain()


def event_for(stack: Stack, key: str, put_answer: dict[str, Any], sequencer: str) -> dict[str, Any]:
    """The S3 event of one put, with the sequencer S3 would have given it."""
    size = boto3.client("s3").head_object(Bucket=bucket(stack), Key=key, VersionId=put_answer["VersionId"])
    record = s3_event_record(
        bucket(stack),
        key,
        size=size["ContentLength"],
        etag=put_answer["ETag"],
        version_id=put_answer["VersionId"],
    )
    record["s3"]["object"]["sequencer"] = sequencer
    return s3_event([record])


def editor(stack: Stack, sample: str, **request: Any) -> Reply:
    return stack.call("EditorFunction", sample_event(sample, **request))


def uploads(stack: Stack, **query: str) -> dict[str, Any]:
    reply = editor(stack, "editor-list-uploads", query=query or {"limit": "20"})
    assert reply.status == 200, reply.body
    return dict(reply.json())


def latest_upload(stack: Stack) -> dict[str, Any]:
    return dict(uploads(stack)["items"][0])


def admin_articles(stack: Stack) -> list[dict[str, Any]]:
    reply = editor(stack, "editor-list-articles", query={"limit": "100"})
    assert reply.status == 200, reply.body
    return list(reply.json()["items"])


def public_article(stack: Stack, slug: str) -> Reply:
    return stack.call("PublicFunction", sample_event("public-get-article", path={"slug": slug}))


def add_subscriber(email: str, status: SubscriberStatus = SubscriberStatus.CONFIRMED) -> None:
    """A subscriber who signed up earlier, written through the product's own repository."""
    repository = dependencies.container().subscriber_repository
    now = utc_now()
    pending = Subscriber(email=email, status=SubscriberStatus.PENDING, created_at=now, updated_at=now)
    assert repository.create_pending(pending)
    if status is not SubscriberStatus.PENDING:
        assert repository.confirm(pending, now)
    if status is SubscriberStatus.UNSUBSCRIBED:
        assert repository.unsubscribe(email, now)
    elif status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
        assert repository.suppress(email, status, now)


def address(mail: Mail) -> str:
    return str(mail.message["To"].addresses[0].addr_spec)


def status_of(email: str) -> str | None:
    subscriber = dependencies.container().subscriber_repository.get(email)
    return subscriber.status.value if subscriber else None


# ---------------------------------------------------------------------- articles


def test_an_uploaded_markdown_file_is_published_to_readers_and_subscribers(stack: Stack) -> None:
    add_subscriber("reader@example.org")

    upload(stack, "articles/council-approves-budget.md", EXAMPLE.read_bytes())

    reply = public_article(stack, EXAMPLE_SLUG)
    assert reply.status == 200, reply.body
    article = reply.json()
    assert (article["title"], article["author"], article["tags"]) == (
        "Council approves the 2027 budget",
        "Ada Brennan",
        ["council", "budget"],
    )
    assert "<strong>approved</strong>" in article["html"]
    assert article["summary"] == "After a four-hour session the council passed the budget by 7 votes to 4."
    newsletters = [mail for mail in mail_to("reader@example.org") if mail.subject == article["title"]]
    assert len(newsletters) == 1
    record = latest_upload(stack)
    assert {key: record[key] for key in ("key", "kind", "outcome", "article_id", "slug", "reason")} == {
        "key": "articles/council-approves-budget.md", "kind": "article", "outcome": "published",
        "article_id": article["id"], "slug": EXAMPLE_SLUG, "reason": None,
    }  # fmt: skip
    assert record["version_id"]


def test_relative_images_point_at_the_media_base_url(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_BASE_URL", "https://media.example.org")
    dependencies.reset()

    upload(stack, "articles/council-approves-budget.md", EXAMPLE.read_bytes())

    html = public_article(stack, EXAMPLE_SLUG).json()["html"]
    assert '<img src="https://media.example.org/media/2026/council-chamber.jpg"' in html


def test_a_key_with_spaces_and_accents_is_decoded(stack: Stack) -> None:
    key = "articles/2026/My Story é + more.md"

    upload(stack, key, article_file("My story, é"))

    record = latest_upload(stack)
    assert (record["key"], record["outcome"], record["slug"]) == (key, "published", "my-story-e")
    assert public_article(stack, "my-story-e").status == 200


def test_the_sample_event_names_its_object_url_encoded(stack: Stack) -> None:
    event = sample_event("s3-article-upload")
    s3_object = event["Records"][0]["s3"]["object"]
    assert s3_object["key"] == "articles/My+Story+%C3%A9.md"
    answer = put(stack, "articles/My Story é.md", article_file("Sample story"))
    s3_object.update(versionId=answer["VersionId"], eTag=answer["ETag"].strip('"'))
    event["Records"][0]["s3"]["bucket"]["name"] = bucket(stack)

    result = stack.invoke("UploadFunction", event)

    assert result == {"uploads": [{"key": "articles/My Story é.md", "outcome": "published"}]}
    assert public_article(stack, "sample-story").status == 200


def test_uploading_again_updates_the_same_article_and_sends_no_second_newsletter(stack: Stack) -> None:
    add_subscriber("reader@example.org")
    key = "articles/harbour.md"
    upload(stack, key, article_file("Harbour reopens", "Boats are back."))
    first = public_article(stack, "harbour-reopens").json()

    upload(stack, key, article_file("Harbour reopens at last", "Boats are **back**, and ferries too.", tags=["port"]))

    [article] = admin_articles(stack)
    assert (article["id"], article["slug"], article["title"]) == (
        first["id"],
        "harbour-reopens",
        "Harbour reopens at last",
    )
    assert article["version"] > 2
    assert article["tags"] == ["port"]
    assert "ferries too" in public_article(stack, "harbour-reopens").json()["html"]
    assert [mail.subject for mail in mail_to("reader@example.org")] == ["Harbour reopens"]
    assert [item["outcome"] for item in uploads(stack)["items"]] == ["updated", "published"]


def test_uploads_keep_only_the_newest_revisions_as_editors_saves_do(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVISIONS_KEPT", "2")  # a stack deployed with RevisionsKept = 2
    dependencies.reset()
    key = "articles/harbour.md"
    for take in ("Boats are back.", "Boats are back, and ferries.", "Boats, ferries and a new quay."):
        upload(stack, key, article_file("Harbour reopens", take))

    [article] = admin_articles(stack)
    kept = sorted((item for item in stack.items("RevisionsTable") if item["pk"]["S"] == f"article#{article['id']}"
                   and item["sk"]["S"].startswith("revision#")), key=lambda item: item["sk"]["S"])  # fmt: skip
    assert [item["body"]["S"] for item in kept] == ["Boats are back, and ferries.", "Boats, ferries and a new quay."]


def test_the_same_file_uploaded_again_changes_nothing(stack: Stack) -> None:
    key = "articles/harbour.md"
    upload(stack, key, article_file("Harbour reopens"))
    before = admin_articles(stack)

    upload(stack, key, article_file("Harbour reopens"))

    assert admin_articles(stack) == before
    assert [item["outcome"] for item in uploads(stack)["items"]] == ["updated", "published"]


def test_a_duplicate_event_has_no_second_effect(stack: Stack) -> None:
    add_subscriber("reader@example.org")
    key = "articles/once.md"
    event = event_for(stack, key, put(stack, key, article_file("Only once")), "0066A1B2C3D4E5F601")

    stack.invoke("UploadFunction", event)
    stack.invoke("UploadFunction", event)
    stack.drain(skip=("UploadFunction",))

    [article] = admin_articles(stack)
    assert article["version"] == 2  # created, published: nothing more
    assert len(uploads(stack)["items"]) == 1
    assert len(mail_to("reader@example.org")) == 1


def test_an_older_version_arriving_after_a_newer_one_changes_nothing(stack: Stack) -> None:
    key = "articles/late.md"
    older = put(stack, key, article_file("First take"))
    newer = put(stack, key, article_file("Second take", slug="take"))
    # Sequencers differ in length: S3 says to compare them left-padded ("FF" comes before "0100").
    older_event, newer_event = event_for(stack, key, older, "FF"), event_for(stack, key, newer, "0100")

    stack.invoke("UploadFunction", newer_event)
    stack.invoke("UploadFunction", older_event)

    [article] = admin_articles(stack)
    assert (article["title"], article["slug"]) == ("Second take", "take")
    [record] = uploads(stack)["items"]
    assert record["version_id"] == newer["VersionId"]


def test_status_draft_and_scheduled_files(stack: Stack) -> None:
    upload(stack, "articles/draft.md", article_file("Not yet", status="draft"))
    upload(stack, "articles/later.md", article_file("Later", publish_at=times.at_offset(NEXT_YEAR, hours=1)))

    by_title = {article["title"]: article for article in admin_articles(stack)}
    assert by_title["Not yet"]["status"] == "draft"
    assert (by_title["Later"]["status"], by_title["Later"]["publish_at"]) == ("scheduled", times.zulu(NEXT_YEAR))
    assert [item["outcome"] for item in uploads(stack)["items"]] == ["scheduled", "created"]
    assert public_article(stack, "not-yet").status == 404

    upload(stack, "articles/draft.md", article_file("Not yet"))  # no status: published

    assert public_article(stack, "not-yet").status == 200
    assert latest_upload(stack)["outcome"] == "published"


def test_a_draft_file_takes_a_published_article_offline_and_says_so(stack: Stack) -> None:
    # Given an article published by its file
    upload(stack, "articles/recall.md", article_file("Recalled story"))
    assert public_article(stack, "recalled-story").status == 200

    # When its file comes back with status: draft
    upload(stack, "articles/recall.md", article_file("Recalled story", status="draft"))

    # Then it is off the public routes, and the upload's record says it was unpublished (not "updated")
    assert public_article(stack, "recalled-story").status == 404
    assert [item["outcome"] for item in uploads(stack)["items"]] == ["unpublished", "published"]

    # And a draft file of a draft is an update, as before
    upload(stack, "articles/recall.md", article_file("Recalled story", "Rewritten.", status="draft"))
    assert latest_upload(stack)["outcome"] == "updated"


def delete_article(stack: Stack, article_id: str) -> None:
    reply = editor(stack, "editor-delete-article", path={"article_id": article_id})
    assert reply.status == 204, reply.body


def test_the_file_of_an_article_an_editor_deleted_publishes_it_again_without_a_second_newsletter(
    stack: Stack,
) -> None:
    # Given an uploaded article that was published, announced, then deleted by an editor
    add_subscriber("reader@example.org")
    key = "articles/harbour.md"
    upload(stack, key, article_file("Harbour reopens", "Boats are back."))
    first = public_article(stack, "harbour-reopens").json()
    delete_article(stack, first["id"])
    assert public_article(stack, "harbour-reopens").status == 404

    # When its file is uploaded again (corrected)
    upload(stack, key, article_file("Harbour reopens", "Boats and ferries are back."))

    # Then it is public again, under its old id, and nobody got its newsletter twice
    again = public_article(stack, "harbour-reopens")
    assert again.status == 200, again.body
    assert again.json()["id"] == first["id"]
    assert "ferries" in again.json()["html"]
    assert [mail.subject for mail in mail_to("reader@example.org")] == ["Harbour reopens"]
    assert [(item["outcome"], item["article_id"]) for item in uploads(stack)["items"]] == [
        ("published", first["id"]),
        ("published", first["id"]),
    ]


def test_a_deleted_never_published_article_s_file_announces_it_once(stack: Stack) -> None:
    add_subscriber("reader@example.org")
    key = "articles/draft.md"
    upload(stack, key, article_file("Quiet draft", status="draft"))
    delete_article(stack, latest_upload(stack)["article_id"])

    upload(stack, key, article_file("Quiet draft"))

    assert public_article(stack, "quiet-draft").status == 200
    assert [mail.subject for mail in mail_to("reader@example.org")] == ["Quiet draft"]
    assert latest_upload(stack)["outcome"] == "published"


def test_a_deleted_article_s_file_scheduled_again_is_published_once_by_the_scheduler(stack: Stack) -> None:
    # Given an announced article, deleted, whose file comes back scheduled for a minute from now
    add_subscriber("reader@example.org")
    key = "articles/later.md"
    upload(stack, key, article_file("Tide tables"))
    article_id = public_article(stack, "tide-tables").json()["id"]
    delete_article(stack, article_id)
    publish_at = utc_now().replace(microsecond=0) + timedelta(minutes=1)
    upload(stack, key, article_file("Tide tables", publish_at=publish_at.isoformat()))
    assert latest_upload(stack)["outcome"] == "scheduled"

    # When the scheduler runs after that minute
    with freeze_time(publish_at + timedelta(seconds=5), tick=True):
        result = stack.invoke("SchedulerFunction", sample_event("schedule-publish-due"))
    stack.drain()

    # Then the run published it, once, without a second newsletter (read after that minute too: a read
    # checks the time, and the run's clock was ahead of the real one)
    assert result["published"] == [article_id]
    with freeze_time(publish_at + timedelta(seconds=10), tick=True):
        assert public_article(stack, "tide-tables").status == 200
    assert [mail.subject for mail in mail_to("reader@example.org")] == ["Tide tables"]


def test_an_article_deleted_while_its_file_is_applied_ends_in_a_recorded_outcome(stack: Stack) -> None:
    # Given an uploaded article, and an editor who deletes it just after the next upload has read it
    # (the read is wrapped to let the editor in at that moment; everything else runs as deployed)
    key = "articles/race.md"
    upload(stack, key, article_file("Race"))
    article_id = latest_upload(stack)["article_id"]
    articles = dependencies.container().article_service
    read = articles.get
    editor_deleted: list[str] = []

    def read_then_editor_deletes(wanted: str) -> Any:
        current = read(wanted)
        if wanted == article_id and not editor_deleted:
            editor_deleted.append(wanted)
            delete_article(stack, wanted)
        return current

    # When the new version's event is applied against the article as it was read
    event = event_for(stack, key, put(stack, key, article_file("Race", "Second version.")), "F" * 24)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(articles, "get", read_then_editor_deletes)
        result = stack.invoke("UploadFunction", event)
    stack.drain(skip=("UploadFunction",))

    # Then that one invocation recorded the upload (no retry needed), and its article is back, new version
    assert editor_deleted == [article_id]
    assert result == {"uploads": [{"key": key, "outcome": "published"}]}
    record = latest_upload(stack)
    assert (record["outcome"], record["article_id"]) == ("published", article_id)
    assert "Second version" in public_article(stack, "race").json()["html"]


# ---------------------------------------------------------------------- rejected files


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("---\ntitle: Café\n---\nLatin-1, not UTF-8.".encode("latin-1"), "not UTF-8"),
        (b"---\ntitle: [oops\n---\nBroken YAML.", "not valid YAML"),
        (b"---\nauthor: Ada\n---\nNo title.", "title: Field required"),
        (article_file("Too long", "x" * (72 * 1024 + 1)), "larger than"),
        (article_file("Taken", slug="taken"), "belongs to another article"),
        (
            article_file("Yesterday", publish_at=times.at_offset(times.now() - timedelta(days=1), hours=0)),
            "in the past",
        ),
        (article_file("No zone", publish_at=times.naive(NEXT_YEAR)), "publish_at: needs a UTC offset"),
        (article_file("Bad tag", tags=["!!!"]), "has no letters or digits"),
    ],
    ids=["not-utf8", "broken-yaml", "no-title", "too-large", "slug-of-another", "past", "naive-time", "empty-tag"],
)
def test_a_rejected_file_leaves_no_article_and_says_why(stack: Stack, data: bytes, reason: str) -> None:
    taken = editor(
        stack, "editor-create-article", body={"title": "Mine", "author": "Ada", "body": "x", "slug": "taken"}
    )
    assert taken.status == 201

    upload(stack, "articles/bad.md", data)

    record = latest_upload(stack)
    assert (record["outcome"], record.get("article_id")) == ("rejected", None)
    assert reason in record["reason"]
    assert [article["slug"] for article in admin_articles(stack)] == ["taken"]


def test_a_rejected_new_version_leaves_the_published_article_as_it_was(stack: Stack) -> None:
    key = "articles/harbour.md"
    upload(stack, key, article_file("Harbour reopens", "Boats are back."))
    before = admin_articles(stack)

    upload(stack, key, b"---\ntitle: [oops\n---\nBroken.")

    assert admin_articles(stack) == before
    record = latest_upload(stack)
    assert (record["outcome"], record["article_id"]) == ("rejected", before[0]["id"])


def test_a_published_article_cannot_be_scheduled_by_a_new_version(stack: Stack) -> None:
    key = "articles/harbour.md"
    upload(stack, key, article_file("Harbour reopens"))

    upload(stack, key, article_file("Harbour reopens", status="scheduled", publish_at=times.zulu(NEXT_YEAR)))

    assert latest_upload(stack)["reason"] == "the article is already published, so it cannot be scheduled"
    assert admin_articles(stack)[0]["status"] == "published"


# ---------------------------------------------------------------------- subscriber import


def csv_file(rows: list[list[str]], header: tuple[str, ...] = ("Email Address", "First Name", "Last Name")) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")  # as Excel saves "CSV UTF-8"


def test_a_csv_import_adds_new_addresses_as_pending_and_asks_each_once(stack: Stack) -> None:
    add_subscriber("known@example.org")
    add_subscriber("left@example.org", SubscriberStatus.UNSUBSCRIBED)
    add_subscriber("complained@example.org", SubscriberStatus.COMPLAINED)
    data = csv_file(
        [
            ["new@example.org", "New", "Reader"],  # row 2
            ["not-an-address", "Bad", ""],  # row 3
            ["NEW@example.org", "Again", ""],  # row 4: a repeat of row 2
            ["known@example.org", "", ""],  # row 5
            ["left@example.org", "", ""],  # row 6
            ["", "No address", ""],  # row 7
            ["other@example.org", "", ""],  # row 8
            ["complained@example.org", "", ""],  # row 9
        ]
    )

    upload(stack, "subscribers/mailchimp export.csv", data)

    record = latest_upload(stack)
    assert {key: record[key] for key in ("key", "kind", "outcome", "confirmed", "rows")} == {
        "key": "subscribers/mailchimp export.csv", "kind": "subscribers", "outcome": "imported",
        "confirmed": False, "rows": 8,
    }  # fmt: skip
    assert (record["imported"], record["skipped"], record["invalid"]) == (2, 4, 2)
    assert [note["row"] for note in record["invalid_rows"]] == [3, 7]
    assert {note["row"]: note["reason"] for note in record["skipped_rows"]} == {
        4: "repeats row 2",
        5: "already on the list",
        6: "already on the list",
        9: "already on the list",
    }
    assert (status_of("new@example.org"), status_of("other@example.org")) == ("pending", "pending")
    assert dependencies.container().subscriber_repository.get("new@example.org").name == "New Reader"  # type: ignore[union-attr]
    assert (status_of("known@example.org"), status_of("left@example.org")) == ("confirmed", "unsubscribed")
    assert status_of("complained@example.org") == "complained"
    assert sorted(address(mail) for mail in outbox()) == ["new@example.org", "other@example.org"]

    # The confirmation link (its page's button) works like a sign-up's.
    token = mail_to("new@example.org")[0].token("/subscribers/confirm")
    assert stack.call("PublicFunction", sample_event("public-confirm-submit", query={"token": token})).status == 200
    assert status_of("new@example.org") == "confirmed"


def test_addresses_under_confirmed_are_imported_confirmed_and_get_the_next_newsletter(stack: Stack) -> None:
    add_subscriber("left@example.org", SubscriberStatus.UNSUBSCRIBED)
    data = csv_file(
        [["ada@example.org", "digest"], ["bo@example.org", ""], ["left@example.org", ""]], ("email", "frequency")
    )

    upload(stack, "subscribers/confirmed/ghost.csv", data)

    record = latest_upload(stack)
    assert (record["confirmed"], record["imported"], record["skipped"]) == (True, 2, 1)
    assert outbox() == []  # the uploader vouched for consent: nobody is asked to confirm
    ada = dependencies.container().subscriber_repository.get("ada@example.org")
    assert ada is not None
    assert (ada.status, ada.frequency) == (SubscriberStatus.CONFIRMED, Frequency.DIGEST)
    assert status_of("left@example.org") == "unsubscribed"

    upload(stack, "articles/news.md", article_file("Fresh news"))

    assert [address(mail) for mail in outbox() if mail.subject == "Fresh news"] == ["bo@example.org"]  # ada: digest


def test_confirmed_imports_carry_their_audience(stack: Stack) -> None:
    upload(stack, "subscribers/confirmed/list.csv", csv_file([["bo@example.org", "Bo", ""]]))

    item = next(i for i in stack.items("SubscribersTable") if i["email"]["S"] == "bo@example.org")
    assert item["audience"]["S"] == audience(Frequency.INSTANT, "bo@example.org")
    assert "expires_at" not in item


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"name,address\nAda,Main Street\n", "no email column"),
        ("email\ncafé@example.org\n".encode("cp1252"), "not UTF-8"),
        (b"", "empty"),
    ],
)
def test_a_csv_that_cannot_be_read_is_rejected(stack: Stack, data: bytes, reason: str) -> None:
    upload(stack, "subscribers/list.csv", data)

    record = latest_upload(stack)
    assert record["outcome"] == "rejected"
    assert reason in record["reason"]
    assert stack.items("SubscribersTable") == []


def test_a_large_import_is_split_into_chunks_and_counts_every_row_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = split_every_batch(monkeypatch)
    rows = readers(230)
    rows[10] = ["broken", "", ""]  # row 12
    rows[200] = ["reader5@example.org", "", ""]  # row 202 repeats row 7, across chunks

    upload(stack, "subscribers/big.csv", csv_file(rows))

    assert chunks == [2, 42, 82, 122, 162, 202]
    record = latest_upload(stack)
    assert (record["outcome"], record["imported"], record["skipped"], record["invalid"]) == ("imported", 228, 1, 1)
    assert record["skipped_rows"] == [{"row": 202, "reason": "repeats row 7"}]
    assert [note["row"] for note in record["invalid_rows"]] == [12]
    assert len(outbox()) == 228  # one confirmation each


def split_every_batch(monkeypatch: pytest.MonkeyPatch, rows_per_batch: int = 40) -> list[int]:
    """Make every chunk stop after one batch, as a big file's chunks do when time runs short; returns
    the first row of every chunk that runs."""
    monkeypatch.setattr(imports, "ROWS_PER_BATCH", rows_per_batch)
    monkeypatch.setattr(imports, "SAFETY_MARGIN_SECONDS", 10_000.0)
    chunks: list[int] = []
    run_chunk = imports.SubscriberImporter.run_chunk

    def counting(self: imports.SubscriberImporter, task: Any, **kwargs: Any) -> None:
        chunks.append(task.start_row)
        run_chunk(self, task, **kwargs)

    monkeypatch.setattr(imports.SubscriberImporter, "run_chunk", counting)
    return chunks


def readers(count: int) -> list[list[str]]:
    return [[f"reader{n}@example.org", f"Reader {n}", ""] for n in range(count)]


def test_an_import_whose_chunk_died_before_queueing_the_next_one_goes_on(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = split_every_batch(monkeypatch)
    monkeypatch.setattr(imports, "STALLED_AFTER", timedelta(0))  # the redelivery comes 30 minutes later
    queue_chunk = imports.SubscriberImporter._queue_chunk
    calls = 0

    def dies_once(self: imports.SubscriberImporter, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second chunk saved its progress, then its process died
            raise RuntimeError("killed")
        queue_chunk(self, *args)

    monkeypatch.setattr(imports.SubscriberImporter, "_queue_chunk", dies_once)

    upload(stack, "subscribers/list.csv", csv_file(readers(100)))

    assert chunks == [2, 42, 42, 82]  # chunk 42 came back and handed on to 82
    record = latest_upload(stack)
    assert (record["outcome"], record["imported"], record["skipped"]) == ("imported", 100, 0)
    assert len(outbox()) == 100


def test_an_s3_event_retried_after_a_crash_carries_on_where_the_import_was(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    split_every_batch(monkeypatch)
    key = "subscribers/list.csv"
    event = event_for(stack, key, put(stack, key, csv_file(readers(100))), "0066A1B2C3D4E5F601")
    complete = UploadRepository.complete

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("the first attempt dies after importing a chunk, before recording the event")

    monkeypatch.setattr(UploadRepository, "complete", crash)
    with pytest.raises(ConnectionError, match="first attempt dies"):
        stack.invoke("UploadFunction", event)
    monkeypatch.setattr(UploadRepository, "complete", complete)

    stack.invoke("UploadFunction", event)  # Lambda's retry of the S3 event
    stack.invoke("UploadFunction", event)  # and S3 delivering it once more
    stack.drain()  # the chunks that follow (and the put's own notification, which changes nothing either)

    record = latest_upload(stack)
    assert (record["outcome"], record["imported"], record["skipped"]) == ("imported", 100, 0)
    assert len(uploads(stack)["items"]) == 1
    assert len(outbox()) == 100


def test_a_redelivered_import_chunk_changes_nothing(stack: Stack) -> None:
    upload(stack, "subscribers/list.csv", csv_file([["ada@example.org", "", ""]]))
    before = latest_upload(stack)
    queue_url = stack.resolver.queue_url("ImportQueue")
    chunk = {"kind": "import", "upload_id": before["id"], "bucket": bucket(stack), "key": "subscribers/list.csv",
             "version_id": before["version_id"], "start_row": 2}  # fmt: skip

    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(chunk))
    stack.drain()

    assert latest_upload(stack) == before
    assert len(outbox()) == 1


# ---------------------------------------------------------------------- the list


def test_uploads_are_listed_newest_first_a_page_at_a_time(stack: Stack) -> None:
    for name in ("one", "two", "three"):
        upload(stack, f"articles/{name}.md", article_file(name.title()))

    first = uploads(stack, limit="2")
    second = uploads(stack, limit="2", cursor=first["next_cursor"])

    assert [item["key"] for item in first["items"]] == ["articles/three.md", "articles/two.md"]
    assert [item["key"] for item in second["items"]] == ["articles/one.md"]
    assert second["next_cursor"] is None
    bad = editor(stack, "editor-list-uploads", query={"cursor": "nope"})
    assert (bad.status, bad.json()["error"]["code"]) == (422, "invalid_cursor")


def test_upload_records_expire_after_the_retention(stack: Stack) -> None:
    upload(stack, "articles/kept-a-while.md", article_file("Kept a while"))

    [record] = [item for item in stack.items("UploadsTable") if item["pk"]["S"].startswith("upload#")]

    received = datetime.fromisoformat(record["received_at"]["S"])
    assert int(record["expires_at"]["N"]) == int((received + timedelta(days=90)).timestamp())
