"""The delivery ledger's chaos scenario at 50,000 subscribers (tests/integration/test_ledger.py runs it at
1,200 in CI): SES throttling 20% of calls, a daily quota of 60% of the list on a frozen clock, mailers killed
between the claim and the SES call and after SES accepted, a batch delivered twice, two concurrent publishes.

`python -m bench.chaos` builds the template's stack in this process (moto, IAM enforced, as the integration
tests do), seeds the subscribers, runs the scenario and prints whether every subscriber got exactly one email
by SES's own count, and whether the ledger's report equals that count.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

import tests.conftest  # noqa: F401 - the template's Powertools settings, set before any product import
from local.lambda_runtime.functions import InProcessFunctions
from local.stack import local_resolver
from tests.integration.conftest import API_URL, RECONCILIATION_WINDOW_SECONDS, running_stack
from tests.support.chaos import run_chaos

SUBSCRIBERS = int(os.environ.get("CHAOS_BENCH_SUBSCRIBERS", "50000"))

Row = dict[str, Any]


def seed(table: str, count: int) -> list[str]:
    """`count` confirmed instant subscribers, written as the product stores them (25 per request)."""
    from newsdesk.dal.subscribers import audience
    from newsdesk.models.subscribers import Frequency

    dynamodb = boto3.client("dynamodb")
    emails = [f"reader{n:07d}@example.org" for n in range(count)]

    def write(chunk: list[str]) -> None:
        requests = [{"PutRequest": {"Item": {
            "email": {"S": email}, "status": {"S": "confirmed"}, "frequency": {"S": "instant"},
            "audience": {"S": audience(Frequency.INSTANT, email)},
            "status_sort": {"S": f"2026-11-01T00:00:00Z#{email}"},
            "created_at": {"S": "2026-11-01T00:00:00Z"}, "updated_at": {"S": "2026-11-01T00:00:00Z"},
        }}} for email in chunk]  # fmt: skip
        while requests:
            requests = (
                dynamodb.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {}).get(table, [])
            )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, [emails[start : start + 25] for start in range(0, count, 25)]))
    return emails


def run() -> list[Row]:
    resolver = local_resolver(api_url=API_URL, parameters={
        "SendRatePerSecond": "100000", "ReconciliationWindowSeconds": str(RECONCILIATION_WINDOW_SECONDS),
    })  # fmt: skip
    template = resolver.template
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        running_stack(monkeypatch, template, resolver, InProcessFunctions(template, resolver)) as stack,
    ):
        emails = seed(stack.table("SubscribersTable"), SUBSCRIBERS)
        outcome = run_chaos(stack, monkeypatch, max_rounds=40)
        refused = stack.policy.take_denials()
    ses = outcome.ses
    once = Counter(ses.accepted.values())
    exact = set(ses.accepted) == set(emails) and set(once) == {1}
    report = outcome.report
    matches = report["sent"] == sum(ses.accepted.values()) == report["counts"]["delivered"] == SUBSCRIBERS
    final = outcome.states == {"delivered": SUBSCRIBERS}
    return [
        {
            "benchmark": "chaos",
            "figure": (
                f"{SUBSCRIBERS:,} subscribers in {outcome.seconds:.0f} s ({outcome.rounds} rounds of the frozen "
                f"clock): {ses.throttled:,} throttled, {ses.quota_refusals:,} over the daily quota, "
                f"{ses.killed_before} killed before and {ses.killed_after} after SES accepted; emails accepted per "
                f"subscriber {dict(once)}; ledger {outcome.states}; report sent {report['sent']:,}, late Send "
                f"events {report['late_send_events']}, dead letters {outcome.dead_letters}, IAM refusals {len(refused)}"
            ),
            "value": "exactly once" if exact else "NOT exactly once",
            "target": "exactly once, report = SES",
            "result": "PASS" if exact and matches and final and not refused and not outcome.dead_letters else "SHORT",
        }
    ]


def format_table(rows: list[Row]) -> str:
    return "\n".join(f"chaos: {row['figure']}\n  {row['value']}  {row['result']}" for row in rows)


if __name__ == "__main__":
    table = run()
    print(format_table(table))
    sys.exit(0 if all(row["result"] == "PASS" for row in table) else 1)
