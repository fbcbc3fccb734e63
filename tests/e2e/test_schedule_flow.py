"""Scheduled publishing on the local stack, fired on demand through POST /_local/schedules/run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e


def test_a_scheduled_article_goes_live_when_the_schedules_run(local_stack: LocalStack) -> None:
    article = local_stack.request(
        "POST", "/admin/articles", json_body={"title": "Dawn edition", "author": "Ada", "body": "Early."}, editor=True
    ).json()
    publish_at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    scheduled = local_stack.request(
        "POST", f"/admin/articles/{article['id']}/schedule", json_body={"publish_at": publish_at}, editor=True
    )
    assert scheduled.status == 200, scheduled.body
    assert local_stack.request("GET", f"/articles/{article['slug']}").status == 404

    time.sleep(2.5)
    fired = local_stack.request("POST", "/_local/schedules/run?function=SchedulerFunction")

    assert fired.status == 200
    assert {entry["schedule"] for entry in fired.json()["fired"]} == {"PublishDue", "WeeklyDigest", "Housekeeping"}
    assert all(entry["ok"] for entry in fired.json()["fired"])
    assert local_stack.request("GET", f"/articles/{article['slug']}").status == 200


def test_one_schedule_fires_by_its_name(local_stack: LocalStack) -> None:
    fired = local_stack.request("POST", "/_local/schedules/run?schedule=PublishDue")

    assert fired.status == 200, fired.body
    assert fired.json()["fired"] == [{"function": "SchedulerFunction", "schedule": "PublishDue", "ok": True}]


def test_running_an_unknown_function_or_schedule_is_404(local_stack: LocalStack) -> None:
    assert local_stack.request("POST", "/_local/schedules/run?function=Nope").status == 404
    unknown = local_stack.request("POST", "/_local/schedules/run?schedule=Nope")
    assert unknown.status == 404
    assert "PublishDue" in unknown.json()["message"]
