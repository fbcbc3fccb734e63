"""Cold start of every function in template.yaml against a minimal handler making the same AWS calls.

For each function a fresh process (bench/cold_runner.py) imports the handler module and serves one
representative event; its twin, also a fresh process, imports boto3 and makes every AWS call the real
handler made, in the same order (recorded in an untimed warm-up run: service, operation and parameters;
one client per service). Both run with the function's environment from the template against one moto
server in its own process (bench/emulator.py), with the template's resources created and seeded so that
every call succeeds. A third process, the floor, makes the twin's calls after loading the product's core
packages as any handler built on them must (Powertools' logger and metrics, pydantic with one model; for the
HTTP functions, Powertools' API Gateway resolver answering one validated route): the part of a cold start no
code of Newsdesk's can remove while it keeps those packages. Real, twin and floor runs alternate, PAIRS
rounds per function, each kind first, second and last in turn, so machine noise hits all alike.

Measured inside the child: from just before the first import (the handler module, or boto3) to the end
of the first invocation. The parent also times each whole child process (interpreter start and exit
included), shown for information. Each ratio is the median of the per-round ratios. The target, 1.3, is
judged on real/floor, what Newsdesk adds to a handler on its core packages making the same calls: the floor
alone costs up to 1.45 times the twin (the HTTP functions' 1.5-1.8), so with no code of their own most
functions would miss 1.3 times the twin (issue 25's first figure, still printed: real/twin). One more
untimed run under `python -X importtime` shows where the import time goes: the product's own modules, and the
five largest imports by cumulative time.

The child gets the variables Lambda sets too, LAMBDA_TASK_ROOT among them. Tracing is off
(POWERTOOLS_TRACE_DISABLED): there is no X-Ray daemon here, and newsdesk.observability then keeps the X-Ray
SDK out of the process altogether.

Stateful functions get fresh state for every run (a new upload key, a new delivery), so each run does the
same work. Before each twin run, every DynamoDB item the recorded calls wrote is put back as it was before
the recorded run (a snapshot of the tables), so the replayed calls find what the handler found and answer
alike (the benchmark stops if any answers differently).
`python -m bench.cold_start [--pairs N] [--functions Public,Mailer] [--python python3.13]` runs it alone
(`--python`: the functions on that interpreter, their layer built for it); with `--profile` it measures
nothing and shows, per function, one cold start under cProfile (`profile`).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from bench.emulator import Emulator
from local.aws.embedded import aws_environment, client
from local.lambda_runtime.events import sqs_record
from local.lambda_runtime.layer import layer_path
from local.stack import build_stack, local_resolver
from local.template.model import Function, Template

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "bench" / "cold_runner.py"
EVENTS = ROOT / "events"
REGION = "us-east-1"
API_URL = "https://api.newsdesk.test"
PAIRS = 10
RATIO_TARGET = 1.3
CHILD_TIMEOUT_SECONDS = 120.0
ARTICLE_ID = "0123456789abcdef"  # events/editor-get-article.json
ARTICLE_SLUG = "council-approves-budget"  # events/public-get-article.json
BOUNCED = "reader@example.org"  # events/ses-bounce.json
READERS = 64  # confirmed subscribers spread over the fan-out shards
# What Lambda's environment has and the template does not say; no X-Ray daemon here, so no tracing.
LAMBDA_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "1", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"}
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")

Event = dict[str, Any]
Row = dict[str, Any]
Call = dict[str, Any]


def _sample(name: str) -> Event:
    event: Event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def reader(n: int) -> str:
    return f"reader{n:06d}@example.org"


# ---------------------------------------------------------------------------------------------- stack
class Stack:
    """The template's resources in the emulator, seeded with what the sample events refer to."""

    def __init__(self, endpoint: str, python: str = sys.executable) -> None:
        self.endpoint = endpoint
        self.python = python
        """The interpreter the functions run on, their layer built for it."""
        self.resolver = local_resolver(api_url=API_URL, region=REGION)
        self.template: Template = self.resolver.template
        build_stack(self.resolver, endpoint=endpoint)
        self.dynamodb = client("dynamodb", endpoint, REGION)
        self.s3 = client("s3", endpoint, REGION)
        self._key_names: dict[str, list[str]] = {}
        self._seed()

    def table(self, logical_id: str) -> str:
        return self.resolver.physical_name(logical_id)

    def environment(self, function: Function) -> dict[str, str]:
        """The function's variables as Lambda sets them, pointed at the emulator; Lambda's import path."""
        passed = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
        return (
            passed
            | self.resolver.function_environment(function)
            | aws_environment(self.endpoint, REGION)
            | LAMBDA_ENVIRONMENT
            | {
                # As the local stack's workers: the code, the layers, the runtime's boto3; never the venv
                # (the child runs with -S).
                "PYTHONPATH": os.pathsep.join(
                    map(str, [function.code_dir, *layer_path(function.layer_dirs, self.python)])
                ),
                "AWS_LAMBDA_FUNCTION_NAME": self.resolver.physical_name(function.logical_id),
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
                "LAMBDA_TASK_ROOT": str(function.code_dir),
                "_HANDLER": function.handler,
            }
        )

    # ------------------------------------------------------------------ seeding
    def _seed(self) -> None:
        from newsdesk.dal.articles import ArticleRepository
        from newsdesk.dal.subscribers import SubscriberRepository
        from newsdesk.dal.tokens import TokenRepository
        from newsdesk.services.tokens import TokenService

        token = _sample("authorizer.json")["headers"]["authorization"].split(" ", 1)[1]
        TokenService(TokenRepository(self.dynamodb, self.table("TokensTable"))).create("cold start", token=token)
        self.article = _article()
        for item in ArticleRepository(self.dynamodb, self.table("ArticlesTable")).stored_items(self.article):
            self.dynamodb.put_item(TableName=self.table("ArticlesTable"), Item=item)
        self.subscribers = SubscriberRepository(
            self.dynamodb, self.table("SubscribersTable"), self.table("TopicMembersTable")
        )
        for n in range(READERS):
            self.confirmed(reader(n))

    def confirmed(self, email: str) -> None:
        """A confirmed instant subscriber (nothing changes if the address is known)."""
        from newsdesk.models.subscribers import Subscriber, SubscriberStatus

        now = datetime.now(UTC)
        pending = SubscriberStatus.PENDING
        subscriber = Subscriber(email=email, name="Reader", status=pending, created_at=now, updated_at=now)
        if self.subscribers.create_pending(subscriber):
            self.subscribers.confirm(subscriber, now)

    def delivery(self, delivery_id: str) -> None:
        """A newsletter of the seeded article, started (as the stream's first fan-out leaves it)."""
        from newsdesk.dal.publications import publication_write

        item = publication_write(self.table("PublicationsTable"), self.article)["Put"]["Item"]
        item |= {"pk": {"S": delivery_id}, "state": {"S": "sending"}, "started_at": item["opened_at"]}
        self.dynamodb.put_item(TableName=self.table("PublicationsTable"), Item=item)

    def snapshot(self) -> Snapshot:
        """Every item of every table, by table and key (the state a recorded run starts from)."""
        snapshot: Snapshot = {}
        for table in self.dynamodb.list_tables()["TableNames"]:
            items = self.dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
            snapshot[table] = {self._key(table, item): item for page in items for item in page["Items"]}
        return snapshot

    def restore(self, snapshot: Snapshot, calls: list[Call]) -> None:
        """Put every item the calls wrote back as the snapshot has it (or delete it if the snapshot has none),
        so that replaying the calls finds the state the handler found."""
        for table, key in {(table, self._key(table, key)): None for table, key in _written_keys(calls)}:
            item = snapshot.get(table, {}).get(key)
            if item is not None:
                self.dynamodb.put_item(TableName=table, Item=item)
            else:
                self.dynamodb.delete_item(TableName=table, Key={name: json.loads(value) for name, value in key})

    def _key(self, table: str, item: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        if table not in self._key_names:
            schema = self.dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            self._key_names[table] = [part["AttributeName"] for part in schema]
        return tuple((name, json.dumps(item[name], sort_keys=True)) for name in self._key_names[table])


Snapshot = dict[str, dict[tuple[tuple[str, Any], ...], dict[str, Any]]]


def _written_keys(calls: list[Call]) -> list[tuple[str, dict[str, Any]]]:
    """(table, item or key) of every DynamoDB write among the calls, in order."""
    written: list[tuple[str, dict[str, Any]]] = []
    for call in calls:
        params, operation = call["params"], call["operation"]
        if call["service"] != "dynamodb":
            continue
        if operation == "PutItem":
            written.append((params["TableName"], params["Item"]))
        elif operation in ("UpdateItem", "DeleteItem"):
            written.append((params["TableName"], params["Key"]))
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                for kind, action in entry.items():
                    if kind != "ConditionCheck":
                        written.append((action["TableName"], action.get("Item") or action["Key"]))
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        written.append((table, request["PutRequest"]["Item"]))
                    else:
                        written.append((table, request["DeleteRequest"]["Key"]))
    return written


def _article() -> Any:
    """The published article the public and editor sample events ask for (body from examples/)."""
    from newsdesk.models.articles import Article, ArticleStatus
    from newsdesk.rendering import reading_time_minutes, render_markdown, summarize

    body = (ROOT / "examples" / "council-approves-budget.md").read_text(encoding="utf-8").split("---", 2)[2].strip()
    html = render_markdown(body)
    published = datetime(2026, 11, 28, 9, tzinfo=UTC)
    return Article(
        id=ARTICLE_ID,
        slug=ARTICLE_SLUG,
        title="Council approves the 2027 budget",
        body=body,
        html=html,
        author="Ada Brennan",
        summary=summarize(html),
        tags=["council", "budget"],
        status=ArticleStatus.PUBLISHED,
        version=2,
        reading_time_minutes=reading_time_minutes(html),
        created_at=published - timedelta(hours=2),
        updated_at=published,
        published_at=published,
    )


# ---------------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """A function's representative event: `prepare(stack, n)` seeds run n's state and returns its event."""

    function_id: str
    event: str
    prepare: Callable[[Stack, int], Event]
    check: Callable[[Any], bool]
    http: bool = False
    """An HTTP API function: its floor also answers one route through Powertools' API Gateway resolver."""


def _as_is(function_id: str, name: str, check: Callable[[Any], bool], *, http: bool = False) -> Case:
    """A case whose event is a sample of events/ as it is (the function changes nothing it reads)."""
    return Case(function_id, f"events/{name}", lambda _stack, _n: _sample(name), check, http)


def _status_200(reply: Any) -> bool:
    return isinstance(reply, dict) and reply.get("statusCode") == 200


def _no_failures(reply: Any) -> bool:
    return reply == {"batchItemFailures": []}


def _sqs_event(stack: Stack, queue_id: str, body: str) -> Event:
    message = {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": uuid.uuid4().hex,
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),  # SQS's own checksum
    }
    return {"Records": [sqs_record(message, stack.resolver.arn(queue_id), REGION)]}


def _fanout_task(stack: Stack, n: int) -> Event:
    """Run n's fan-out task: one audience shard of a fresh delivery (the shard with the most readers)."""
    from collections import Counter

    from newsdesk.dal.subscribers import FANOUT_SHARDS, audience, audience_key
    from newsdesk.models.delivery import FanoutTask
    from newsdesk.models.subscribers import Frequency

    members = Counter(audience(Frequency.INSTANT, reader(i)) for i in range(READERS))
    shard = max(range(FANOUT_SHARDS), key=lambda s: members[audience_key(Frequency.INSTANT, s)])
    delivery_id = f"article#cold-fanout-{n}"
    stack.delivery(delivery_id)
    return _sqs_event(stack, "FanoutQueue", FanoutTask(delivery_id=delivery_id, shard=shard).model_dump_json())


def _send_batch(stack: Stack, n: int) -> Event:
    """Run n's send batch: one confirmed recipient of a fresh delivery of the seeded article."""
    from newsdesk.models.delivery import BatchRecipient, SendBatch

    delivery_id = f"article#cold-mailer-{n}"
    stack.delivery(delivery_id)
    batch = SendBatch(delivery_id=delivery_id, batch_id="0-cold", recipients=[BatchRecipient(email=reader(0))])
    return _sqs_event(stack, "SendQueue", batch.model_dump_json())


def _article_upload(stack: Stack, n: int) -> Event:
    """Run n's upload: examples/council-approves-budget.md under a new key and slug, put in the bucket."""
    text = (ROOT / "examples" / "council-approves-budget.md").read_text(encoding="utf-8")
    text = text.replace("slug: council-approves-2027-budget", f"slug: cold-start-upload-{n}")
    key, data = f"articles/Cold start é {n}.md", text.encode()
    event = _sample("s3-article-upload.json")
    bucket = event["Records"][0]["s3"]["bucket"]["name"]
    reply = stack.s3.put_object(Bucket=bucket, Key=key, Body=data)
    s3_object = event["Records"][0]["s3"]["object"]
    s3_object.update(
        key=quote_plus(key, safe="/"),
        size=len(data),
        eTag=reply["ETag"].strip('"'),
        versionId=reply["VersionId"],
        sequencer=f"{time.time_ns():018X}",
    )
    return event


def _ledger_changes(stack: Stack, n: int) -> Event:
    """Run n's stream batch: one recipient of a fresh delivery went from pending to sent."""
    delivery_id = f"article-cold-tally-{n}"
    stack.delivery(delivery_id)
    keys = {"pk": {"S": f"{delivery_id}#0"}, "sk": {"S": f"to#{reader(0)}"}}  # one of the ledger's partitions
    change = {
        "eventID": uuid.uuid4().hex,
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": {
            "Keys": keys,
            "OldImage": keys | {"state": {"S": "pending"}},
            "NewImage": keys | {"state": {"S": "sent"}},
            "SequenceNumber": str(100 + n),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": f"{stack.resolver.arn('DeliveriesTable')}/stream/2026-11-30T00:00:00.000",
    }
    return {
        "Records": [change],
        "shardId": "shardId-00000001",
        "window": {},
        "state": {},
        "isFinalInvokeForWindow": False,
    }


def _bounce(stack: Stack, _n: int) -> Event:
    stack.confirmed(BOUNCED)  # suppressing it again (already bounced) does the same work
    return _sample("ses-bounce.json")


def _article_published(stack: Stack, _n: int) -> Event:
    """The articles stream's record of a publication, which EventsFunction puts on the bus."""
    event = _sample("stream-article-published.json")
    for record in event["Records"]:
        record["eventSourceARN"] = f"{stack.resolver.arn('ArticlesTable')}/stream/2026-11-28T09:00:00.000"
    return event


def _bus_event(stack: Stack, _n: int) -> Event:
    """An `article.published` event from the bus, as its rule queues it for WebhooksFunction."""
    from newsdesk.models.events import EVENT_SOURCE

    detail = _sample("webhooks/article.published.json")
    envelope = {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail["type"], "source": EVENT_SOURCE,
                "account": stack.resolver.account_id, "time": detail["created_at"], "region": REGION,
                "resources": [], "detail": detail}  # fmt: skip
    return _sqs_event(stack, "WebhookEventsQueue", json.dumps(envelope))


def _erasure_step(stack: Stack, n: int) -> Event:
    """Run n's queued erasure step: a confirmed reader, their erasure begun (its tombstone), every step left."""
    from newsdesk.dal.erasures import ErasureRepository
    from newsdesk.models.erasures import ErasureTask

    email = f"cold-erasure-{n}@example.org"
    stack.confirmed(email)
    erasure_id = f"{n:032x}"
    ErasureRepository(stack.dynamodb, stack.table("ErasuresTable")).begin(erasure_id, email, datetime.now(UTC))
    return _sqs_event(stack, "ErasureQueue", ErasureTask(kind="person", id=erasure_id).model_dump_json())


def _upload_published(reply: Any) -> bool:
    return isinstance(reply, dict) and [u.get("outcome") for u in reply.get("uploads", [])] == ["published"]


def _authorized(reply: Any) -> bool:
    return isinstance(reply, dict) and reply.get("isAuthorized") is True


def _nothing_due(reply: Any) -> bool:
    return isinstance(reply, dict) and reply.get("published") == []


def _window_closed(reply: Any) -> bool:
    return reply == {"state": {}}


CASES = {
    case.function_id: case
    for case in (
        _as_is("AuthorizerFunction", "authorizer.json", _authorized),
        _as_is("PublicFunction", "public-get-article.json", _status_200, http=True),
        _as_is("EditorFunction", "editor-get-article.json", _status_200, http=True),
        Case("FanoutFunction", f"SQS FanoutTask (the fullest shard of {READERS} readers)", _fanout_task, _no_failures),
        Case("MailerFunction", "SQS SendBatch (1 recipient)", _send_batch, _no_failures),
        _as_is("SchedulerFunction", "schedule-publish-due.json", _nothing_due),
        Case("UploadFunction", "events/s3-article-upload.json", _article_upload, _upload_published),
        Case("SesEventsFunction", "events/ses-bounce.json", _bounce, _no_failures),
        Case("TallyFunction", "DynamoDB stream batch (1 recipient: pending to sent)", _ledger_changes, _window_closed),
        Case("EventsFunction", "events/stream-article-published.json", _article_published, _no_failures),
        Case("WebhooksFunction", "SQS bus event article.published (no endpoint asks for it)", _bus_event, _no_failures),
        Case("ErasureFunction", "SQS erasure step (a confirmed reader, every step left)", _erasure_step, _no_failures),
    )
}


# ---------------------------------------------------------------------------------------------- children
@dataclass(frozen=True)
class Sample:
    """One child run: in-child milliseconds (import, first invocation) and the whole process's."""

    import_ms: float
    invoke_ms: float
    process_ms: float
    answer: dict[str, Any]

    @property
    def total_ms(self) -> float:
        return self.import_ms + self.invoke_ms


def run_child(job: dict[str, Any], env: dict[str, str], python: str, *, importtime: bool = False) -> Sample:
    """Run bench/cold_runner.py on one job in a fresh interpreter (killed if it overruns)."""
    started = time.perf_counter()
    done = subprocess.run(
        [python, "-S", *(["-X", "importtime"] if importtime else []), str(RUNNER), json.dumps(job)],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0 or not done.stdout.strip():
        detail = done.stderr.decode(errors="replace").strip()[-3000:]
        raise RuntimeError(f"cold runner ({job['mode']}) exited with {done.returncode}:\n{detail}")
    answer = json.loads(done.stdout.decode().strip().splitlines()[-1])
    if importtime:
        answer["imports"] = import_costs(done.stderr.decode(errors="replace"))
    return Sample(float(answer["import_ms"]), float(answer["invoke_ms"]), elapsed, answer)


@dataclass(frozen=True)
class ImportCosts:
    """Where the measured part's import time went, from the lines `python -X importtime` writes."""

    total_ms: float
    """Every module's own time, summed."""
    product_ms: float
    """The own time of the product's modules (`newsdesk`, the handler): their bodies, building models."""
    largest: list[tuple[str, float]]
    """The largest imports by cumulative time: each import where a package other than the product's is
    entered (from the product, or at the top level), with everything it imported in turn."""


PRODUCT_PACKAGES = ("newsdesk", "app")
LARGEST_IMPORTS = 5


def import_costs(stderr: str) -> ImportCosts:
    """The import costs of the part of a run after the clock started. Each importtime line is `own |
    cumulative | name`, indented two spaces a level, written when the import ends: a line's importer is the
    next line with less indentation."""
    from bench.cold_runner import CLOCK_STARTS

    lines = stderr.splitlines()
    rows: list[tuple[int, int, int, str]] = []  # own us, cumulative us, depth, module
    for line in lines[lines.index(CLOCK_STARTS) + 1 :]:
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        if not own.strip().isdigit():
            continue  # the header line
        rows.append((int(own), int(cumulative), (len(name) - len(name.lstrip()) - 1) // 2, name.strip()))
    entered: list[tuple[str, float]] = []
    for i, (_own_us, cumulative_us, depth, module) in enumerate(rows):
        importer = next((row[3] for row in rows[i + 1 :] if row[2] < depth), None)
        package = module.split(".", 1)[0]
        if package in PRODUCT_PACKAGES or (importer is not None and importer.split(".", 1)[0] == package):
            continue
        if importer is None or importer.split(".", 1)[0] in PRODUCT_PACKAGES:
            entered.append((module, cumulative_us / 1000))
    return ImportCosts(
        total_ms=sum(row[0] for row in rows) / 1000,
        product_ms=sum(row[0] for row in rows if row[3].split(".", 1)[0] in PRODUCT_PACKAGES) / 1000,
        largest=sorted(entered, key=lambda item: item[1], reverse=True)[:LARGEST_IMPORTS],
    )


def handler_job(
    stack: Stack, function: Function, event: Event, *, record: bool = False, profile: str | None = None
) -> dict[str, Any]:
    return {
        "mode": "handler",
        "profile": profile,
        "code_dir": str(function.code_dir),
        "module": function.handler_module,
        "function": function.handler_function,
        "event": event,
        "record": record,
        "context": {
            "function_name": stack.resolver.physical_name(function.logical_id),
            "function_arn": stack.resolver.arn(function.logical_id),
            "memory_limit_in_mb": function.memory_size,
            "timeout_seconds": function.timeout,
            "request_id": str(uuid.uuid4()),
        },
    }


def twin_job(calls: list[Call], mode: str = "twin", *, http: bool = False) -> dict[str, Any]:
    from botocore import xform_name

    from bench.cold_runner import encode

    replayed = [
        {"service": call["service"], "method": xform_name(call["operation"]), "params": call["params"]}
        for call in calls
    ]
    return {"mode": mode, "http": http, "calls": json.dumps(replayed, default=encode)}


# ---------------------------------------------------------------------------------------------- measure
def measure(stack: Stack, case: Case, pairs: int) -> Row:
    """Warm up (recording the real handler's calls), then alternate real, twin and floor runs."""
    function = stack.template.functions[case.function_id]
    env = stack.environment(function)
    before: Snapshot = {}

    def real(n: int, *, record: bool = False, importtime: bool = False) -> Sample:
        event = case.prepare(stack, n)
        if record:
            nonlocal before
            before = stack.snapshot()
        sample = run_child(handler_job(stack, function, event, record=record), env, stack.python, importtime=importtime)
        if not case.check(sample.answer["reply"]):
            raise RuntimeError(f"{case.function_id} run {n}: unexpected reply {sample.answer['reply']!r}")
        return sample

    def twin(mode: str = "twin") -> Sample:
        case.prepare(stack, 0)  # what the recorded run read outside DynamoDB (an uploaded object, ...)
        stack.restore(before, calls)  # and the items its calls wrote, as they were before it
        sample = run_child(twin_job(calls, mode, http=case.http), env, stack.python)
        expected = [call.get("error") for call in calls]
        if sample.answer["errors"] != expected:
            differing = [
                f"{call['operation']}: {got or 'ok'} (handler: {want or 'ok'})"
                for call, got, want in zip(calls, sample.answer["errors"], expected, strict=True)
                if got != want
            ]
            raise RuntimeError(f"{case.function_id} {mode}: calls answered differently: {'; '.join(differing)}")
        return sample

    recorded = real(0, record=True).answer  # this run also compiles and caches everything the handler imports
    calls, clients = recorded["calls"], recorded["clients"]
    if not calls:
        raise RuntimeError(f"{case.function_id} made no AWS call")
    twin()  # warm-ups
    twin("floor")
    imports = real(pairs + 1, importtime=True).answer["imports"]  # untimed: importtime slows every import
    kinds = ("real", "twin", "floor")
    samples: dict[str, list[Sample]] = {kind: [] for kind in kinds}
    for n in range(1, pairs + 1):
        for kind in kinds[n % 3 :] + kinds[: n % 3]:  # each kind first, second and last in turn
            samples[kind].append(real(n) if kind == "real" else twin(kind))
    _progress(f"{case.function_id}: {pairs} pairs measured")
    return _row(case, calls, clients, imports, samples)


PROFILE_LINES = 30


def profile(stack: Stack, case: Case, lines: int = PROFILE_LINES) -> str:
    """Where one cold start's time goes: a warm-up run (which compiles and caches what the handler imports),
    then one run under cProfile: own time per package, and the calls with the most cumulative time."""
    import pstats
    import tempfile
    from collections import defaultdict

    function = stack.template.functions[case.function_id]
    env = stack.environment(function)
    run_child(handler_job(stack, function, case.prepare(stack, 0)), env, stack.python)
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "profile.pstats")
        sample = run_child(
            handler_job(stack, function, case.prepare(stack, PAIRS + 2), profile=path), env, stack.python
        )
        if not case.check(sample.answer["reply"]):
            raise RuntimeError(f"{case.function_id} profiled run: unexpected reply {sample.answer['reply']!r}")
        stats = pstats.Stats(path)
    own: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), (_calls, _primitive, own_s, _cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        own[_package(filename)] += own_s * 1000
    packages = ", ".join(f"{name} {ms:.0f}" for name, ms in sorted(own.items(), key=lambda item: -item[1])[:12])
    report = io.StringIO()
    stats.stream = report  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(lines)
    return (
        f"{case.function_id} under cProfile (import {sample.import_ms:.0f} ms + first invocation "
        f"{sample.invoke_ms:.0f} ms, both slowed by the profiler)\nown ms by package: {packages}\n" + report.getvalue()
    )


def _package(filename: str) -> str:
    """The top-level package a profiled code object comes from: a layer's package, `newsdesk`, the handler
    (`app`), the standard library's module (`stdlib:name`), or `(built-in)`."""
    parts = Path(filename).parts
    for anchor, offset in (("newsdesk-layers", 2), ("shared", 1)):
        if anchor in parts and parts.index(anchor) + offset < len(parts):
            return parts[parts.index(anchor) + offset].removesuffix(".py")
    if "functions" in parts:
        return "app"
    if not filename.endswith(".py"):
        return "(built-in)"
    python = next((i for i, part in enumerate(parts) if part.startswith("python3")), None)
    return "stdlib:" + (parts[python + 1].removesuffix(".py") if python is not None else Path(filename).stem)


def _grouped(names: list[str]) -> str:
    """ "a, a, b" -> "a x2, b" (consecutive repeats counted)."""
    groups: list[list[Any]] = []
    for name in names:
        if groups and groups[-1][0] == name:
            groups[-1][1] += 1
        else:
            groups.append([name, 1])
    return ", ".join(f"{name} x{count}" if count > 1 else name for name, count in groups)


def _row(
    case: Case, calls: list[Call], clients: list[str], imports: ImportCosts, samples: dict[str, list[Sample]]
) -> Row:
    real, twin, floor = samples["real"], samples["twin"], samples["floor"]
    ratio = statistics.median(r.total_ms / t.total_ms for r, t in zip(real, twin, strict=True))
    floor_ratio = statistics.median(f.total_ms / t.total_ms for f, t in zip(floor, twin, strict=True))
    over_floor = statistics.median(r.total_ms / f.total_ms for r, f in zip(real, floor, strict=True))
    process_ratio = statistics.median(r.process_ms / t.process_ms for r, t in zip(real, twin, strict=True))
    return {
        "benchmark": "cold_start",
        "function": case.function_id,
        "event": case.event,
        "calls": len(calls),
        "services": sorted({call["service"] for call in calls}),
        "call_list": _grouped([f"{call['service']}.{call['operation']}" for call in calls]),
        "clients": clients,
        "imports_ms": round(imports.total_ms, 1),
        "product_imports_ms": round(imports.product_ms, 1),
        "largest_imports": [(module, round(ms, 1)) for module, ms in imports.largest],
        "real_import_ms": round(statistics.median(s.import_ms for s in real), 1),
        "real_invoke_ms": round(statistics.median(s.invoke_ms for s in real), 1),
        "real_ms": round(statistics.median(s.total_ms for s in real), 1),
        "twin_import_ms": round(statistics.median(s.import_ms for s in twin), 1),
        "twin_ms": round(statistics.median(s.total_ms for s in twin), 1),
        "ratio": round(ratio, 3),
        "floor_ms": round(statistics.median(s.total_ms for s in floor), 1),
        "floor_ratio": round(floor_ratio, 3),
        "over_floor": round(over_floor, 3),
        "real_process_ms": round(statistics.median(s.process_ms for s in real), 1),
        "twin_process_ms": round(statistics.median(s.process_ms for s in twin), 1),
        "process_ratio": round(process_ratio, 3),
        "target": RATIO_TARGET,
        "pairs": len(real),
        "result": "PASS" if over_floor <= RATIO_TARGET else "SHORT",
    }


def _missing_row(function_id: str) -> Row:
    return {"benchmark": "cold_start", "function": function_id, "event": "no representative event in CASES",
            "target": RATIO_TARGET, "result": "SHORT"}  # fmt: skip


def run(pairs: int = PAIRS, only: set[str] | None = None, python: str = sys.executable) -> list[Row]:
    """Every function of template.yaml (or those named in `only`), one row each."""
    rows = []
    with Emulator() as emulator:
        _progress(f"moto server at {emulator.endpoint} (pid {emulator.pid})")
        stack = Stack(emulator.endpoint, python)
        for function_id in stack.template.functions:
            if only and function_id not in only and function_id.removesuffix("Function") not in only:
                continue
            case = CASES.get(function_id)
            rows.append(measure(stack, case, pairs) if case else _missing_row(function_id))
    return rows


def profile_all(only: set[str] | None = None, python: str = sys.executable) -> str:
    """`profile` for every function of template.yaml (or those named in `only`)."""
    reports = []
    with Emulator() as emulator:
        stack = Stack(emulator.endpoint, python)
        for function_id, case in CASES.items():
            if not only or function_id in only or function_id.removesuffix("Function") in only:
                reports.append(profile(stack, case))
    return "\n".join(reports)


# ---------------------------------------------------------------------------------------------- report
def summary_rows(rows: list[Row]) -> list[Row]:
    """One line per function for the combined report."""
    return [
        {
            "benchmark": "cold start",
            "figure": f"{row['function']} real/floor (median of {row.get('pairs', 0)} rounds; "
            + (f"real/twin {row['ratio']:.2f}, floor/twin {row['floor_ratio']:.2f})" if "ratio" in row else "-)"),
            "value": f"{row['over_floor']:.2f}" if "ratio" in row else "-",
            "target": f"<= {row['target']:.2f}",
            "result": row["result"],
        }
        for row in rows
    ]


def format_table(rows: list[Row]) -> str:
    """The rows as a fixed-width text table, with what was measured in its title."""
    if not rows:
        return "cold start: no rows"
    headers = ("function", "calls", "import ms", "import+first ms", "twin import ms", "twin ms", "real/twin",
               "floor ms", "floor/twin", "real/floor", "target", "result", "process ms real/twin", "ratio",
               "importtime ms: all own / product own")  # fmt: skip
    lines = []
    for row in rows:
        if "ratio" not in row:
            lines.append((row["function"], "-", *("-",) * 8, row["result"], *("-",) * 3, row["event"]))
            continue
        lines.append(
            (
                row["function"],
                str(row["calls"]),
                f"{row['real_import_ms']:.0f}",
                f"{row['real_ms']:.0f}",
                f"{row['twin_import_ms']:.0f}",
                f"{row['twin_ms']:.0f}",
                f"{row['ratio']:.2f}",
                f"{row['floor_ms']:.0f}",
                f"{row['floor_ratio']:.2f}",
                f"{row['over_floor']:.2f}",
                f"<= {row['target']:.2f}",
                row["result"],
                f"{row['real_process_ms']:.0f}/{row['twin_process_ms']:.0f}",
                f"{row['process_ratio']:.2f}",
                f"{row['imports_ms']:.0f} / {row['product_imports_ms']:.0f}",
            )
        )
    widths = [max(len(cells[i]) for cells in (headers, *lines)) for i in range(len(headers))]

    def render(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(width) if i in (0, len(cells) - 1) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    pairs = max(int(row.get("pairs", 0)) for row in rows)
    title = (
        f"cold start: fresh process per run against moto (own process); real handler vs a twin that imports boto3 "
        f"and makes every AWS call the handler made, in order, and a floor that makes them after loading the core "
        f"packages (Powertools' logger and metrics, pydantic, one model; the HTTP functions' also Powertools' API "
        f"Gateway resolver answering one validated route); {pairs} alternated rounds per function.\n"
        "ms = in-child time, median: import ms = the handler module's import (the twin's: boto3's); import+first "
        "ms = from just before the first import to the end of the first invocation (the twin's: to the end of "
        "its calls); real/twin = median of per-round ratios of those; floor ms, floor/twin and real/floor: "
        "the same for the floor (what any handler on Powertools and pydantic pays, and what the product adds to "
        "it); target and result judge real/floor; process ms = whole child process "
        "(interpreter start and exit included), for information; importtime = one more untimed run under "
        "`python -X importtime` (its overhead included): the own time of every module imported by the import "
        "and the first invocation, and of the product's modules alone; below the table, the largest imports by "
        "cumulative time (each import of another package made by the product or at the top level)."
    )
    rule = "  ".join("-" * width for width in widths)
    events = [
        f"  {row['function']}: {row['event']}"
        + (f"; calls {row['call_list']}; clients {', '.join(row['clients'])}" if "call_list" in row else "")
        for row in rows
    ]
    return "\n".join(
        [
            title,
            render(headers),
            rule,
            *map(render, lines),
            f"largest imports (cumulative ms under importtime, top {LARGEST_IMPORTS}):",
            *(
                f"  {row['function']}: " + ", ".join(f"{module} {ms:.0f}" for module, ms in row["largest_imports"])
                for row in rows
                if "largest_imports" in row
            ),
            "events, the handler's AWS calls (the twin makes the same ones) and the clients it made:",
            *events,
        ]
    )


def _progress(message: str) -> None:
    print(f"[cold_start] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", type=int, default=PAIRS, help=f"rounds (real, twin, floor) per function (default {PAIRS})"
    )
    parser.add_argument("--functions", default="", help="comma-separated logical ids (Public or PublicFunction)")
    parser.add_argument(
        "--profile", action="store_true", help="instead of measuring, show where one cold start's time goes (cProfile)"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter the functions run on, e.g. python3.13 (the template's runtime); the layer is built "
        "for it. Default: the one running this",
    )
    args = parser.parse_args()
    only = {name.strip() for name in args.functions.split(",") if name.strip()} or None
    python = shutil.which(args.python) or args.python
    if args.profile:
        print(profile_all(only, python))
        return
    print(format_table(run(args.pairs, only, python)))


if __name__ == "__main__":
    main()
