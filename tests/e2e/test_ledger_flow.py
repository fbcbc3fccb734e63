"""The delivery ledger's whole loop on the local stack: send, SES's events, the ledger, suppression.

The local SES publishes what the real one does, as its mailbox simulator: `bounce@simulator.amazonses.com`
bounces for good, `complaint@simulator.amazonses.com` is delivered and then complains.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e
SIMULATED = ("success", "bounce", "complaint")


def import_confirmed(local_stack: LocalStack, addresses: list[str]) -> None:
    """Upload addresses the newsroom vouches for (subscribers/confirmed/), as a list moved from another tool."""
    s3 = boto3.client("s3", endpoint_url=local_stack.aws_endpoint, region_name=local_stack.region,
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    key = f"subscribers/confirmed/simulator-{time.monotonic_ns()}.csv"
    body = "email\n" + "".join(f"{address}\n" for address in addresses)
    s3.put_object(Bucket=local_stack.physical_name("UploadsBucket"), Key=key, Body=body.encode())

    def imported() -> bool:
        uploads = local_stack.request("GET", "/admin/uploads?limit=100", editor=True).json()["items"]
        return any(item["key"] == key and item["outcome"] == "imported" for item in uploads)

    until(imported)


def until(condition: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError("not reached in time")


def test_ses_events_settle_the_ledger_and_suppress_on_the_local_stack(local_stack: LocalStack) -> None:
    label = str(time.monotonic_ns())
    addresses = {kind: f"{kind}+{label}@simulator.amazonses.com" for kind in SIMULATED}
    import_confirmed(local_stack, list(addresses.values()))
    article = local_stack.request(
        "POST", "/admin/articles", json_body={"title": f"Tide tables {label}", "author": "Ada", "body": "High at 6."},
        editor=True,
    ).json()  # fmt: skip

    assert local_stack.request("POST", f"/admin/articles/{article['id']}/publish", editor=True).status == 200

    delivery_id = f"article-{article['id']}"

    def settled() -> dict[str, Any] | None:
        report = local_stack.request("GET", f"/admin/deliveries/{delivery_id}", editor=True).json()
        counts = report["counts"]
        return report if report["state"] == "done" and counts["complained"] and counts["bounced"] else None

    report = until(settled)
    ledger = local_stack.request("GET", f"/admin/deliveries/{delivery_id}/recipients?limit=1000", editor=True).json()
    states = {entry["email"]: entry["state"] for entry in ledger["items"]}
    assert states[addresses["success"]] == "delivered"
    assert states[addresses["bounce"]] == "bounced"
    assert states[addresses["complaint"]] == "complained"
    assert sum(report["counts"].values()) == report["total"]
    for status, kind in (("bounced", "bounce"), ("complained", "complaint")):
        listed = local_stack.request("GET", f"/admin/subscribers?status={status}", editor=True).json()["items"]
        assert addresses[kind] in [subscriber["email"] for subscriber in listed]  # suppressed for good
