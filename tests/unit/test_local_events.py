"""local.lambda_runtime.events: the Lambda events and context the runner hands to functions, shaped as AWS sends
them."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest

from local.lambda_runtime.events import (
    ApiContext,
    HttpRequest,
    authorizer_event,
    dynamodb_stream_record,
    http_api_event,
    http_api_response,
    s3_event,
    s3_event_record,
    scheduled_event,
    sqs_event,
)
from local.lambda_runtime.worker import LambdaContext

NOW = datetime(2024, 3, 5, 7, 8, 9, 123000, tzinfo=UTC)
REQUEST = HttpRequest(
    "GET",
    "/articles/caf%C3%A9",
    "tag=a&tag=b&q=x%20y&empty=",
    headers=[
        ("Host", "127.0.0.1:3000"),
        ("User-Agent", "curl/8"),
        ("X-Multi", "one"),
        ("x-multi", "two"),
        ("Cookie", "a=1; b=2"),
    ],
)


def test_http_api_event() -> None:
    event = http_api_event(REQUEST, "GET /articles/{slug}", {"slug": "café"}, request_id="rid", now=NOW)

    assert event == {
        "version": "2.0",
        "routeKey": "GET /articles/{slug}",
        "rawPath": "/articles/café",
        "rawQueryString": "tag=a&tag=b&q=x%20y&empty=",
        "cookies": ["a=1", "b=2"],
        "headers": {
            "host": "127.0.0.1:3000",
            "user-agent": "curl/8",
            "x-multi": "one,two",
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-proto": "http",
        },
        "queryStringParameters": {"tag": "a,b", "q": "x y", "empty": ""},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {
                "method": "GET",
                "path": "/articles/café",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "curl/8",
            },
            "requestId": "rid",
            "routeKey": "GET /articles/{slug}",
            "stage": "$default",
            "time": "05/Mar/2024:07:08:09 +0000",
            "timeEpoch": 1709622489123,
        },
        "isBase64Encoded": False,
        "pathParameters": {"slug": "café"},
    }


def test_http_api_event_without_query_parameters_or_cookies() -> None:
    event = http_api_event(HttpRequest("GET", "/articles"), "GET /articles")

    assert "queryStringParameters" not in event
    assert "cookies" not in event
    assert "pathParameters" not in event
    assert "body" not in event
    assert event["requestContext"]["domainName"] == "local.execute-api.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("content_type", "body", "expected", "encoded"),
    [
        ("application/json; charset=utf-8", b'{"a": 1}', '{"a": 1}', False),
        ("text/plain", "héllo".encode(), "héllo", False),
        ("application/x-www-form-urlencoded", b"a=1", "a=1", False),
        ("application/xml", b"<a/>", "<a/>", False),
        ("image/png", b"\x89PNG", base64.b64encode(b"\x89PNG").decode(), True),
        (None, b"plain", base64.b64encode(b"plain").decode(), True),
        ("text/plain", b"\xff", base64.b64encode(b"\xff").decode(), True),
    ],
)
def test_http_api_event_body(content_type: str | None, body: bytes, expected: str, encoded: bool) -> None:
    headers = [("Content-Type", content_type)] if content_type else []
    event = http_api_event(HttpRequest("POST", "/x", headers=headers, body=body), "POST /x")

    assert (event["body"], event["isBase64Encoded"]) == (expected, encoded)


def test_http_api_event_with_authorizer_context() -> None:
    event = http_api_event(REQUEST, "GET /x", authorizer_context={"token_id": "abcd1234"})

    assert event["requestContext"]["authorizer"] == {"lambda": {"token_id": "abcd1234"}}


def test_authorizer_event() -> None:
    request = HttpRequest("POST", "/admin/articles/1/publish", headers=[("Authorization", "Bearer t")], body=b"{}")
    event = authorizer_event(
        request,
        "POST /admin/articles/{article_id}/publish",
        {"id": "1"},
        identity_source=["Bearer t"],
        api=ApiContext(region="eu-west-1"),
    )

    assert event["version"] == "2.0"
    assert event["type"] == "REQUEST"
    assert (
        event["routeArn"] == "arn:aws:execute-api:eu-west-1:123456789012:local/$default/POST/admin/articles/1/publish"
    )
    assert event["identitySource"] == ["Bearer t"]
    assert event["routeKey"] == "POST /admin/articles/{article_id}/publish"
    assert event["headers"]["authorization"] == "Bearer t"
    assert event["pathParameters"] == {"id": "1"}
    assert "body" not in event
    assert "isBase64Encoded" not in event


def test_http_api_response_mapping() -> None:
    response = http_api_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Count": 2},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "cookies": ["a=1", "b=2; Secure"],
            "body": '{"ok": true}',
        }
    )

    assert response.status == 201
    assert response.headers == [
        ("Content-Type", "application/json"),
        ("X-Count", "2"),
        ("X-Many", "a"),
        ("X-Many", "b"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2; Secure"),
    ]
    assert response.body == b'{"ok": true}'


def test_http_api_response_base64_and_inferred() -> None:
    binary = http_api_response({"statusCode": 200, "body": base64.b64encode(b"\x00").decode(), "isBase64Encoded": True})
    inferred = http_api_response({"hello": "world"})
    text = http_api_response("hi")

    assert (binary.status, binary.body) == (200, b"\x00")
    assert (inferred.status, inferred.headers, inferred.body) == (
        200,
        [("content-type", "application/json")],
        b'{"hello": "world"}',
    )
    assert text.body == b"hi"


def test_http_api_response_rejects_a_body_that_is_not_text() -> None:
    with pytest.raises(ValueError, match="string"):
        http_api_response({"statusCode": 200, "body": {"items": []}})


def test_lambda_context() -> None:
    context = LambdaContext("fn", memory_limit_in_mb=256, timeout_seconds=2, region="eu-west-1")

    assert context.function_name == "fn"
    assert context.function_version == "$LATEST"
    assert context.memory_limit_in_mb == 256
    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:123456789012:function:fn"
    assert context.log_group_name == "/aws/lambda/fn"
    assert len(context.aws_request_id) == 36
    remaining = context.get_remaining_time_in_millis()
    assert 1900 < remaining <= 2000
    time.sleep(0.05)
    assert context.get_remaining_time_in_millis() < remaining


def test_sqs_event_from_a_receive_message_answer() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "MD5OfBody": "md5",
        "Body": "hello",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "s", "Other": "x"},
        "MD5OfMessageAttributes": "md5a",
        "MessageAttributes": {
            "kind": {"StringValue": "job", "DataType": "String"},
            "blob": {"BinaryValue": b"\x01", "DataType": "Binary"},
        },
    }

    (record,) = sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")["Records"]

    assert record == {
        "messageId": "m1",
        "receiptHandle": "r1",
        "body": "hello",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "s"},
        "messageAttributes": {
            "kind": {"stringValue": "job", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "blob": {"binaryValue": "AQ==", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        },
        "md5OfBody": "md5",
        "md5OfMessageAttributes": "md5a",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


def test_dynamodb_stream_record_from_a_get_records_answer() -> None:
    raw = {
        "eventID": "e1",
        "eventName": "INSERT",
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": NOW,
            "Keys": {"pk": {"S": "a"}},
            "NewImage": {"pk": {"S": "a"}, "blob": {"B": b"\x01"}, "set": {"BS": [b"\x02"]}},
            "SequenceNumber": "100",
            "SizeBytes": 10,
            "StreamViewType": "NEW_IMAGE",
        },
    }

    record = dynamodb_stream_record(raw, "arn:stream", "eu-west-1")

    assert record["eventVersion"] == "1.1"
    assert record["awsRegion"] == "eu-west-1"
    assert record["eventSourceARN"] == "arn:stream"
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1709622489
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": "AQ=="}
    assert record["dynamodb"]["NewImage"]["set"] == {"BS": ["Ag=="]}
    assert raw["dynamodb"]["NewImage"]["blob"] == {"B": b"\x01"}  # type: ignore[index]


def test_s3_event() -> None:
    record = s3_event_record(
        "uploads",
        "in/my photo.jpg",
        size=3,
        etag='"abc"',
        region="eu-west-1",
        event_name="s3:ObjectCreated:Put",
        event_time=NOW,
        version_id="v1",
        configuration_id="cfg",
    )

    assert s3_event([record]) == {"Records": [record]}
    assert record["eventVersion"] == "2.1"
    assert record["eventSource"] == "aws:s3"
    assert record["eventTime"] == "2024-03-05T07:08:09.123Z"
    assert record["eventName"] == "ObjectCreated:Put"
    assert set(record) >= {"userIdentity", "requestParameters", "responseElements"}
    assert record["s3"]["bucket"] == {
        "name": "uploads",
        "ownerIdentity": {"principalId": "LOCALOWNER"},
        "arn": "arn:aws:s3:::uploads",
    }
    s3_object = record["s3"]["object"]
    assert (s3_object["key"], s3_object["size"], s3_object["eTag"], s3_object["versionId"]) == (
        "in/my+photo.jpg",
        3,
        "abc",
        "v1",
    )
    assert s3_object["sequencer"]


def test_scheduled_event() -> None:
    event = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/r", now=NOW)

    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["account"] == "123456789012"
    assert event["time"] == "2024-03-05T07:08:09Z"
    assert event["region"] == "us-east-1"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/r"]
    assert event["detail"] == {}
    assert len(event["id"]) == 36
