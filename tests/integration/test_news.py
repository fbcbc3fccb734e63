"""What a news site needs, through the HTTP API on the local stack: corrections, structured data, sitemaps,
embargoes and breaking news (README, "For news sites")."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
from freezegun import freeze_time
from pyld import jsonld

from newsdesk import dependencies
from newsdesk.clock import utc_now
from newsdesk.dal.news import SITEMAP_PAGE_SIZE
from newsdesk.models.subscribers import Frequency, Subscriber, SubscriberStatus
from newsdesk.services.links import LinkPurpose
from tests.integration.conftest import API_URL, BusTap, Reply, Stack
from tests.integration.test_articles import create, editor, public, publish
from tests.integration.test_newsletter import add_subscribers, newsletters
from tests.integration.test_subscribers import confirmed
from tests.integration.test_topics import create_topic
from tests.integration.test_topics import page as topic_page
from tests.support import times
from tests.support.events import sample_event
from tests.support.mail import outbox

SITE = "https://example.com"
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS_NS = "{http://www.google.com/schemas/sitemap-news/0.9}"
SCHEMA = "http://schema.org/"
CONTEXT = Path(__file__).resolve().parents[1] / "fixtures" / "jsonld" / "schemaorg-context.jsonld"


def correct(
    stack: Stack, article_id: str, kind: str = "correction", text: str = "It was 7 to 2.", **request: Any
) -> Reply:
    return editor(stack, "editor-add-correction", path={"article_id": article_id}, body={"kind": kind, "text": text},
                  **request)  # fmt: skip


def corrections(stack: Stack, **query: str) -> Reply:
    return public(stack, "public-list-corrections", query=query)


def article(stack: Stack, slug: str) -> Reply:
    return public(stack, "public-get-article", path={"slug": slug})


# ---------------------------------------------------------------------- corrections


def test_a_correction_is_shown_with_the_article_in_its_feed_entry_and_in_the_list(stack: Stack) -> None:
    published = publish(stack, create(stack, title="Budget passes")["id"])
    before = article(stack, "budget-passes")

    reply = correct(stack, published["id"], text="An earlier version said 6 to 3 <b>; it was 7 to 2.")
    correct(stack, published["id"], kind="update", text="The mayor has since signed it.")

    assert reply.status == 201, reply.body
    assert reply.headers["etag"] == f'"{published["version"] + 1}"'
    after = article(stack, "budget-passes").json()
    notes = after["corrections"]
    assert [(note["kind"], note["text"]) for note in notes] == [
        ("correction", "An earlier version said 6 to 3 <b>; it was 7 to 2."),
        ("update", "The mayor has since signed it."),
    ]
    assert after["updated_at"] > before.json()["updated_at"]  # dateModified moves
    assert after["published_at"] == before.json()["published_at"]  # datePublished does not

    [entry] = feedparser.parse(public(stack, "public-feed").body).entries
    content = entry.content[0].value
    assert "Correction" in content
    assert "An earlier version said 6 to 3 &lt;b&gt;; it was 7 to 2." in content
    assert "The mayor has since signed it." in content
    assert entry.updated == after["updated_at"].replace("Z", "+00:00")

    listed = corrections(stack).json()
    assert [(item["kind"], item["slug"], item["title"]) for item in listed["items"]] == [
        ("update", "budget-passes", "Budget passes"),
        ("correction", "budget-passes", "Budget passes"),
    ]  # newest first


def test_the_corrections_list_pages_newest_first_reading_one_page(stack: Stack) -> None:
    ids = [publish(stack, create(stack, title=f"Story {n}")["id"])["id"] for n in range(3)]
    for n, article_id in enumerate(ids):
        assert correct(stack, article_id, text=f"Note {n}").status == 201

    first = corrections(stack, limit="2").json()
    second = corrections(stack, limit="2", cursor=first["next_cursor"]).json()

    assert [item["text"] for item in first["items"] + second["items"]] == ["Note 2", "Note 1", "Note 0"]
    assert second["next_cursor"] is None
    assert corrections(stack, cursor="bm90LWEtY3Vyc29y").status == 422


def test_notes_are_refused_on_drafts_and_bad_input_changes_nothing(stack: Stack) -> None:
    draft = create(stack)
    published = publish(stack, create(stack, title="Ferry times")["id"])

    assert correct(stack, draft["id"]).json()["error"]["code"] == "not_public"
    for body in ({"kind": "retraction", "text": "x"}, {"kind": "correction", "text": ""},
                 {"kind": "correction", "text": "x" * 1001}, {"kind": "correction", "text": "bell \x07"},
                 {"kind": "correction", "text": "x", "hidden": True}):  # fmt: skip
        reply = editor(stack, "editor-add-correction", path={"article_id": published["id"]}, body=body)
        assert reply.status == 422, body
        assert set(reply.json()["error"]) == {"code", "message", "details"}
    assert correct(stack, published["id"], headers={"if-match": '"1"'}).status == 412
    assert correct(stack, "0123456789abcdef").status == 404

    assert article(stack, "ferry-times").json()["corrections"] == []
    assert corrections(stack).json()["items"] == []


def test_notes_cannot_be_removed_and_there_is_a_bound(stack: Stack) -> None:
    published = publish(stack, create(stack)["id"])
    for n in range(20):
        assert correct(stack, published["id"], text=f"Note {n}").status == 201

    refused = correct(stack, published["id"], text="One too many")
    # An edit of the article keeps them: only adding is possible
    edited = editor(
        stack,
        "editor-update-article",
        path={"article_id": published["id"]},
        body={"title": "New title"},
        headers={"if-match": "*"},
    )

    assert refused.json()["error"]["code"] == "too_many_corrections"
    assert edited.status == 200
    assert len(edited.json()["corrections"]) == 20
    assert {item["title"] for item in corrections(stack, limit="100").json()["items"]} == {"New title"}


def test_a_correction_makes_one_event_and_never_mails_the_newsletter_again(
    stack: Stack,
    bus: BusTap,
) -> None:
    readers = add_subscribers(3)
    published = publish(stack, create(stack, title="Storm warning")["id"])
    stack.drain()
    assert len(newsletters("Storm warning")) == 3
    bus()

    correct(stack, published["id"], kind="clarification", text="The warning covers the coast only.")
    stack.drain()

    assert len(newsletters("Storm warning")) == len(readers)  # nobody mailed again
    [event] = [envelope["detail"] for envelope in bus() if envelope["detail-type"].startswith("article.")]
    assert event["type"] == "article.corrected"
    assert event["data"]["correction"]["kind"] == "clarification"
    assert event["data"]["correction"]["text"] == "The warning covers the coast only."
    assert event["data"]["slug"] == "storm-warning"


# ---------------------------------------------------------------------- structured data


def _expand(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Expanded by a JSON-LD processor against schema.org's context, bundled: no network."""
    context = json.loads(CONTEXT.read_text())

    def loader(url: str, options: dict[str, Any]) -> dict[str, Any]:
        assert url.rstrip("/") in ("https://schema.org", "http://schema.org"), url
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": context}

    return list(jsonld.expand(document, {"documentLoader": loader}))


def _terms(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {key for key in value if not key.startswith("@")} | {t for v in value.values() for t in _terms(v)}
    if isinstance(value, list):
        return {t for v in value for t in _terms(v)}
    return set()


def to_the_second(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(microsecond=0)


def test_each_article_carries_its_news_article_json_ld(stack: Stack) -> None:
    body = "The council met.\n\n![The chamber](https://media.example.com/chamber.jpg)\n\n![relative](media/x.png)"
    published = publish(stack, create(stack, title="Council meets", body=body, tags=["council"])["id"])
    correct(stack, published["id"], text="The meeting began at 7, not 8.")

    payload = article(stack, "council-meets").json()
    document = payload["json_ld"]
    [node] = _expand(document)

    assert node["@type"] == [f"{SCHEMA}NewsArticle"]
    assert node[f"{SCHEMA}headline"] == [{"@value": "Council meets"}]
    assert to_the_second(node[f"{SCHEMA}datePublished"][0]["@value"]) == to_the_second(payload["published_at"])
    assert to_the_second(node[f"{SCHEMA}dateModified"][0]["@value"]) == to_the_second(payload["updated_at"])
    [author] = node[f"{SCHEMA}author"]
    assert author["@type"] == [f"{SCHEMA}Person"]
    assert author[f"{SCHEMA}name"] == [{"@value": "Ada Lovelace"}]
    [publisher] = node[f"{SCHEMA}publisher"]
    assert publisher["@type"] == [f"{SCHEMA}Organization"]
    assert publisher[f"{SCHEMA}name"] == [{"@value": "Newsdesk"}]
    assert node[f"{SCHEMA}image"] == [{"@id": "https://media.example.com/chamber.jpg"}]
    assert node[f"{SCHEMA}mainEntityOfPage"][0]["@id"] == f"{SITE}/articles/council-meets"
    [note] = node[f"{SCHEMA}correction"]
    assert note["@type"] == [f"{SCHEMA}CorrectionComment"]
    assert note[f"{SCHEMA}text"] == [{"@value": "The meeting began at 7, not 8."}]
    assert to_the_second(note[f"{SCHEMA}datePublished"][0]["@value"]) == to_the_second(
        payload["corrections"][0]["published_at"]
    )
    # Every property is one schema.org defines (a misspelt one would expand through @vocab unnoticed)
    assert _terms(document) <= set(json.loads(CONTEXT.read_text())["@context"])


def test_the_publisher_s_logo_and_language_come_from_the_parameters(stack: Stack, monkeypatch: Any) -> None:
    monkeypatch.setenv("PUBLISHER_LOGO_URL", "https://news.example.com/logo.png")
    monkeypatch.setenv("PUBLICATION_LANGUAGE", "fr")
    dependencies.reset()
    publish(stack, create(stack, title="Marché")["id"])

    document = article(stack, "marche").json()["json_ld"]

    assert document["publisher"]["logo"] == {"@type": "ImageObject", "url": "https://news.example.com/logo.png"}
    assert document["inLanguage"] == "fr"
    assert 'xml:lang="fr"' in public(stack, "public-feed").body


# ---------------------------------------------------------------------- sitemaps


def xml(reply: Reply) -> ET.Element:
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/xml; charset=utf-8"
    return ET.fromstring(reply.body)


def sitemap_page(stack: Stack, page: str) -> Reply:
    return public(stack, "public-sitemap-page", path={"page": page})


def test_the_sitemap_index_points_at_pages_that_list_every_article_with_its_lastmod(stack: Stack) -> None:
    first = publish(stack, create(stack, title="First & <best>")["id"])
    second = publish(stack, create(stack, title="Second")["id"])
    create(stack, title="A draft")

    index = xml(public(stack, "public-sitemap-index"))
    [entry] = index.findall(f"{SITEMAP_NS}sitemap")
    assert entry.findtext(f"{SITEMAP_NS}loc") == f"{API_URL}/sitemaps/1.xml"
    page = xml(sitemap_page(stack, "1.xml"))

    urls = {url.findtext(f"{SITEMAP_NS}loc"): to_the_second(url.findtext(f"{SITEMAP_NS}lastmod") or "") for url in page}
    assert urls == {
        f"{SITE}/articles/{first['slug']}": to_the_second(first["updated_at"]),
        f"{SITE}/articles/{second['slug']}": to_the_second(second["updated_at"]),
    }
    assert to_the_second(entry.findtext(f"{SITEMAP_NS}lastmod") or "") == to_the_second(second["updated_at"])
    for missing in ("2.xml", "0.xml", "01.xml", "1.json", "x.xml", "9999999.xml", "².xml", "١.xml", ".xml"):
        reply = sitemap_page(stack, missing)
        assert (reply.status, reply.json()["error"]["code"]) == (404, "not_found"), missing


def test_a_page_holds_at_most_50000_articles_the_next_one_opens_a_page(stack: Stack) -> None:
    client = dependencies.container().dynamodb
    client.put_item(TableName=stack.table("ArticlesTable"),
                    Item={"pk": {"S": "sitemap#counter"}, "count": {"N": str(SITEMAP_PAGE_SIZE)}})  # fmt: skip

    published = publish(stack, create(stack, title="The 50,001st")["id"])

    assert published["sitemap_page"] == 2
    [entry] = xml(public(stack, "public-sitemap-index")).findall(f"{SITEMAP_NS}sitemap")  # page 1 is empty here
    assert entry.findtext(f"{SITEMAP_NS}loc") == f"{API_URL}/sitemaps/2.xml"
    assert [url.findtext(f"{SITEMAP_NS}loc") for url in xml(sitemap_page(stack, "2.xml"))] == [
        f"{SITE}/articles/{published['slug']}"
    ]
    assert len(xml(sitemap_page(stack, "1.xml"))) == 0


def test_the_news_sitemap_holds_exactly_the_last_two_days(stack: Stack) -> None:
    now = times.now()
    for title, age in (("Three days old", 72 * 60), ("Just too old", 48 * 60 + 1), ("Just in time", 47 * 60 + 59),
                       ("Yesterday", 24 * 60), ("Today", 0)):  # fmt: skip
        with freeze_time(now - timedelta(minutes=age)):
            publish(stack, create(stack, title=title)["id"])

    with freeze_time(now):
        root = xml(public(stack, "public-news-sitemap"))

    titles = [url.findtext(f"{NEWS_NS}news/{NEWS_NS}title") for url in root]
    assert titles == ["Today", "Yesterday", "Just in time"]
    first = root[0]
    assert first.findtext(f"{SITEMAP_NS}loc") == f"{SITE}/articles/today"
    news = first.find(f"{NEWS_NS}news")
    assert news is not None
    assert news.findtext(f"{NEWS_NS}publication/{NEWS_NS}name") == "Newsdesk"
    assert news.findtext(f"{NEWS_NS}publication/{NEWS_NS}language") == "en"
    assert datetime.fromisoformat(news.findtext(f"{NEWS_NS}publication_date") or "") == now.astimezone(UTC)


def test_the_sitemaps_answer_conditional_requests(stack: Stack) -> None:
    publish(stack, create(stack, title="Cached")["id"])
    for sample, request in (("public-sitemap-index", {}), ("public-sitemap-page", {"path": {"page": "1.xml"}}),
                            ("public-news-sitemap", {})):  # fmt: skip
        first = public(stack, sample, **request)
        again = public(stack, sample, headers={"if-none-match": first.headers["etag"]}, **request)
        assert (again.status, again.body) == (304, ""), sample
        assert first.headers["cache-control"].startswith("public, max-age=")


# ---------------------------------------------------------------------- embargoes


def embargo(stack: Stack, article_id: str, until: datetime, **request: Any) -> Reply:
    return editor(stack, "editor-set-embargo", path={"article_id": article_id},
                  body={"embargo_until": times.at_offset(until, hours=2)}, **request)  # fmt: skip


def run_job(stack: Stack, job: str, scheduled_time: datetime) -> Any:
    event = sample_event(f"schedule-{job}") | {"scheduled_time": times.zulu(scheduled_time)}
    return stack.invoke("SchedulerFunction", event)


def public_reads(stack: Stack, slug: str) -> dict[str, Reply]:
    """Every public GET of the OpenAPI document, with the article's slug wherever a route takes one (and each
    filter a list takes), as a reader or a crawler would ask."""
    document = stack.call("PublicFunction", http_get("/openapi.json", {})).json()
    reads: dict[str, Reply] = {}
    for path, operations in document["paths"].items():
        get = operations.get("get")
        if get is None or get.get("security"):
            continue  # an editor's route
        values = {"slug": slug, "page": "1.xml"}
        concrete = path
        for name in values:
            concrete = concrete.replace(f"{{{name}}}", values[name])
        queries: list[dict[str, str]] = [{}]
        names = {parameter["name"] for parameter in get.get("parameters", []) if parameter["in"] == "query"}
        queries += [{name: value} for name, value in (("tag", "business"), ("author", "Ada Lovelace"),
                                                       ("breaking", "true")) if name in names]  # fmt: skip
        for query in queries:
            event = http_get(concrete, query)
            reads[f"{concrete}?{query}"] = stack.call("PublicFunction", event)
    return reads


def http_get(path: str, query: dict[str, str]) -> dict[str, Any]:
    event = sample_event("public-feed", query=query)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET " + path
    return event


def mentions(reply: Reply, *needles: str) -> bool:
    return any(needle in reply.body for needle in needles)


def test_an_embargoed_article_is_on_no_public_path_before_its_time_then_on_each_once(
    stack: Stack,
    bus: BusTap,
) -> None:
    instant = add_subscribers(2)
    weekly = add_subscribers(1, prefix="weekly", frequency=Frequency.DIGEST)
    webhook_body_before = len(bus())
    lift = times.now() + timedelta(hours=1)
    secret = create(stack, title="Merger agreed", tags=["business"], summary="Two banks merge.")
    assert embargo(stack, secret["id"], lift).status == 200
    held = publish(stack, secret["id"])
    assert (held["status"], held["published_at"], held["embargo_until"]) == ("published", None, times.zulu(lift))
    publish(stack, create(stack, title="Open news", tags=["business"])["id"])
    assert correct(stack, secret["id"]).json()["error"]["code"] == "not_public"

    # Before: not a byte of it on any public route, nor in a digest, a newsletter or an event
    with freeze_time(lift - timedelta(minutes=1), tick=True):
        assert run_job(stack, "publish-due", lift - timedelta(minutes=1))["published"] == []
        assert run_job(stack, "digest", lift - timedelta(minutes=1))["articles"] == 1
        reads = public_reads(stack, secret["slug"])
    stack.drain()
    assert len(reads) >= 12
    # (The by-slug route's 404 repeats the slug it was asked for: that one says only what the reader asked.)
    leaks = [route for route, reply in reads.items()
             if mentions(reply, "Merger agreed", "Two banks merge", secret["id"])
             or (secret["slug"] not in route and mentions(reply, secret["slug"]))]  # fmt: skip
    assert leaks == []
    assert reads[f"/articles/{secret['slug']}?{{}}"].status == 404
    assert [mail for mail in mail_of(instant + weekly) if "Merger agreed" in mail.subject + mail.text] == []
    events = [envelope["detail"] for envelope in bus()[webhook_body_before:]]
    assert all(event["data"].get("id") != secret["id"] for event in events)

    # At its time PublishDue makes it public, through the one publish path: once, announced once
    with freeze_time(lift + timedelta(seconds=30), tick=True):
        released = run_job(stack, "publish-due", lift)["published"]
        again = run_job(stack, "publish-due", lift)["published"]
        reads = public_reads(stack, secret["slug"])
    stack.drain()
    assert (released, again) == ([secret["id"]], [])
    for route in ("/articles?{}", "/articles?{'tag': 'business'}", "/articles?{'author': 'Ada Lovelace'}",
                  "/sitemaps/1.xml?{}", "/news-sitemap.xml?{}"):  # fmt: skip
        assert reads[route].body.count(f"/articles/{secret['slug']}" if "xml" in route else "Merger agreed") == 1, route
    assert [entry.title for entry in feedparser.parse(reads["/feed.xml?{}"].body).entries].count("Merger agreed") == 1
    assert reads[f"/articles/{secret['slug']}?{{}}"].status == 200
    assert sorted(m.message["To"].addresses[0].addr_spec for m in newsletters("Merger agreed")) == sorted(instant)
    published_events = [e["detail"] for e in bus() if e["detail"]["data"].get("id") == secret["id"]]
    assert [event["type"] for event in published_events] == ["article.published"]


def mail_of(addresses: list[str]) -> list[Any]:
    return [mail for mail in outbox() if set(addresses) & {a.addr_spec for a in mail.message["To"].addresses}]


def test_a_read_checks_the_time_whatever_was_stored(stack: Stack) -> None:
    lift = times.now() + timedelta(hours=1)
    secret = create(stack, title="Early bird")
    embargo(stack, secret["id"], lift)
    publish(stack, secret["id"])

    # A scheduler whose clock ran a few seconds ahead released it early: readers still see nothing before then
    with freeze_time(lift + timedelta(seconds=5)):
        assert run_job(stack, "publish-due", lift)["published"] == [secret["id"]]
    with freeze_time(lift):
        hidden = [article(stack, "early-bird").status, public(stack, "public-list-articles", query={}).json()["items"],
                  mentions(public(stack, "public-feed"), "Early bird")]  # fmt: skip
    with freeze_time(lift + timedelta(seconds=6)):
        shown = article(stack, "early-bird").status

    assert hidden == [404, [], False]
    assert shown == 200


def test_an_embargo_is_set_moved_and_lifted_by_the_editor_and_bad_ones_are_refused(stack: Stack) -> None:
    readers = add_subscribers(1)
    draft = create(stack, title="Quarterly results")
    now = times.now()

    past = embargo(stack, draft["id"], now - timedelta(minutes=1))
    naive = editor(stack, "editor-set-embargo", path={"article_id": draft["id"]},
                   body={"embargo_until": times.naive(now + timedelta(days=1))})  # fmt: skip
    assert (past.status, past.json()["error"]["code"]) == (422, "invalid_input")
    assert naive.status == 422
    assert embargo(stack, draft["id"], now + timedelta(days=1)).status == 200
    moved = embargo(stack, draft["id"], now + timedelta(days=2))
    assert moved.json()["embargo_until"] == times.zulu(now + timedelta(days=2))
    held = publish(stack, draft["id"])
    assert article(stack, "quarterly-results").status == 404

    lifted = editor(stack, "editor-lift-embargo", path={"article_id": draft["id"]})
    stack.drain()

    assert lifted.status == 200, lifted.body
    assert (lifted.json()["embargo_until"], lifted.json()["status"]) == (None, "published")
    assert lifted.json()["published_at"] is not None
    assert held["published_at"] is None
    assert article(stack, "quarterly-results").status == 200
    assert [m.message["To"].addresses[0].addr_spec for m in newsletters("Quarterly results")] == readers
    # Once public, an embargo cannot take it back
    assert embargo(stack, draft["id"], now + timedelta(days=3)).json()["error"]["code"] == "already_public"


# ---------------------------------------------------------------------- breaking news


def reader(email: str, *, frequency: Frequency = Frequency.INSTANT, topics: list[str] | None = None,
           breaking: bool = True) -> str:  # fmt: skip
    """A confirmed reader, written through the product's own repository."""
    repository = dependencies.container().subscriber_repository
    now = utc_now()
    pending = Subscriber(email=email, frequency=frequency, topics=topics, breaking=breaking,
                         status=SubscriberStatus.PENDING, created_at=now, updated_at=now)  # fmt: skip
    assert repository.create_pending(pending)
    assert repository.confirm(pending, now)
    return email


def mark_breaking(stack: Stack, article_id: str, hours: int = 6, **request: Any) -> Reply:
    return editor(stack, "editor-mark-breaking", path={"article_id": article_id}, body={"hours": hours}, **request)


def received(subject_part: str) -> dict[str, int]:
    """How many emails whose subject has `subject_part` each address received."""
    counts: dict[str, int] = {}
    for mail in outbox():
        if subject_part in mail.subject:
            counts[mail.to] = counts.get(mail.to, 0) + 1
    return counts


def test_breaking_news_alerts_who_asked_at_once_and_each_reader_gets_one_email(stack: Stack) -> None:
    for slug, name in (("politics", "Politics"), ("sport", "Sport")):
        assert create_topic(stack, slug, name).status == 201
    newsletter_and_alerts = reader("instant-all@example.org")
    newsletter_by_topic = reader("instant-politics@example.org", topics=["politics"])
    digest_with_alerts = reader("weekly@example.org", frequency=Frequency.DIGEST)
    other_topic_with_alerts = reader("instant-sport@example.org", topics=["sport"])
    no_alerts = reader("weekly-quiet@example.org", frequency=Frequency.DIGEST, breaking=False)
    plain = reader("instant-plain@example.org", breaking=False)

    story = publish(stack, create(stack, title="Minister resigns", tags=["politics"])["id"])
    reply = mark_breaking(stack, story["id"], hours=3)
    stack.drain()

    assert reply.status == 200, reply.body
    assert received("Minister resigns") == {
        newsletter_and_alerts: 1,  # the newsletter: the alert leaves out who the newsletter reaches
        newsletter_by_topic: 1,
        digest_with_alerts: 1,  # the alert, at once, though they read a weekly digest
        other_topic_with_alerts: 1,  # the alert: the newsletter is not for them
        plain: 1,
    }
    assert no_alerts not in received("Minister resigns")
    alerts = [mail for mail in outbox() if mail.subject == "Breaking: Minister resigns"]
    assert sorted(mail.to for mail in alerts) == sorted([digest_with_alerts, other_topic_with_alerts])
    assert "breaking-news alerts" in alerts[0].text
    assert alerts[0].message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Marked again (or extended): no second alert, ever
    assert mark_breaking(stack, story["id"], hours=6).status == 200
    stack.drain()
    assert len([mail for mail in outbox() if mail.subject == "Breaking: Minister resigns"]) == 2
    delivery = editor(stack, "editor-get-delivery", path={"delivery_id": f"breaking-{story['id']}"}).json()
    assert (delivery["kind"], delivery["state"], delivery["total"], delivery["sent"]) == ("breaking", "done", 2, 2)


def test_a_reader_the_newsletter_reached_is_not_alerted_after_moving_to_the_digest(stack: Stack) -> None:
    moved = reader("moved@example.org")
    story = publish(stack, create(stack, title="Bridge closed")["id"])
    stack.drain()
    assert received("Bridge closed") == {moved: 1}  # the newsletter
    # Now a digest reader, so the alert's fan-out queues them: the newsletter's ledger says they had it.
    dependencies.container().subscriber_repository.set_preferences(
        moved, frequency=Frequency.DIGEST, topics=None, now=utc_now()
    )

    mark_breaking(stack, story["id"])
    stack.drain()

    assert received("Bridge closed") == {moved: 1}
    [record] = editor(
        stack, "editor-delivery-recipients", path={"delivery_id": f"breaking-{story['id']}"}, query={}
    ).json()["items"]
    assert (record["state"], record["detail"]) == ("suppressed", "had the article's newsletter before it was sent")


def test_the_breaking_list_holds_the_unexpired_ones_and_bad_requests_are_4xx(stack: Stack) -> None:
    old = publish(stack, create(stack, title="Old storm")["id"])
    new = publish(stack, create(stack, title="New storm")["id"])
    calm = publish(stack, create(stack, title="Calm day")["id"])
    now = times.now()
    with freeze_time(now - timedelta(hours=3)):
        assert mark_breaking(stack, old["id"], hours=2).status == 200  # expired an hour ago
    mark_breaking(stack, new["id"], hours=1)
    mark_breaking(stack, calm["id"], hours=4)
    assert editor(stack, "editor-end-breaking", path={"article_id": calm["id"]}).status == 200

    listed = public(stack, "public-list-articles", query={"breaking": "true"})

    assert [item["title"] for item in listed.json()["items"]] == ["New storm"]
    assert article(stack, new["slug"]).json()["breaking_until"] is not None
    mixed = public(stack, "public-list-articles", query={"breaking": "true", "tag": "x"})
    assert (mixed.status, mixed.json()["error"]["code"]) == (422, "invalid_input")
    draft = create(stack, title="Not yet")
    assert mark_breaking(stack, draft["id"]).json()["error"]["code"] == "not_public"
    for hours in (0, 49, "soon"):
        assert mark_breaking(stack, new["id"], hours=hours).status == 422  # type: ignore[arg-type]


def test_readers_ask_for_alerts_on_sign_up_and_in_the_preference_center(stack: Stack) -> None:
    token = confirmed(stack, "alerts@example.org", breaking=True, frequency="digest")
    assert dependencies.container().subscriber_repository.get("alerts@example.org").breaking  # type: ignore[union-attr]
    assert confirm_token_has_no_address(token)

    preferences_token = dependencies.container().link_signer().token(LinkPurpose.PREFERENCES, "alerts@example.org")
    shown = topic_page(stack, "/subscribers/preferences", preferences_token)
    off = topic_page(
        stack, "/subscribers/preferences", preferences_token, body="frequency=digest&choosing=topics&everything=yes"
    )
    stored_off = dependencies.container().subscriber_repository.get("alerts@example.org")
    on = topic_page(stack, "/subscribers/preferences", preferences_token,
                    body="frequency=digest&choosing=topics&everything=yes&breaking=yes")  # fmt: skip
    stored_on = dependencies.container().subscriber_repository.get("alerts@example.org")

    assert 'name="breaking" value="yes" checked' in shown.body
    assert off.status == 200
    assert stored_off is not None
    assert not stored_off.breaking
    assert "breaking-news alerts" in on.body
    assert stored_on is not None
    assert stored_on.breaking


def confirm_token_has_no_address(token: str) -> bool:
    return "@" not in token
