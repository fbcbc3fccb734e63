"""X-Ray traces of the HTTP functions hold no response bodies: the editor's answers are subscriber lists
and exports. X-Ray is replaced by a recorder of what the functions' tracer hands it, as moto replaces AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from newsdesk import dependencies
from newsdesk.clock import utc_now
from newsdesk.models.subscribers import Subscriber, SubscriberStatus
from newsdesk.observability import tracer
from tests.integration.conftest import Stack
from tests.support.events import sample_event

READER = "reader@example.org"


class RecordedSubsegment:
    def __init__(self, name: str) -> None:
        self.name = name
        self.metadata: dict[str, Any] = {}
        self.annotations: dict[str, Any] = {}

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self.metadata[f"{namespace}.{key}"] = value

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value


class XRayRecorder:
    """What the tracer would send to X-Ray, kept in memory."""

    def __init__(self) -> None:
        self.subsegments: list[RecordedSubsegment] = []

    @contextmanager
    def in_subsegment(self, name: str, **_: Any) -> Iterator[RecordedSubsegment]:
        subsegment = RecordedSubsegment(name)
        self.subsegments.append(subsegment)
        yield subsegment

    def text(self) -> str:
        return json.dumps([(s.name, s.metadata, s.annotations) for s in self.subsegments], default=str)


@pytest.fixture
def xray(monkeypatch: pytest.MonkeyPatch) -> XRayRecorder:
    recorder = XRayRecorder()
    monkeypatch.setattr(tracer, "provider", recorder)
    return recorder


def test_subscriber_lists_and_exports_never_reach_xray(stack: Stack, xray: XRayRecorder) -> None:
    # Given a confirmed subscriber
    now = utc_now()
    subscriber = Subscriber(email=READER, status=SubscriberStatus.PENDING, created_at=now, updated_at=now)
    repository = dependencies.container().subscriber_repository
    assert repository.create_pending(subscriber)
    assert repository.confirm(subscriber, now)

    # When an editor lists and exports the subscribers, and a reader lists the articles
    listing = stack.call("EditorFunction", sample_event("editor-list-subscribers", query={"status": "confirmed"}))
    export = stack.call("EditorFunction", sample_event("editor-export-subscribers", query={}))
    articles = stack.call("PublicFunction", sample_event("public-list-articles", query={}))

    # Then the answers held the address, the handlers were traced, and no trace holds an answer
    assert READER in listing.body
    assert READER in export.body
    assert articles.status == 200
    assert [s.name for s in xray.subsegments] == ["## lambda_handler"] * 3
    assert all(not s.metadata for s in xray.subsegments), xray.text()
    assert READER not in xray.text()
