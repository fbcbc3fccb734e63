"""The rules a webhook keeps: where it may point (no way into the stack's own network), how it is signed, what
its events may say about people, and when its retries come."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsdesk.dal.webhook_client import WebhookClient
from newsdesk.models.events import EVENT_DATA, SUBSCRIBABLE, SUBSCRIBER_EVENTS, Event, EventType
from newsdesk.models.keys import Keyring
from newsdesk.services.events import ChangeSource, StreamChange, article_event, newsletter_event, subscriber_event
from newsdesk.services.keys import SigningKeys
from newsdesk.services.webhooks import RETRY_ATTEMPTS, WebhookSecrets, retry_delay, retry_schedule, signature
from newsdesk.webhook_targets import TargetMode, TargetPorts, TargetRefused, parse_target
from tests.support.receiver import webhook_receiver

AT = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
SITE = "https://example.com"

# ------------------------------------------------------------------------------------- where it may point


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.org/newsdesk",
        "https://hooks.example.org:443/in?source=newsdesk",
        "https://xn--bcher-kva.de/hook",
        "https://bücher.de/hook",
        "https://93.184.216.34/hook",  # a public IP literal
    ],
)
def test_https_urls_on_public_hosts_are_accepted(url: str) -> None:
    assert parse_target(url, TargetMode.PUBLIC).scheme == "https"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.org/newsdesk", "https"),
        ("ftp://hooks.example.org/", "https"),
        ("https://user:pass@hooks.example.org/", "user name or password"),
        ("https://token@hooks.example.org/", "user name or password"),
        ("https://127.0.0.1/hook", "private, loopback"),
        ("https://10.0.0.8/hook", "private, loopback"),
        ("https://172.16.3.4/hook", "private, loopback"),
        ("https://192.168.1.1/hook", "private, loopback"),
        ("https://169.254.169.254/latest/meta-data/", "private, loopback, link-local"),
        ("https://100.64.0.1/hook", "private"),  # carrier-grade NAT
        ("https://0.0.0.0/hook", "private"),
        ("https://[::1]/hook", "private"),
        ("https://[fe80::1]/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("https://[::ffff:169.254.169.254]/hook", "private"),  # IPv4-mapped
        ("https://localhost/hook", "public host"),
        ("https://api.localhost/hook", "public host"),
        ("https://metadata.google.internal/hook", "public host"),
        ("https://intranet/hook", "public host"),
        ("https://2130706433/hook", "public host"),  # 127.0.0.1 as one number
        ("https://0x7f.1/hook", "public host"),
        ("https://127.1/hook", "public host"),
        ("https://hooks.example.org/#x", "fragment"),
        ("https://hooks.exa mple.org/", "spaces"),
        ("https://bad_name.example.org/", "not valid"),
        ("https://" + "a" * 2050 + ".org/", "longer than"),
        ("https:///hook", "no host"),
        ("https://hooks.example.org:99999/", "not a valid URL"),
    ],
)
def test_urls_that_could_reach_the_stacks_own_network_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused, match=reason):
        parse_target(url, TargetMode.PUBLIC)


def test_the_loopback_exemption_is_the_local_stacks_alone() -> None:
    url = "http://127.0.0.1:8765/hooks"

    with pytest.raises(TargetRefused):
        parse_target(url, TargetMode.PUBLIC)  # deployed
    assert parse_target(url, TargetMode.PUBLIC_AND_LOOPBACK).port == 8765  # make dev
    assert parse_target(url, TargetMode.LOOPBACK).port == 8765  # the tests
    with pytest.raises(TargetRefused, match=r"127\.0\.0\.1"):
        parse_target("https://hooks.example.org/", TargetMode.LOOPBACK)  # tests never leave the machine
    with pytest.raises(TargetRefused):
        parse_target("http://localhost:8765/hooks", TargetMode.PUBLIC_AND_LOOPBACK)  # only the literal


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000/hooks", "https://localhost:8000/hooks", "http://[::1]:8000/", "https://127.0.0.2/"],
)
def test_the_local_stack_says_which_address_on_this_machine_it_takes(url: str) -> None:
    # Someone trying webhooks with `make dev` types localhost: the refusal names what to type instead.
    with pytest.raises(TargetRefused, match=r"allows only http://127\.0\.0\.1:<port>, not localhost"):
        parse_target(url, TargetMode.PUBLIC_AND_LOOPBACK)
    with pytest.raises(TargetRefused) as deployed:
        parse_target(url, TargetMode.PUBLIC)
    assert "127.0.0.1" not in str(deployed.value)  # a deployed stack takes no address on its own machine


# IPv6 addresses that stand for an IPv4 address (the network translates, tunnels or maps them to it): each
# is judged by the IPv4 address inside, so none is a way around the IPv4 rules.
EMBEDDING_METADATA = [
    "64:ff9b::a9fe:a9fe",  # NAT64, the well-known prefix (RFC 6052)
    "64:ff9b::169.254.169.254",
    "64:ff9b:1::a9fe:a9fe",  # NAT64, the local-use prefix (RFC 8215), IPv4 in the last 32 bits (a /96)
    "64:ff9b:1:a9fe:a9:fe00::",  # the same prefix used as a /48: the IPv4 around the u octet
    "2002:a9fe:a9fe::1",  # 6to4 (RFC 3056)
    "::169.254.169.254",  # IPv4-compatible (deprecated, RFC 4291)
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:0:a9fe:a9fe",  # SIIT (RFC 2765)
    "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo: client 169.254.169.254 (obfuscated: each bit flipped)
]
EMBEDDING_PRIVATE = [
    "64:ff9b::a00:1",  # 10.0.0.1
    "64:ff9b::7f00:1",  # 127.0.0.1
    "2002:c0a8:101::1",  # 192.168.1.1
    "::127.0.0.1",
    "::ffff:0:10.1.2.3",
    "2002:6440:1::1",  # 100.64.0.1, carrier-grade NAT
    "2001:0:a00:1:8000:63bf:3fff:fdd2",  # Teredo with a private server, 10.0.0.1
]
EMBEDDING_PUBLIC = [
    "64:ff9b::5db8:d822",  # 93.184.216.34
    "2002:5db8:d822::1",
    "::ffff:0:93.184.216.34",
    "2001:0:5db8:d822:8000:63bf:a247:27dd",  # Teredo: server and client 93.184.216.34
]


@pytest.mark.parametrize("address", EMBEDDING_METADATA + EMBEDDING_PRIVATE)
def test_an_ipv6_literal_that_embeds_a_private_ipv4_is_judged_by_that_ipv4(address: str) -> None:
    with pytest.raises(TargetRefused, match="private, loopback, link-local or reserved"):
        parse_target(f"https://[{address}]/hook", TargetMode.PUBLIC)


@pytest.mark.parametrize("address", EMBEDDING_PUBLIC)
def test_an_ipv6_literal_that_embeds_a_public_ipv4_is_accepted(address: str) -> None:
    assert parse_target(f"https://[{address}]/hook", TargetMode.PUBLIC).literal


def test_only_port_443_unless_the_template_widens_it() -> None:
    with pytest.raises(TargetRefused, match="port 443"):
        parse_target("https://hooks.example.org:8443/in", TargetMode.PUBLIC)
    with pytest.raises(TargetRefused, match="port 443"):
        parse_target("https://93.184.216.34:22/in", TargetMode.PUBLIC)
    assert parse_target("https://hooks.example.org/in", TargetMode.PUBLIC).port == 443

    widened = TargetPorts(allowed=frozenset({443, 8443}))  # WebhookAllowedPorts=443,8443
    assert parse_target("https://hooks.example.org:8443/in", TargetMode.PUBLIC, ports=widened).port == 8443
    with pytest.raises(TargetRefused, match="port 443 or 8443"):
        parse_target("https://hooks.example.org:9000/in", TargetMode.PUBLIC, ports=widened)


@pytest.mark.parametrize("mode", [TargetMode.PUBLIC_AND_LOOPBACK, TargetMode.LOOPBACK])
def test_the_local_stacks_own_aws_endpoint_is_never_a_target(mode: TargetMode) -> None:
    local = TargetPorts(local_aws=4566)  # AWS_ENDPOINT_URL=http://127.0.0.1:4566, as `make dev` runs the functions

    with pytest.raises(TargetRefused, match="4566"):
        parse_target("http://127.0.0.1:4566/", mode, ports=local)
    with pytest.raises(TargetRefused, match="4566"):
        parse_target("https://127.0.0.1:4566/", mode, ports=local)
    # Any other port of 127.0.0.1 still takes a local receiver
    assert parse_target("http://127.0.0.1:8765/hooks", mode, ports=local).port == 8765


def test_the_local_aws_port_is_read_from_the_functions_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from newsdesk.settings import WebhookSettings, read_settings

    base = {"WEBHOOKS_TABLE": "webhooks", "WEBHOOK_DELIVERY_QUEUE_URL": "https://sqs.local/q"}
    for name, value in base.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4599")
    monkeypatch.setenv("WEBHOOK_ALLOWED_PORTS", "443,8443")

    ports = read_settings(WebhookSettings).target_ports

    assert ports == TargetPorts(allowed=frozenset({443, 8443}), local_aws=4599)
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # deployed: no endpoint of its own
    monkeypatch.delenv("WEBHOOK_ALLOWED_PORTS")
    assert read_settings(WebhookSettings).target_ports == TargetPorts()


def _resolving_to(*addresses: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in addresses
        ]

    return resolve


@pytest.mark.parametrize(
    "addresses",
    [
        ("169.254.169.254",),
        ("10.1.2.3",),
        ("127.0.0.1",),
        ("93.184.216.34", "192.168.0.10"),
        ("::1",),
        *((address,) for address in EMBEDDING_METADATA + EMBEDDING_PRIVATE),
    ],
)
def test_a_public_name_that_resolves_to_a_private_address_is_never_connected_to(addresses: tuple[str, ...]) -> None:
    # DNS rebinding: the name passed when it was saved; what it resolves to is checked before each POST.
    client = WebhookClient(TargetMode.PUBLIC, resolve=_resolving_to(*addresses), timeout=1)

    outcome = client.post("https://hooks.example.org/in", b"{}", {})

    assert outcome.status_code is None
    assert not outcome.succeeded
    assert outcome.error is not None
    assert "private, loopback or reserved" in outcome.error


# ------------------------------------------------------------------------------------------------ signing


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_body_that_a_receiver_can_check() -> None:
    secret, body = WebhookSecrets.new_secret(), b'{"id":"evt_1","type":"ping"}'

    header = signature(secret, 1795856400, body)

    # The receiver's check, as the README shows it.
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert fields["t"] == "1795856400"
    assert hmac.compare_digest(fields["v1"], expected)
    assert signature(secret, 1795856400, body + b" ") != header  # another body
    assert signature(secret, 1795856401, body) != header  # another time: a replayed header is told apart
    assert signature(WebhookSecrets.new_secret(), 1795856400, body) != header  # another endpoint's secret


def test_secrets_are_stored_sealed_and_open_only_for_their_endpoint_and_stack() -> None:
    sealer, secret = WebhookSecrets(SigningKeys(Keyring.parse("stack-secret"))), WebhookSecrets.new_secret()

    sealed = sealer.seal("wh_0000000000000001", secret)

    assert secret not in sealed
    assert sealer.open("wh_0000000000000001", sealed) == secret
    with pytest.raises(ValueError, match="cannot be opened"):
        sealer.open("wh_0000000000000002", sealed)
    with pytest.raises(ValueError, match="cannot be opened"):
        WebhookSecrets(SigningKeys(Keyring.parse("another-stack"))).open("wh_0000000000000001", sealed)


# ----------------------------------------------------------------------------------------- what events say

ARTICLE = {
    "pk": "article#0123456789abcdef",
    "id": "0123456789abcdef",
    "slug": "budget",
    "title": "Budget",
    "body": "Write to ada@example.org",
    "html": "<p>Write to ada@example.org</p>",
    "summary": "The budget.",
    "author": "Ada Brennan",
    "tags": ["council"],
    "status": "draft",
    "version": 1,
    "reading_time_minutes": 1,
    "created_at": "2026-11-28T08:55:00Z",
    "updated_at": "2026-11-28T08:55:00Z",
}


def change(source: ChangeSource, old: dict[str, Any] | None, new: dict[str, Any] | None) -> StreamChange:
    return StreamChange(source=source, record_id="c81e728d9d4c2f63", sequence="1", old=old, new=new, at=AT)


def test_article_events_carry_public_fields_only_and_keep_their_id() -> None:
    published = {**ARTICLE, "status": "published", "version": 2, "published_at": "2026-11-28T09:00:00Z",
                 "updated_at": "2026-11-28T09:00:00Z"}  # fmt: skip

    event = article_event(change(ChangeSource.ARTICLES, ARTICLE, published), SITE)

    assert event is not None
    assert event.type is EventType.ARTICLE_PUBLISHED
    assert set(event.data) == set(EVENT_DATA[EventType.ARTICLE_PUBLISHED].model_fields)
    assert "body" not in event.data
    assert "html" not in event.data  # the body may name people; readers fetch it from the site
    assert event.data["url"] == "https://example.com/articles/budget"
    again = article_event(change(ChangeSource.ARTICLES, ARTICLE, published), SITE)
    assert again is not None
    assert again.id == event.id  # the same change read twice from the stream
    assert again.body() == event.body()


def test_a_finished_newsletter_says_how_many_not_who() -> None:
    done = {"pk": "article-0123456789abcdef", "sk": "#publication", "state": "done", "kind": "newsletter",
            "article_id": "0123456789abcdef", "total": 2, "final_counts": {"delivered": 1, "bounced": 1},
            "recipients": ["ada@example.org"], "finished_at": "2026-11-28T09:05:00Z"}  # fmt: skip

    event = newsletter_event(change(ChangeSource.PUBLICATIONS, {**done, "state": "sending"}, done))

    assert event is not None
    assert event.data["counts"] == {"sent": 0, "delivered": 1, "bounced": 1, "complained": 0, "failed": 0,
                                    "suppressed": 0}  # fmt: skip
    assert "@" not in event.body()


def test_only_subscriber_events_hold_an_address() -> None:
    fields_with_addresses = {kind for kind in SUBSCRIBABLE if "email" in EVENT_DATA[kind].model_fields}
    assert fields_with_addresses == SUBSCRIBER_EVENTS

    old = {"email": "ada@example.org", "status": "confirmed", "frequency": "instant"}
    event = subscriber_event(change(ChangeSource.SUBSCRIBERS, old, {**old, "status": "unsubscribed"}))
    assert event is not None
    assert event.type is EventType.SUBSCRIBER_UNSUBSCRIBED
    assert "ada" not in event.id  # the id names the change, never the person
    assert json.loads(event.body())["data"]["email"] == "ada@example.org"


# ------------------------------------------------------------------------------------------------ retries


def test_retries_back_off_exponentially_for_more_than_a_day_then_stop() -> None:
    deployed = retry_schedule(60)

    assert len(deployed) == RETRY_ATTEMPTS
    assert [retry_delay(n, 60) for n in (1, 2, 3)] == [timedelta(minutes=1), timedelta(minutes=2),
                                                       timedelta(minutes=4)]  # fmt: skip
    assert retry_delay(11, 60) == timedelta(hours=12)  # capped
    assert retry_delay(RETRY_ATTEMPTS, 60) is None  # then failed
    assert deployed[-1] >= timedelta(hours=24)
    assert retry_schedule(2)[1] == timedelta(seconds=2)  # the local stack: the first retry after 2 s


def test_the_sample_payloads_in_events_webhooks_are_exactly_what_is_sent() -> None:
    samples = Path(__file__).resolve().parents[2] / "events" / "webhooks"

    found = {path.stem: json.loads(path.read_text()) for path in samples.glob("*.json")}

    assert set(found) == {kind.value for kind in EventType}  # every event type, and ping
    for name, sample in found.items():
        event = Event.model_validate(sample)
        assert event.type.value == name
        EVENT_DATA[event.type].model_validate(event.data)  # no field missing, none extra
        assert json.loads(event.body()) == sample
        assert ("@" in event.body()) == (event.type in SUBSCRIBER_EVENTS)


def test_the_readmes_receiver_check_accepts_a_delivery_and_refuses_a_forgery() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = readme.split("A receiver checks it like this", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    verify = namespace["verify"]
    secret, body = WebhookSecrets.new_secret(), b'{"id":"evt_1","type":"ping","created_at":"","data":{}}'
    now = int(datetime.now(UTC).timestamp())

    assert verify(secret, body, signature(secret, now, body))
    assert not verify(secret, body.replace(b"ping", b"pong"), signature(secret, now, body))
    assert not verify(WebhookSecrets.new_secret(), body, signature(secret, now, body))
    assert not verify(secret, body, signature(secret, now - 3600, body))  # an old request, replayed


def test_only_a_2xx_within_the_timeout_is_a_success() -> None:
    client = WebhookClient(TargetMode.LOOPBACK, timeout=0.5)
    with webhook_receiver() as receiver:
        receiver.answer(204, 302, 500)
        outcomes = [client.post(receiver.url, b"{}", {"Newsdesk-Event-Id": "evt_1"}) for _ in range(3)]
        receiver.answer(then=200)
        receiver.delay_seconds = 2
        slow = client.post(receiver.url, b"{}", {})

    assert [(outcome.status_code, outcome.succeeded) for outcome in outcomes] == [(204, True), (302, False),
                                                                                 (500, False)]  # fmt: skip
    assert receiver.requests[0].headers["newsdesk-event-id"] == "evt_1"
    assert (slow.succeeded, slow.error) == (False, "timed out after 0.5 s")
    assert slow.duration_ms < 1500
