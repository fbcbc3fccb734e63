"""One measured newsletter delivery for bench/fanout.py, in a fresh process of its own.

`python -m bench.fanout_worker '<job as JSON>'` creates its own copy of the template's resources (names
prefixed by the job's prefix) in the emulator, seeds the confirmed subscribers, then times one of:

- floor: query the confirmed subscribers page by page and, for each, one conditional DynamoDB PutItem (its
  delivery record) and one SESv2 SendEmail of a prebuilt raw message;
- pipeline: publish through the EditorFunction, then the stream and queue event sources drained by the
  local runner (FanoutFunction and MailerFunction invoked in this process) until every queue is empty;
- throttled: the pipeline with SES behind a stand-in that refuses more than `throttle_rate` sends a second;
- topic: the pipeline for an article of the topic `harbour`, followed by every tenth subscriber (the others
  follow `council`), counting the items fan-out's queries examine (their `ScannedCount`).

It prints one JSON line with the result to the stdout it started with (anything the product prints goes
to stderr), and exits when its stdin closes, so it cannot outlive the benchmark that started it.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
API_URL = "https://api.newsdesk.test"
ARTICLE = {
    "title": "Harbour reopens after the storm",
    "author": "Ada Brennan",
    "body": (
        "The harbour **reopened** on Tuesday after a week of repairs.\n\n"
        "- ferries run on the winter timetable\n- the fish market opens on Friday\n\n"
        "The council thanked the volunteers who cleared the quays. More updates will follow as the "
        "repairs to the sea wall continue through the spring."
    ),
    "tags": ["harbour", "weather"],
}
SEED_BATCH = 25  # BatchWriteItem's maximum
SEED_THREADS = 4
DRAIN_TIMEOUT_SECONDS = 3600.0
BASE_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "newsdesk",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here, as in the local runner
    "POWERTOOLS_METRICS_NAMESPACE": "Newsdesk",
    "POWERTOOLS_METRICS_DISABLED": "true",  # the editor's EMF lines would only be noise on the terminal
}


@dataclass(frozen=True)
class Job:
    mode: str  # "floor", "pipeline" or "throttled"
    endpoint: str
    prefix: str
    subscribers: int
    send_rate: float
    mailer_concurrency: int
    emulator_pid: int = 0
    throttle_rate: float = 0.0
    throttle_burst: float = 1.0
    topic_every: int = 10
    """In topic mode, every `topic_every`-th subscriber follows the article's topic."""


@dataclass
class Result:
    mode: str
    subscribers: int
    seconds: float = 0.0
    seed_seconds: float = 0.0
    max_rss_kb: int = 0
    state: str = ""
    sent: int = -1
    dead_letters: int = -1
    throttles: int = 0
    accepted: int = 0
    duplicates: int = 0
    first_send: float = 0.0
    last_send: float = 0.0
    stalls: int = 0
    stall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    emulator_cpu_seconds: float = 0.0
    calls: dict[str, tuple[int, float]] = field(default_factory=dict)
    message_bytes: int = 0
    audience_queries: int = 0
    """Queries of the audiences (the `by-audience` index and TopicMembersTable) in the timed part."""
    examined: int = 0
    """Items those queries examined (DynamoDB's ScannedCount), what a read is billed by."""


def email_of(n: int) -> str:
    return f"reader{n:06d}@example.org"


def name_of(n: int) -> str:
    return f"Reader {n:06d}"


def _progress(message: str) -> None:
    print(f"[fanout] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- timing
class CallLog:
    """botocore hooks on every client of this process: calls and seconds per operation while recording."""

    def __init__(self) -> None:
        self.recording = False
        self.calls: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self.audience_queries = 0
        self.examined = 0

    def install(self) -> None:
        """On boto3's default session, before any client exists: every client made later inherits them."""
        import boto3

        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        # From the first event of a call to the last: building the request and parsing the answer count too.
        boto3.DEFAULT_SESSION.events.register("before-parameter-build", self._before)
        boto3.DEFAULT_SESSION.events.register("after-call", self._after)

    def _before(self, context: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()
        table = str(params.get("TableName", ""))
        context["bench_audience"] = params.get("IndexName") == "by-audience" or "TopicMembers" in table

    def _after(self, context: dict[str, Any], event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        started = context.get("bench_started")
        if self.recording and started is not None:
            operation = ".".join(event_name.split(".")[1:3])
            self.calls[operation] += 1
            self.seconds[operation] += time.perf_counter() - started
            if operation == "dynamodb.Query" and context.get("bench_audience"):
                self.audience_queries += 1
                self.examined += int(parsed.get("ScannedCount", 0))


CALLS = CallLog()


def _emulator_cpu(pid: int) -> float:
    """User and system CPU seconds the emulator process has used (all its threads)."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timer:
    """Wall time, this process's CPU time, the emulator's CPU time and the AWS calls of the timed section."""

    def __init__(self, job: Job, result: Result) -> None:
        self._job, self._result = job, result
        CALLS.calls.clear()
        CALLS.seconds.clear()
        CALLS.audience_queries = CALLS.examined = 0
        CALLS.recording = True
        self._emulator = _emulator_cpu(job.emulator_pid)
        self._cpu = time.process_time()
        self._wall = time.perf_counter()

    def stop(self) -> None:
        result = self._result
        result.seconds = time.perf_counter() - self._wall
        result.cpu_seconds = time.process_time() - self._cpu
        result.emulator_cpu_seconds = _emulator_cpu(self._job.emulator_pid) - self._emulator
        CALLS.recording = False
        result.calls = {name: (CALLS.calls[name], round(CALLS.seconds[name], 3)) for name in sorted(CALLS.calls)}
        result.audience_queries, result.examined = CALLS.audience_queries, CALLS.examined


# --------------------------------------------------------------------------------------------- stack
class Stack:
    """The template's resources under one prefix, and its functions loaded in this process."""

    def __init__(self, job: Job) -> None:
        from local.aws.embedded import aws_environment

        # Before the product's modules are imported: Powertools reads its variables when they load.
        os.environ.update(BASE_ENVIRONMENT | aws_environment(job.endpoint, REGION))
        CALLS.install()
        from local.lambda_runtime.functions import InProcessFunctions
        from local.stack import build_stack, local_resolver
        from newsdesk import dependencies

        self.job = job
        parameters = {"SendRatePerSecond": str(job.send_rate), "MailerConcurrency": str(job.mailer_concurrency)}
        self.resolver = local_resolver(api_url=API_URL, parameters=parameters, region=REGION, prefix=job.prefix)
        self.template = self.resolver.template
        build_stack(self.resolver, endpoint=job.endpoint)
        os.environ.update(self.resolver.environment() | BASE_ENVIRONMENT)  # no INFO line per batch on the terminal
        dependencies.reset()
        self.dependencies = dependencies
        self.functions = InProcessFunctions(self.template, self.resolver)

    def table(self, logical_id: str) -> str:
        return self.resolver.physical_name(logical_id)

    def editor(self, sample: str, *, body: Any = None, article_id: str | None = None) -> dict[str, Any]:
        """Invoke the EditorFunction with a sample event of events/; its JSON answer (a 2xx)."""
        event = json.loads((ROOT / "events" / f"{sample}.json").read_text())
        if body is not None:
            event["body"] = json.dumps(body)
        if article_id is not None:
            event["pathParameters"] = {"id": article_id}
            path = event["routeKey"].split(" ", 1)[1].replace("{id}", article_id)
            event["rawPath"] = event["requestContext"]["http"]["path"] = path
        reply = self.functions.invoke("EditorFunction", event)
        if not 200 <= int(reply["statusCode"]) < 300:
            raise RuntimeError(f"EditorFunction {sample}: {reply['statusCode']} {reply.get('body')}")
        answer = json.loads(reply.get("body") or "null")
        return answer if isinstance(answer, dict) else {}

    def progress(self, article_id: str) -> dict[str, Any]:
        """GET /admin/articles/{id}/delivery, as the editor sees it."""
        event = json.loads((ROOT / "events" / "editor-get-article.json").read_text())
        path = f"/admin/articles/{article_id}/delivery"
        event.update(pathParameters={"id": article_id}, rawPath=path, routeKey="GET /admin/articles/{id}/delivery")
        event["requestContext"]["http"]["path"] = path
        event["requestContext"]["routeKey"] = event["routeKey"]
        reply = self.functions.invoke("EditorFunction", event)
        if reply["statusCode"] != 200:
            raise RuntimeError(f"delivery progress: {reply['statusCode']} {reply.get('body')}")
        return dict(json.loads(reply["body"]))

    def dead_letters(self) -> int:
        """Messages waiting in the template's dead-letter queues."""
        from newsdesk.dal.queues import sqs_client

        total = 0
        for logical_id in ("FanoutDeadLetterQueue", "SendDeadLetterQueue"):
            attributes = sqs_client().get_queue_attributes(
                QueueUrl=self.resolver.queue_url(logical_id),
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            total += sum(int(value) for value in attributes.values())
        return total

    def delete(self) -> None:
        """Drop this stack's tables and queues, so the emulator's state does not grow from run to run."""
        from local.template.model import QUEUE, TABLE
        from newsdesk.dal.dynamodb import dynamodb_client
        from newsdesk.dal.queues import sqs_client

        for item in self.template.of_type(TABLE):
            dynamodb_client().delete_table(TableName=self.table(item.logical_id))
        for item in self.template.of_type(QUEUE):
            sqs_client().delete_queue(QueueUrl=self.resolver.queue_url(item.logical_id))


# --------------------------------------------------------------------------------------------- seeding
def _confirmed_items(stack: Stack, n: int, topics: list[str] | None) -> list[tuple[str, dict[str, Any]]]:
    """Subscriber `n` signed up (for `topics`; None: everything) and confirmed through SubscriberRepository:
    its items as stored, with their tables (the subscriber, and one membership per topic)."""
    from newsdesk.clock import utc_now
    from newsdesk.dal.dynamodb import dynamodb_client
    from newsdesk.models.subscribers import Frequency, Subscriber, SubscriberStatus

    repository, now = stack.dependencies.container().subscriber_repository, utc_now()
    pending = Subscriber(
        email=email_of(n),
        name=name_of(n),
        frequency=Frequency.INSTANT,
        topics=topics,
        status=SubscriberStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    if not (repository.create_pending(pending) and repository.confirm(pending, now)):
        raise RuntimeError(f"could not sign up and confirm subscriber {n}")
    client, table, members = (
        dynamodb_client(),
        stack.table("SubscribersTable"),
        stack.table("TopicMembersTable"),
    )
    key = {"email": {"S": email_of(n)}}
    items = [(table, client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"])]
    items += [(members, item) for item in client.scan(TableName=members)["Items"] if item["email"]["S"] == email_of(n)]
    return items


def _subscriber_items(stack: Stack, count: int, topic_every: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Subscribers 1 to count - 1, each shaped exactly like the first of its kind (of everything; or, with
    `topic_every`, of `harbour` for every `topic_every`-th, of `council` for the others): its address and
    name replaced wherever they appear (the key, status_sort, ...), the shard in its audience keys its own."""
    from newsdesk.dal.subscribers import audience, shard_of
    from newsdesk.models.subscribers import Frequency

    kinds = (
        {0: _confirmed_items(stack, 0, ["harbour"]), 1: _confirmed_items(stack, 1, ["council"])}
        if topic_every
        else {0: _confirmed_items(stack, 0, None)}
    )

    def replaced(value: dict[str, Any], first: int, n: int) -> dict[str, Any]:
        if "S" not in value:
            return value
        return {"S": value["S"].replace(email_of(first), email_of(n)).replace(name_of(first), name_of(n))}

    for n in range(len(kinds), count):
        first = 0 if not topic_every or n % topic_every == 0 else 1
        for table, template in kinds[first]:
            item = {name: replaced(value, first, n) for name, value in template.items()}
            if "audience" in item and table == stack.table("SubscribersTable"):
                item["audience"] = {"S": audience(Frequency.INSTANT, email_of(n))}
            elif "audience" in item:  # instant#<topic>#<shard>
                prefix = item["audience"]["S"].rsplit("#", 1)[0]
                item["audience"] = {"S": f"{prefix}#{shard_of(email_of(n))}"}
            yield table, item


def _write_batch(client: Any, items: list[tuple[str, dict[str, Any]]]) -> None:
    requests: dict[str, Any] = {}
    for table, item in items:
        requests.setdefault(table, []).append({"PutRequest": {"Item": item}})
    while requests:
        requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}


def seed(stack: Stack, count: int, topic_every: int | None = None) -> float:
    """`count` confirmed subscribers: the first (of each kind) through the product, the rest with
    BatchWriteItem, a few batches at a time so that this process's memory does not grow with `count`."""
    from newsdesk.dal.dynamodb import dynamodb_client

    started = time.perf_counter()
    client = dynamodb_client()
    if topic_every:
        for slug, name in (("harbour", "Harbour"), ("council", "Council")):
            stack.editor("editor-create-topic", body={"slug": slug, "name": name})
    items = _subscriber_items(stack, count, topic_every)
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        while window := [b for b in (list(islice(items, SEED_BATCH)) for _ in range(4 * SEED_THREADS)) if b]:
            list(pool.map(lambda batch: _write_batch(client, batch), window))
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------- floor
def floor(stack: Stack, result: Result) -> None:
    """The unavoidable work, with the clients the product uses: read, record and send, nothing else."""
    from newsdesk.clock import iso, utc_now
    from newsdesk.dal.dynamodb import dynamodb_client
    from newsdesk.dal.email import ses_client
    from newsdesk.dal.subscribers import FANOUT_SHARDS, audience_key
    from newsdesk.messages import Recipient
    from newsdesk.models.subscribers import Frequency
    from newsdesk.services.links import LinkPurpose
    from newsdesk.settings import EmailSettings

    # The message: the product's own newsletter for the same article, rendered once.
    container = stack.dependencies.container()
    article_id = str(stack.editor("editor-create-article", body=ARTICLE)["id"])
    article = container.article_repository.get(article_id)
    assert article is not None
    unsubscribe = container.link_signer().url(LinkPurpose.UNSUBSCRIBE, email_of(0))
    raw = container.email_composer.newsletter(article).render(Recipient(email_of(0), name_of(0), unsubscribe))
    settings, dynamodb, ses = container.settings(EmailSettings), dynamodb_client(), ses_client()
    subscribers, deliveries = stack.table("SubscribersTable"), stack.table("DeliveriesTable")
    result.message_bytes = len(raw)

    sent = 0
    timer = Timer(stack.job, result)
    for shard in range(FANOUT_SHARDS):
        # DynamoDB's own page size (up to 1 MB): as few round trips as the list allows.
        request: dict[str, Any] = {
            "TableName": subscribers,
            "IndexName": "by-audience",
            "KeyConditionExpression": "audience = :audience",
            "ExpressionAttributeValues": {":audience": {"S": audience_key(Frequency.INSTANT, shard)}},
        }
        while True:
            page = dynamodb.query(**request)
            for item in page["Items"]:
                email = item["email"]["S"]
                dynamodb.put_item(
                    TableName=deliveries,
                    Item={
                        "pk": {"S": f"delivery#{article_id}"},
                        "sk": {"S": "to#" + hashlib.sha256(email.encode()).hexdigest()[:32]},
                        "outcome": {"S": "sent"},
                        "batch_id": {"S": f"{shard}-floor"},
                        "at": {"S": iso(utc_now())},
                    },
                    ConditionExpression="attribute_not_exists(sk)",
                )
                ses.send_email(
                    FromEmailAddress=settings.sender_address,
                    Destination={"ToAddresses": [email]},
                    Content={"Raw": {"Data": raw}},
                    ConfigurationSetName=settings.ses_configuration_set,
                )
                sent += 1
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    timer.stop()
    result.sent, result.state, result.dead_letters = sent, "done", 0


# --------------------------------------------------------------------------------------------- pipeline
class ThrottlingSes:
    """SES that accepts at most `rate` sends a second (a token bucket holding up to `burst`) and answers
    TooManyRequestsException above that; every send it accepts goes on to the real (moto) client."""

    def __init__(self, real: Any, *, rate: float, burst: float) -> None:
        self._real = real
        self._rate = rate
        self._burst = max(1.0, burst)
        self._tokens = self._burst
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self.throttles = 0
        self.accepted: list[float] = []
        self.recipients: Counter[str] = Counter()

    def send_email(self, **request: Any) -> Any:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens < 1:
                self.throttles += 1
                raise ClientError(
                    {"Error": {"Code": "TooManyRequestsException", "Message": "Maximum sending rate exceeded."}},
                    "SendEmail",
                )
            self._tokens -= 1
        reply = self._real.send_email(**request)
        with self._lock:
            self.accepted.append(now)
            self.recipients.update(request["Destination"]["ToAddresses"])
        return reply


def _use_ses(stack: Stack, client: Any) -> None:
    """Swap the SES client the product's services are built with, as the integration tests do."""
    stack.dependencies.reset().ses = client


def pipeline(stack: Stack, result: Result, standin: ThrottlingSes | None) -> None:
    """Publish, then run the fan-out and the mailer until every queue is empty."""
    from local.lambda_runtime.sources import EventSources

    if standin is not None:
        _use_ses(stack, standin)
    article_id = str(stack.editor("editor-create-article", body=ARTICLE)["id"])
    sources = EventSources(stack.template, stack.resolver, stack.functions.invoke, stack.job.endpoint)
    sources.pollers()  # stream positions are taken now, before the publish writes its record
    for function in ("FanoutFunction", "MailerFunction"):
        stack.functions.module(function)  # imported now: a cold start is no part of the throughput
    timer = Timer(stack.job, result)
    stack.editor("editor-publish-article", article_id=article_id)
    sources.drain(DRAIN_TIMEOUT_SECONDS)
    timer.stop()
    progress = stack.progress(article_id)
    result.state, result.sent = str(progress.get("state")), int(progress.get("sent", -1))
    result.dead_letters = stack.dead_letters()
    if standin is not None:
        result.throttles = standin.throttles
        result.accepted = len(standin.accepted)
        result.duplicates = sum(count - 1 for count in standin.recipients.values() if count > 1)
        if standin.accepted:
            result.first_send, result.last_send = standin.accepted[0], standin.accepted[-1]
        # Pauses between accepted sends longer than two intervals at the limit, and the time lost in them.
        interval = 1 / stack.job.throttle_rate
        gaps = [later - earlier for earlier, later in zip(standin.accepted, standin.accepted[1:], strict=False)]
        stalls = [gap - interval for gap in gaps if gap >= 2 * interval]
        result.stalls, result.stall_seconds = len(stalls), round(sum(stalls), 3)


# --------------------------------------------------------------------------------------------- main
def execute(job: Job) -> Result:
    """Set up, seed, measure, clean up."""
    result = Result(mode=job.mode, subscribers=job.subscribers)
    stack = Stack(job)
    result.seed_seconds = seed(stack, job.subscribers, job.topic_every if job.mode == "topic" else None)
    _progress(f"{job.prefix}: {job.subscribers:,} subscribers seeded in {result.seed_seconds:.1f} s; {job.mode}")
    if job.mode == "floor":
        floor(stack, result)
    elif job.mode in ("pipeline", "topic"):
        pipeline(stack, result, None)
    elif job.mode == "throttled":
        from newsdesk.dal.email import ses_client

        pipeline(stack, result, ThrottlingSes(ses_client(), rate=job.throttle_rate, burst=job.throttle_burst))
    else:
        raise ValueError(f"unknown mode {job.mode!r}")
    # Linux gives ru_maxrss in kilobytes: the peak of this process, whose only delivery was this one.
    result.max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stack.delete()
    return result


def _exit_when_orphaned() -> None:
    """Exit at once when the benchmark closes our stdin (or dies): nothing may outlive it."""

    def watch() -> None:
        while os.read(sys.stdin.fileno(), 4096):
            pass
        os._exit(3)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main() -> None:
    _exit_when_orphaned()
    # The result goes to the stdout we were given; whatever else prints (the product's logs) goes to stderr.
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    result = execute(Job(**json.loads(sys.argv[1])))
    answer.write(json.dumps(asdict(result)) + "\n")
    answer.flush()


if __name__ == "__main__":
    main()
