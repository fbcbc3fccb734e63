"""Nobody can use the sign-up form as a mail cannon: confirmations are limited per inbox, per source address
and per hour, never carry a stranger's words, and the answer is the same whether or not a limit held."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from local.template.model import Template
from local.template.resolver import local_parameters
from newsdesk import dependencies
from tests.integration.conftest import API_URL, Reply, Stack
from tests.support import times
from tests.support.events import sample_event, ses_event
from tests.support.mail import outbox

START = times.now()
# What API Gateway puts in requestContext.http.sourceIp for a client on the internet.
CLIENT = "198.51.100.23"


def sign_up(stack: Stack, email: str, *, source: str = CLIENT, headers: dict[str, str] | None = None,
            **fields: Any) -> Reply:  # fmt: skip
    event = sample_event("public-subscribe", body={"email": email, **fields}, headers=headers)
    event["requestContext"]["http"]["sourceIp"] = source
    return stack.call("PublicFunction", event)


def configure(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """Deploy-time parameters, as the template passes them to the functions."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    dependencies.reset()


def the_same_answer(replies: list[Reply]) -> bool:
    return len({(reply.status, reply.body) for reply in replies}) == 1 and replies[0].status == 202


def variants(count: int) -> list[str]:
    """Addresses that all reach alice@gmail.com: tags, dots, case and googlemail.com."""
    forms = ["alice", "a.lice", "al.ice", "ALICE", "a.l.i.c.e", "Ali.ce"]
    domains = ["gmail.com", "googlemail.com", "GMail.com"]
    return [f"{forms[n % len(forms)]}+{n}@{domains[n % len(domains)]}" for n in range(count)]


def test_variants_of_one_inbox_share_one_daily_allowance(stack: Stack) -> None:
    addresses = variants(30)
    with freeze_time(START) as clock:
        # Each from its own source, so that only the inbox's limit applies.
        replies = [sign_up(stack, address, source=f"198.51.100.{n}") for n, address in enumerate(addresses)]

        assert the_same_answer(replies)
        assert len(outbox()) == 3  # ConfirmationsPerMailboxPerDay
        assert len(stack.items("SubscribersTable")) == 30  # each address is a subscription of its own

        # The next day the inbox has its allowance again, also for an address refused yesterday.
        clock.tick(timedelta(days=1))
        assert sign_up(stack, addresses[-1]).status == 202
        assert len(outbox()) == 4
        assert outbox()[-1].to == addresses[-1].lower()


def test_the_confirmation_never_carries_the_name_given_with_the_request(stack: Stack) -> None:
    sign_up(stack, "victim@example.org", name="Your account is locked, call +1 555 0100")

    [mail] = outbox()
    assert mail.message["To"] == "victim@example.org"
    assert "locked" not in mail.raw
    assert "555 0100" not in mail.raw


def test_one_source_gets_at_most_its_hourly_allowance(stack: Stack) -> None:
    with freeze_time(START) as clock:
        replies = [sign_up(stack, f"reader{n}@example.org") for n in range(25)]

        assert the_same_answer(replies)
        assert len(outbox()) == 20  # ConfirmationsPerSourcePerHour
        # Other sources are not held back by it.
        assert sign_up(stack, "someone@example.org", source="203.0.113.5").status == 202
        assert len(outbox()) == 21
        # Nor is this source, an hour later; a refused address can ask again.
        clock.tick(timedelta(hours=1))
        sign_up(stack, "reader24@example.org")
        assert outbox()[-1].to == "reader24@example.org"


def test_an_ipv6_client_counts_as_its_whole_64(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, CONFIRMATIONS_PER_SOURCE_PER_HOUR="2")

    for n, source in enumerate(["2001:db8:1:2::1", "2001:db8:1:2::abcd", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"]):
        sign_up(stack, f"reader{n}@example.org", source=source)

    assert sorted(mail.to for mail in outbox()) == ["reader0@example.org", "reader1@example.org", "reader3@example.org"]


def test_the_hourly_budget_holds_for_everyone_together(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, CONFIRMATIONS_PER_HOUR="5")
    with freeze_time(START) as clock:
        replies = [sign_up(stack, f"reader{n}@example.org", source=f"203.0.113.{n}") for n in range(8)]

        assert the_same_answer(replies)
        assert len(outbox()) == 5
        clock.tick(timedelta(hours=1))
        for n in range(5, 8):  # the refused ones ask again: their earlier requests used up nothing
            sign_up(stack, f"reader{n}@example.org", source=f"203.0.113.{n}")
        assert len(outbox()) == 8


def test_a_refusal_by_a_later_limit_gives_back_the_earlier_counts(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, CONFIRMATIONS_PER_HOUR="1", CONFIRMATIONS_PER_SOURCE_PER_HOUR="2")
    with freeze_time(START) as clock:
        sign_up(stack, "first@example.org", source="203.0.113.1")  # uses the whole hourly budget
        clock.tick(timedelta(hours=1))
        sign_up(stack, "second@example.org")  # CLIENT's first of this hour, and the hour's budget
        sign_up(stack, "third@example.org")  # refused by the budget: CLIENT's count is given back
        sign_up(stack, "fourth@example.org")  # and again

    assert [mail.to for mail in outbox()] == ["first@example.org", "second@example.org"]
    configure(monkeypatch, CONFIRMATIONS_PER_HOUR="100")
    with freeze_time(START + timedelta(hours=1, minutes=1)):
        sign_up(stack, "third@example.org")  # CLIENT's second of the hour: within its 2
    assert [mail.to for mail in outbox()][-1] == "third@example.org"


def test_the_local_stack_lets_loopback_sign_up_many_addresses(stack: Stack) -> None:
    # The sample event comes from 127.0.0.1, as every request to `make dev` does.
    replies = [stack.call("PublicFunction", sample_event("public-subscribe", body={"email": f"r{n}@example.org"}))
               for n in range(30)]  # fmt: skip

    assert the_same_answer(replies)
    assert len(outbox()) == 30


def test_no_header_makes_a_client_look_like_loopback(stack: Stack) -> None:
    spoofed = {"X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1", "X-Real-IP": "127.0.0.1"}

    for n in range(25):
        sign_up(stack, f"reader{n}@example.org", headers=spoofed)

    assert len(outbox()) == 20


def test_a_deployed_stack_limits_loopback_like_any_source(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, template: Template
) -> None:
    # Only the local runner passes the exemption; the template's default leaves it off.
    assert template.parameters["ExemptLoopbackFromSourceLimit"]["Default"] == "false"
    assert local_parameters(API_URL)["ExemptLoopbackFromSourceLimit"] == "true"
    configure(monkeypatch, EXEMPT_LOOPBACK_FROM_SOURCE_LIMIT="false")

    for n in range(25):
        stack.call("PublicFunction", sample_event("public-subscribe", body={"email": f"r{n}@example.org"}))

    assert len(outbox()) == 20


def test_counters_expire_after_their_window(stack: Stack) -> None:
    with freeze_time(START):
        sign_up(stack, "reader@example.org")

    items = stack.items("RateLimitsTable")
    assert {item["pk"]["S"].split("#")[0] for item in items} == {"source", "mailbox", "global"}
    assert all(int(item["expires_at"]["N"]) <= (START + timedelta(days=1, hours=1)).timestamp() for item in items)
    # Keys name sources and inboxes by a keyed hash, never in readable form.
    assert not any("reader" in item["pk"]["S"] or CLIENT in item["pk"]["S"] for item in items)


# ------------------------------------------------------------------ confirmations that bounce

BOUNCES = "bounce@simulator.amazonses.com"  # SES's mailbox simulator: a permanent bounce (the local SES too)


def sign_up_and_settle(stack: Stack, addresses: list[str]) -> list[Reply]:
    """Sign these addresses up, then let SES's events (sends, deliveries, bounces) be applied."""
    replies = [sign_up(stack, address) for address in addresses]
    stack.drain()
    return replies


def emitted_metrics(text: str, name: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric blobs naming `name` among a function's output lines."""
    blobs = [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [blob for blob in blobs if any(m["Name"] == name for d in blob["_aws"]["CloudWatchMetrics"]
                                          for m in d["Metrics"])]  # fmt: skip


def test_confirmations_pause_while_the_last_hours_bounce_rate_is_too_high_and_the_reply_stays_the_same(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], template: Template
) -> None:
    # The simulator's addresses are all one inbox (+labels): only the bounce rate may hold them back here.
    configure(monkeypatch, CONFIRMATIONS_PER_MAILBOX_PER_DAY="1000", CONFIRMATIONS_PER_SOURCE_PER_HOUR="1000")
    hour = times.now().replace(minute=0)
    with freeze_time(hour + timedelta(minutes=10)) as clock:
        # 1 bounce of 2 confirmations: 50%, but too few to judge (fewer than 20 in the hour)
        [open_reply, _] = sign_up_and_settle(stack, ["reader0@example.org", BOUNCES.replace("@", "+0@")])
        sign_up_and_settle(stack, ["reader1@example.org"])
        assert [mail.to for mail in outbox()][-1] == "reader1@example.org"

        # 2 bounces of 20 confirmations: 10%, over the default 5%
        sign_up_and_settle(stack, [*(f"reader{n}@example.org" for n in range(2, 18)), BOUNCES.replace("@", "+1@")])
        assert len(outbox()) == 20
        capsys.readouterr()

        # When more people sign up, they get the same answer as ever, and no email
        paused = [sign_up(stack, f"later{n}@example.org") for n in range(3)]
        output = capsys.readouterr().out

        assert the_same_answer([*paused, sign_up(stack, "reader0@example.org")])
        assert (paused[0].status, paused[0].body) == (open_reply.status, open_reply.body)
        assert len(outbox()) == 20
        assert stack.items("SubscribersTable")  # the sign-ups are kept, pending, for a later request
        # A metric says so, and the alarm of the template watches exactly that metric
        [alarm] = [r for r in template.of_type("AWS::CloudWatch::Alarm") if r.logical_id == "ConfirmationsPausedAlarm"]
        watched = stack.resolver.resolve(alarm.properties)
        blobs = emitted_metrics(output, watched["MetricName"])
        assert len(blobs) == 3  # one per withheld confirmation
        (directive,) = blobs[0]["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == watched["Namespace"]
        assert {d["Name"]: d["Value"] for d in watched["Dimensions"]} == {
            name: blobs[0][name] for name in directive["Dimensions"][0]
        }
        assert watched["AlarmActions"] == [stack.resolver.resolve({"Ref": "AlarmTopic"})]

        # The pause ends as the last hour's confirmations age out: late in the next hour, a sign-up is mailed
        clock.tick(timedelta(hours=1, minutes=45))
        sign_up_and_settle(stack, ["later0@example.org"])
        assert [mail.to for mail in outbox()][-1] == "later0@example.org"


def test_a_bounce_event_delivered_again_counts_once(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, CONFIRMATIONS_PER_SOURCE_PER_HOUR="1000")
    hour = times.now().replace(minute=0)
    with freeze_time(hour + timedelta(minutes=10)):
        sign_up_and_settle(stack, [f"reader{n}@example.org" for n in range(20)])
        # One of them bounces: 1 in 20, 5%, not over 5%. SES (through EventBridge and SQS) may deliver an
        # event more than once: here three times.
        detail = {
            "eventType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                       "bouncedRecipients": [{"emailAddress": "reader19@example.org", "status": "5.1.1"}]},
            "mail": {"timestamp": times.zulu(hour + timedelta(minutes=10)), "messageId": "0100-confirmation-19",
                     "destination": ["reader19@example.org"], "tags": {"newsdesk-email": ["signup-confirmation"]}},
        }  # fmt: skip
        for _ in range(3):
            stack.invoke("SesEventsFunction", ses_event(detail))

        sign_up_and_settle(stack, ["one-more@example.org"])

    assert [mail.to for mail in outbox()][-1] == "one-more@example.org"  # counted once: not paused
