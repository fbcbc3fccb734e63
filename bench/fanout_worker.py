"""One measured newsletter delivery for bench/fanout.py, in a fresh process of its own.

`python -m bench.fanout_worker '<job as JSON>'` creates its own copy of the template's resources (names
prefixed by the job's prefix) in the emulator, seeds the confirmed subscribers, then times one of:

- floor: query the confirmed subscribers page by page and, for each, one conditional DynamoDB PutItem (its
  delivery record) and one SESv2 SendEmail of a prebuilt raw message;
- pipeline: publish through the EditorFunction, then the stream and queue event sources drained by the
  local runner (FanoutFunction and MailerFunction invoked in this process) until every queue is empty;
- throttled: the pipeline with SES behind a stand-in that refuses more than `throttle_rate` sends a second.

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
from functools import lru_cache
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
}


@dataclass(frozen=True)
class Job:
    mode: str  # "floor", "pipeline" or "throttled"
    endpoint: str
    prefix: str
    subscribers: int
    send_rate: float
    mailer_concurrency: int
    throttle_rate: float = 0.0
    throttle_burst: float = 1.0


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
    extra: dict[str, Any] = field(default_factory=dict)


def email_of(n: int) -> str:
    return f"reader{n:06d}@example.org"


def _progress(message: str) -> None:
    print(f"[fanout] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- stack
class Stack:
    """The template's resources under one prefix, and its functions loaded in this process."""

    def __init__(self, job: Job) -> None:
        # The product reads its configuration from the environment, so it is imported only now.
        from local.aws import aws_environment, create_resources
        from local.server import Functions
        from local.template import Resolver, load_template, local_parameters
        from newsdesk import dependencies

        os.environ.update(BASE_ENVIRONMENT | aws_environment(job.endpoint, REGION))
        self.job = job
        self.template = load_template(ROOT / "template.yaml")
        overrides = {
            **local_parameters(API_URL),
            "SendRatePerSecond": str(job.send_rate),
            "MailerConcurrency": str(job.mailer_concurrency),
        }
        self.resolver = Resolver(self.template, region=REGION, parameter_overrides=overrides, prefix=job.prefix)
        create_resources(self.template, self.resolver, job.endpoint)
        os.environ.update(self.resolver.environment())
        dependencies.reset()
        self.dependencies = dependencies
        self.functions = Functions(self.template, self.resolver)

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
        sqs = self.dependencies.sqs_client()
        total = 0
        for logical_id in ("FanoutDeadLetterQueue", "SendDeadLetterQueue"):
            attributes = sqs.get_queue_attributes(
                QueueUrl=self.resolver.queue_url(logical_id),
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            total += sum(int(value) for value in attributes.values())
        return total

    def delete(self) -> None:
        """Drop this stack's tables and queues, so the emulator's state does not grow from run to run."""
        from local.template import QUEUE, TABLE

        dynamodb, sqs = self.dependencies.dynamodb_client(), self.dependencies.sqs_client()
        for item in self.template.of_type(TABLE):
            dynamodb.delete_table(TableName=self.table(item.logical_id))
        for item in self.template.of_type(QUEUE):
            sqs.delete_queue(QueueUrl=self.resolver.queue_url(item.logical_id))


# --------------------------------------------------------------------------------------------- seeding
def _subscriber_items(count: int) -> Iterator[dict[str, Any]]:
    """Confirmed instant subscribers exactly as SubscriberRepository.create_pending then confirm store them."""
    from newsdesk.clock import iso, utc_now
    from newsdesk.dal.dynamodb import to_attributes
    from newsdesk.dal.subscribers import audience
    from newsdesk.models.subscribers import Frequency, Subscriber, SubscriberStatus

    for n in range(count):
        email, now = email_of(n), utc_now()
        pending = Subscriber(
            email=email,
            name=f"Reader {n}",
            frequency=Frequency.INSTANT,
            status=SubscriberStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        item = pending.model_dump(mode="json", exclude_none=True)  # create_pending
        item["status_sort"] = f"{iso(now)}#{email}"
        item.update(  # confirm
            status=SubscriberStatus.CONFIRMED.value,
            confirmed_at=iso(now),
            updated_at=iso(now),
            audience=audience(Frequency.INSTANT, email),
        )
        yield to_attributes(item)


def _write_batch(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    requests: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in items]}
    while requests:
        requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}


def seed(stack: Stack, count: int) -> float:
    """Write `count` confirmed subscribers with BatchWriteItem, a few batches at a time (memory stays flat)."""
    started = time.perf_counter()
    client, table = stack.dependencies.dynamodb_client(), stack.table("SubscribersTable")
    items = _subscriber_items(count)
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        while window := [
            batch for batch in (list(islice(items, SEED_BATCH)) for _ in range(4 * SEED_THREADS)) if batch
        ]:
            list(pool.map(lambda batch: _write_batch(client, table, batch), window))
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------- floor
def floor(stack: Stack, result: Result) -> None:
    """The unavoidable work, with the clients the product uses: read, record and send, nothing else."""
    from newsdesk.clock import iso, utc_now
    from newsdesk.dal.subscribers import FANOUT_SHARDS, audience_key
    from newsdesk.messages import Recipient
    from newsdesk.models.subscribers import Frequency
    from newsdesk.services.links import LinkPurpose

    deps = stack.dependencies
    article_id = str(stack.editor("editor-create-article", body=ARTICLE)["id"])
    article = deps.article_repository().get(article_id)
    assert article is not None
    first = email_of(0)
    unsubscribe = deps.link_signer().url(LinkPurpose.UNSUBSCRIBE, first)
    raw = deps.email_composer().newsletter(article).render(Recipient(first, "Reader 0", unsubscribe))
    settings = deps.get_settings()
    dynamodb, ses = deps.dynamodb_client(), deps.ses_client()
    subscribers, deliveries = stack.table("SubscribersTable"), stack.table("DeliveriesTable")
    result.extra["message_bytes"] = len(raw)

    started = time.perf_counter()
    sent = 0
    for shard in range(FANOUT_SHARDS):
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
                        "pk": {"S": f"article#{article_id}"},
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
    result.seconds = time.perf_counter() - started
    result.sent = sent
    result.state = "done"
    result.dead_letters = 0


# --------------------------------------------------------------------------------------------- pipeline
class ThrottlingSes:
    """SES that accepts at most `rate` sends a second (a token bucket with `burst` tokens) and answers
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
    stack.dependencies.ses_client = lru_cache(maxsize=1)(lambda: client)  # type: ignore[assignment]
    stack.dependencies.ses_sender.cache_clear()
    stack.dependencies.mailer_service.cache_clear()


def pipeline(stack: Stack, result: Result, standin: ThrottlingSes | None) -> None:
    """Publish, then run the fan-out and the mailer until every queue is empty."""
    from local.sources import EventSources

    if standin is not None:
        _use_ses(stack, standin)
    article_id = str(stack.editor("editor-create-article", body=ARTICLE)["id"])
    sources = EventSources(stack.template, stack.resolver, stack.functions.invoke, stack.job.endpoint)
    sources.pollers()  # stream positions are taken now, before the publish writes its record
    started = time.perf_counter()
    stack.editor("editor-publish-article", article_id=article_id)
    sources.drain(DRAIN_TIMEOUT_SECONDS)
    result.seconds = time.perf_counter() - started
    progress = stack.progress(article_id)
    result.state, result.sent = str(progress.get("state")), int(progress.get("sent", -1))
    result.dead_letters = stack.dead_letters()
    if standin is not None:
        result.throttles = standin.throttles
        result.accepted = len(standin.accepted)
        result.duplicates = sum(count - 1 for count in standin.recipients.values() if count > 1)
        if standin.accepted:
            result.first_send, result.last_send = standin.accepted[0], standin.accepted[-1]


# --------------------------------------------------------------------------------------------- main
def execute(job: Job) -> Result:
    result = Result(mode=job.mode, subscribers=job.subscribers)
    stack = Stack(job)
    result.seed_seconds = seed(stack, job.subscribers)
    _progress(f"{job.prefix}: {job.subscribers:,} subscribers seeded in {result.seed_seconds:.1f} s; {job.mode}")
    if job.mode == "floor":
        floor(stack, result)
    elif job.mode == "pipeline":
        pipeline(stack, result, None)
    elif job.mode == "throttled":
        real = stack.dependencies.ses_client()
        pipeline(stack, result, ThrottlingSes(real, rate=job.throttle_rate, burst=job.throttle_burst))
    else:
        raise ValueError(f"unknown mode {job.mode!r}")
    # On Linux ru_maxrss is in kilobytes: the peak of this process, whose only delivery was this one.
    result.max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stack.delete()
    return result


def _exit_when_orphaned() -> None:
    """Exit at once when the benchmark closes our stdin (or dies): nothing may outlive it."""

    def watch() -> None:
        sys.stdin.buffer.read()
        os._exit(3)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main() -> None:
    _exit_when_orphaned()
    # The result goes to the stdout we were given; whatever else prints (the product's logs) goes to stderr.
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    job = Job(**json.loads(sys.argv[1]))
    result = execute(job)
    answer.write(json.dumps(asdict(result)) + "\n")
    answer.flush()


if __name__ == "__main__":
    main()
