"""Event sources as Lambda runs them: SQS and DynamoDB stream pollers, S3 notifications, schedules.

Lambda's service reads a function's queues and streams, and sends its failed asynchronous events on, with the
function's execution role: here with the role's service credentials (`AccessPolicy.service_credentials`), so
a role that lacks a grant its event sources need fails locally as the event source mapping fails on AWS.
The runner's own emulation (a failed message's quick return, S3's notifications) stays the administrator's.

S3 and EventBridge Scheduler invoke a function asynchronously: Lambda retries a failed event as the
function's `EventInvokeConfig` says (twice by default, a minute and then two apart) and then sends it to
the `OnFailure` destination. A schedule's own `RetryPolicy` and `DeadLetterConfig` cover only handing the
event to Lambda (a refused or throttled Invoke call), which cannot fail locally.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from botocore.config import Config

from local.aws.embedded import LOCAL_MAX_VISIBILITY_SECONDS, client
from local.iam.policies import Credentials
from local.lambda_runtime import events
from local.lambda_runtime.cron import next_fire
from local.lambda_runtime.filters import EventFilters
from local.lambda_runtime.functions import DEFAULT_CONCURRENCY, FunctionError
from local.template.model import EventSource, Schedule, Template
from local.template.resolver import Resolver

log = logging.getLogger(__name__)

Invoke = Callable[[str, dict[str, Any]], Any]
Poll = Callable[[], bool]

ASYNC_RETRY_DELAY_SECONDS = 60  # Lambda's first retry of an asynchronous event; the second waits twice as long
IN_FLIGHT_MARGIN_SECONDS = 5  # the runner stops an invocation at its timeout; this covers the stopping


def _batch_entries(handles: list[str], **fields: Any) -> Iterator[list[dict[str, Any]]]:
    """SQS batch-request entries for these receipt handles, ten per request."""
    for start in range(0, len(handles), 10):
        chunk = handles[start : start + 10]
        yield [{"Id": str(i), "ReceiptHandle": handle, **fields} for i, handle in enumerate(chunk)]


# ------------------------------------------------------------------------------------------- runner


class EventSources:
    """Background threads that feed the functions from queues, streams, buckets and schedules."""

    def __init__(
        self,
        template: Template,
        resolver: Resolver,
        invoke: Invoke,
        endpoint: str | None,
        *,
        poll_seconds: float = 0.25,
        retry_delay_seconds: float = ASYNC_RETRY_DELAY_SECONDS,
        service_credentials: Mapping[str, Credentials] | None = None,
    ) -> None:
        """`endpoint` None: for tests inside moto's `mock_aws`. `service_credentials`: each function's role
        as Lambda's service uses it (none: the administrator's, on a stack that checks no IAM)."""
        self.template = template
        self.service_credentials = dict(service_credentials or {})
        self.resolver = resolver
        self.invoke = invoke
        self.endpoint = endpoint
        self.poll_seconds = poll_seconds
        self.retry_delay_seconds = retry_delay_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._versioned: dict[str, bool] = {}
        # drain(): deliver what there is at once, without long polls, idle waits or batching windows.
        self._draining = False
        self._pollers: list[tuple[str, Poll]] | None = None
        self._source_queues: dict[str, str] = {}  # queue URL -> the function it feeds
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._consumers: dict[str, int] = {}  # poller name -> threads polling it at once (SQS)
        # The pollers of a service share its client, each thread holding a connection while it long-polls: a
        # pool smaller than the threads makes urllib3 discard connections and warn (six times on every stop).
        threads = sum(self._sqs_consumers(event) for event in template.events_of("SQS"))
        self._pool_size = max(10, threads + len(template.events_of("S3")) + 1)
        # Expressions and time zones may be parameters (!Ref DigestSchedule): resolve them once.
        self.schedules = [
            dataclasses.replace(
                schedule,
                expression=str(resolver.resolve(schedule.expression)),
                timezone=str(resolver.resolve(schedule.timezone)),
            )
            for schedule in template.schedules
        ]

    def _client(self, service: str, role_of: str | None = None) -> Any:
        """One client per service (and per function whose role Lambda's service uses, `role_of`), shared by
        the pollers (boto3 clients are thread-safe)."""
        key = (service, role_of if role_of in self.service_credentials else None)
        if key not in self._clients:
            credentials = self.service_credentials.get(key[1] or "")
            config = Config(max_pool_connections=self._pool_size)
            if self.endpoint is None:
                # moto does not know the account-based endpoints (123456789012.streams-ddb...) botocore picks.
                config = config.merge(Config(account_id_endpoint_mode="disabled"))
            self._clients[key] = client(service, self.endpoint, self.resolver.region, credentials, config=config)
        return self._clients[key]

    def _spawn(self, name: str, target: Callable[[], object]) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    target()
                except Exception:
                    # A poller must outlive a hiccup of the embedded AWS, as Lambda's pollers do.
                    log.exception("event source %s failed; retrying", name)
                    self._stop.wait(1)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def pollers(self) -> list[tuple[str, Poll]]:
        """Every queue, stream and bucket source, set up once; each poll says whether it delivered."""
        if self._pollers is None:
            self._pollers = []
            for event in self.template.events_of("SQS"):
                if event.properties.get("Enabled", True):
                    name = f"sqs:{event.function_id}.{event.name}"
                    self._pollers.append((name, self._sqs_poller(event)))
                    self._consumers[name] = self._sqs_consumers(event)
            for event in self.template.events_of("DynamoDB"):
                if event.properties.get("Enabled", True):
                    self._pollers.append((f"dynamodb:{event.function_id}.{event.name}", self._stream_poller(event)))
            self._pollers += self._s3_pollers()
        return self._pollers

    def start(self) -> None:
        """Start polling; positions and notifications are set up before this returns."""
        for name, poll in self.pollers():
            for consumer in range(self._consumers.get(name, 1)):
                self._spawn(f"{name}#{consumer + 1}" if consumer else name, poll)
        if any(schedule.enabled for schedule in self.schedules):
            self._spawn("schedules", self._schedule_loop())

    def drain(self, timeout: float = 120, *, skip: Collection[str] = (), wait_for_delayed: bool = True) -> None:
        """Deliver in this thread until every queue and stream is empty (tests use this instead of
        `start`), leaving the functions in `skip` alone. Messages waiting out a visibility timeout
        after a failure are waited for, and delayed messages unless `wait_for_delayed` is False (a test
        that moves a frozen clock on stops there)."""
        self._draining = True
        sqs = self._client("sqs")
        pollers = [poll for name, poll in self.pollers() if name.split(":", 1)[1].split(".")[0] not in skip]
        urls = [url for url, function_id in self._source_queues.items() if function_id not in skip]
        counted = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        if wait_for_delayed:
            counted.append("ApproximateNumberOfMessagesDelayed")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any([poll() for poll in pollers]):
                continue
            in_flight = sum(
                int(value)
                for url in urls
                for value in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=counted)["Attributes"].values()
            )
            if not in_flight:
                return
            time.sleep(0.1)
        raise TimeoutError(f"event sources still busy after {timeout}s")

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    # ----------------------------------------------------------------------------------------- SQS

    def _sqs_poller(self, event: EventSource) -> Poll:
        props = self.resolver.resolve(event.properties)
        queue_arn = str(props["Queue"])
        sqs, role = self._client("sqs"), self._client("sqs", event.function_id)
        queue_url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
        # Lambda reads the queue's attributes with the role when the mapping is created.
        role.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])
        self._source_queues[queue_url] = event.function_id
        batch_size = int(props.get("BatchSize", 10))
        report_failures = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        filters = EventFilters(props.get("FilterCriteria"))
        # On AWS a batch stays invisible while its invocation runs: the queue's visibility timeout is at least
        # the function's timeout. The local queues' is seconds (so a failed message returns soon), so the
        # poller asks for the function's timeout when it receives and gives the failed messages back after it.
        in_flight_seconds = self.template.functions[event.function_id].timeout + IN_FLIGHT_MARGIN_SECONDS

        def poll() -> bool:
            messages = self._receive(role, queue_url, batch_size, in_flight_seconds)
            if not messages:
                return False
            records = [events.sqs_record(message, queue_arn, self.resolver.region) for message in messages]
            wanted = [record for record in records if filters.matches_sqs(record)]
            # Lambda deletes the messages its filters drop.
            done = {record["receiptHandle"] for record in records if record not in wanted}
            if wanted:
                done |= self._deliver_sqs(event.function_id, wanted, report_failures)
            for entries in _batch_entries(sorted(done)):
                role.delete_message_batch(QueueUrl=queue_url, Entries=entries)
            failed = [message["ReceiptHandle"] for message in messages if message["ReceiptHandle"] not in done]
            for entries in _batch_entries(failed, VisibilityTimeout=LOCAL_MAX_VISIBILITY_SECONDS):
                sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
            return True

        return poll

    def _sqs_consumers(self, event: EventSource) -> int:
        """Lambda polls a queue with several batches in flight at once, up to the source's MaximumConcurrency
        (at least 2); here as many as a function has workers."""
        scaling = self.resolver.resolve(event.properties).get("ScalingConfig") or {}
        return min(int(scaling.get("MaximumConcurrency") or DEFAULT_CONCURRENCY), DEFAULT_CONCURRENCY)

    def _receive(self, sqs: Any, queue_url: str, batch_size: int, visibility_seconds: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < batch_size and not self._stop.is_set():
            answer = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, batch_size - len(messages)),
                VisibilityTimeout=visibility_seconds,
                WaitTimeSeconds=0 if messages or self._draining else 1,  # short, so stop() is prompt
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = answer.get("Messages") or []
            if not received:
                break
            messages.extend(received)
        return messages

    def _deliver_sqs(self, function_id: str, records: list[dict[str, Any]], report_failures: bool) -> set[str]:
        """Invoke with the batch; the receipt handles of the messages to delete."""
        try:
            answer = self.invoke(function_id, {"Records": records})
        except Exception:  # logged by invoke; the messages reappear after their visibility timeout
            return set()
        handles = {record["messageId"]: record["receiptHandle"] for record in records}
        if not report_failures or not isinstance(answer, dict) or not answer.get("batchItemFailures"):
            return set(handles.values())
        failures = answer["batchItemFailures"]
        failed = (
            {item.get("itemIdentifier") for item in failures if isinstance(item, dict)}
            if isinstance(failures, list)
            else {None}
        )
        if not failed <= set(handles):
            # An unknown or empty identifier makes Lambda treat the whole batch as failed.
            log.error("%s reported unknown batchItemFailures %s: the whole batch failed", function_id, failures)
            return set()
        return {handle for message_id, handle in handles.items() if message_id not in failed}

    # ----------------------------------------------------------------------------------- DynamoDB

    def _stream_poller(self, event: EventSource) -> Poll:
        props = self.resolver.resolve(event.properties)
        stream_arn = str(props["Stream"])
        streams = self._client("dynamodbstreams", event.function_id)
        # Lambda lists the table's streams with the role when the mapping is created.
        streams.list_streams(TableName=stream_arn.split(":table/", 1)[1].split("/", 1)[0])
        batch_size = int(props.get("BatchSize", 100))
        max_retries = int(props.get("MaximumRetryAttempts", -1))
        report_failures = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        filters = EventFilters(props.get("FilterCriteria"))
        window = int(props.get("TumblingWindowInSeconds", 0))
        batching_seconds = float(props.get("MaximumBatchingWindowInSeconds", 0))
        shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        # Positions are taken now, so a write made right after start() is not missed.
        iterators = {
            shard["ShardId"]: streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            for shard in shards
        }
        pending: list[tuple[str, dict[str, Any]]] = []  # (shard id, record): a batch never mixes shards
        attempts = 0
        gathering_since: float | None = None

        def poll() -> bool:
            nonlocal pending, attempts, gathering_since
            if attempts == 0 and len(pending) < batch_size:
                for shard_id, iterator in list(iterators.items()):
                    answer = streams.get_records(ShardIterator=iterator, Limit=1000)
                    iterators[shard_id] = answer["NextShardIterator"]
                    records = [
                        events.dynamodb_stream_record(r, stream_arn, self.resolver.region) for r in answer["Records"]
                    ]
                    pending += [(shard_id, record) for record in records if filters.matches(record)]
                if not pending:
                    self._stop.wait(0 if self._draining else self.poll_seconds)
                    return False
                # Lambda gathers records for up to the batching window, unless the batch is full.
                if len(pending) < batch_size and not self._draining:
                    gathering_since = gathering_since or time.monotonic()
                    left = gathering_since + batching_seconds - time.monotonic()
                    if left > 0:
                        self._stop.wait(min(left, self.poll_seconds))
                        return False
            gathering_since = None
            shard_id = pending[0][0]
            batch = [record for shard, record in pending[:batch_size] if shard == shard_id]
            invocation: dict[str, Any] = {"Records": batch}
            if window:
                invocation |= events.tumbling_window_fields(shard_id, stream_arn, window)
            done = self._deliver_stream(event.function_id, invocation, report_failures)
            pending = pending[done:]
            if done == len(batch):
                attempts = 0
                return True
            attempts += 1
            if 0 <= max_retries < attempts:
                log.error(
                    "%s: dropping %d stream records after %d retries",
                    event.function_id,
                    len(batch) - done,
                    max_retries,
                )
                pending = pending[len(batch) - done :]
                attempts = 0
                return True
            self._stop.wait(min(30.0, 0.5 * 2**attempts))
            return True

        return poll

    def _deliver_stream(self, function_id: str, invocation: dict[str, Any], report_failures: bool) -> int:
        """Invoke with the batch; how many records from its start are done."""
        batch = invocation["Records"]
        try:
            answer = self.invoke(function_id, invocation)
        except Exception:  # logged by invoke; the whole batch is retried
            return 0
        if not report_failures or not isinstance(answer, dict) or not answer.get("batchItemFailures"):
            return len(batch)
        sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in batch]
        failed = [item.get("itemIdentifier") for item in answer["batchItemFailures"] if isinstance(item, dict)]
        if not failed or not set(failed) <= set(sequence_numbers):
            return 0
        # Lambda retries from the earliest reported record: everything before it counts as done.
        return min(sequence_numbers.index(identifier) for identifier in failed)

    # ----------------------------------------------------------------------------------------- S3

    def _s3_pollers(self) -> list[tuple[str, Poll]]:
        """Route each bucket's notifications to an internal queue per S3 event, and consume those."""
        sqs, s3 = self._client("sqs"), self._client("s3")
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        pollers = []
        for event in self.template.events_of("S3"):
            props = self.resolver.resolve(event.properties)
            queue_name = f"{self.resolver.prefix}-s3-{event.function_id}-{event.name}"[:80]
            queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
            self._source_queues[queue_url] = event.function_id
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            kinds = props["Events"]
            rules = ((props.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
            configuration: dict[str, Any] = {
                "Id": f"{event.function_id}{event.name}",
                "QueueArn": queue_arn,
                "Events": [kinds] if isinstance(kinds, str) else list(kinds),
            }
            if rules:
                configuration["Filter"] = {
                    "Key": {"FilterRules": [{"Name": rule["Name"].lower(), "Value": rule["Value"]} for rule in rules]}
                }
            by_bucket.setdefault(str(props["Bucket"]), []).append(configuration)
            pollers.append((f"s3:{event.function_id}.{event.name}", self._s3_poller(event.function_id, sqs, queue_url)))
        for bucket, configurations in by_bucket.items():
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configurations}
            )
        return pollers

    def _s3_poller(self, function_id: str, sqs: Any, queue_url: str) -> Poll:
        s3 = self._client("s3")
        in_flight_seconds = self.template.functions[function_id].timeout + IN_FLIGHT_MARGIN_SECONDS
        attempts_allowed = 1 + self.template.functions[function_id].async_invoke.max_retries

        def poll() -> bool:
            messages = self._receive(sqs, queue_url, 10, in_flight_seconds)
            for message in messages:
                notification = json.loads(message["Body"])
                if notification.get("Event") == "s3:TestEvent":
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    continue
                event = events.s3_event(self._s3_record(s3, record) for record in notification.get("Records", []))
                attempt = int(message["Attributes"]["ApproximateReceiveCount"])
                try:
                    self.invoke(function_id, event)
                except Exception as error:  # logged by invoke
                    if attempt < attempts_allowed:
                        delay = round(self.retry_delay_seconds * attempt)
                        log.warning("%s failed on an S3 event; retrying in %ss", function_id, delay)
                        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                      VisibilityTimeout=delay)  # fmt: skip
                        continue
                    self._async_failed(function_id, event, error, attempt)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return bool(messages)

        return poll

    def _s3_record(self, s3: Any, record: dict[str, Any]) -> dict[str, Any]:
        # moto's S3 sent the notification; events.s3_event_record completes it to what AWS sends.
        s3_object = record["s3"]["object"]
        bucket, key = record["s3"]["bucket"]["name"], unquote_plus(s3_object["key"])
        version_id = s3_object.get("versionId")
        if version_id is None and record["eventName"].startswith("ObjectCreated"):
            # moto leaves out the version; the current one is right unless the key was overwritten since.
            answer = s3.head_object(Bucket=bucket, Key=key) if self._is_versioned(s3, bucket) else {}
            version_id = answer.get("VersionId")
        return events.s3_event_record(
            bucket,
            key,
            size=int(s3_object.get("size", 0)),
            etag=s3_object.get("eTag", ""),
            region=record.get("awsRegion", self.resolver.region),
            event_name=record["eventName"],
            event_time=datetime.fromisoformat(record["eventTime"]) if record.get("eventTime") else None,
            version_id=version_id,
            configuration_id=record["s3"].get("configurationId", "local"),
        )

    def _is_versioned(self, s3: Any, bucket: str) -> bool:
        if bucket not in self._versioned:
            self._versioned[bucket] = s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
        return self._versioned[bucket]

    # ------------------------------------------------------------------------ asynchronous invocations

    def _invoke_async(self, function_id: str, event: dict[str, Any]) -> bool:
        """Run the function on the event now; when that fails, retry it in the background as Lambda retries
        an asynchronous event. Whether the first attempt succeeded."""
        try:
            self.invoke(function_id, event)
        except Exception as error:  # logged by invoke
            retrying = threading.Thread(
                target=self._retry_async, args=(function_id, event, error), name=f"retry:{function_id}", daemon=True
            )
            self._threads = [thread for thread in self._threads if thread.is_alive()] + [retrying]
            retrying.start()
            return False
        return True

    def _retry_async(self, function_id: str, event: dict[str, Any], error: Exception) -> None:
        config = self.template.functions[function_id].async_invoke
        started = time.monotonic()
        attempts = 1
        while attempts <= config.max_retries:
            if self._stop.wait(self.retry_delay_seconds * attempts):
                return
            if time.monotonic() - started > config.max_event_age_seconds:
                self._async_failed(function_id, event, error, attempts, condition="EventAgeExceeded")
                return
            attempts += 1
            try:
                self.invoke(function_id, event)
            except Exception as again:  # logged by invoke
                error = again
            else:
                return
        self._async_failed(function_id, event, error, attempts)

    def _async_failed(
        self,
        function_id: str,
        event: dict[str, Any],
        error: Exception,
        attempts: int,
        *,
        condition: str = "RetriesExhausted",
    ) -> None:
        """Lambda stopped retrying an asynchronous event: it goes to the function's OnFailure queue (sent with
        the function's role, as Lambda sends it), or is dropped."""
        destination = self.template.functions[function_id].async_invoke.on_failure or {}
        if destination.get("Type") != "SQS":
            log.error("%s failed on an asynchronous event %d times; dropping it", function_id, attempts)
            return
        queue_arn = str(self.resolver.resolve(destination["Destination"]))
        error_type, message = type(error).__name__, str(error)
        if isinstance(error, FunctionError):  # a worker's failure, as Lambda reports it
            error_type, message = error.error_type, error.message
        record = events.async_failure_record(
            self.resolver.arn(function_id),
            str(uuid.uuid4()),
            event,
            attempts=attempts,
            error_type=error_type,
            error_message=message,
            condition=condition,
        )
        queue_url = self._client("sqs").get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
        self._client("sqs", function_id).send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
        log.error("%s failed on an asynchronous event %d times; recorded in %s", function_id, attempts, queue_arn)

    # ---------------------------------------------------------------------------------- schedules

    def _schedule_event(self, schedule: Schedule, at: datetime) -> dict[str, Any]:
        name = f"{self.resolver.prefix}-{schedule.function_id}{schedule.name}"
        region, account = self.resolver.region, self.resolver.account_id
        arn = (
            f"arn:aws:scheduler:{region}:{account}:schedule/default/{name}"
            if schedule.kind == "ScheduleV2"
            else f"arn:aws:events:{region}:{account}:rule/{name}"
        )
        if schedule.input is not None:
            text = schedule.input if isinstance(schedule.input, str) else json.dumps(schedule.input)
            if schedule.kind == "ScheduleV2":
                # EventBridge Scheduler fills in these context attributes in a target's input.
                for placeholder, value in {
                    "<aws.scheduler.scheduled-time>": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "<aws.scheduler.schedule-arn>": arn,
                    "<aws.scheduler.execution-id>": str(uuid.uuid4()),
                    "<aws.scheduler.attempt-number>": "1",
                }.items():
                    text = text.replace(placeholder, value)
            return dict(json.loads(text))
        return events.scheduled_event(arn, region=region, account_id=account, now=at)

    def _fire(self, schedule: Schedule, at: datetime | None = None) -> bool:
        """Hand the schedule's event to its function, as EventBridge Scheduler does: asynchronously. Whether
        the first attempt succeeded; Lambda's retries of a failure run in the background."""
        return self._invoke_async(schedule.function_id, self._schedule_event(schedule, at or datetime.now(UTC)))

    def run_schedules(self, function_logical_id: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """Fire the enabled schedules (of one function, or all; only the one called `name`, when given) once
        now, one after the other."""
        return [
            {"function": schedule.function_id, "schedule": schedule.name, "ok": self._fire(schedule)}
            for schedule in self.schedules
            if schedule.enabled
            and function_logical_id in (None, schedule.function_id)
            and name in (None, schedule.name)
        ]

    def schedule_names(self) -> set[str]:
        return {schedule.name for schedule in self.schedules if schedule.enabled}

    def _schedule_loop(self) -> Callable[[], None]:
        due: list[tuple[Schedule, datetime | None]] = []
        now = datetime.now(UTC)
        for schedule in self.schedules:
            if not schedule.enabled:
                continue
            try:
                due.append((schedule, next_fire(schedule, now)))
            except ValueError as error:
                log.warning("%s.%s will only run on request: %s", schedule.function_id, schedule.name, error)

        def tick() -> None:
            upcoming = [moment for _, moment in due if moment is not None]
            if not upcoming:
                self._stop.wait()
                return
            wait = (min(upcoming) - datetime.now(UTC)).total_seconds()
            if wait > 0 and self._stop.wait(min(wait, 60)):
                return
            now = datetime.now(UTC)
            for index, (schedule, moment) in enumerate(due):
                if moment is not None and moment <= now:
                    self._fire(schedule, moment)
                    # Keep a rate's rhythm, unless the machine slept through several periods.
                    since = moment if moment > now - timedelta(minutes=1) else now
                    due[index] = (schedule, next_fire(schedule, since))

        return tick
