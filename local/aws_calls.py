"""What an AWS API request asks for: its service, its operation, and the IAM actions on resources it needs.

IAM authorizes every request by action and resource ARN. moto checks neither for most services, so the
local stack reads them off the request itself, as AWS does, for the services Newsdesk's functions call.
An operation this module does not know needs its action on "*": only a role allowed everything passes.
"""

from __future__ import annotations

import base64
import binascii
import email
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session

ANY_RESOURCE = "*"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
# The IAM prefix of a service's actions, where it is not the botocore service name.
_IAM_PREFIX = {"dynamodbstreams": "dynamodb", "sesv2": "ses", "cloudwatch": "cloudwatch"}
# botocore service names for a signing name that several services share, told apart by the request.
_SIGNING_NAMES = {"monitoring": "cloudwatch"}
# Operations IAM authorizes under another action's name.
_ACTION_NAMES = {
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("sesv2", "SendBulkEmail"): "SendBulkEmail",
}
# Operations that need no permission at all.
_ALWAYS_ALLOWED = {("sts", "GetCallerIdentity")}


@dataclass(frozen=True)
class Permission:
    """One IAM action on one resource ARN."""

    action: str
    resource: str


@dataclass(frozen=True)
class Call:
    """An AWS API request, as IAM sees it."""

    service: str
    operation: str
    protocol: str
    region: str
    access_key_id: str | None
    needs: tuple[Permission, ...]

    @property
    def needs_permission(self) -> bool:
        return (self.service, self.operation) not in _ALWAYS_ALLOWED


_VIRTUAL_HOSTED = re.compile(r"^(?P<bucket>.+)\.s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com$")


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    host: str = ""

    def bucket_and_key(self) -> tuple[str, str]:
        """S3's bucket and key, from a virtual-hosted (bucket.s3.amazonaws.com/key) or a path-style URL."""
        virtual = _VIRTUAL_HOSTED.match(self.host.split(":")[0])
        if virtual:
            return virtual.group("bucket"), self.path.lstrip("/")
        bucket, _, key = self.path.lstrip("/").partition("/")
        return bucket, key

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def form(self) -> dict[str, str]:
        fields = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True) if self.body else {}
        return {key: values[0] for key, values in (self.query | fields).items()}


@cache
def _model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def credential_scope(headers: Mapping[str, str], query: Mapping[str, list[str]]) -> tuple[str, str, str] | None:
    """(access key id, region, signing name) of a SigV4-signed request, header or presigned URL."""
    found = _CREDENTIAL.search(headers.get("authorization", ""))
    if found:
        return found.group(1), found.group(2), found.group(3)
    presigned = (query.get("X-Amz-Credential") or [""])[0].split("/")
    if len(presigned) == 5:
        return presigned[0], presigned[2], presigned[3]
    return None


def describe(
    method: str,
    url: str,
    headers: Mapping[str, str | bytes],
    body: bytes | str | None,
    *,
    account_id: str,
    default_region: str = "us-east-1",
) -> Call | None:
    """The call a request makes; None when it is not a signed AWS API request."""
    parts = urlsplit(url)
    lowered = {
        key.lower(): value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for key, value in headers.items()
    }
    host = parts.netloc or lowered.get("host", "")
    raw = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else b""
    request = _Request(method.upper(), unquote(parts.path) or "/", parse_qs(parts.query, True), lowered, raw, host)
    scope = credential_scope(lowered, request.query)
    if scope is None:
        return None
    access_key_id, region, signing_name = scope
    region = region or default_region
    service = _service(signing_name, request)
    model = _model(service)
    operation = _operation(service, model, request)
    context = _Context(region=region, account_id=account_id)
    resources = _RESOURCES.get(service, _no_resource)
    needs = tuple(resources(operation, request, context)) if operation else ()
    prefix = _IAM_PREFIX.get(service, service)
    needs = tuple(
        Permission(f"{prefix}:{_ACTION_NAMES.get((service, need.action), need.action)}", need.resource)
        for need in needs
    ) or (Permission(f"{prefix}:{operation or 'Unknown'}", ANY_RESOURCE),)
    return Call(service, operation or "Unknown", model.protocol, region, access_key_id, needs)


def _service(signing_name: str, request: _Request) -> str:
    target = request.headers.get("x-amz-target", "")
    if signing_name == "dynamodb" and target.startswith("DynamoDBStreams_"):
        return "dynamodbstreams"
    if signing_name == "ses":
        return "sesv2" if request.path.startswith("/v2/") else "ses"
    return _SIGNING_NAMES.get(signing_name, signing_name)


def _operation(service: str, model: Any, request: _Request) -> str | None:
    target = request.headers.get("x-amz-target")
    if target and "." in target:
        return target.rsplit(".", 1)[1]
    if service == "s3":
        return _s3_operation(request)
    form_encoded = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    if model.protocol == "query" or "Action" in request.query or form_encoded:
        return request.form().get("Action")
    return _rest_operation(model, request)


# ------------------------------------------------------------------------------------------- REST


def _rest_operation(model: Any, request: _Request) -> str | None:
    """The operation whose method and URI template fit the request best (literal segments win)."""
    best: tuple[int, str] | None = None
    for name in model.operation_names:
        http = model.operation_model(name).http
        if http.get("method") != request.method:
            continue
        template, _, wanted_query = http.get("requestUri", "/").partition("?")
        score = _uri_score(template, request.path)
        if score is None or any(part.split("=")[0] not in request.query for part in wanted_query.split("&") if part):
            continue
        if best is None or score > best[0]:
            best = (score, name)
    return best[1] if best else None


def _uri_score(template: str, path: str) -> int | None:
    wanted, given = template.strip("/").split("/"), path.strip("/").split("/")
    score = 0
    for index, part in enumerate(wanted):
        if part.endswith("+}"):
            return score if len(given) > index else None
        if index >= len(given):
            return None
        if part.startswith("{"):
            continue
        if part != given[index]:
            return None
        score += 1
    return score if len(wanted) == len(given) else None


def _s3_operation(request: _Request) -> str | None:
    bucket, key = request.bucket_and_key()
    query, method = request.query, request.method
    if not bucket:
        return "ListBuckets" if method == "GET" else None
    if not key:
        for sub in ("versioning", "notification", "lifecycle", "policy", "tagging", "cors", "encryption", "acl"):
            if sub in query:
                return {"GET": "GetBucket", "PUT": "PutBucket", "DELETE": "DeleteBucket"}.get(method, "") + sub.title()
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        if method == "GET":
            return "ListObjectVersions" if "versions" in query else "ListObjects"
        return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method)
    if "uploads" in query or "uploadId" in query:
        return {"POST": "PutObject", "PUT": "PutObject", "DELETE": "AbortMultipartUpload", "GET": "ListParts"}.get(
            method
        )
    if "tagging" in query:
        return {"GET": "GetObjectTagging", "PUT": "PutObjectTagging", "DELETE": "DeleteObjectTagging"}.get(method)
    if method in ("GET", "HEAD"):
        return "GetObjectVersion" if "versionId" in query else "GetObject"
    if method == "PUT":
        return "CopyObject" if "x-amz-copy-source" in request.headers else "PutObject"
    if method == "DELETE":
        return "DeleteObjectVersion" if "versionId" in query else "DeleteObject"
    return None


# -------------------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class _Context:
    region: str
    account_id: str

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"


Resources = Callable[[str, _Request, _Context], list[Permission]]


def _no_resource(operation: str, _request: _Request, _context: _Context) -> list[Permission]:
    return [Permission(operation, ANY_RESOURCE)]


def _table_arn(name: str, context: _Context) -> str:
    return name if name.startswith("arn:") else context.arn("dynamodb", f"table/{name}")


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _dynamodb(operation: str, request: _Request, context: _Context) -> list[Permission]:
    body = request.json()
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Permission(operation, _table_arn(name, context)) for name in body.get("RequestItems") or {}]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        # IAM authorizes each item of a transaction as its own single-item action.
        needs = []
        for entry in body.get("TransactItems") or []:
            for kind, item in entry.items():
                action = "GetItem" if kind == "Get" else _TRANSACT_ACTIONS.get(kind, kind)
                needs.append(Permission(action, _table_arn(str(item.get("TableName", "")), context)))
        return needs
    name = body.get("TableName")
    if not name:
        return [Permission(operation, ANY_RESOURCE)]
    arn = _table_arn(str(name), context)
    index = body.get("IndexName")
    return [Permission(operation, f"{arn}/index/{index}" if index else arn)]


def _dynamodb_streams(operation: str, request: _Request, context: _Context) -> list[Permission]:
    stream = request.json().get("StreamArn")
    return [Permission(operation, str(stream) if stream else context.arn("dynamodb", "table/*/stream/*"))]


def _queue_arn_from_url(url: str, context: _Context) -> str:
    account, _, name = urlsplit(url).path.strip("/").partition("/")
    return f"arn:aws:sqs:{context.region}:{account or context.account_id}:{name}"


def _sqs(operation: str, request: _Request, context: _Context) -> list[Permission]:
    params: dict[str, Any] = request.json() if request.headers.get("x-amz-target") else dict(request.form())
    if operation == "StartMessageMoveTask":
        needs = [Permission(operation, str(params.get("SourceArn", ANY_RESOURCE)))]
        if params.get("DestinationArn"):
            needs.append(Permission("SendMessage", str(params["DestinationArn"])))
        return needs
    if params.get("QueueUrl"):
        return [Permission(operation, _queue_arn_from_url(str(params["QueueUrl"]), context))]
    if params.get("QueueName"):
        account = str(params.get("QueueOwnerAWSAccountId") or context.account_id)
        return [Permission(operation, f"arn:aws:sqs:{context.region}:{account}:{params['QueueName']}")]
    return [Permission(operation, ANY_RESOURCE)]


def _s3(operation: str, request: _Request, _context: _Context) -> list[Permission]:
    bucket, key = request.bucket_and_key()
    if not bucket:
        return [Permission("ListAllMyBuckets", ANY_RESOURCE)]
    actions = {
        "ListObjects": "ListBucket",
        "HeadBucket": "ListBucket",
        "ListObjectVersions": "ListBucketVersions",
        "GetBucketNotification": "GetBucketNotification",
        "PutBucketNotification": "PutBucketNotification",
        "GetBucketLifecycle": "GetLifecycleConfiguration",
        "PutBucketLifecycle": "PutLifecycleConfiguration",
        "DeleteBucketLifecycle": "PutLifecycleConfiguration",
        "DeleteObjects": "DeleteObject",
        "ListParts": "ListMultipartUploadParts",
    }
    action = actions.get(operation, operation)
    if operation == "DeleteObjects":
        return [Permission(action, f"arn:aws:s3:::{bucket}/*")]
    if not key:
        return [Permission(action, f"arn:aws:s3:::{bucket}")]
    needs = [Permission("PutObject" if operation == "CopyObject" else action, f"arn:aws:s3:::{bucket}/{key}")]
    if operation == "CopyObject":
        source = unquote(request.headers["x-amz-copy-source"]).lstrip("/").split("?")[0]
        needs.append(Permission("GetObject", f"arn:aws:s3:::{source}"))
    return needs


def _raw_sender(raw: str) -> str | None:
    try:
        message = email.message_from_bytes(base64.b64decode(raw), policy=policy.default)
    except (binascii.Error, ValueError):
        return None
    sender = message.get("From")
    return str(sender.addresses[0].addr_spec) if sender and getattr(sender, "addresses", None) else None


def _identity_arn(address: str, context: _Context) -> str:
    # SES authorizes a send against the verified identity it uses: the sender's domain here (the
    # template verifies the domain, not single addresses).
    return context.arn("ses", f"identity/{address.rpartition('@')[2]}")


def _sesv2(operation: str, request: _Request, context: _Context) -> list[Permission]:
    body = request.json()
    if operation in ("SendEmail", "SendBulkEmail"):
        sender = body.get("FromEmailAddress") or _raw_sender(
            str(((body.get("Content") or {}).get("Raw") or {}).get("Data", ""))
        )
        needs = [Permission(operation, _identity_arn(str(sender), context) if sender else ANY_RESOURCE)]
        if body.get("ConfigurationSetName"):
            needs.append(Permission(operation, context.arn("ses", f"configuration-set/{body['ConfigurationSetName']}")))
        return needs
    parts = request.path.strip("/").split("/")
    if len(parts) >= 4 and parts[2] == "identities":
        return [Permission(operation, context.arn("ses", f"identity/{unquote(parts[3])}"))]
    if len(parts) >= 4 and parts[2] == "configuration-sets":
        return [Permission(operation, context.arn("ses", f"configuration-set/{unquote(parts[3])}"))]
    return [Permission(operation, ANY_RESOURCE)]


def _ses(operation: str, request: _Request, context: _Context) -> list[Permission]:
    form = request.form()
    sender = form.get("Source")
    if operation in ("SendEmail", "SendRawEmail") and sender:
        return [Permission(operation, _identity_arn(sender, context))]
    return [Permission(operation, ANY_RESOURCE)]


def _ssm(operation: str, request: _Request, context: _Context) -> list[Permission]:
    body = request.json()
    names = body.get("Names") or ([body["Name"]] if body.get("Name") else [body["Path"]] if body.get("Path") else [])
    if not names:
        return [Permission(operation, ANY_RESOURCE)]
    return [Permission(operation, context.arn("ssm", f"parameter/{str(name).lstrip('/')}")) for name in names]


def _secretsmanager(operation: str, request: _Request, context: _Context) -> list[Permission]:
    secret = request.json().get("SecretId") or request.json().get("Name")
    if not secret:
        return [Permission(operation, ANY_RESOURCE)]
    secret = str(secret)
    return [
        Permission(
            operation, secret if secret.startswith("arn:") else context.arn("secretsmanager", f"secret:{secret}")
        )
    ]


def _sns(operation: str, request: _Request, context: _Context) -> list[Permission]:
    form = request.form()
    topic = form.get("TopicArn") or form.get("TargetArn")
    if operation == "CreateTopic" and form.get("Name"):
        topic = context.arn("sns", form["Name"])
    return [Permission(operation, topic or ANY_RESOURCE)]


def _events(operation: str, request: _Request, context: _Context) -> list[Permission]:
    body = request.json()

    def bus(name: Any) -> str:
        name = str(name or "default")
        return name if name.startswith("arn:") else context.arn("events", f"event-bus/{name}")

    if operation == "PutEvents":
        return [Permission(operation, bus(entry.get("EventBusName"))) for entry in body.get("Entries") or []]
    if body.get("EventBusName") or operation in ("PutRule", "PutTargets", "DescribeEventBus"):
        return [Permission(operation, bus(body.get("EventBusName") or body.get("Name")))]
    return [Permission(operation, ANY_RESOURCE)]


_RESOURCES: dict[str, Resources] = {
    "dynamodb": _dynamodb,
    "dynamodbstreams": _dynamodb_streams,
    "sqs": _sqs,
    "s3": _s3,
    "sesv2": _sesv2,
    "ses": _ses,
    "ssm": _ssm,
    "secretsmanager": _secretsmanager,
    "sns": _sns,
    "events": _events,
}
