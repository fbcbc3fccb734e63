"""What an AWS API request asks for: its service, its operation, and the IAM actions on resources it needs.

IAM authorizes every request by action and resource ARN. moto checks neither for most services, so the
local stack reads them off the request itself, as AWS does, for the services Newsdesk's functions call.
An operation this module does not know needs its action on "*": only a role allowed everything passes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.loaders
import botocore.model

from local.iam.ses_identities import SesLookup, SesState, covering_identity, is_simulator

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
    """An AWS API request, as IAM sees it: the permissions it needs, and the values of the condition keys
    the request sets (keys in lower case, as IAM compares them without case)."""

    service: str
    operation: str
    protocol: str
    region: str
    access_key_id: str | None
    needs: tuple[Permission, ...]
    conditions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

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
    # A loader of its own: an S3 client rewrites its model's request URIs the first time it calls an operation
    # (botocore's remove_bucket_from_url_paths_from_model strips `/{Bucket}`), and the sessions of a process
    # share one loader (moto_fixes), so their models say what the last client did, not what the wire carries.
    description = botocore.loaders.create_loader().load_service_model(service, "service-2")
    return botocore.model.ServiceModel(description, service_name=service)


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
    ses: SesLookup | None = None,
    partition_keys: PartitionKeys | None = None,
    redrive_sources: RedriveSources | None = None,
) -> Call | None:
    """The call a request makes; None when it is not a signed AWS API request.

    `ses` tells the SES identities verified in a region and whether SES is in the sandbox there: SES
    authorizes a send against the identities that cover its sender and, in the sandbox, its recipients.
    `partition_keys` tells a table's partition key attribute, for `dynamodb:LeadingKeys`; `redrive_sources`
    the queues whose dead-letter queue a queue is (where SQS moves its messages back to)."""
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
    context = _Context(region=region, account_id=account_id, ses=ses or _no_ses,
                       partition_keys=partition_keys or _no_partition_keys,
                       redrive_sources=redrive_sources or _no_redrive_sources)  # fmt: skip
    resources = _RESOURCES.get(service, _no_resource)
    needs = tuple(resources(operation, request, context)) if operation else ()
    prefix = _IAM_PREFIX.get(service, service)
    needs = tuple(
        Permission(f"{prefix}:{_ACTION_NAMES.get((service, need.action), need.action)}", need.resource)
        for need in needs
    ) or (Permission(f"{prefix}:{operation or 'Unknown'}", ANY_RESOURCE),)
    return Call(service, operation or "Unknown", model.protocol, region, access_key_id, needs, context.conditions)


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
        bucket, key = request.bucket_and_key()
        # Matched against the model's path-style URIs, whatever style the request used.
        return _rest_operation(model, request, "/" + "/".join(part for part in (bucket, key) if part))
    form_encoded = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    if model.protocol == "query" or "Action" in request.query or form_encoded:
        return request.form().get("Action")
    return _rest_operation(model, request)


# ------------------------------------------------------------------------------------------- REST


@dataclass(frozen=True)
class _RestRoute:
    operation: str
    segments: tuple[str, ...]  # the URI template's path, split at "/"
    # Query keys and headers a request of this operation always has: the URI's own (`?acl`) and the
    # required members sent there (S3's `?uploadId`, `x-amz-copy-source`), which tell apart operations
    # sharing one URI (PutObject, CopyObject, UploadPart, UploadPartCopy).
    query: frozenset[str]
    headers: frozenset[str]


@cache
def _rest_routes(service: str) -> dict[str, tuple[_RestRoute, ...]]:
    """The service's operations by HTTP method."""
    model = _model(service)
    routes: dict[str, list[_RestRoute]] = {}
    for name in model.operation_names:
        operation = model.operation_model(name)
        template, _, literal_query = operation.http.get("requestUri", "/").partition("?")
        query = [part.split("=")[0] for part in literal_query.split("&") if part]
        headers = []
        shape = operation.input_shape
        for member in shape.required_members if shape is not None else []:
            location = shape.members[member].serialization
            if location.get("location") == "querystring":
                query.append(location["name"])
            elif location.get("location") == "header":
                headers.append(location["name"].lower())
        route = _RestRoute(name, tuple(template.strip("/").split("/")), frozenset(query), frozenset(headers))
        routes.setdefault(operation.http.get("method", ""), []).append(route)
    return {method: tuple(listed) for method, listed in routes.items()}


def _rest_operation(model: Any, request: _Request, path: str | None = None) -> str | None:
    """The operation whose method and URI fit the request best: literal segments win, then the most query
    keys and headers that the operation always sends."""
    given = (request.path if path is None else path).strip("/").split("/")
    query, headers = request.query.keys(), request.headers.keys()
    best: tuple[tuple[int, int], str] | None = None
    for route in _rest_routes(model.service_name).get(request.method, ()):
        if not (route.query <= query and route.headers <= headers):
            continue
        score = _uri_score(route.segments, given)
        if score is None:
            continue
        rank = (score, len(route.query) + len(route.headers))
        if best is None or rank > best[0]:
            best = (rank, route.operation)
    return best[1] if best else None


def _uri_score(wanted: tuple[str, ...], given: list[str]) -> int | None:
    """How many literal segments of the template `wanted` the path `given` matches; None if it does not fit."""
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


# -------------------------------------------------------------------------------------- resources


def _no_ses(_region: str) -> SesState:
    return SesState(frozenset())


PartitionKeys = Callable[[str, str], str | None]
"""(region, table name) -> the attribute name of the table's partition key, None if unknown."""


def _no_partition_keys(_region: str, _table: str) -> str | None:
    return None


RedriveSources = Callable[[str], list[str]]
"""A dead-letter queue's ARN -> the ARNs of the queues that send their failed messages to it."""


def _no_redrive_sources(_queue_arn: str) -> list[str]:
    return []


@dataclass
class _Context:
    region: str
    account_id: str
    ses: SesLookup
    partition_keys: PartitionKeys
    redrive_sources: RedriveSources
    # Condition keys the request sets, filled in by the service's reader.
    conditions: dict[str, tuple[str, ...]] = field(default_factory=dict)

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
    keys: list[tuple[str, Any]] = []  # (table, key or item) of every item the request names
    if operation in ("BatchGetItem", "BatchWriteItem"):
        for name, asked in (body.get("RequestItems") or {}).items():
            if operation == "BatchGetItem":
                keys += [(name, key) for key in asked.get("Keys") or []]
            else:
                keys += [(name, (w.get("PutRequest") or {}).get("Item") or (w.get("DeleteRequest") or {}).get("Key"))
                         for w in asked]  # fmt: skip
        _set_leading_keys(keys, context)
        return [Permission(operation, _table_arn(name, context)) for name in body.get("RequestItems") or {}]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        # IAM authorizes each item of a transaction as its own single-item action.
        needs = []
        for entry in body.get("TransactItems") or []:
            for kind, item in entry.items():
                action = "GetItem" if kind == "Get" else _TRANSACT_ACTIONS.get(kind, kind)
                needs.append(Permission(action, _table_arn(str(item.get("TableName", "")), context)))
                keys.append((str(item.get("TableName", "")), item.get("Item") if kind == "Put" else item.get("Key")))
        _set_leading_keys(keys, context)
        return needs
    name = body.get("TableName")
    if not name:
        return [Permission(operation, ANY_RESOURCE)]
    arn = _table_arn(str(name), context)
    index = body.get("IndexName")
    if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
        _set_leading_keys([(str(name), body.get("Item") if operation == "PutItem" else body.get("Key"))], context)
    return [Permission(operation, f"{arn}/index/{index}" if index else arn)]


def _set_leading_keys(keys: list[tuple[str, Any]], context: _Context) -> None:
    """`dynamodb:LeadingKeys`: the partition key values of the items a request names (of every table it
    names: stricter than AWS for a batch over several tables). Left unset when one cannot be read here (a
    query's, a table this account does not have): then a policy that tests it cannot allow the request."""
    values = []
    for table, key in keys:
        attribute = context.partition_keys(context.region, table.rsplit("/", 1)[-1])
        value = (key or {}).get(attribute) if attribute else None
        if not isinstance(value, dict) or not value:
            return
        values.append(str(next(iter(value.values()))))
    if values:
        context.conditions["dynamodb:leadingkeys"] = tuple(dict.fromkeys(values))


def _dynamodb_streams(operation: str, request: _Request, context: _Context) -> list[Permission]:
    body = request.json()
    if body.get("StreamArn"):
        return [Permission(operation, str(body["StreamArn"]))]
    # A shard iterator begins with its stream's ARN (`<stream arn>|1|<token>`), on AWS as in moto.
    iterator = str(body.get("ShardIterator") or "")
    if iterator.startswith("arn:") and "|" in iterator:
        return [Permission(operation, iterator.split("|", 1)[0])]
    if operation == "ListStreams" and body.get("TableName"):  # the streams of one table
        return [Permission(operation, f"{_table_arn(str(body['TableName']), context)}/stream/*")]
    return [Permission(operation, context.arn("dynamodb", "table/*/stream/*"))]


def _queue_arn_from_url(url: str, context: _Context) -> str:
    account, _, name = urlsplit(url).path.strip("/").partition("/")
    return f"arn:aws:sqs:{context.region}:{account or context.account_id}:{name}"


def _sqs(operation: str, request: _Request, context: _Context) -> list[Permission]:
    params: dict[str, Any] = request.json() if request.headers.get("x-amz-target") else dict(request.form())
    if operation == "StartMessageMoveTask":
        # SQS moves the messages with the caller's permissions: it reads and deletes them at the source.
        source = str(params.get("SourceArn", ANY_RESOURCE))
        needs = [Permission(action, source) for action in (operation, "ReceiveMessage", "DeleteMessage",
                                                            "GetQueueAttributes")]  # fmt: skip
        # Without a destination, SQS moves them back to the queues they came from: it sends to those.
        destinations = (
            [str(params["DestinationArn"])] if params.get("DestinationArn") else context.redrive_sources(source)
        )
        return needs + [Permission("SendMessage", destination) for destination in destinations]
    if params.get("QueueUrl"):
        return [Permission(operation, _queue_arn_from_url(str(params["QueueUrl"]), context))]
    if params.get("QueueName"):
        account = str(params.get("QueueOwnerAWSAccountId") or context.account_id)
        return [Permission(operation, f"arn:aws:sqs:{context.region}:{account}:{params['QueueName']}")]
    return [Permission(operation, ANY_RESOURCE)]


# S3 operations IAM authorizes under another action's name (the Service Authorization Reference's table).
_S3_ACTIONS = {
    "ListBuckets": "ListAllMyBuckets",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "HeadBucket": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "ListParts": "ListMultipartUploadParts",
    "HeadObject": "GetObject",
    "SelectObjectContent": "GetObject",
    "CopyObject": "PutObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "UploadPartCopy": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "DeleteObjects": "DeleteObject",
    "GetBucketLifecycle": "GetLifecycleConfiguration",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "PutBucketLifecycle": "PutLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "PutLifecycleConfiguration",
    "GetBucketNotificationConfiguration": "GetBucketNotification",
    "PutBucketNotificationConfiguration": "PutBucketNotification",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeleteBucketOwnershipControls": "PutBucketOwnershipControls",
    "GetBucketCors": "GetBucketCORS",
    "PutBucketCors": "PutBucketCORS",
    "DeleteBucketCors": "PutBucketCORS",
    "GetBucketEncryption": "GetEncryptionConfiguration",
    "PutBucketEncryption": "PutEncryptionConfiguration",
    "DeleteBucketEncryption": "PutEncryptionConfiguration",
    "DeleteBucketTagging": "PutBucketTagging",
    "GetBucketReplication": "GetReplicationConfiguration",
    "PutBucketReplication": "PutReplicationConfiguration",
    "DeleteBucketReplication": "PutReplicationConfiguration",
    "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "PutBucketObjectLockConfiguration",
    "GetBucketAccelerateConfiguration": "GetAccelerateConfiguration",
    "PutBucketAccelerateConfiguration": "PutAccelerateConfiguration",
    "GetBucketAnalyticsConfiguration": "GetAnalyticsConfiguration",
    "ListBucketAnalyticsConfigurations": "GetAnalyticsConfiguration",
    "PutBucketAnalyticsConfiguration": "PutAnalyticsConfiguration",
    "DeleteBucketAnalyticsConfiguration": "PutAnalyticsConfiguration",
    "GetBucketInventoryConfiguration": "GetInventoryConfiguration",
    "ListBucketInventoryConfigurations": "GetInventoryConfiguration",
    "PutBucketInventoryConfiguration": "PutInventoryConfiguration",
    "DeleteBucketInventoryConfiguration": "PutInventoryConfiguration",
    "GetBucketMetricsConfiguration": "GetMetricsConfiguration",
    "ListBucketMetricsConfigurations": "GetMetricsConfiguration",
    "PutBucketMetricsConfiguration": "PutMetricsConfiguration",
    "DeleteBucketMetricsConfiguration": "PutMetricsConfiguration",
    "GetBucketIntelligentTieringConfiguration": "GetIntelligentTieringConfiguration",
    "ListBucketIntelligentTieringConfigurations": "GetIntelligentTieringConfiguration",
    "PutBucketIntelligentTieringConfiguration": "PutIntelligentTieringConfiguration",
    "DeleteBucketIntelligentTieringConfiguration": "PutIntelligentTieringConfiguration",
}
# The action of an operation on one version of an object (?versionId=), where it is another one.
_S3_VERSION_ACTIONS = {
    "GetObject": "GetObjectVersion",
    "HeadObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
    "GetObjectAcl": "GetObjectVersionAcl",
    "PutObjectAcl": "PutObjectVersionAcl",
    "GetObjectTagging": "GetObjectVersionTagging",
    "PutObjectTagging": "PutObjectVersionTagging",
    "DeleteObjectTagging": "DeleteObjectVersionTagging",
    "GetObjectAttributes": "GetObjectVersionAttributes",
    "GetObjectTorrent": "GetObjectVersionTorrent",
}
# Writes whose headers set more than the object: each needs that sub-resource's action too.
_S3_WRITES = {"PutObject", "CopyObject", "CreateMultipartUpload"}
_S3_HEADER_ACTIONS = (
    (("x-amz-acl", "x-amz-grant-read", "x-amz-grant-read-acp", "x-amz-grant-write-acp", "x-amz-grant-full-control"),
     "PutObjectAcl"),
    (("x-amz-tagging",), "PutObjectTagging"),
    (("x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date"), "PutObjectRetention"),
    (("x-amz-object-lock-legal-hold",), "PutObjectLegalHold"),
)  # fmt: skip


def _s3(operation: str, request: _Request, _context: _Context) -> list[Permission]:
    bucket, key = request.bucket_and_key()
    if not bucket:
        return [Permission(_S3_ACTIONS.get(operation, operation), ANY_RESOURCE)]
    if operation == "DeleteObjects":
        return [Permission("DeleteObject", f"arn:aws:s3:::{bucket}/*")]
    if not key:
        return [Permission(_S3_ACTIONS.get(operation, operation), f"arn:aws:s3:::{bucket}")]
    target = f"arn:aws:s3:::{bucket}/{key}"
    versioned = "versionId" in request.query and operation in _S3_VERSION_ACTIONS
    action = _S3_VERSION_ACTIONS[operation] if versioned else _S3_ACTIONS.get(operation, operation)
    needs = [Permission(action, target)]
    if operation in _S3_WRITES:
        needs += [
            Permission(sub, target) for names, sub in _S3_HEADER_ACTIONS if any(n in request.headers for n in names)
        ]
    if operation in ("CopyObject", "UploadPartCopy"):
        # The copy reads its source: GetObject on it (GetObjectVersion for one version of it).
        source, _, source_query = request.headers["x-amz-copy-source"].partition("?")
        read = "GetObjectVersion" if "versionId" in parse_qs(source_query) else "GetObject"
        needs.append(Permission(read, f"arn:aws:s3:::{unquote(source).lstrip('/')}"))
    return needs


def _addresses(values: list[str]) -> list[str]:
    return [address for _, address in getaddresses(values) if address]


def _raw_headers(data: Any) -> Any:
    """The headers of a raw message as sent (base64), without parsing its body."""
    try:
        raw = base64.b64decode(str(data or ""))
    except (binascii.Error, ValueError):
        raw = b""
    return BytesHeaderParser(policy=policy.default).parsebytes(raw)


def _send_needs(
    action: str,
    context: _Context,
    *,
    sender: str | None,
    recipients: list[str],
    configuration_set: str | None = None,
    feedback: str | None = None,
) -> list[Permission]:
    """What IAM checks for an SES send: the identity covering the sender, in the sandbox the identities
    covering the recipients (an address none covers is SES's own MessageRejected, not IAM's), and the
    configuration set; and the condition keys the send sets."""
    display_name, address = parseaddr(sender or "")
    if not address:
        return [Permission(action, ANY_RESOURCE)]
    state = context.ses(context.region)
    identities = [covering_identity(address, state.identities) or address.rpartition("@")[2].lower()]
    if state.sandbox:
        identities += [covering_identity(r, state.identities) or "" for r in recipients if not is_simulator(r)]
    needs = [Permission(action, context.arn("ses", f"identity/{name}")) for name in dict.fromkeys(identities) if name]
    if configuration_set:
        needs.append(Permission(action, context.arn("ses", f"configuration-set/{configuration_set}")))
    context.conditions.update({"ses:fromaddress": (address,), "ses:recipients": tuple(recipients)})
    if display_name:
        context.conditions["ses:fromdisplayname"] = (display_name,)
    if feedback:
        context.conditions["ses:feedbackaddress"] = (parseaddr(feedback)[1],)
    return needs


def _destination(destination: Mapping[str, Any]) -> list[str]:
    return _addresses(
        [str(a) for kind in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destination.get(kind) or []]
    )


def _sesv2(operation: str, request: _Request, context: _Context) -> list[Permission]:
    body = request.json()
    if operation in ("SendEmail", "SendBulkEmail"):
        sender = body.get("FromEmailAddress")
        if operation == "SendBulkEmail":
            recipients = [
                a for entry in body.get("BulkEmailEntries") or [] for a in _destination(entry.get("Destination") or {})
            ]
        else:
            recipients = _destination(body.get("Destination") or {})
        raw = ((body.get("Content") or {}).get("Raw") or {}).get("Data")
        if raw and (not sender or not recipients):
            # A raw message without them names its sender and recipients in its headers, as SES reads them.
            headers = _raw_headers(raw)
            sender = sender or headers.get("From")
            recipients = recipients or _addresses([str(v) for h in ("To", "Cc", "Bcc") for v in headers.get_all(h, [])])
        # The Service Authorization Reference names ses:SendEmail for SendEmail, but AWS authorizes a send of
        # raw content as ses:SendRawEmail (its AccessDenied names that action): both are needed here.
        actions = [operation, "SendRawEmail"] if operation == "SendEmail" and raw else [operation]
        return [
            need
            for action in actions
            for need in _send_needs(
                action,
                context,
                sender=sender and str(sender),
                recipients=recipients,
                configuration_set=body.get("ConfigurationSetName"),
                feedback=body.get("FeedbackForwardingEmailAddress"),
            )
        ]
    parts = request.path.strip("/").split("/")
    if len(parts) >= 4 and parts[2] == "identities":
        return [Permission(operation, context.arn("ses", f"identity/{unquote(parts[3])}"))]
    if len(parts) >= 4 and parts[2] == "configuration-sets":
        return [Permission(operation, context.arn("ses", f"configuration-set/{unquote(parts[3])}"))]
    return [Permission(operation, ANY_RESOURCE)]


_V1_RECIPIENT = re.compile(r"^Destinations?\.(?:(?:To|Cc|Bcc)Addresses\.)?member\.\d+$")


def _ses(operation: str, request: _Request, context: _Context) -> list[Permission]:
    form = request.form()
    if operation not in ("SendEmail", "SendRawEmail"):
        return [Permission(operation, ANY_RESOURCE)]
    sender = form.get("Source")
    recipients = _addresses([value for key, value in form.items() if _V1_RECIPIENT.match(key)])
    if operation == "SendRawEmail" and (not sender or not recipients):
        headers = _raw_headers(form.get("RawMessage.Data"))
        sender = sender or headers.get("From")
        recipients = recipients or _addresses([str(v) for h in ("To", "Cc", "Bcc") for v in headers.get_all(h, [])])
    return _send_needs(operation, context, sender=sender and str(sender), recipients=recipients,
                       configuration_set=form.get("ConfigurationSetName"), feedback=form.get("ReturnPath"))  # fmt: skip


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
