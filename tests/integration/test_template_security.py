"""Security checks on template.yaml that fail the build: least privilege on data stores, no public bucket,
encryption at rest, a dead-letter queue behind every queue-driven function, and log retention.

Each check returns the problems it finds; it must find none in the project's template, and must find the
problem in a small broken template, so no check can pass by looking at nothing.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local import stack
from local.template.model import BUCKET, FUNCTION, LOG_GROUP, QUEUE, TABLE, Resource, Template, load_yaml

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_FUNCTION = "AWS::Lambda::Function"
SIMPLE_TABLE = "AWS::Serverless::SimpleTable"
BUCKET_POLICY = "AWS::S3::BucketPolicy"
IAM_POLICY_TYPES = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")
DATA_STORE_SERVICES = frozenset({"dynamodb", "s3", "sqs", "sns", "secretsmanager"})
PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
PUBLIC_CANNED_ACLS = {"PublicRead", "PublicReadWrite", "AuthenticatedRead"}
# Managed policies that hand out a whole data-store service.
BROAD_MANAGED_POLICY = re.compile(r"(DynamoDB|S3|SQS|SNS|SecretsManager)FullAccess|AdministratorAccess|PowerUserAccess")
# An ARN whose resource name is all wildcard: every table, bucket, queue, topic or secret of the account.
WILDCARD_ARN = re.compile(
    r"^arn:[^:]*:(dynamodb:[^:]*:[^:]*:table/\*$|s3:::\*|(sqs|sns):[^:]*:[^:]*:\*$|secretsmanager:[^:]*:[^:]*:secret:\*$)"
)

SUB_VARIABLE = re.compile(r"\$\{[^}]*\}")

Check = Callable[[Template], list[str]]


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _functions(template: Template) -> list[Resource]:
    return template.of_type(FUNCTION, LAMBDA_FUNCTION)


def _statements(document: Any) -> Iterator[dict[str, Any]]:
    for statement in _as_list((document or {}).get("Statement") or []):
        if isinstance(statement, dict):
            yield statement


def _policy_documents(template: Template) -> Iterator[tuple[str, Any]]:
    """(owner, policy) for each function policy (SAM: a name, a template or a document) and IAM document."""
    for function in _functions(template):
        for policy in _as_list(function.properties.get("Policies") or []):
            yield function.logical_id, policy
    for resource in template.of_type(*IAM_POLICY_TYPES):
        for policy in resource.properties.get("Policies") or []:
            yield resource.logical_id, policy.get("PolicyDocument")
        if "PolicyDocument" in resource.properties:
            yield resource.logical_id, resource.properties["PolicyDocument"]
        for name in resource.properties.get("ManagedPolicyArns") or []:
            if isinstance(name, str):  # not a !Ref: the template's own managed policies are checked above
                yield resource.logical_id, name


def _resource_text(resource: Any) -> str | None:
    """A resource ARN as written: a plain string or the text of a !Sub (GetAtt and Ref name one resource)."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        # ${AWS::Region} and friends name one thing each; only a literal * is a wildcard.
        return SUB_VARIABLE.sub("x", str(sub[0] if isinstance(sub, list) else sub))
    return None


def wildcard_data_store_grants(template: Template) -> list[str]:
    """Functions (and IAM policies) may not be granted every action or every resource of a data store."""
    problems = []
    for owner, policy in _policy_documents(template):
        if isinstance(policy, str):
            if BROAD_MANAGED_POLICY.search(policy):
                problems.append(f"{owner}: managed policy {policy} grants whole services")
            continue
        if not isinstance(policy, dict):
            continue
        if "Statement" not in policy:  # a SAM policy template: it names its one table, bucket or queue
            for name, parameters in policy.items():
                if any(value == "*" for value in (parameters or {}).values()):
                    problems.append(f"{owner}: {name} on '*'")
            continue
        for statement in _statements(policy):
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement or "NotResource" in statement:
                problems.append(f"{owner}: an Allow with NotAction/NotResource grants nearly everything")
                continue
            actions = [str(action).lower() for action in _as_list(statement.get("Action") or [])]
            services = {action.split(":", 1)[0] for action in actions if ":" in action}
            for action in actions:
                if action == "*" or (action.endswith(":*") and action.split(":", 1)[0] in DATA_STORE_SERVICES):
                    problems.append(f"{owner}: Action {action!r}")
            if "*" in actions or services & DATA_STORE_SERVICES:
                for resource in _as_list(statement.get("Resource") or []):
                    text = _resource_text(resource)
                    if text is not None and (text == "*" or WILDCARD_ARN.match(text)):
                        problems.append(f"{owner}: {sorted(services & DATA_STORE_SERVICES)} on Resource {text!r}")
    return problems


def public_buckets(template: Template) -> list[str]:
    """Every bucket blocks public access with all four flags, has no public ACL, and no policy opens it."""
    problems = []
    for bucket in template.of_type(BUCKET):
        block = bucket.properties.get("PublicAccessBlockConfiguration") or {}
        missing = [flag for flag in PUBLIC_ACCESS_FLAGS if not _truthy(block.get(flag))]
        if missing:
            problems.append(f"{bucket.logical_id}: PublicAccessBlockConfiguration lacks {', '.join(missing)}")
        if bucket.properties.get("AccessControl") in PUBLIC_CANNED_ACLS:
            problems.append(f"{bucket.logical_id}: AccessControl {bucket.properties['AccessControl']}")
    for policy in template.of_type(BUCKET_POLICY):
        for statement in _statements(policy.properties.get("PolicyDocument")):
            principal = statement.get("Principal")
            everyone = principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS")))
            if statement.get("Effect") == "Allow" and everyone:
                problems.append(f"{policy.logical_id}: allows Principal '*'")
    return problems


def unencrypted_stores(template: Template) -> list[str]:
    """Tables, queues and buckets are encrypted at rest."""
    problems = []
    for table in template.of_type(TABLE, SIMPLE_TABLE):
        if not _truthy((table.properties.get("SSESpecification") or {}).get("SSEEnabled")):
            problems.append(f"{table.logical_id}: SSESpecification.SSEEnabled is not true")
    for queue in template.of_type(QUEUE):
        managed = _truthy(queue.properties.get("SqsManagedSseEnabled"))
        if not managed and not queue.properties.get("KmsMasterKeyId"):
            problems.append(f"{queue.logical_id}: neither SqsManagedSseEnabled nor KmsMasterKeyId")
    for bucket in template.of_type(BUCKET):
        rules = ((bucket.properties.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")) or []
        if not any((rule.get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm") for rule in rules):
            problems.append(f"{bucket.logical_id}: no default encryption (BucketEncryption)")
    return problems


def _logical_id(reference: Any) -> str | None:
    """The resource a !GetAtt X.Arn or !Ref X names."""
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        target = reference["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
    if isinstance(reference, dict) and "Ref" in reference:
        return str(reference["Ref"])
    return None


def queue_functions_without_dead_letter_queue(template: Template) -> list[str]:
    """A function fed by a queue reads from one whose RedrivePolicy sends failing messages to a queue."""
    problems = []
    queues = {queue.logical_id: queue for queue in template.of_type(QUEUE)}
    for function in _functions(template):
        for name, event in (function.properties.get("Events") or {}).items():
            if event.get("Type") != "SQS":
                continue
            queue_id = _logical_id((event.get("Properties") or {}).get("Queue"))
            if queue_id not in queues:
                problems.append(f"{function.logical_id}.{name}: reads a queue this template does not declare")
                continue
            redrive = queues[queue_id].properties.get("RedrivePolicy") or {}
            if _logical_id(redrive.get("deadLetterTargetArn")) not in queues:
                problems.append(f"{function.logical_id}.{name}: {queue_id} has no dead-letter queue")
    return problems


def _log_group_of(template: Template, function_id: str) -> Resource | None:
    function = template.resources[function_id]
    configured = _logical_id((function.properties.get("LoggingConfig") or {}).get("LogGroup"))
    for group in template.of_type(LOG_GROUP):
        name = group.properties.get("LogGroupName")
        text = name.get("Fn::Sub") if isinstance(name, dict) else name
        if group.logical_id == configured or text == f"/aws/lambda/${{{function_id}}}":
            return group
    return None


def log_groups_without_retention(template: Template) -> list[str]:
    """Every function logs to a log group of the template, and every log group expires its events."""
    problems = []
    for function in _functions(template):
        if _log_group_of(template, function.logical_id) is None:
            problems.append(f"{function.logical_id}: no LogGroup /aws/lambda/${{{function.logical_id}}}")
    for group in template.of_type(LOG_GROUP):
        if group.properties.get("RetentionInDays") in (None, ""):
            problems.append(f"{group.logical_id}: no RetentionInDays")
    return problems


CHECKS: dict[str, Check] = {
    "wildcard grants on data stores": wildcard_data_store_grants,
    "public buckets": public_buckets,
    "unencrypted tables, queues and buckets": unencrypted_stores,
    "queue-driven functions without a dead-letter queue": queue_functions_without_dead_letter_queue,
    "logs without retention": log_groups_without_retention,
}


@pytest.fixture(scope="module")
def project_template() -> Template:
    return stack.project_template()


@pytest.mark.parametrize("name", CHECKS)
def test_the_template_passes(project_template: Template, name: str) -> None:
    assert CHECKS[name](project_template) == []


def test_the_checks_look_at_real_resources(project_template: Template) -> None:
    # Guards against a template shape the checks would silently skip (no functions, tables or queues found).
    assert len(_functions(project_template)) >= 5
    assert project_template.tables
    assert project_template.queues
    assert any(event.get("Type") == "SQS" for f in _functions(project_template) for event in _events(f))
    assert any("Statement" in policy for _, policy in _policy_documents(project_template) if isinstance(policy, dict))


def _events(function: Resource) -> list[dict[str, Any]]:
    return list((function.properties.get("Events") or {}).values())


# -------------------------------------------------------------------------------- the checks catch breakage


def snippet(resources: str) -> Template:
    """A template of `resources` (YAML at column 0)."""
    return Template(data=load_yaml("Resources:\n" + textwrap.indent(textwrap.dedent(resources), "  ")), root=ROOT)


def worker(properties: str = "", *, log_group: bool = True, beside: str = "") -> str:
    """A function with `properties`, its log group unless told otherwise, and the resources `beside` it."""
    function = textwrap.dedent("""
        Worker:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: functions/worker/
            Handler: app.lambda_handler
        """)
    logs = textwrap.dedent("""
        WorkerLogs:
          Type: AWS::Logs::LogGroup
          Properties:
            LogGroupName: !Sub /aws/lambda/${Worker}
            RetentionInDays: 30
        """)
    own = textwrap.indent(textwrap.dedent(properties), " " * 4)
    return function + own + (logs if log_group else "") + textwrap.dedent(beside)


def statement(text: str) -> str:
    return worker(f"""
        Policies:
          - Statement:
              - {text}
        """)


BROKEN = [
    pytest.param(wildcard_data_store_grants, statement("{Effect: Allow, Action: '*', Resource: !GetAtt T.Arn}"),
                 "Action '*'", id="action *"),
    pytest.param(wildcard_data_store_grants,
                 statement("{Effect: Allow, Action: 'dynamodb:*', Resource: !GetAtt T.Arn}"),
                 "'dynamodb:*'", id="action dynamodb:*"),
    pytest.param(wildcard_data_store_grants, statement("{Effect: Allow, Action: [s3:GetObject], Resource: '*'}"),
                 "Resource '*'", id="resource *"),
    pytest.param(wildcard_data_store_grants,
                 statement("{Effect: Allow, Action: sqs:SendMessage, Resource: !Sub 'arn:aws:sqs:${AWS::Region}:1:*'}"),
                 "['sqs'] on Resource", id="every queue"),
    pytest.param(wildcard_data_store_grants, statement("{Effect: Allow, NotAction: iam:*, Resource: '*'}"),
                 "NotAction", id="not-action"),
    pytest.param(wildcard_data_store_grants, worker("Policies: [{DynamoDBCrudPolicy: {TableName: '*'}}]"),
                 "DynamoDBCrudPolicy on '*'", id="policy template on *"),
    pytest.param(wildcard_data_store_grants, worker("Policies: [AmazonDynamoDBFullAccess]"),
                 "AmazonDynamoDBFullAccess", id="managed full access"),
    pytest.param(public_buckets, """
        B:
          Type: AWS::S3::Bucket
          Properties:
            PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true}
        """, "RestrictPublicBuckets", id="three of four flags"),
    pytest.param(public_buckets, """
        B:
          Type: AWS::S3::Bucket
          Properties: {AccessControl: PublicRead}
        """, "PublicRead", id="public ACL"),
    pytest.param(public_buckets, """
        P:
          Type: AWS::S3::BucketPolicy
          Properties:
            Bucket: b
            PolicyDocument:
              Statement:
                - {Effect: Allow, Principal: '*', Action: s3:GetObject, Resource: 'arn:aws:s3:::b/*'}
        """, "Principal '*'", id="public bucket policy"),
    pytest.param(unencrypted_stores, """
        T:
          Type: AWS::DynamoDB::Table
          Properties: {BillingMode: PAY_PER_REQUEST}
        """, "SSEEnabled", id="table without SSE"),
    pytest.param(unencrypted_stores, """
        T:
          Type: AWS::DynamoDB::Table
          Properties: {SSESpecification: {SSEEnabled: false}}
        """, "SSEEnabled", id="table with SSE off"),
    pytest.param(unencrypted_stores, """
        Q:
          Type: AWS::SQS::Queue
          Properties: {SqsManagedSseEnabled: false}
        """, "SqsManagedSseEnabled", id="queue without SSE"),
    pytest.param(unencrypted_stores, """
        B:
          Type: AWS::S3::Bucket
        """, "BucketEncryption", id="bucket without encryption"),
    pytest.param(queue_functions_without_dead_letter_queue, worker("""
        Events:
          Jobs: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}
        """, beside="""
        Q:
          Type: AWS::SQS::Queue
        """), "Q has no dead-letter queue", id="queue without redrive"),
    pytest.param(queue_functions_without_dead_letter_queue, worker("""
        Events:
          Jobs: {Type: SQS, Properties: {Queue: "arn:aws:sqs:us-east-1:1:elsewhere"}}
        """), "does not declare", id="queue outside the template"),
    pytest.param(log_groups_without_retention, worker(log_group=False), "no LogGroup", id="no log group"),
    pytest.param(log_groups_without_retention, worker().replace("RetentionInDays: 30", "LogGroupClass: STANDARD"),
                 "no RetentionInDays", id="no retention"),
]  # fmt: skip


@pytest.mark.parametrize(("check", "resources", "expected"), BROKEN)
def test_each_check_fails_on_a_broken_template(check: Check, resources: str, expected: str) -> None:
    problems = check(snippet(resources))

    assert any(expected in problem for problem in problems), problems


SOUND = [
    pytest.param(wildcard_data_store_grants, worker("""
        Policies:
          - Statement:
              - {Effect: Allow, Action: [dynamodb:GetItem], Resource: [!GetAtt T.Arn, !Sub "${T.Arn}/index/*"]}
              - {Effect: Allow, Action: cloudwatch:PutMetricData, Resource: "*"}
              - {Effect: Deny, Action: "s3:*", Resource: "*"}
          - DynamoDBCrudPolicy: {TableName: !Ref T}
        """), id="named resources"),
    pytest.param(public_buckets, """
        B:
          Type: AWS::S3::Bucket
          Properties:
            PublicAccessBlockConfiguration:
              {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true}
        """, id="private bucket"),
    pytest.param(unencrypted_stores, """
        Q:
          Type: AWS::SQS::Queue
          Properties: {KmsMasterKeyId: alias/aws/sqs}
        """, id="KMS queue"),
    pytest.param(queue_functions_without_dead_letter_queue, worker("""
        Events:
          Jobs: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}
        """, beside="""
        Q:
          Type: AWS::SQS::Queue
          Properties:
            RedrivePolicy: {deadLetterTargetArn: !GetAtt D.Arn, maxReceiveCount: 5}
        D:
          Type: AWS::SQS::Queue
        """), id="queue with redrive"),
    pytest.param(log_groups_without_retention,
                 worker("LoggingConfig: {LogGroup: !Ref Own}").replace("WorkerLogs:", "Own:"), id="configured group"),
]  # fmt: skip


@pytest.mark.parametrize(("check", "resources"), SOUND)
def test_each_check_passes_a_sound_template(check: Check, resources: str) -> None:
    assert check(snippet(resources)) == []
