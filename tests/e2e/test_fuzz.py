"""Schemathesis fuzzes every route the OpenAPI document describes, on the local stack, with the editor token.

No request may get a 5xx, and every answer must be one the document describes: its status code, content type
and body schema. Routes come from the served document, so new routes are fuzzed without touching this file.
`make fuzz` runs the same test with many more examples (FUZZ_EXAMPLES).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import Case, Response
from schemathesis.errors import FailureGroup
from schemathesis.schemas import BaseSchema

from newsdesk.api.routing import openapi_json
from tests.e2e.conftest import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

# Examples per operation in the fuzzing phase; the coverage phase adds its own boundary cases to each.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
# Sequences of linked requests (create an article, then read, change, publish, delete it...).
WORKFLOWS = max(10, EXAMPLES // 2)
MIN_REQUESTS = int(os.environ.get("FUZZ_MIN_REQUESTS", "1000"))
SEED = int(os.environ.get("FUZZ_SEED", "20261128"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


def fuzzed_schema() -> BaseSchema:
    """The API's OpenAPI document, as the product builds it for `GET /openapi.json`."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # Valid and invalid inputs alike; the same cases on every run.
            "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )
    return schemathesis.openapi.from_dict(json.loads(openapi_json()), config=config)


# The operations are read when pytest collects this module (one test each); `served_document` checks that
# the stack serves exactly this document.
schema = fuzzed_schema()
OPERATIONS = [f"{method.upper()} {path}" for path, methods in schema.raw_schema["paths"].items() for method in methods]


@pytest.fixture(scope="module")
def served_document(local_stack: LocalStack) -> dict[str, Any]:
    reply = local_stack.request("GET", "/openapi.json")
    assert reply.status == 200
    document: dict[str, Any] = reply.json()
    assert document == schema.raw_schema, "the local stack serves another document than the one fuzzed"
    return document


@pytest.fixture(scope="module")
def sent(request: pytest.FixtureRequest) -> Iterator[Counter[tuple[str, int]]]:
    """Counts the requests sent, per operation and status; after the run, prints them and checks the budget."""
    counts: Counter[tuple[str, int]] = Counter()
    started = time.monotonic()
    yield counts
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    per_status = Counter[int]()
    for (_, status), count in counts.items():
        per_status[status] += count
    operations = {operation for operation, _ in counts}
    _print(
        request.config,
        f"fuzz: {total} requests to {len(operations)} operations in {elapsed:.1f}s; "
        + ", ".join(f"{status}: {count}" for status, count in sorted(per_status.items())),
    )
    if os.environ.get("FUZZ_DETAILS"):
        for operation in sorted(operations):
            _print(request.config, f"  {operation}: {sorted((s, c) for (o, s), c in counts.items() if o == operation)}")
    if len(operations) == len(OPERATIONS):  # the whole document was fuzzed, not a selection of it
        assert total >= MIN_REQUESTS, f"only {total} requests were sent, fewer than {MIN_REQUESTS}"


def _print(config: pytest.Config, line: str) -> None:
    """Show `line` in pytest's output even when the test passes (output capture is paused for it)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(line)


@schema.parametrize()
def test_every_documented_route_answers_as_documented(
    case: Case, local_stack: LocalStack, served_document: dict[str, Any], sent: Counter[tuple[str, int]]
) -> None:
    # Given any request schemathesis makes up for a documented route (valid or not), with the editor token
    headers = {"Authorization": f"Bearer {local_stack.token}"}

    # When it is sent to the local stack
    response = case.call(base_url=local_stack.api_url, headers=headers)
    sent[(case.operation.label, response.status_code)] += 1

    # Then the answer is no 5xx, and its status, content type and body are the documented ones
    case.validate_response(response, headers=headers, transport_kwargs={"base_url": local_stack.api_url})


def test_linked_requests_answer_as_documented(
    local_stack: LocalStack, served_document: dict[str, Any], sent: Counter[tuple[str, int]]
) -> None:
    """Requests that follow each other, with ids taken from earlier answers, reach real articles."""
    headers = {"Authorization": f"Bearer {local_stack.token}"}
    failures: list[str] = []

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": local_stack.api_url, "headers": headers}

        def after_call(self, response: Response, case: Case) -> None:
            sent[(case.operation.label, response.status_code)] += 1

        def validate_response(self, response: Response, case: Case, *args: Any, **kwargs: Any) -> None:
            # Collected rather than raised: Hypothesis would replay the steps to report a failure, and replays
            # against a server whose data has moved on do not repeat.
            try:
                super().validate_response(response, case, *args, **kwargs)
            except FailureGroup as failure:
                failures.append(str(failure))

    # Which steps can follow depends on what the server answered; when it answers a replayed prefix of steps
    # differently, Hypothesis stops generating (schemathesis's own runner ends the phase there too).
    with contextlib.suppress(hypothesis.errors.FlakyStrategyDefinition):
        Workflow.run(
            settings=hypothesis.settings(
                max_examples=WORKFLOWS,
                stateful_step_count=8,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(hypothesis.HealthCheck),
            )
        )

    assert not failures, f"{len(failures)} failures; the first ones:\n" + "\n\n".join(failures[:5])


# What fuzzing found, kept as plain requests: (method, documented path, path sent, body, Content-Type, status).
FOUND = [
    pytest.param("POST", "/admin/articles", "/admin/articles", b"\xf9{", "application/json", 400,
                 id="an editor body that is not UTF-8"),
    pytest.param("POST", "/subscribers", "/subscribers", b"b/o\x04J\xa6\x00", "application/json", 400,
                 id="a public body that is not UTF-8"),
    pytest.param("PATCH", "/admin/articles/{article_id}", "/admin/articles/{article_id}", b'{"title": "x"}',
                 "multipart/form-data", 415, id="multipart without a boundary"),
    pytest.param("POST", "/admin/articles/{article_id}/schedule", "/admin/articles/{article_id}/schedule",
                 b'{"publish_at": "0001-01-01T00:00:00+09:27"}', "application/json", 422,
                 id="a time before year 1 once in UTC"),
    pytest.param("POST", "/admin/articles/{article_id}/test-email", "/admin/articles/{article_id}/test-email",
                 b'{"to": "reader@example.org"}', "application/json", 202, id="a 202 without a body"),
    pytest.param("DELETE", "/admin/subscribers/{email}", "/admin/subscribers/%2Fe%3D%21%40example.org", None, None,
                 404, id="an encoded slash in a path parameter"),
    pytest.param("GET", "/openapi.json", "/openapi.json", None, None, 200, id="the document itself"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "documented_path", "path", "body", "content_type", "status"), FOUND)
def test_what_fuzzing_found_stays_fixed(
    local_stack: LocalStack,
    served_document: dict[str, Any],
    method: str,
    documented_path: str,
    path: str,
    body: bytes | None,
    content_type: str | None,
    status: int,
) -> None:
    article = local_stack.request(
        "POST", "/admin/articles", json_body={"title": "Found", "author": "Ada", "body": "x"}, editor=True
    ).json()
    headers = {
        "Authorization": f"Bearer {local_stack.token}",
        **({"Content-Type": content_type} if content_type else {}),
    }

    response = requests.request(
        method,
        local_stack.api_url + path.replace("{article_id}", article["id"]),
        data=body,
        headers=headers,
        timeout=60,
    )

    assert response.status_code == status, response.text
    assert str(status) in served_document["paths"][documented_path][method.lower()]["responses"]
    schema[documented_path][method].validate_response(response)


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "PROPFIND"])
def test_a_method_without_a_route_gets_the_gateways_404(local_stack: LocalStack, method: str) -> None:
    response = requests.request(method, f"{local_stack.api_url}/feed.xml", timeout=60)

    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})
