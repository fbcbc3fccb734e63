"""The one builder of Lambda events and contexts, shaped as AWS sends them; the runner and tests use it."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote

from local.template.model import ACCOUNT_ID, LOCAL_API_ID

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = ("application/json", "application/xml", "application/x-www-form-urlencoded")
# What Lambda copies from SQS's message attributes into a record's "attributes".
_SQS_SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as the client sent it: raw (percent-encoded) path and query, headers in order."""

    method: str
    path: str
    query: str = ""
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """All values of one header, comma-joined as API Gateway does; None when absent."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None

    @property
    def decoded_path(self) -> str:
        # HTTP APIs hand functions the path already percent-decoded (rawPath included).
        return unquote(self.path)


@dataclass(frozen=True)
class ApiContext:
    api_id: str = LOCAL_API_ID
    account_id: str = ACCOUNT_ID
    region: str = "us-east-1"
    stage: str = "$default"
    partition: str = "aws"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _headers(request: HttpRequest) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in request.headers:
        name = key.lower()
        if name == "cookie":
            # Payload 2.0 moves cookies out of the headers into their own list.
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    return headers, cookies


def _query_parameters(query: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        parameters[key] = f"{parameters[key]},{value}" if key in parameters else value
    return parameters


def _is_text(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_TYPES


def _request_time(now: datetime) -> str:
    return f"{now:%d}/{_MONTHS[now.month - 1]}/{now:%Y:%H:%M:%S} +0000"


def _request_context(
    request: HttpRequest, route_key: str, api: ApiContext, request_id: str | None, now: datetime
) -> dict[str, Any]:
    domain = (request.header("host") or f"{api.api_id}.execute-api.{api.region}.amazonaws.com").split(":")[0]
    return {
        "accountId": api.account_id,
        "apiId": api.api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": request.method.upper(),
            "path": request.decoded_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": request.header("user-agent") or "",
        },
        "requestId": request_id or base64.b64encode(secrets.token_bytes(10)).decode(),
        "routeKey": route_key,
        "stage": api.stage,
        "time": _request_time(now),
        "timeEpoch": int(now.timestamp() * 1000),
    }


def http_api_event(
    request: HttpRequest,
    route_key: str,
    path_parameters: Mapping[str, str] | None = None,
    *,
    authorizer_context: Mapping[str, Any] | None = None,
    api: ApiContext = ApiContext(),
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """API Gateway HTTP API request event, payload format 2.0."""
    now = now or datetime.now(UTC)
    headers, cookies = _headers(request)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.decoded_path,
        "rawQueryString": request.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if request.query:
        event["queryStringParameters"] = _query_parameters(request.query)
    event["requestContext"] = _request_context(request, route_key, api, request_id, now)
    if authorizer_context is not None:
        event["requestContext"]["authorizer"] = {"lambda": dict(authorizer_context)}
    if request.body:
        text = None
        if _is_text(request.header("content-type")):
            try:
                text = request.body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        event["body"] = text if text is not None else base64.b64encode(request.body).decode()
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    return event


def execute_api_arn(api: ApiContext, resource: str) -> str:
    """An ARN of the API: a request's (`route_arn`), or an authorizer's ("authorizers/<id>")."""
    return f"arn:{api.partition}:execute-api:{api.region}:{api.account_id}:{api.api_id}/{resource}"


def route_arn(request: HttpRequest, api: ApiContext) -> str:
    """The ARN API Gateway gives a request: an authorizer's `routeArn`, the source of an integration's call."""
    return execute_api_arn(api, f"{api.stage}/{request.method.upper()}{request.decoded_path}")


def authorizer_event(
    request: HttpRequest,
    route_key: str,
    path_parameters: Mapping[str, str] | None = None,
    *,
    identity_source: Sequence[str] = (),
    api: ApiContext = ApiContext(),
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """HTTP API Lambda authorizer event, payload format 2.0 (type REQUEST); it never carries the body."""
    event = http_api_event(request, route_key, path_parameters, api=api, request_id=request_id, now=now)
    event.pop("body", None)
    event.pop("isBase64Encoded", None)
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": route_arn(request, api),
        "identitySource": list(identity_source),
    } | {key: value for key, value in event.items() if key != "version"}


def http_api_response(result: Any) -> HttpResponse:
    """Map a function's payload 2.0 answer to HTTP, inferring a 200 JSON answer without statusCode."""
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], body.encode())
    headers = [(str(key), str(value)) for key, value in (result.get("headers") or {}).items()]
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(key), str(value)) for value in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise ValueError("the response body must be a string")
    try:
        payload = base64.b64decode(body, validate=True) if result.get("isBase64Encoded") else body.encode()
    except binascii.Error as error:
        raise ValueError("isBase64Encoded is true but the body is not base64") from error
    return HttpResponse(int(result["statusCode"]), headers, payload)


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [_b64(item) for item in value.get("BinaryListValues") or []],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = _b64(value["BinaryValue"])
    return converted


def tumbling_window_fields(
    shard_id: str, event_source_arn: str, seconds: int, now: datetime | None = None
) -> dict[str, Any]:
    """What Lambda adds to a stream event when the event source has a tumbling window: the shard, the
    window, and the state the function returned for it (locally every invocation is a window of its own)."""
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "shardId": shard_id,
        "eventSourceARN": event_source_arn,
        "window": {"start": _iso_z(start), "end": _iso_z(start + timedelta(seconds=seconds))},
        "state": {},
        "isFinalInvokeForWindow": True,
        "isWindowTerminatedEarly": False,
    }


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event, from a message of a ReceiveMessage answer (boto3 shape)."""
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {key: attributes[key] for key in _SQS_SYSTEM_ATTRIBUTES if key in attributes},
        "messageAttributes": {
            name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record | {"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region}


def sqs_event(messages: Iterable[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [sqs_record(message, queue_arn, region) for message in messages]}


def _b64(value: Any) -> str:
    return base64.b64encode(value).decode() if isinstance(value, bytes | bytearray) else str(value)


def _json_ready(value: Any) -> Any:
    """boto3 turns B/BS attribute values into bytes; Lambda delivers them base64-encoded."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return _b64(value)
    return value


def dynamodb_stream_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """One record of a DynamoDB stream event, from a record of a GetRecords answer (boto3 shape)."""
    change = _json_ready(dict(record["dynamodb"]))
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    converted: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:
        converted["userIdentity"] = dict(record["userIdentity"])
    return converted


def dynamodb_stream_event(records: Iterable[Mapping[str, Any]], stream_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [dynamodb_stream_record(record, stream_arn, region) for record in records]}


def s3_event_record(
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str,
    region: str = "us-east-1",
    event_name: str = "ObjectCreated:Put",
    event_time: datetime | None = None,
    version_id: str | None = None,
    configuration_id: str = "local",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """One S3 event notification record; `key` is the object key as stored (it is URL-encoded here)."""
    event_time = event_time or datetime.now(UTC)
    s3_object: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag.strip('"')}
    if version_id:
        s3_object["versionId"] = version_id
    s3_object["sequencer"] = f"{time.time_ns():018X}"
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{event_time.microsecond // 1000:03d}Z",
        "eventName": event_name.removeprefix("s3:"),
        "userIdentity": {"principalId": "AWS:LOCALDEVELOPER"},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {
            "x-amz-request-id": secrets.token_hex(8).upper(),
            "x-amz-id-2": base64.b64encode(secrets.token_bytes(48)).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "LOCALOWNER"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": s3_object,
        },
    }


def s3_event(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Records": [dict(record) for record in records]}


def scheduled_event(
    resource_arn: str, *, region: str = "us-east-1", account_id: str = ACCOUNT_ID, now: datetime | None = None
) -> dict[str, Any]:
    """The event an EventBridge schedule hands a function when the schedule sets no Input."""
    now = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [resource_arn],
        "detail": {},
    }


def async_failure_record(
    function_arn: str,
    request_id: str,
    payload: Any,
    *,
    attempts: int,
    error_type: str,
    error_message: str,
    condition: str = "RetriesExhausted",
    now: datetime | None = None,
) -> dict[str, Any]:
    """What Lambda sends an asynchronous invocation's OnFailure destination once it stops retrying: the
    event (`requestPayload`), how often it tried, and the function's error."""
    now = now or datetime.now(UTC)
    return {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": error_message, "errorType": error_type, "stackTrace": []},
    }
