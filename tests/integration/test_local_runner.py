"""The local runner on its own test stack (tests/fixtures/local_stack): HTTP API, SQS, S3, streams, schedules."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.apigateway.invoke_policies import InvokePolicies
from local.apigateway.server import ApiServer, serve_in_thread
from local.aws.embedded import aws_environment, client, start_moto
from local.lambda_runtime.events import ApiContext, HttpRequest
from local.lambda_runtime.functions import InProcessFunctions
from local.lambda_runtime.sources import EventSources
from local.stack import build_stack, local_resolver
from local.template.model import Template, load_template
from local.template.resolver import Resolver

TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "local_stack" / "template.yaml"
REGION = "us-east-1"


@dataclass
class Stack:
    template: Template
    resolver: Resolver
    functions: InProcessFunctions
    sources: EventSources
    server: ApiServer
    endpoint: str

    def client(self, service: str) -> Any:
        return client(service, self.endpoint, REGION)

    def received(self, function_id: str) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = self.functions.module(function_id).RECEIVED
        return received

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        parts = path.split("?", 1)
        request = HttpRequest(method, parts[0], parts[1] if len(parts) > 1 else "", **kwargs)
        response = self.server.dispatch(request)
        return response.status, dict(response.headers), response.body


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    from moto.moto_api._internal.models import moto_api_backend

    template = load_template(TEMPLATE)
    # moto keeps its resources per process: pytest-xdist may set this module up twice in one worker.
    moto_api_backend.reset()
    moto, endpoint = start_moto(0)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in aws_environment(endpoint, REGION).items():
            patch.setenv(key, value)
        resolver = local_resolver(template=template, region=REGION)
        built = build_stack(resolver, endpoint=endpoint)
        for key, value in resolver.environment().items():
            patch.setenv(key, value)
        functions = InProcessFunctions(template, resolver)
        sources = EventSources(
            template, resolver, functions.invoke, endpoint, poll_seconds=0.1, retry_delay_seconds=0.2
        )
        sources.start()
        server = ApiServer(
            ("127.0.0.1", 0), template, functions, ApiContext(region=REGION), invoke_policies=built.invoke_policies
        )
        serve_in_thread(server)
        try:
            yield Stack(template, resolver, functions, sources, server, endpoint)
        finally:
            server.shutdown()
            server.server_close()
            sources.stop()
            moto.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


# ------------------------------------------------------------------------------------------ HTTP API


@pytest.mark.parametrize(
    ("method", "path", "route_key", "parameters"),
    [
        ("GET", "/items/special", "GET /items/special", None),
        ("GET", "/items/42", "GET /items/{id}", {"id": "42"}),
        ("DELETE", "/items/42", "ANY /items/{id}", {"id": "42"}),
        ("GET", "/items/a%20b", "GET /items/{id}", {"id": "a b"}),
    ],
)
def test_routes_resolve_to_the_most_specific(
    stack: Stack, method: str, path: str, route_key: str, parameters: dict[str, str] | None
) -> None:
    status, headers, _ = stack.call(method, path)

    assert status == 200
    assert headers["x-route"] == route_key
    event = stack.received("ApiFunction")[-1]
    assert event["routeKey"] == route_key
    assert event.get("pathParameters") == parameters


def test_the_path_is_decoded_once_as_api_gateway_does(stack: Stack) -> None:
    # An address holding "%41" sent percent-encoded: API Gateway hands over "%41", never "A".
    status, _, _ = stack.call("GET", "/items/x%2541y%40example.org")

    assert status == 200
    event = stack.received("ApiFunction")[-1]
    assert event["pathParameters"] == {"id": "x%41y@example.org"}
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/items/x%41y@example.org"


@pytest.mark.parametrize(
    ("path", "logged"),
    [("/items/dora%40b%C3%BCcher.example", "/items/{id}"), ("/nowhere/dora%40example.org", "/nowhere/<address>")],
)
def test_the_access_log_never_prints_an_address_in_a_path(
    stack: Stack, caplog: pytest.LogCaptureFixture, path: str, logged: str
) -> None:
    # As DELETE /admin/subscribers/{email} is logged: the route, not the address a client put in its path.
    with caplog.at_level(logging.INFO, logger="access"):
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(urllib.request.Request(stack.server.url + path, method="DELETE"), timeout=10)
        # The line is written once the answer is sent, so it may come just after the client has it.
        [line] = wait_for(lambda: [record.getMessage() for record in caplog.records if record.name == "access"])
    assert line.startswith(f"DELETE {logged} ")
    assert "dora" not in line


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("POST", "/items"), ("GET", "/files/")])
def test_unknown_routes_are_404(stack: Stack, method: str, path: str) -> None:
    status, _, body = stack.call(method, path)

    assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def test_greedy_path_and_binary_answer(stack: Stack) -> None:
    status, headers, body = stack.call("GET", "/files/a/b.txt")

    assert (status, body) == (200, b"\x00\x01binary")
    assert headers["content-type"] == "application/octet-stream"
    assert stack.received("ApiFunction")[-1]["pathParameters"] == {"proxy": "a/b.txt"}


def test_answer_without_status_code_is_inferred(stack: Stack) -> None:
    status, headers, body = stack.call("GET", "/items")

    assert (status, headers["content-type"], json.loads(body)) == (200, "application/json", {"items": []})


def test_function_crash_is_500(stack: Stack) -> None:
    status, _, body = stack.call("GET", "/items/boom")

    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_missing_token_is_401_without_calling_the_authorizer(stack: Stack) -> None:
    before = len(stack.received("AuthorizerFunction"))

    status, _, body = stack.call("POST", "/secure")

    assert (status, body) == (401, b'{"message":"Unauthorized"}')
    assert len(stack.received("AuthorizerFunction")) == before


@pytest.mark.parametrize(
    ("token", "status", "message"),
    [("Bearer wrong", 403, "Forbidden"), ("Bearer crash", 500, "Internal Server Error")],
)
def test_refused_or_failing_authorizer(stack: Stack, token: str, status: int, message: str) -> None:
    answer = stack.call("POST", "/secure", headers=[("Authorization", token)])

    assert (answer[0], json.loads(answer[2])) == (status, {"message": message})


def test_authorized_request_carries_the_authorizer_context(stack: Stack) -> None:
    status, _, _ = stack.call(
        "POST",
        "/secure?x=1",
        headers=[("Authorization", "Bearer good"), ("Content-Type", "application/json; charset=utf-8")],
        body=b'{"title": "t"}',
    )

    assert status == 200
    check = stack.received("AuthorizerFunction")[-1]
    assert check["type"] == "REQUEST"
    assert check["identitySource"] == ["Bearer good"]
    assert check["routeArn"].endswith(":local/$default/POST/secure")
    assert "body" not in check
    event = stack.received("ApiFunction")[-1]
    assert event["requestContext"]["authorizer"] == {"lambda": {"user": "ada"}}
    assert event["routeKey"] == "POST /secure"
    assert event["body"] == '{"title": "t"}'
    assert event["isBase64Encoded"] is False


def test_a_route_its_functions_policy_does_not_cover_is_500_and_never_runs_it(stack: Stack) -> None:
    # GET /unpermitted is in the API's definition body, but no permission lets API Gateway invoke ApiFunction
    # for it (SAM adds permissions for the events' routes only): on AWS, a 500 from API Gateway.
    before = len(stack.received("ApiFunction"))

    status, _, body = stack.call("GET", "/unpermitted")
    allowed, _, _ = stack.call("GET", "/items")

    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    assert allowed == 200
    assert [event["rawPath"] for event in stack.received("ApiFunction")[before:]] == ["/items"]


def test_an_authorizer_api_gateway_may_not_invoke_is_500_and_nothing_runs(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = {
        key: value for key, value in stack.server.invoke_policies.policies.items() if key != "AuthorizerFunction"
    }
    monkeypatch.setattr(stack.server, "invoke_policies", InvokePolicies(policies))
    before = len(stack.received("AuthorizerFunction")), len(stack.received("ApiFunction"))

    status, _, body = stack.call("POST", "/secure", headers=[("Authorization", "Bearer good")])

    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    assert (len(stack.received("AuthorizerFunction")), len(stack.received("ApiFunction"))) == before


def test_over_http(stack: Stack) -> None:
    request = urllib.request.Request(
        f"{stack.server.url}/items/7?tag=a&tag=b",
        headers={"Cookie": "session=abc; theme=dark", "X-Thing": "one"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
        cookies = response.headers.get_all("Set-Cookie")

    assert answer["greeting"] == "hello"
    assert answer["role"] == "api"  # TickFunction's ROLE=tick conflicts; the first function's value stays
    assert answer["function_name"] == "newsdesk-local-ApiFunction"
    assert 0 < answer["remaining_ms"] <= 10_000
    assert cookies == ["first=1; Path=/", "second=2"]
    event = stack.received("ApiFunction")[-1]
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-thing"] == "one"
    assert event["rawQueryString"] == "tag=a&tag=b"
    assert event["queryStringParameters"] == {"tag": "a,b"}


def test_binary_request_body_is_base64(stack: Stack) -> None:
    stack.call(
        "POST",
        "/secure",
        headers=[("Authorization", "Bearer good"), ("Content-Type", "application/octet-stream")],
        body=b"\xff\x00",
    )

    event = stack.received("ApiFunction")[-1]
    assert (event["body"], event["isBase64Encoded"]) == (base64.b64encode(b"\xff\x00").decode(), True)


def test_functions_are_isolated_modules(stack: Stack) -> None:
    assert stack.functions.module("ApiFunction") is not stack.functions.module("WorkerFunction")


# --------------------------------------------------------------------------------------- event sources


def test_sqs_batch_failures_retry_then_dead_letter(stack: Stack) -> None:
    sqs = stack.client("sqs")
    queue_url = stack.resolver.ref("JobsQueue")
    dlq_url = stack.resolver.ref("JobsDeadLetterQueue")
    for body in ("ok-1", "fail-1", "ok-2"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    dead = wait_for(lambda: sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages"), timeout=20)

    assert [message["Body"] for message in dead] == ["fail-1"]
    bodies = [record["body"] for event in stack.received("WorkerFunction") for record in event["Records"]]
    assert sorted(bodies) == ["fail-1", "fail-1", "ok-1", "ok-2"]
    first = stack.received("WorkerFunction")[0]["Records"][0]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == stack.resolver.get_att("JobsQueue", "Arn")
    assert first["awsRegion"] == REGION
    assert set(first["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId"}
    time.sleep(1.5)  # past the visibility timeout: nothing may come back
    assert not sqs.receive_message(QueueUrl=queue_url).get("Messages")


def test_s3_notifications_come_from_the_bucket_with_filters(stack: Stack) -> None:
    s3 = stack.client("s3")
    bucket = stack.resolver.ref("UploadsBucket")
    for key in ("other/a.txt", "uploads/b.png", "uploads/report 1.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"12345")

    events = wait_for(lambda: stack.received("UploadsFunction"))
    time.sleep(1)  # the filtered-out uploads would have arrived by now

    assert len(stack.received("UploadsFunction")) == 1
    (record,) = events[0]["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert record["s3"]["object"]["key"] == "uploads/report+1.txt"
    assert record["s3"]["object"]["size"] == 5
    assert record["s3"]["object"]["versionId"]
    assert record["s3"]["configurationId"] == "UploadsFunctionTextUploads"


def test_dynamodb_stream_with_filter(stack: Stack) -> None:
    dynamodb = stack.client("dynamodb")
    table = stack.resolver.ref("EventsTable")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "1"}, "kind": {"S": "other"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "2"}, "kind": {"S": "publication"}, "b": {"B": b"\x01"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "2"}, "kind": {"S": "publication"}})  # MODIFY

    events = wait_for(lambda: stack.received("StreamFunction"))
    time.sleep(0.5)

    records = [record for event in stack.received("StreamFunction") for record in event["Records"]]
    assert [record["dynamodb"]["Keys"] for record in records] == [{"pk": {"S": "2"}}]
    record = events[0]["Records"][0]
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == stack.resolver.get_att("EventsTable", "StreamArn")
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["NewImage"]["b"] == {"B": base64.b64encode(b"\x01").decode()}


def test_dynamodb_stream_retries_a_failed_batch(stack: Stack) -> None:
    dynamodb = stack.client("dynamodb")
    table = stack.resolver.ref("EventsTable")
    before = len(stack.received("StreamFunction"))
    item = {"pk": {"S": "3"}, "kind": {"S": "publication"}, "flaky": {"BOOL": True}}
    dynamodb.put_item(TableName=table, Item=item)

    wait_for(lambda: len(stack.received("StreamFunction")) >= before + 2)

    first, second = stack.received("StreamFunction")[before : before + 2]
    assert first == second


def test_run_schedules_fires_enabled_schedules_once(stack: Stack) -> None:
    before = len(stack.received("TickFunction"))

    results = stack.sources.run_schedules("TickFunction")

    assert results == [
        {"function": "TickFunction", "schedule": "EveryMinute", "ok": True},
        {"function": "TickFunction", "schedule": "Nightly", "ok": True},
    ]
    scheduled, nightly = stack.received("TickFunction")[before:]
    assert scheduled["detail-type"] == "Scheduled Event"
    assert scheduled["source"] == "aws.events"
    assert scheduled["resources"][0].startswith("arn:aws:events:us-east-1:123456789012:rule/")
    assert nightly == {"job": "nightly"}


def test_run_schedules_fires_one_schedule_by_name(stack: Stack) -> None:
    before = len(stack.received("TickFunction"))

    results = stack.sources.run_schedules(name="Nightly")

    assert results == [{"function": "TickFunction", "schedule": "Nightly", "ok": True}]
    assert stack.received("TickFunction")[before:] == [{"job": "nightly"}]
    assert "Nightly" in stack.sources.schedule_names()


def failure_records(stack: Stack) -> list[dict[str, Any]]:
    """What Lambda recorded in JobsFunction's OnFailure queue (taken off the queue)."""
    sqs = stack.client("sqs")
    url = stack.resolver.queue_url("JobFailuresQueue")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") or []
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(message["Body"]) for message in messages]


def test_a_scheduled_job_that_keeps_failing_ends_in_the_functions_failure_destination(stack: Stack) -> None:
    # EventBridge Scheduler invokes asynchronously: Lambda retries (EventInvokeConfig: once here), then
    # records the event and the error in the OnFailure queue instead of dropping it.
    before = len(stack.received("JobsFunction"))

    results = stack.sources.run_schedules(name="Doomed")

    assert results == [{"function": "JobsFunction", "schedule": "Doomed", "ok": False}]
    (record,) = wait_for(lambda: failure_records(stack))
    assert record["requestPayload"] == {"job": "doomed"}
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"] == f"{stack.resolver.arn('JobsFunction')}:$LATEST"
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "the doomed job failed, as asked"
    assert stack.received("JobsFunction")[before:] == [{"job": "doomed"}] * 2  # the first try and one retry


def test_a_scheduled_job_that_fails_once_is_retried_and_not_recorded(stack: Stack) -> None:
    before = len(stack.received("JobsFunction"))

    results = stack.sources.run_schedules(name="Flaky")

    assert results == [{"function": "JobsFunction", "schedule": "Flaky", "ok": False}]
    wait_for(lambda: len(stack.received("JobsFunction")) >= before + 2)
    assert stack.received("JobsFunction")[before:] == [{"job": "flaky"}] * 2
    assert failure_records(stack) == []
