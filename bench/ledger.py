"""Newsletter delivery with the ledger, on the local stack as `make dev` runs it: pipeline against floor,
the paced send rate, and what a million emails cost in AWS requests beside SES's own $100.

Every figure comes from `python -m local` (functions in worker processes, IAM enforced, SES's events
published and settled), driven over HTTP:

- pipeline: publish an article to N confirmed subscribers and wait until its delivery is `done` — every
  recipient claimed, sent, and settled by SES's Send and Delivery events through the ledger;
- floor: what exactly-once delivery cannot avoid, per recipient one conditional DynamoDB PutItem (the
  claim) and one SESv2 SendEmail, on the same emulator, with as many threads as the stack has mailers.
  Floor and pipeline run in the order floor, pipeline, pipeline, floor; the ratio is of their medians.
- paced rate: a second stack whose SendRatePerSecond R is half the pipeline's unpaced rate, measured in
  this same run (so the figure is about pacing, not the emulator's ceiling): the rate SES accepted emails
  at, from the first to the last, as a fraction of R.
- cost: the AWS requests per recipient, by service and operation, counted by the emulator itself, and the
  Lambda time the stack's workers spent, priced per 1,000,000 emails at list prices (every function but the
  two that serve the benchmark's own progress requests, whose share is printed apart).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from local.stack_process import LocalStack, local_stack_process

Row = dict[str, Any]

# LEDGER_BENCH_SUBSCRIBERS runs it smaller where the emulator cannot hold 10,000 in reasonable time.
SUBSCRIBERS = int(os.environ.get("LEDGER_BENCH_SUBSCRIBERS", "10000"))
PACED_SUBSCRIBERS = 2_000
MAILERS = 2
UNPACED = 100_000
RATIO_TARGET = 1.25
RATE_TARGET = 0.90
COST_TARGET = 0.05
SES_PER_MILLION = 100.0
DONE_TIMEOUT_SECONDS = 3600.0

# US East list prices, per unit: what a million emails cost beyond SES is these times the counted usage.
PRICES = {
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand, per write request unit (1 KB; transactions count 2)
    "dynamodb_read_unit": 0.125 / 1e6,  # on-demand, per read request unit (4 KB strongly consistent)
    "sqs_request": 0.40 / 1e6,  # standard queue, per request (64 KB)
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000133334,  # arm64
}
WRITES = {"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1, "TransactWriteItems": 2}
QUEUE_FED = ("MailerFunction", "SesEventsFunction", "FanoutFunction")
# The benchmark publishes through EditorFunction and then asks it for the delivery's progress five times a
# second (AuthorizerFunction checking each request): the observer's requests, not the newsletter's, and the
# same whatever the list's size. The cost of the emails is what every other function used; the observer's
# share is printed beside it.
OBSERVER = frozenset({"AuthorizerFunction", "EditorFunction"})


def _client(stack: LocalStack, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=stack.aws_endpoint, region_name=stack.region,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def email_of(number: int) -> str:
    return f"reader{number:07d}@example.org"


def seed(stack: LocalStack, count: int, offset: int = 0) -> None:
    """`count` confirmed instant subscribers, written as the product stores them."""
    from newsdesk.dal.subscribers import audience
    from newsdesk.models.subscribers import Frequency

    dynamodb = _client(stack, "dynamodb")
    table = stack.physical_name("SubscribersTable")

    def write(numbers: range) -> None:
        requests = [
            {"PutRequest": {"Item": {
                "email": {"S": email_of(n)}, "status": {"S": "confirmed"}, "frequency": {"S": "instant"},
                "audience": {"S": audience(Frequency.INSTANT, email_of(n))},
                "status_sort": {"S": f"2026-11-01T00:00:00Z#{email_of(n)}"},
                "created_at": {"S": "2026-11-01T00:00:00Z"}, "updated_at": {"S": "2026-11-01T00:00:00Z"},
                "confirmed_at": {"S": "2026-11-01T00:00:00Z"},
            }}} for n in numbers
        ]  # fmt: skip
        while requests:
            answer = dynamodb.batch_write_item(RequestItems={table: requests})
            requests = answer.get("UnprocessedItems", {}).get(table, [])

    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                write, [range(start, min(start + 25, offset + count)) for start in range(offset, offset + count, 25)]
            )
        )


def publish_and_wait(stack: LocalStack, title: str) -> tuple[float, dict[str, Any]]:
    """Seconds from the publish request until the delivery is done, and the final progress."""
    body = {"title": title, "author": "Ada", "body": "The harbour **reopened** on Tuesday.\n\nMore soon."}
    article = stack.request("POST", "/admin/articles", json_body=body, editor=True).json()
    started = time.perf_counter()
    assert stack.request("POST", f"/admin/articles/{article['id']}/publish", editor=True).status == 200
    deadline = started + DONE_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        progress = stack.request("GET", f"/admin/deliveries/article-{article['id']}", editor=True).json()
        if progress["state"] == "done":
            return time.perf_counter() - started, progress
        time.sleep(0.2)
    raise TimeoutError(f"{title} not done after {DONE_TIMEOUT_SECONDS:.0f} s")


def floor(stack: LocalStack, count: int) -> float:
    """Seconds for one conditional PutItem and one SendEmail per recipient, on MAILERS threads."""
    dynamodb, ses = _client(stack, "dynamodb"), _client(stack, "sesv2")
    table = stack.physical_name("DeliveriesTable")
    configuration_set = stack.physical_name("EmailConfigurationSet")
    raw = b"From: newsroom@newsdesk.localhost\r\nTo: x@example.org\r\nSubject: floor\r\n\r\nfloor\r\n"
    run = f"floor-{time.monotonic_ns()}"

    def send(numbers: range) -> None:
        for n in numbers:
            claim = {"pk": {"S": run}, "sk": {"S": f"to#{n}"}, "state": {"S": "pending"}}
            dynamodb.put_item(TableName=table, Item=claim, ConditionExpression="attribute_not_exists(sk)")
            ses.send_email(FromEmailAddress="newsroom@newsdesk.localhost", Destination={"ToAddresses": [email_of(n)]},
                           Content={"Raw": {"Data": raw}}, ConfigurationSetName=configuration_set)  # fmt: skip

    share = -(-count // MAILERS)
    started = time.perf_counter()
    with ThreadPoolExecutor(MAILERS) as pool:
        list(pool.map(send, [range(start, min(start + share, count)) for start in range(0, count, share)]))
    return time.perf_counter() - started


@contextmanager
def stack_with(folder: Path, name: str, **parameters: Any) -> Iterator[LocalStack]:
    overrides = " ".join(f"{key}={value}" for key, value in parameters.items())
    with local_stack_process(folder / f"{name}.log", {"NEWSDESK_PARAMETERS": overrides}) as stack:
        yield stack


def usage(stack: LocalStack, *, reset: bool = False) -> dict[str, Any]:
    answer = stack.request("DELETE" if reset else "GET", "/_local/usage").json()
    return dict(answer)


def used_by(used: dict[str, Any], functions: Callable[[str], bool]) -> dict[str, Any]:
    """The part of a usage snapshot that these functions account for (requests summed over them)."""
    requests: Counter[str] = Counter()
    for function_id, counts in used["aws_requests"].items():
        if functions(function_id):
            requests.update(counts)
    return {
        "aws_requests": dict(requests),
        "dynamodb_read_items": sum(n for f, n in used["dynamodb_read_items"].items() if functions(f)),
        "functions": {name: figures for name, figures in used["functions"].items() if functions(name)},
    }


def cost_per_million(used: dict[str, Any], emails: int) -> dict[str, float]:
    """Dollars per 1,000,000 emails, by service, from what the stack used for `emails` emails."""
    scale = 1_000_000 / emails
    requests: dict[str, int] = used["aws_requests"]
    writes = sum(count * WRITES.get(name.split(".", 1)[1], 0) for name, count in requests.items()
                 if name.startswith("dynamodb."))  # fmt: skip
    # Reads: every GetItem, Query and BatchGetItem key at one unit (items here are far below 4 KB).
    reads = used["dynamodb_read_items"]
    invocations = sum(function["invocations"] for function in used["functions"].values())
    # Beside the functions' own SQS requests: EventBridge's one SendMessage per SES event into the queue,
    # and Lambda's pollers' ReceiveMessage and DeleteMessageBatch per batch of a queue-fed function.
    polled = sum(used["functions"].get(name, {}).get("invocations", 0) for name in QUEUE_FED)
    sqs = sum(count for name, count in requests.items() if name.startswith("sqs.")) + 2 * polled
    sqs += used.get("ses_events", 0)
    gb_seconds = sum(f["seconds"] * f["memory_mb"] / 1024 for f in used["functions"].values())
    return {
        "DynamoDB writes": writes * PRICES["dynamodb_write_unit"] * scale,
        "DynamoDB reads": reads * PRICES["dynamodb_read_unit"] * scale,
        "SQS requests": sqs * PRICES["sqs_request"] * scale,
        "Lambda requests": invocations * PRICES["lambda_request"] * scale,
        "Lambda compute": gb_seconds * PRICES["lambda_gb_second"] * scale,
    }


def run() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        with stack_with(folder, "unpaced", SendRatePerSecond=UNPACED, MailerConcurrency=MAILERS) as stack:
            seed(stack, SUBSCRIBERS)
            floors, pipelines = [], []
            used: dict[str, Any] = {}
            for index, mode in enumerate(("floor", "pipeline", "pipeline", "floor")):
                if mode == "floor":
                    floors.append(floor(stack, SUBSCRIBERS))
                else:
                    usage(stack, reset=True)
                    seconds, progress = publish_and_wait(stack, f"Pipeline {index}")
                    assert progress["counts"]["delivered"] == SUBSCRIBERS, progress
                    pipelines.append(seconds)
                    used = usage(stack)
                _progress(f"{mode} {index}: {(floors if mode == 'floor' else pipelines)[-1]:.1f} s")
            denials = stack.denials()
        unpaced_rate = SUBSCRIBERS / statistics.median(pipelines)
        ratio = statistics.median(pipelines) / statistics.median(floors)
        rows.append({
            "benchmark": "ledger",
            "figure": f"pipeline / floor wall time, {SUBSCRIBERS:,} subscribers (floor {_each(floors)} s, "
                      f"pipeline {_each(pipelines)} s)",
            "value": f"{ratio:.2f}", "target": f"<= {RATIO_TARGET}",
            "result": "PASS" if ratio <= RATIO_TARGET and not denials else "SHORT",
        })  # fmt: skip
        # SES's events (queued by EventBridge) are the newsletter's too.
        newsletter = used_by(used, lambda function_id: function_id not in OBSERVER) | {"ses_events": used["ses_events"]}
        costs = cost_per_million(newsletter, SUBSCRIBERS)
        total = sum(costs.values())
        observer = sum(cost_per_million(used_by(used, OBSERVER.__contains__), SUBSCRIBERS).values())
        per_recipient = {name: count / SUBSCRIBERS for name, count in sorted(newsletter["aws_requests"].items())}
        rows.append({
            "benchmark": "ledger",
            "figure": "infrastructure per 1,000,000 emails / SES's $100 ("
                      + ", ".join(f"{name} ${value:.2f}" for name, value in costs.items())
                      + f"; not counted: the benchmark's own progress requests, ${observer:.2f})",
            "value": f"{total / SES_PER_MILLION:.3f}", "target": f"<= {COST_TARGET}",
            "result": "PASS" if total / SES_PER_MILLION <= COST_TARGET else "SHORT",
            "requests_per_recipient": per_recipient,
        })  # fmt: skip
        paced = unpaced_rate / 2
        with stack_with(folder, "paced", SendRatePerSecond=f"{paced:.1f}", MailerConcurrency=MAILERS) as stack:
            seed(stack, PACED_SUBSCRIBERS)
            usage(stack, reset=True)
            _, progress = publish_and_wait(stack, "Paced")
            sends = usage(stack)["ses_sends"]
            lost = PACED_SUBSCRIBERS - progress["counts"]["delivered"]
        span = sends["last"] - sends["first"] if sends["count"] > 1 else 0.0
        rate = (sends["count"] - 1) / span if span else 0.0
        rows.append({
            "benchmark": "ledger",
            "figure": f"send rate with SendRatePerSecond R = {paced:.1f}/s (half the unpaced {unpaced_rate:.1f}/s), "
                      f"fraction of R; {sends['count']:,} sent at {rate:.1f}/s, {lost} lost",
            "value": f"{rate / paced:.3f}", "target": f">= {RATE_TARGET}",
            "result": "PASS" if rate / paced >= RATE_TARGET and lost == 0 else "SHORT",
        })  # fmt: skip
        _progress("AWS requests per recipient: " + json.dumps(rows[1]["requests_per_recipient"]))
    return rows


def _each(values: list[float]) -> str:
    return " / ".join(f"{value:.1f}" for value in values)


def _progress(message: str) -> None:
    print(f"[ledger] {message}", file=sys.stderr, flush=True)


def format_table(rows: list[Row]) -> str:
    lines = ["ledger: newsletter delivery on the local stack (workers, IAM, SES events), side by side"]
    lines += [f"  {row['figure']}\n      {row['value']:>8}  {row['target']}  {row['result']}" for row in rows]
    per_recipient: dict[str, float] = next(
        (row["requests_per_recipient"] for row in rows if "requests_per_recipient" in row), {}
    )
    if per_recipient:
        lines.append("  AWS requests per recipient (counted by the emulator):")
        lines += [f"    {name:45} {count:8.3f}" for name, count in per_recipient.items() if count >= 0.001]
    return "\n".join(lines)


if __name__ == "__main__":
    table = run()
    print(format_table(table))
    sys.exit(0 if all(row["result"] == "PASS" for row in table) else 1)
