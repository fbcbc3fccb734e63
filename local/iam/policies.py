"""IAM on the local stack: each function has the role SAM generates for it, and every call is checked.

moto checks neither the action nor the resource of most calls, so a function that works locally could be
refused on AWS (a missing `dynamodb:UpdateItem` costs subscribers their newsletter). Here every request to
the embedded AWS is read as IAM reads it (`local.iam.calls`) and checked against the caller's policies:
explicit Deny wins, then any Allow, otherwise it is refused with the service's own AccessDenied error.
A statement's Condition is evaluated for the condition keys the request sets (`local.iam.calls`); one the
local stack cannot evaluate never allows, and always denies.

Callers are told apart by their credentials (each function's worker has its own, and Lambda's event-source
pollers another set with the same role) or, for functions run inside the test process, by `acting_as`. The
administrator's credentials (`testing`/`testing`) may do anything. Every allowed call marks the grants of
the role that allowed it (local.iam.grants), for the least-privilege check.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import string
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any
from xml.sax.saxutils import escape

from local.iam.calls import Call, PartitionKeys, Permission, RedriveSources, credential_scope, describe
from local.iam.grants import Grant, GrantRecorder, process_recorder, written
from local.iam.ses_identities import SesLookup, embedded_ses
from local.iam.signatures import Refusal
from local.template.resolver import Resolver
from local.template.sam import expanded_for, function_roles, managed_policy_document

log = logging.getLogger(__name__)

ADMIN_ACCESS_KEY_ID = "testing"
ADMIN_SECRET_ACCESS_KEY = "testing"  # noqa: S105 (the documented local administrator, not a secret)
_acting_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("acting_function", default=None)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def as_dict(self) -> dict[str, str]:
        return {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
        }

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


def _new_credentials() -> Credentials:
    alphabet = string.ascii_uppercase + string.digits
    return Credentials(
        access_key_id="ASIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
        secret_access_key=secrets.token_urlsafe(30),
        session_token=secrets.token_urlsafe(48),
    )


# --------------------------------------------------------------------------------------- policies


@cache
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: * is any run of characters (a newline too: a request path may hold one), ? exactly one;
    # everything else is literal (moto's own matcher treats the rest as a regular expression and compares
    # actions case-sensitively).
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match (actions, resources, ArnLike and StringLike conditions)."""
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _any_matches(patterns: Any, value: str, *, ignore_case: bool) -> bool:
    items = patterns if isinstance(patterns, list) else [patterns]
    return any(wildcard_matches(str(item), value, ignore_case=ignore_case) for item in items)


def _applies(statement: dict[str, Any], permission: Permission) -> bool:
    if "NotAction" in statement:
        action_matches = not _any_matches(statement["NotAction"], permission.action, ignore_case=True)
    else:
        action_matches = _any_matches(statement.get("Action", []), permission.action, ignore_case=True)
    if "NotResource" in statement:
        resource_matches = not _any_matches(statement["NotResource"], permission.resource, ignore_case=False)
    else:
        resource_matches = _any_matches(statement.get("Resource", []), permission.resource, ignore_case=False)
    return action_matches and resource_matches


Conditions = Mapping[str, Sequence[str]]
# Condition keys whose values the local stack reads off the request (local.iam.calls): any other key in a
# policy (aws:SourceIp, s3:prefix, ...) cannot be evaluated here.
# aws:SourceArn and aws:SourceAccount: what a service invoking a function says (local.apigateway.invoke_policies).
EVALUATED_KEYS = frozenset({
    "ses:fromaddress", "ses:fromdisplayname", "ses:recipients", "ses:feedbackaddress",
    "aws:sourcearn", "aws:sourceaccount", "dynamodb:leadingkeys",
})  # fmt: skip
# Keys the local stack reads only off some requests (a query's leading keys are not read): where such a key
# is not set, it is unknown rather than absent, and a test of it cannot be evaluated.
_UNKNOWN_WHEN_UNSET = frozenset({"dynamodb:leadingkeys"})
_STRING_OPERATORS = {
    "StringEquals": (False, False, False),  # (negated, ignore case, wildcards)
    "StringNotEquals": (True, False, False),
    "StringEqualsIgnoreCase": (False, True, False),
    "StringNotEqualsIgnoreCase": (True, True, False),
    "StringLike": (False, False, True),
    "StringNotLike": (True, False, True),
}
# IAM compares an ARN's six colon-separated parts one by one, each with wildcards (ArnEquals as ArnLike).
_ARN_OPERATORS = {"ArnLike": False, "ArnEquals": False, "ArnNotLike": True, "ArnNotEquals": True}


def _arn_like(pattern: str, arn: str) -> bool:
    patterns, parts = pattern.split(":", 5), arn.split(":", 5)
    return len(patterns) == len(parts) and all(map(wildcard_matches, patterns, parts))


def _test(operator: str, key: str, wanted: Any, conditions: Conditions) -> bool | None:
    """One condition test as IAM evaluates it; None when the local stack cannot evaluate it."""
    wanted = [str(value) for value in (wanted if isinstance(wanted, list) else [wanted])]
    key = key.lower()
    if key not in EVALUATED_KEYS or any("${" in value for value in wanted):
        return None  # a key not read here, or a policy variable
    if key in _UNKNOWN_WHEN_UNSET and key not in conditions:
        return None
    values = list(conditions.get(key) or ())
    if operator == "Null":
        return {"true": not values, "false": bool(values)}.get(wanted[0].lower()) if len(wanted) == 1 else None
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _STRING_OPERATORS.keys() | _ARN_OPERATORS.keys() or qualifier not in (
        "",
        "ForAnyValue",
        "ForAllValues",
    ):
        return None
    arn = base in _ARN_OPERATORS
    negated, ignore_case, wildcards = (_ARN_OPERATORS[base], False, True) if arn else _STRING_OPERATORS[base]
    if not values:  # the request does not set the key
        if qualifier == "ForAllValues" or if_exists:
            return True
        return negated and qualifier == ""

    def matches(value: str) -> bool:
        if arn:
            found = any(_arn_like(pattern, value) for pattern in wanted)
        elif wildcards:
            found = _any_matches(wanted, value, ignore_case=False)
        elif ignore_case:
            found = value.lower() in {item.lower() for item in wanted}
        else:
            found = value in wanted
        return found is not negated

    if qualifier == "ForAnyValue":
        return any(matches(value) for value in values)
    if qualifier == "ForAllValues":
        return all(matches(value) for value in values)
    return matches(values[0]) if len(values) == 1 else None  # a single-valued test of several values


def condition_holds(condition: Mapping[str, Any], conditions: Conditions) -> bool | None:
    """Whether a statement's Condition holds for a request setting `conditions`: every test must; None
    when one cannot be evaluated here (and none is known to fail)."""
    results = [
        _test(operator, key, wanted, conditions)
        for operator, tests in condition.items()
        for key, wanted in (tests.items() if isinstance(tests, dict) else [])
    ]
    if not all(isinstance(tests, dict) for tests in condition.values()) or any(r is None for r in results):
        return False if False in results else None
    return all(results)


def allows(documents: list[dict[str, Any]], permission: Permission, conditions: Conditions | None = None) -> bool:
    """IAM's evaluation of identity policies: an explicit Deny wins, then any Allow; nothing is a deny.

    A statement applies only if its Condition holds for the request's condition keys; one the local stack
    cannot evaluate counts for a Deny and not for an Allow, so it can only make the local stack stricter
    than AWS, never looser."""
    allowed = False
    for document in documents:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            if not _applies(statement, permission):
                continue
            holds = condition_holds(statement["Condition"], conditions or {}) if statement.get("Condition") else True
            if statement.get("Effect") == "Deny" and holds is not False:
                return False
            if statement.get("Effect") == "Allow" and holds is True:
                allowed = True
    return allowed


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return list(statements) if isinstance(statements, list) else [statements]


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Role:
    """A function's execution role: its policies, resolved (`documents`) and as the template writes them
    (`written`, same shape: the names of its grants, local.iam.grants), and the folder of that template."""

    function_id: str
    arn: str
    documents: tuple[dict[str, Any], ...]
    written: tuple[dict[str, Any], ...] = ()
    template: str = ""

    def allows(self, permission: Permission, conditions: Conditions | None = None) -> bool:
        return allows(list(self.documents), permission, conditions)

    @cached_property
    def _allow_statements(self) -> list[tuple[dict[str, Any], list[str], list[Any], list[str]]]:
        """Each Allow statement: itself, its actions, its resources resolved and as written."""
        found = []
        for index, document in enumerate(self.documents):
            as_written = self.written[index] if index < len(self.written) else document
            for statement, source in zip(_statements(document), _statements(as_written), strict=False):
                if statement.get("Effect") != "Allow":
                    continue
                key = "NotResource" if "NotResource" in statement else "Resource"
                resources = _listed(statement.get(key, []))
                names = [written(r) for r in _listed(source.get(key, []))]
                if len(names) != len(resources):  # an Fn::If dropped one: name them as resolved
                    names = [written(r) for r in resources]
                if key == "NotResource":
                    names = [f"NotResource {name}" for name in names]
                actions = [str(a) for a in _listed(statement.get("Action", []))]
                if "NotAction" in statement:
                    actions = [f"NotAction {a}" for a in _listed(statement["NotAction"])]
                found.append((statement, actions, resources, names))
        return found

    def grants(self) -> set[Grant]:
        """Every (action, resource) pair the role's Allow statements grant."""
        return {
            Grant(self.function_id, action, name)
            for _statement, actions, _resources, names in self._allow_statements
            for action in actions
            for name in names
        }

    def grants_used(self, permission: Permission, conditions: Conditions | None = None) -> set[Grant]:
        """The grants that allow `permission`: of every Allow statement that allows it, the actions and
        resources that match it."""
        used: set[Grant] = set()
        for statement, actions, resources, names in self._allow_statements:
            if not _applies(statement, permission):
                continue
            if statement.get("Condition") and condition_holds(statement["Condition"], conditions or {}) is not True:
                continue
            matched_actions = [a for a in actions if a.startswith("NotAction ") or
                               _pattern(a, True).fullmatch(permission.action)]  # fmt: skip
            matched_names = [
                name
                for resource, name in zip(resources, names, strict=True)
                if name.startswith("NotResource ") or _pattern(str(resource), False).fullmatch(permission.resource)
            ]
            used.update(Grant(self.function_id, a, n) for a in matched_actions for n in matched_names)
        return used


def function_roles_from_template(resolver: Resolver) -> dict[str, Role]:
    """Each function's role as CloudFormation creates it (SAM's, or the template's own with the policies
    attached to it), with the local stack's names and ARNs filled in."""
    roles = {}
    for function_id, role in function_roles(expanded_for(resolver)).items():
        as_written = [policy["PolicyDocument"] for policy in role.get("Policies") or []]
        as_written += [
            managed_policy_document(str(resolver.resolve(arn))) for arn in role.get("ManagedPolicyArns") or []
        ]
        documents = [resolver.resolve(document) for document in as_written]
        name = f"arn:aws:sts::{resolver.account_id}:assumed-role/{resolver.prefix}-{function_id}Role/"
        roles[function_id] = Role(
            function_id,
            name + resolver.physical_name(function_id),
            tuple(documents),
            tuple(as_written),
            str(resolver.template.root),
        )
    return roles


# ------------------------------------------------------------------------------------- enforcement


def embedded_redrive_sources(account_id: str) -> RedriveSources:
    """The queues of the embedded SQS whose redrive policy names a dead-letter queue, by its ARN."""

    def sources(queue_arn: str) -> list[str]:
        from moto.sqs.models import sqs_backends

        region = queue_arn.split(":")[3]
        return sorted(
            queue.queue_arn
            for queue in list(sqs_backends[account_id][region].queues.values())
            if (queue.redrive_policy or {}).get("deadLetterTargetArn") == queue_arn
        )

    return sources


def embedded_partition_keys(account_id: str) -> PartitionKeys:
    """The partition key attribute of each table of the embedded DynamoDB (`dynamodb:LeadingKeys`)."""

    def partition_key(region: str, table: str) -> str | None:
        from moto.dynamodb.models import dynamodb_backends

        found = dynamodb_backends[account_id][region].tables.get(table)
        return str(found.hash_key_attr) if found is not None else None

    return partition_key


@dataclass(frozen=True)
class Denial:
    function_id: str
    action: str
    resource: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"function": self.function_id, "action": self.action, "resource": self.resource}


class AccessPolicy:
    """Who may call what on the embedded AWS: the administrator anything, each function its role.

    Roles name resources whose ARNs exist only once the resources do (a secret's), so they are set with
    `use_roles` after creation; until then a function's calls are refused. Each function has two sets of
    credentials for its role: its own (`credentials`), and those Lambda's service uses with the role to read
    the function's queues and streams and to send its failed events on (`service_credentials`,
    local.lambda_runtime.sources;
    not counted as the function's usage). `ses` tells the SES identities and sandbox a send is authorized
    against (the embedded SES's, unless given). Allowed calls mark the grants they used on `recorder` (this
    process's, local.iam.grants, unless given)."""

    def __init__(
        self,
        account_id: str,
        roles: dict[str, Role] | None = None,
        ses: SesLookup | None = None,
        recorder: GrantRecorder | None = None,
    ) -> None:
        self.account_id = account_id
        self.ses = ses or embedded_ses(account_id)
        self.partition_keys = embedded_partition_keys(account_id)
        self.redrive_sources = embedded_redrive_sources(account_id)
        self.recorder = recorder or process_recorder()
        self.roles: dict[str, Role] = {}
        self.credentials: dict[str, Credentials] = {}
        self.service_credentials: dict[str, Credentials] = {}
        self._by_key: dict[str, str] = {}
        self._service_keys: set[str] = set()
        self._denials: list[Denial] = []
        self._lock = threading.Lock()
        self.use_roles(roles or {})

    def use_roles(self, roles: dict[str, Role]) -> None:
        """Take the functions' roles; each function keeps (or gets) credentials of its own."""
        self.roles = dict(roles)
        for function_id in roles:
            self.credentials.setdefault(function_id, _new_credentials())
            self.service_credentials.setdefault(function_id, _new_credentials())
        self._by_key = {creds.access_key_id: function_id for function_id, creds in self.credentials.items()}
        self._service_keys = {creds.access_key_id for creds in self.service_credentials.values()}
        self._by_key |= {creds.access_key_id: function_id for function_id, creds in self.service_credentials.items()}

    def function_for_key(self, access_key_id: str) -> str | None:
        """The function whose role an access key has (its own, or Lambda's service's for it)."""
        return self._by_key.get(access_key_id)

    def is_service_key(self, access_key_id: str) -> bool:
        """Whether the key is one Lambda's service uses with a function's role (not the function's own)."""
        return access_key_id in self._service_keys

    def is_known_key(self, access_key_id: str) -> bool:
        return access_key_id == ADMIN_ACCESS_KEY_ID or access_key_id in self._by_key

    def secret_for(self, access_key_id: str) -> tuple[str, str | None] | None:
        """The secret of a known access key, and the session token that must come with it (None: any)."""
        if access_key_id == ADMIN_ACCESS_KEY_ID:
            return ADMIN_SECRET_ACCESS_KEY, None
        function_id = self._by_key.get(access_key_id)
        if function_id is None:
            return None
        own = self.credentials[function_id]
        credentials = own if own.access_key_id == access_key_id else self.service_credentials[function_id]
        return credentials.secret_access_key, credentials.session_token

    def describe(
        self, method: str, url: str, headers: Mapping[str, str | bytes], body: bytes | str | None
    ) -> Call | None:
        """The call a request to this account's embedded AWS makes (local.iam.calls.describe)."""
        return describe(method, url, headers, body, account_id=self.account_id, ses=self.ses,
                        partition_keys=self.partition_keys, redrive_sources=self.redrive_sources)  # fmt: skip

    def check(self, call: Call, function_id: str | None) -> Denial | None:
        """The denial of `call` made as `function_id` (None: the administrator), or None if allowed."""
        if function_id is None or not call.needs_permission:
            return None
        role = self.roles.get(function_id)
        for permission in call.needs:
            if role is None or not role.allows(permission, call.conditions):
                who = role.arn if role else function_id
                denial = Denial(
                    function_id,
                    permission.action,
                    permission.resource,
                    f"User: {who} is not authorized to perform: {permission.action} on resource: "
                    f"{permission.resource} because no identity-based policy allows the {permission.action} action",
                )
                with self._lock:
                    self._denials.append(denial)
                log.warning("IAM: %s may not %s on %s", function_id, permission.action, permission.resource)
                return denial
        if self.recorder is not None and role is not None:
            for permission in call.needs:
                self.recorder.record(role.template, role.grants_used(permission, call.conditions))
        return None

    def denials(self) -> list[Denial]:
        """Every call refused so far, oldest first."""
        with self._lock:
            return list(self._denials)

    def take_denials(self) -> list[Denial]:
        """The calls refused since the last time this was asked."""
        with self._lock:
            taken, self._denials = self._denials, []
        return taken


Response = tuple[int, dict[str, str], bytes]

# Error codes AWS answers a refused call with, by service; the body's shape follows the protocol.
_DENIED_CODES = {"s3": "AccessDenied", "sqs": "AccessDenied", "sns": "AuthorizationError", "ses": "AccessDenied"}


def error_response(call: Call, code: str, message: str, status: int | None = None) -> Response:
    """An AWS error reply in the shape the service's protocol uses, so SDKs raise it as that service would
    (status: 400 for the JSON protocol's services, 403 for the others, unless given)."""
    request_id = str(uuid.uuid4())
    if call.protocol == "json":
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id}
        if call.service == "sqs":
            headers["x-amzn-query-error"] = f"{code};Sender"
        answer = json.dumps({"__type": f"com.amazon.coral.service#{code}", "Message": message})
        return status or 400, headers, answer.encode()
    status = status or 403
    if call.protocol == "rest-json":
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": request_id}
        return status, headers, json.dumps({"message": message}).encode()
    if call.protocol == "rest-xml":
        body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        return (
            status,
            {"Content-Type": "application/xml"},
            f"{body}<RequestId>{request_id}</RequestId></Error>".encode(),
        )
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return status, {"Content-Type": "text/xml"}, body.encode()


def access_denied(call: Call, denial: Denial) -> Response:
    code = _DENIED_CODES.get(call.service, "AccessDeniedException")
    return error_response(call, code, denial.message)


def unknown_key(call: Call) -> Response:
    if call.service == "s3":
        return error_response(call, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist.")
    code = "UnrecognizedClientException" if call.protocol == "json" else "InvalidClientTokenId"
    return error_response(call, code, "The security token included in the request is invalid.")


def invalid_session_token(call: Call) -> Response:
    """A function's access key with another session token than its own."""
    if call.service == "s3":
        return error_response(call, "InvalidToken", "The provided token is malformed or otherwise invalid.", 400)
    return unknown_key(call)


_SIGNATURE_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


def signature_refused(call: Call, refusal: Refusal) -> Response:
    """A refused signature as the service answers it: S3 and the query-protocol services (SQS included)
    SignatureDoesNotMatch, the JSON ones (DynamoDB, SES v2, ...) InvalidSignatureException."""
    if refusal is Refusal.EXPIRED:
        return error_response(call, "AccessDenied", "Request has expired")
    if refusal is Refusal.PAYLOAD_MISMATCH:
        message = "The provided 'x-amz-content-sha256' header does not match what was computed."
        return error_response(call, "XAmzContentSHA256Mismatch", message, 400)
    if call.service == "s3":
        message = (
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method."
        )
        return error_response(call, "SignatureDoesNotMatch", message)
    if call.service == "sqs" or call.protocol == "query":
        return error_response(call, "SignatureDoesNotMatch", _SIGNATURE_MESSAGE, 403)
    return error_response(call, "InvalidSignatureException", _SIGNATURE_MESSAGE)


# ------------------------------------------------------------------------------- in the test process


@contextmanager
def acting_as(function_id: str) -> Iterator[None]:
    """Calls made in this block (and in threads it starts through an executor) are the function's."""
    token = _acting_function.set(function_id)
    try:
        yield
    finally:
        _acting_function.reset(token)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


@contextmanager
def enforced_in_process(policy: AccessPolicy) -> Iterator[None]:
    """Check every call that moto's in-process mock (`mock_aws`) receives against `policy`.

    The caller is whoever `acting_as` names; outside it, whose credentials signed the request (a function's,
    or Lambda's service's with its role), else the test itself (the administrator)."""
    from moto.core.models import botocore_stubber

    process_request: Callable[[Any], Any] = botocore_stubber.process_request
    submit = ThreadPoolExecutor.submit

    def checked(request: Any) -> Any:
        function_id = _acting_function.get()
        # None: a client with a function's (or Lambda's service's) credentials (local.lambda_runtime.sources).
        if function_id is None:
            scope = credential_scope({k.lower(): _text(v) for k, v in request.headers.items()}, {})
            function_id = policy.function_for_key(scope[0]) if scope else None
        if function_id is not None:
            body = request.body if isinstance(request.body, bytes | str) else None  # a stream: an S3 upload
            call = policy.describe(request.method, request.url, dict(request.headers), body)
            denial = policy.check(call, function_id) if call is not None else None
            if call is not None and denial is not None:
                return access_denied(call, denial)
        return process_request(request)

    def submit_in_context(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        # A function's worker threads act as the function, as they would inside its Lambda sandbox.
        return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    botocore_stubber.process_request = checked  # type: ignore[method-assign]
    ThreadPoolExecutor.submit = submit_in_context  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        botocore_stubber.process_request = process_request  # type: ignore[assignment,method-assign]
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
