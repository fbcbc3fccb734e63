"""The local runner runs each function as Lambda does: a process of its own with only its environment and
its role's credentials, stopped at its timeout (tests/fixtures/local_workers)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.apigateway.server import ApiServer, serve_in_thread
from local.aws.embedded import Usage, aws_environment, client, start_moto
from local.iam.policies import AccessPolicy, Credentials
from local.lambda_runtime import layer
from local.lambda_runtime.events import ApiContext
from local.lambda_runtime.functions import FunctionError, WorkerFunctions
from local.lambda_runtime.sources import EventSources
from local.stack import build_stack, local_resolver
from local.template.model import ACCOUNT_ID, load_template
from local.template.resolver import Resolver

TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "local_workers" / "template.yaml"
REGION = "us-east-1"
INTEGRATION_TIMEOUT = 4.0
VENV_ONLY_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  YamlFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/, Handler: app.handler, Runtime: python3.13}
"""


@dataclass
class Stack:
    resolver: Resolver
    policy: AccessPolicy
    functions: WorkerFunctions
    api_url: str
    endpoint: str
    usage: Usage

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def request(self, method: str, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(f"{self.api_url}{path}", method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def notes(self) -> set[str]:
        items = client("dynamodb", self.endpoint, REGION).scan(TableName=self.resolver.ref("NotesTable"))["Items"]
        return {item["pk"]["S"] for item in items}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    template = load_template(TEMPLATE)
    policy = AccessPolicy(ACCOUNT_ID)
    moto, endpoint = start_moto(0, policy=policy)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in aws_environment(endpoint, REGION).items():
            patch.setenv(key, value)
        patch.setenv("RUNNER_ONLY_SECRET", "the runner's own environment")
        resolver = local_resolver(template=template, region=REGION)
        built = build_stack(resolver, endpoint=endpoint, policy=policy)
        functions = WorkerFunctions(
            template, resolver, policy.credentials, extra_environment={"AWS_ENDPOINT_URL": endpoint}
        )
        sources = EventSources(template, resolver, functions.invoke, endpoint, poll_seconds=0.1)
        sources.start()
        server = ApiServer(
            ("127.0.0.1", 0),
            template,
            functions,
            ApiContext(region=REGION),
            invoke_policies=built.invoke_policies,
            integration_timeout=INTEGRATION_TIMEOUT,
        )
        serve_in_thread(server)
        try:
            yield Stack(resolver, policy, functions, server.url, endpoint, moto.usage)
        finally:
            server.shutdown()
            server.server_close()
            sources.stop()
            functions.stop()
            moto.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_a_function_sees_only_its_own_environment_and_credentials(stack: Stack) -> None:
    status, answer = stack.get("/environment")

    assert status == 200
    variables = set(answer["variables"])
    assert {
        "NOTES_TABLE",
        "ROLE",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_REGION",
        "_HANDLER",
        "AWS_SESSION_TOKEN",
    } <= variables
    assert "RUNNER_ONLY_SECRET" not in variables  # nothing of the runner's own environment
    assert answer["access_key_id"] == stack.policy.credentials["ReaderFunction"].access_key_id
    assert answer["access_key_id"] != stack.policy.credentials["SlowFunction"].access_key_id
    assert 0 < answer["remaining_ms"] <= 10_000  # counts down from the template's Timeout
    assert answer["process"] != os.getpid()


def test_a_function_imports_from_its_code_and_the_runtime_never_the_venv(stack: Stack) -> None:
    _, answer = stack.get("/environment")

    code_dir = TEMPLATE.parent / "functions"
    assert answer["import_path"][:2] == [str(code_dir), str(layer.runtime_packages())]  # no layers here
    assert not [folder for folder in answer["import_path"] if Path(folder).name == "site-packages"]
    assert Path(answer["boto3"]).is_relative_to(layer.runtime_packages())


def test_a_package_only_the_venv_has_fails_the_cold_start_naming_it(tmp_path: Path) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "app.py").write_text("import yaml  # the venv has it, Lambda's runtime does not\n")
    (tmp_path / "template.yaml").write_text(VENV_ONLY_TEMPLATE)
    template = load_template(tmp_path / "template.yaml")
    credentials = {"YamlFunction": Credentials("ASIAEXAMPLEEXAMPLE00", "secret", "token")}
    functions = WorkerFunctions(template, local_resolver(template=template, region=REGION), credentials)
    try:
        with pytest.raises(FunctionError) as failure:
            functions.invoke("YamlFunction", {})
    finally:
        functions.stop()

    assert (failure.value.error_type, failure.value.message) == (
        "Runtime.ImportModuleError",
        "No module named 'yaml'",
    )


def test_a_warm_worker_serves_the_next_invocation(stack: Stack) -> None:
    _, first = stack.get("/environment")
    _, second = stack.get("/environment")

    assert (second["process"], second["started_at"]) == (first["process"], first["started_at"])


def test_a_call_outside_the_role_is_refused_as_aws_refuses_it(stack: Stack) -> None:
    stack.policy.take_denials()

    status, answer = stack.request("POST", "/write")

    assert (status, answer) == (200, {"error": "AccessDeniedException"})
    assert "written-by-reader" not in stack.notes()
    (denial,) = stack.policy.take_denials()
    assert (denial.function_id, denial.action) == ("ReaderFunction", "dynamodb:PutItem")


def test_the_requests_each_function_makes_are_counted_as_its_own(stack: Stack) -> None:
    stack.usage.snapshot(reset=True)
    stack.notes()  # the runner's own credentials: not a function's usage

    assert stack.get("/environment")[0] == 200  # ReaderFunction: one GetItem
    assert stack.request("POST", "/write")[0] == 200  # ReaderFunction: a PutItem its role refuses, never counted

    used = stack.usage.snapshot()  # (queue-fed functions of other tests may still be at work)
    assert used["aws_requests"]["ReaderFunction"] == {"dynamodb.GetItem": 1}
    assert used["dynamodb_read_items"]["ReaderFunction"] == 1
    assert None not in used["aws_requests"]


def test_a_function_that_crashes_takes_only_its_invocation_down(stack: Stack) -> None:
    _, before = stack.get("/environment")

    crashed, body = stack.get("/crash")
    status, after = stack.get("/environment")

    assert (crashed, body) == (500, {"message": "Internal Server Error"})
    assert status == 200
    assert after["process"] != before["process"] or after["started_at"] != before["started_at"]


def test_an_invocation_past_its_timeout_is_stopped_and_its_batch_comes_back(stack: Stack) -> None:
    sqs = client("sqs", stack.endpoint, REGION)
    sqs.send_message(QueueUrl=stack.resolver.ref("JobsQueue"), MessageBody="job1")

    wait_for(lambda: "done-job1" in stack.notes())
    time.sleep(5)  # long enough for the first attempt to have finished, had it not been stopped

    notes = stack.notes()
    assert {"started-job1-1", "started-job1-2", "done-job1"} <= notes
    assert "finished-late-job1" not in notes


def test_a_queue_s_batches_run_in_two_workers_at_once_as_lambda_runs_several(stack: Stack) -> None:
    sqs = client("sqs", stack.endpoint, REGION)
    for job in ("a", "b"):
        sqs.send_message(QueueUrl=stack.resolver.ref("PairsQueue"), MessageBody=job)

    # One batch at a time, "a" would wait out its 10 s alone and only "b" would meet it.
    wait_for(lambda: {"met-a", "met-b"} <= stack.notes(), timeout=20)


def test_a_batch_in_flight_is_not_handed_to_another_worker_however_short_the_local_visibility_timeout(
    stack: Stack,
) -> None:
    # The local queues' visibility timeout is cut to seconds (a failed message comes back soon); a batch
    # still running past it must not reach the queue's second worker, as on AWS it does not.
    sqs = client("sqs", stack.endpoint, REGION)
    sqs.send_message(QueueUrl=stack.resolver.ref("SteadyQueue"), MessageBody="steady")

    wait_for(lambda: "done-steady" in stack.notes())
    time.sleep(1)

    assert {note for note in stack.notes() if note.startswith("started-steady")} == {"started-steady-1"}


def test_a_stream_s_changes_are_gathered_for_the_batching_window_as_lambda_gathers_them(stack: Stack) -> None:
    dynamodb = client("dynamodb", stack.endpoint, REGION)
    for change in ("c1", "c2", "c3", "c4"):  # within BatchedFunction's 3 s window, polled every 0.1 s here
        dynamodb.put_item(TableName=stack.resolver.ref("ChangesTable"), Item={"pk": {"S": change}})
        time.sleep(0.3)

    wait_for(lambda: any(note.startswith("batch-") for note in stack.notes()))
    time.sleep(1)

    assert {note for note in stack.notes() if note.startswith("batch-")} == {"batch-c1+c2+c3+c4"}


def test_api_gateway_answers_for_functions_that_time_out_or_answer_too_late(stack: Stack) -> None:
    timed_out = stack.get("/sleep")  # SlowFunction's own 2 s timeout ends it: a function error
    too_late = stack.get(f"/late?seconds={INTEGRATION_TIMEOUT + 2}")  # API Gateway stops waiting first

    assert timed_out == (500, {"message": "Internal Server Error"})
    assert too_late == (503, {"message": "Service Unavailable"})


def test_each_functions_credentials_work_from_outside_with_the_same_rights(stack: Stack) -> None:
    credentials = stack.policy.credentials["ReaderFunction"]
    as_reader = boto3.client(
        "dynamodb",
        endpoint_url=stack.endpoint,
        region_name=REGION,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    )
    table = stack.resolver.ref("NotesTable")

    as_reader.get_item(TableName=table, Key={"pk": {"S": "x"}})
    with pytest.raises(as_reader.exceptions.ClientError, match="AccessDeniedException"):
        as_reader.put_item(TableName=table, Item={"pk": {"S": "x"}})
    client("dynamodb", stack.endpoint, REGION).put_item(TableName=table, Item={"pk": {"S": "by-admin"}})
    stack.policy.take_denials()
    unknown = boto3.client("sqs", endpoint_url=stack.endpoint, region_name=REGION,
                           aws_access_key_id="AKIAUNKNOWN", aws_secret_access_key="x")  # fmt: skip
    with pytest.raises(unknown.exceptions.ClientError, match="security token"):
        unknown.list_queues()
