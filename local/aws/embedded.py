"""The embedded AWS: a moto server in this process, and every resource the template declares created in it."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import secrets
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wsgi import get_input_stream

from local.aws import moto_fixes
from local.iam.calls import Call, credential_scope
from local.iam.policies import (
    ADMIN_ACCESS_KEY_ID,
    ADMIN_SECRET_ACCESS_KEY,
    AccessPolicy,
    Credentials,
    access_denied,
    invalid_session_token,
    signature_refused,
    unknown_key,
)
from local.iam.signatures import Received, refusal
from local.template.model import (
    BUCKET,
    EVENT_BUS,
    EVENT_RULE,
    FUNCTION,
    HTTP_API,
    LAYER,
    LOG_GROUP,
    QUEUE,
    SECRET,
    SES_CONFIGURATION_SET,
    SES_EMAIL_IDENTITY,
    SSM_PARAMETER,
    TABLE,
    TOPIC,
    Resource,
    Template,
)
from local.template.resolver import Resolver

log = logging.getLogger(__name__)

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
}
# Table properties moto rejects or that mean nothing locally (encryption, backups, replication, ...).
_IGNORED_TABLE_PROPERTIES = {
    "SSESpecification",
    "PointInTimeRecoverySpecification",
    "ContributorInsightsSpecification",
    "KinesisStreamSpecification",
    "ImportSourceSpecification",
    "ResourcePolicy",
    "OnDemandThroughput",
    "WarmThroughput",
    "DeletionProtectionEnabled",
    "TableClass",
    "TimeToLiveSpecification",
    "TableName",
}
# Resources the runner stands in for itself, or that change nothing locally.
_NOT_NEEDED_LOCALLY = {FUNCTION, HTTP_API, LAYER, LOG_GROUP}
LOCAL_MAX_VISIBILITY_SECONDS = 2
_IGNORED_QUEUE_PROPERTIES = {"QueueName", "Tags", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds"}


@dataclass(frozen=True)
class LocalResource:
    logical_id: str
    type: str
    physical_name: str

    def as_dict(self) -> dict[str, str]:
        return {"logical_id": self.logical_id, "type": self.type, "physical_name": self.physical_name}


def default_region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"


def aws_environment(endpoint: str, region: str) -> dict[str, str]:
    """Variables that send every boto3 client of this process (the functions' too) to the embedded AWS."""
    return DUMMY_CREDENTIALS | {
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint,
    }


def client(
    service: str, endpoint: str | None, region: str, credentials: Credentials | None = None, **options: Any
) -> Any:
    """A boto3 client for the embedded AWS (the administrator's, unless `credentials` are given); explicit
    arguments so it can never reach real AWS. `endpoint` None: inside moto's in-process `mock_aws`."""
    keys = (
        credentials.environment()
        if credentials is not None
        else {
            key: DUMMY_CREDENTIALS[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        }
    )
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=keys["AWS_SESSION_TOKEN"],
        **options,
    )


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


class Usage:
    """What each function asked of the embedded AWS: requests by service and operation, and the DynamoDB
    items its reads examined (what read units are billed on), for the benchmarks' cost figures. The
    runner's own requests (set-up, and its event-source polling, made with the function's role as Lambda's
    service: `AccessPolicy.service_credentials`) are not counted: Lambda's pollers differ."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.dynamodb_read_items: Counter[str] = Counter()

    def add(self, function_id: str, call: Call, body: bytes) -> None:
        with self._lock:
            self.requests[function_id][f"{call.service}.{call.operation}"] += 1
            if call.service == "dynamodb" and call.operation in ("GetItem", "BatchGetItem"):
                read = len(call.needs) if call.operation == "GetItem" else _keys_asked(body)
                self.dynamodb_read_items[function_id] += read

    def add_scanned(self, function_id: str, count: int) -> None:
        with self._lock:
            self.dynamodb_read_items[function_id] += count

    def snapshot(self, *, reset: bool = False) -> dict[str, Any]:
        """`aws_requests`: {function: {"service.Operation": count}}; `dynamodb_read_items`: {function: items}."""
        with self._lock:
            taken = {
                "aws_requests": {function_id: dict(counts) for function_id, counts in self.requests.items()},
                "dynamodb_read_items": dict(self.dynamodb_read_items),
            }
            if reset:
                self.requests.clear()
                self.dynamodb_read_items.clear()
        return taken


def _keys_asked(body: bytes) -> int:
    try:
        items = json.loads(body).get("RequestItems") or {}
    except ValueError:
        return 0
    return sum(len(table.get("Keys") or []) for table in items.values())


class IamEnforcement:
    """WSGI middleware in front of moto: a request reaches it only if AWS would let it through (its access key
    known, its signature made with that key's secret and its session token, its IAM role allowing it), and
    it is counted in `usage`. moto's own API (`/moto-api`: reset, dashboard, recorder) answers the
    administrator alone."""

    def __init__(self, app: WsgiApp, policy: AccessPolicy, usage: Usage | None = None) -> None:
        self.app = app
        self.policy = policy
        self.usage = usage or Usage()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = get_input_stream(environ).read()
        received = _received(environ, body)
        # moto reads the body again: hand it a fresh stream with the body as read (de-chunked).
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input_terminated"] = False
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            if not self._is_administrator(received):
                return self._answer(start_response, 403, {"Content-Type": "text/plain"}, _ADMINISTRATOR_ONLY)
            return self.app(environ, start_response)
        call = self.policy.describe(received.method, received.url, received.headers, body)
        if call is None:
            return self._answer(start_response, 403, {"Content-Type": "text/xml"}, _MISSING_AUTHENTICATION)
        secret = self.policy.secret_for(call.access_key_id or "")
        if secret is None:
            return self._answer(start_response, *unknown_key(call))
        secret_access_key, session_token = secret
        if session_token is not None and _session_token(received) != session_token:
            return self._answer(start_response, *invalid_session_token(call))
        refused = refusal(received, secret_access_key)
        if refused is not None:
            return self._answer(start_response, *signature_refused(call, refused))
        function_id = self.policy.function_for_key(call.access_key_id or "")
        denial = self.policy.check(call, function_id)
        if denial is not None:
            return self._answer(start_response, *access_denied(call, denial))
        if function_id is None or self.policy.is_service_key(call.access_key_id or ""):
            return self.app(environ, start_response)
        self.usage.add(function_id, call, body)
        if call.service == "dynamodb" and call.operation in ("Query", "Scan"):
            return self._counting_scanned(function_id, environ, start_response)
        return self.app(environ, start_response)

    @staticmethod
    def _is_administrator(received: Received) -> bool:
        scope = credential_scope(received.headers, parse_qs(urlsplit(received.url).query, keep_blank_values=True))
        return (
            scope is not None and scope[0] == ADMIN_ACCESS_KEY_ID and refusal(received, ADMIN_SECRET_ACCESS_KEY) is None
        )

    def _counting_scanned(
        self, function_id: str, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        answer = b"".join(self.app(environ, start_response))
        with contextlib.suppress(ValueError):  # an error answer counts nothing
            self.usage.add_scanned(function_id, int(json.loads(answer).get("ScannedCount", 0)))
        return [answer]

    @staticmethod
    def _answer(start_response: Callable[..., Any], status: int, headers: dict[str, str], body: bytes) -> list[bytes]:
        start_response(f"{status} {HTTPStatus(status).phrase}", [*headers.items(), ("Content-Length", str(len(body)))])
        return [body]


def _received(environ: dict[str, Any], body: bytes) -> Received:
    """The request as it arrived: its path and query as sent, its headers (Content-Length as sent)."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    path = str(environ.get("RAW_URI") or environ.get("PATH_INFO") or "/")
    if environ.get("QUERY_STRING") and "?" not in path:
        path += "?" + str(environ["QUERY_STRING"])
    host = headers.get("host") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return Received(str(environ["REQUEST_METHOD"]), f"http://{host}{path}", headers, body)


def _session_token(received: Received) -> str | None:
    if "x-amz-security-token" in received.headers:
        return received.headers["x-amz-security-token"]
    tokens = parse_qs(urlsplit(received.url).query).get("X-Amz-Security-Token")
    return tokens[0] if tokens else None


_ADMINISTRATOR_ONLY = b"moto's own API answers the administrator's credentials only (signed, testing/testing)\n"
_MISSING_AUTHENTICATION = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>MissingAuthenticationToken</Code>"
    b"<Message>Request is missing Authentication Token</Message></Error></ErrorResponse>"
)


class EmbeddedAws(ThreadedMotoServer):
    """moto's server, corrected where it is looser than AWS (`local.aws.moto_fixes`) and, given an access
    policy, refusing what IAM would refuse."""

    def __init__(self, host: str, port: int, policy: AccessPolicy | None) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self.policy = policy
        self.usage = Usage()

    def _server_entry(self) -> None:
        app: WsgiApp = DomainDispatcherApplication(create_backend_app)
        if self.policy is not None:
            app = IamEnforcement(app, self.policy, self.usage)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def start_moto(port: int, host: str = "127.0.0.1", policy: AccessPolicy | None = None) -> tuple[EmbeddedAws, str]:
    """Start moto in this process (port 0: any free port) and return it with its endpoint URL."""
    moto_fixes.apply()
    if port:
        # ThreadedMotoServer waits forever when its socket cannot bind, so fail first and clearly. The probe
        # binds as the server will (werkzeug sets SO_REUSEADDR): connections of a stack stopped a moment ago,
        # still in TIME_WAIT, do not keep the port; a program listening on it does.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                raise RuntimeError(f"cannot start the embedded AWS on {host}:{port}: {error}") from error
    server = EmbeddedAws(host, port, policy)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def _create_table(dynamodb: Any, resolver: Resolver, resource: Resource) -> None:
    props = resolver.resolve(resource.properties)
    name = resolver.physical_name(resource.logical_id)
    request = {key: value for key, value in props.items() if key not in _IGNORED_TABLE_PROPERTIES}
    on_demand = props.get("BillingMode", "PROVISIONED") == "PAY_PER_REQUEST"
    for index in request.get("GlobalSecondaryIndexes", []):
        index.pop("ContributorInsightsSpecification", None)
        if on_demand:
            index.pop("ProvisionedThroughput", None)
    if on_demand:
        request.pop("ProvisionedThroughput", None)
    if "StreamSpecification" in request:
        # CloudFormation enables the stream by naming a view type; the API wants StreamEnabled too.
        request["StreamSpecification"] = {"StreamEnabled": True, **request["StreamSpecification"]}
    answer = dynamodb.create_table(TableName=name, **request)
    stream_arn = answer["TableDescription"].get("LatestStreamArn")
    if stream_arn:
        resolver.record(resource.logical_id, "StreamArn", stream_arn)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _create_queue(sqs: Any, resolver: Resolver, resource: Resource) -> None:
    props = resolver.resolve(resource.properties)
    attributes = {key: _attribute(value) for key, value in props.items() if key not in _IGNORED_QUEUE_PROPERTIES}
    if "VisibilityTimeout" in attributes:
        # A failed message returns after seconds rather than minutes: nobody waits that long locally.
        attributes["VisibilityTimeout"] = str(min(int(attributes["VisibilityTimeout"]), LOCAL_MAX_VISIBILITY_SECONDS))
    tags = {tag["Key"]: tag["Value"] for tag in props.get("Tags", [])}
    answer = sqs.create_queue(QueueName=resolver.physical_name(resource.logical_id), Attributes=attributes, tags=tags)
    resolver.record(resource.logical_id, "QueueUrl", answer["QueueUrl"])


def _create_bucket(s3: Any, resolver: Resolver, resource: Resource) -> None:
    props = resolver.resolve(resource.properties)
    name = resolver.physical_name(resource.logical_id)
    if resolver.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": resolver.region})
    versioning = (props.get("VersioningConfiguration") or {}).get("Status")
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})


def _create_topic(sns: Any, resolver: Resolver, resource: Resource) -> None:
    props = resolver.resolve(resource.properties)
    attributes = {key: _attribute(props[key]) for key in ("FifoTopic", "ContentBasedDeduplication") if key in props}
    answer = sns.create_topic(Name=resolver.physical_name(resource.logical_id), Attributes=attributes)
    resolver.record(resource.logical_id, "Arn", answer["TopicArn"])


def _create_secret(secretsmanager: Any, resolver: Resolver, resource: Resource) -> None:
    props = resolver.resolve(resource.properties)
    value = props.get("SecretString")
    generate = props.get("GenerateSecretString")
    if value is None and generate and generate.get("GenerateStringKey"):
        template = json.loads(generate.get("SecretStringTemplate") or "{}")
        value = json.dumps(template | {generate["GenerateStringKey"]: secrets.token_urlsafe(24)})
    answer = secretsmanager.create_secret(
        Name=resolver.physical_name(resource.logical_id), SecretString=value or secrets.token_urlsafe(24)
    )
    resolver.record(resource.logical_id, "Arn", answer["ARN"])
    resolver.record(resource.logical_id, "Ref", answer["ARN"])


def _create_parameter(ssm: Any, resolver: Resolver, resource: Resource) -> None:
    props = resolver.resolve(resource.properties)
    ssm.put_parameter(
        Name=resolver.physical_name(resource.logical_id),
        Value=str(props["Value"]),
        Type=props.get("Type", "String"),
        Overwrite=True,
    )


def _create_event_bus(events: Any, resolver: Resolver, resource: Resource) -> None:
    events.create_event_bus(Name=resolver.physical_name(resource.logical_id))


def _create_event_rule(events: Any, resolver: Resolver, resource: Resource) -> None:
    props = resolver.resolve(resource.properties)
    name = resolver.physical_name(resource.logical_id)
    bus = str(props.get("EventBusName", "default"))
    pattern = props.get("EventPattern")
    events.put_rule(
        Name=name,
        EventBusName=bus,
        EventPattern=pattern if isinstance(pattern, str) else json.dumps(pattern),
        State=props.get("State", "ENABLED"),
    )
    # Retry policies and dead-letter queues of targets change nothing locally: moto delivers at once.
    targets = [
        {key: value for key, value in target.items() if key in ("Id", "Arn", "Input", "InputPath", "SqsParameters")}
        for target in props.get("Targets") or []
    ]
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)


def _create_configuration_set(sesv2: Any, resolver: Resolver, resource: Resource) -> None:
    sesv2.create_configuration_set(ConfigurationSetName=resolver.physical_name(resource.logical_id))


def _create_email_identity(sesv2: Any, resolver: Resolver, resource: Resource) -> None:
    sesv2.create_email_identity(EmailIdentity=resolver.physical_name(resource.logical_id))


Creator = Callable[[Any, Resolver, Resource], None]
# Creation order matters: queues before the buckets and topics that may notify them.
_CREATORS: dict[str, tuple[str, Creator]] = {
    TABLE: ("dynamodb", _create_table),
    QUEUE: ("sqs", _create_queue),
    BUCKET: ("s3", _create_bucket),
    TOPIC: ("sns", _create_topic),
    SECRET: ("secretsmanager", _create_secret),
    SSM_PARAMETER: ("ssm", _create_parameter),
    SES_CONFIGURATION_SET: ("sesv2", _create_configuration_set),
    SES_EMAIL_IDENTITY: ("sesv2", _create_email_identity),
    EVENT_BUS: ("events", _create_event_bus),
    EVENT_RULE: ("events", _create_event_rule),
}


def _ordered(resources: list[Resource]) -> list[Resource]:
    # A queue's redrive target has to exist first; dead-letter queues have no redrive policy themselves.
    return sorted(resources, key=lambda resource: "RedrivePolicy" in resource.properties)


def _create(aws_client: Any, template: Template, resolver: Resolver | None, resource_type: str) -> dict[str, str]:
    resolver = resolver or Resolver(template, region=aws_client.meta.region_name)
    created = {}
    for resource in _ordered(template.of_type(resource_type)):
        if resource.condition and not resolver.condition(resource.condition):
            continue
        _CREATORS[resource_type][1](aws_client, resolver, resource)
        created[resource.logical_id] = resolver.physical_name(resource.logical_id)
        log.debug("created %s %s", resource_type, created[resource.logical_id])
    return created


def create_tables(dynamodb: Any, template: Template, resolver: Resolver | None = None) -> dict[str, str]:
    """Create the template's tables (keys, GSIs, streams) in the embedded AWS: logical id -> table name."""
    return _create(dynamodb, template, resolver, TABLE)


def create_queues(sqs: Any, template: Template, resolver: Resolver | None = None) -> dict[str, str]:
    """Create the template's queues, dead-letter queues first: logical id -> queue name."""
    return _create(sqs, template, resolver, QUEUE)


def create_buckets(s3: Any, template: Template, resolver: Resolver | None = None) -> dict[str, str]:
    """Create the template's buckets (with versioning when declared): logical id -> bucket name."""
    return _create(s3, template, resolver, BUCKET)


def create_resources(template: Template, resolver: Resolver, endpoint: str | None = None) -> list[LocalResource]:
    """Create every supported resource of the template; the resolver learns the ARNs and URLs AWS chose.

    Without an endpoint the clients are plain boto3 ones, for tests inside moto's `mock_aws`.
    """
    created = []
    clients: dict[str, Any] = {}
    for resource_type, (service, _creator) in _CREATORS.items():
        if service not in clients:
            clients[service] = (
                client(service, endpoint, resolver.region)
                if endpoint
                else boto3.client(service, region_name=resolver.region)
            )
        for logical_id, name in _create(clients[service], template, resolver, resource_type).items():
            created.append(LocalResource(logical_id, resource_type, name))
    skipped = [
        resource
        for resource in template.resources.values()
        if resource.type not in _CREATORS and resource.type not in _NOT_NEEDED_LOCALLY
    ]
    for resource in skipped:
        log.debug("%s (%s) is not emulated locally", resource.logical_id, resource.type)
    if skipped:
        kinds = sorted({resource.type for resource in skipped})
        log.info("not emulated locally: %d resources (%s; LOG_LEVEL=DEBUG names them)", len(skipped), ", ".join(kinds))
    return created
