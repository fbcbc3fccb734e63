"""The local runner without AWS: event filters, schedule expressions, route selection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from local.apigateway.server import match_route
from local.lambda_runtime.cron import Cron, next_fire
from local.lambda_runtime.filters import EventFilters
from local.template.model import Route, Schedule

RECORD = {
    "eventName": "INSERT",
    "dynamodb": {"NewImage": {"kind": {"S": "publication"}, "count": {"N": "3"}}},
    "size": 5,
}


@pytest.mark.parametrize(
    ("pattern", "matched"),
    [
        ('{"eventName": ["INSERT"]}', True),
        ('{"eventName": ["MODIFY", "REMOVE"]}', False),
        ('{"dynamodb": {"NewImage": {"kind": {"S": ["publication"]}}}}', True),
        ('{"dynamodb": {"NewImage": {"kind": {"S": [{"prefix": "pub"}]}}}}', True),
        ('{"dynamodb": {"NewImage": {"kind": {"S": [{"prefix": "draft"}]}}}}', False),
        ('{"dynamodb": {"NewImage": {"missing": {"S": ["x"]}}}}', False),
        ('{"dynamodb": {"NewImage": {"missing": [{"exists": false}]}}}', True),
        ('{"dynamodb": {"NewImage": {"kind": {"S": [{"exists": true}]}}}}', True),
        # As on AWS, `exists` matches leaf nodes only, never an intermediate node such as a map.
        ('{"dynamodb": {"NewImage": {"kind": [{"exists": true}]}}}', False),
        ('{"eventName": [{"anything-but": ["REMOVE"]}]}', True),
        ('{"eventName": [{"equals-ignore-case": "insert"}]}', True),
        ('{"size": [{"numeric": [">", 1, "<=", 5]}]}', True),
        ('{"size": [{"numeric": [">", 5]}]}', False),
    ],
)
def test_filter_patterns(pattern: str, matched: bool) -> None:
    filters = EventFilters({"Filters": [{"Pattern": pattern}]})

    assert filters.matches(RECORD) is matched


def test_no_filter_matches_and_filters_are_alternatives() -> None:
    assert EventFilters(None).matches(RECORD)
    assert EventFilters(
        {"Filters": [{"Pattern": '{"eventName": ["REMOVE"]}'}, {"Pattern": '{"eventName": ["INSERT"]}'}]}
    ).matches(RECORD)
    assert not EventFilters({"Filters": [{"Pattern": '{"eventName": ["REMOVE"]}'}]}).matches(RECORD)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 3 * * ? *", "2024-03-05T07:08", "2024-03-06T03:00"),
        ("*/15 * * * ? *", "2024-03-05T07:08", "2024-03-05T07:15"),
        ("0 9 ? * MON-FRI *", "2024-03-08T10:00", "2024-03-11T09:00"),  # Friday -> Monday
        ("0 0 L * ? *", "2024-02-10T00:00", "2024-02-29T00:00"),
        ("30 12 1 JAN,JUL ? *", "2024-03-05T00:00", "2024-07-01T12:30"),
        ("0 10 ? * 2#1 *", "2024-03-05T00:00", "2024-04-01T10:00"),  # first Monday
        ("0 0 1 1 ? 2020", "2024-03-05T00:00", None),
    ],
)
def test_cron_next(expression: str, after: str, expected: str | None) -> None:
    found = Cron(expression).next_after(datetime.fromisoformat(after).replace(tzinfo=UTC))

    assert found == (datetime.fromisoformat(expected).replace(tzinfo=UTC) if expected else None)


def test_unsupported_cron_is_refused() -> None:
    with pytest.raises(ValueError, match="not emulated"):
        Cron("0 0 15W * ? *")


def test_next_fire_for_rate_and_time_zone() -> None:
    now = datetime(2024, 3, 5, 7, 8, tzinfo=UTC)

    assert next_fire(Schedule("F", "S", "Schedule", "rate(5 minutes)"), now) == datetime(2024, 3, 5, 7, 13, tzinfo=UTC)
    assert next_fire(Schedule("F", "S", "Schedule", "rate(1 hour)"), now) == datetime(2024, 3, 5, 8, 8, tzinfo=UTC)
    paris = Schedule("F", "S", "ScheduleV2", "cron(0 9 * * ? *)", timezone="Europe/Paris")
    assert next_fire(paris, now) == datetime(2024, 3, 5, 8, 0, tzinfo=UTC)


ROUTES = [
    Route("GET", "/articles", "Public", "List"),
    Route("GET", "/articles/{slug}", "Public", "Get"),
    Route("GET", "/articles/latest", "Public", "Latest"),
    Route("ANY", "/articles/{slug}", "Editor", "Any"),
    Route("GET", "/{proxy+}", "Fallback", "Proxy"),
    Route("GET", "/files/{path+}", "Files", "Files"),
]


@pytest.mark.parametrize(
    ("method", "path", "event_name", "parameters"),
    [
        ("GET", "/articles", "List", {}),
        ("GET", "/articles/latest", "Latest", {}),
        ("GET", "/articles/hello", "Get", {"slug": "hello"}),
        ("PATCH", "/articles/hello", "Any", {"slug": "hello"}),
        ("GET", "/files/a/b", "Files", {"path": "a/b"}),
        ("GET", "/other/thing", "Proxy", {"proxy": "other/thing"}),
        ("GET", "/articles/hello/extra", "Proxy", {"proxy": "articles/hello/extra"}),
    ],
)
def test_route_selection(method: str, path: str, event_name: str, parameters: dict[str, str]) -> None:
    found = match_route(ROUTES, method, path)

    assert found is not None
    assert (found[0].event_name, found[1]) == (event_name, parameters)


def test_no_route_and_default_route() -> None:
    assert match_route(ROUTES, "POST", "/articles") is None
    assert match_route(ROUTES[:1], "GET", "/articles/") is None
    default = Route("ANY", "$default", "Default", "Default")
    found = match_route([*ROUTES[:1], default], "POST", "/anything")
    assert found == (default, {})
