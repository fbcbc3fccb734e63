"""The OpenAPI document tells a client everything it needs: the headers the routes send, the preferences
form, and nothing it does not use."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from newsdesk.api.routing import openapi_json


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(openapi_json())


def headers(document: dict[str, Any], method: str, path: str, status: str) -> set[str]:
    return set(document["paths"][path][method]["responses"][status].get("headers", {}))


@pytest.mark.parametrize("path", ["/articles", "/articles/{slug}", "/feed.xml"])
def test_public_reads_declare_their_validators_and_the_304(document: dict[str, Any], path: str) -> None:
    assert headers(document, "get", path, "200") == {"ETag", "Last-Modified", "Cache-Control"}
    assert headers(document, "get", path, "304") == {"ETag", "Last-Modified", "Cache-Control"}


def test_editor_routes_declare_etag_location_and_next_cursor(document: dict[str, Any]) -> None:
    assert headers(document, "post", "/admin/articles", "201") == {"ETag", "Location"}
    for method, path in [("get", "/admin/articles/{article_id}"), ("patch", "/admin/articles/{article_id}")]:
        assert headers(document, method, path, "200") == {"ETag"}
    for path in ["/admin/subscribers/export", "/admin/deliveries/{delivery_id}/recipients/export"]:
        assert headers(document, "get", path, "200") == {"X-Next-Cursor"}


def test_the_preferences_form_is_declared(document: dict[str, Any]) -> None:
    body = document["paths"]["/subscribers/preferences"]["post"]["requestBody"]
    form = body["content"]["application/x-www-form-urlencoded"]["schema"]

    assert form["required"] == ["frequency"]
    assert form["properties"]["frequency"]["enum"] == ["instant", "digest"]


def test_every_schema_is_referenced_and_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))

    assert refs <= set(schemas)
    assert set(schemas) <= refs
    assert "/openapi.json" in document["paths"]
